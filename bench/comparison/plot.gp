# compare.png from the plot-*.dat files bench/compare writes (one row per scenario, one column
# per policy, medians over the repeats of the pfs-stress workload).
#   gnuplot -e "datadir='compare-out'; out='compare-out/compare.png'; npol=4" bench/comparison/plot.gp
if (!exists("datadir")) datadir = "compare-out"
if (!exists("out")) out = datadir."/compare.png"
if (!exists("npol")) npol = 4

set terminal pngcairo size 1400,1000 noenhanced font ",10"
set output out
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by -25 scale 0
set key top right vertical samplen 2 width -2 box opaque
set yrange [0:*]
set offsets 0, 0, graph 0.3, 0
set linetype 1 lc rgb "#1b9e77"
set linetype 2 lc rgb "#d95f02"
set linetype 3 lc rgb "#7570b3"
set linetype 4 lc rgb "#e7298a"

set multiplot layout 2,2 title "pressurefs: the same pressure and workload under each allocation-failure policy"

set title "application errors (write/fsync/metadata, not ENOTCONN)"
plot for [i=2:npol+1] datadir."/plot-errors.dat" using i:xtic(1) title columnheader(i)

set title "bytes lost after write ack (MiB): what a crash or hang took"
plot for [i=2:npol+1] datadir."/plot-lost.dat" using i:xtic(1) title columnheader(i)

set title "max write() latency (ms): stalls"
plot for [i=2:npol+1] datadir."/plot-latency.dat" using i:xtic(1) title columnheader(i)

set title "throughput (MB/s acknowledged)"
plot for [i=2:npol+1] datadir."/plot-mbps.dat" using i:xtic(1) title columnheader(i)

unset multiplot
