# compare.png from the plot-*.dat files bench/compare writes (one row per scenario, one column
# per policy, medians over the repeats of the pfs-stress workload).
#   gnuplot -e "datadir='compare-out'; out='compare-out/compare.png'; npol=8" bench/comparison/plot.gp
# Errors and stalls span orders of magnitude across policies (0 against thousands, 1 ms against
# a hang): those panels use a log scale of value + 1, so a zero stays visible as an empty bar.
# Hung and crashed runs are marked on them ("H", "C", from plot-marks.dat) and have their own
# panels.
if (!exists("datadir")) datadir = "compare-out"
if (!exists("out")) out = datadir."/compare.png"
if (!exists("npol")) npol = 8

set terminal pngcairo size 1600,1500 noenhanced font ",10"
set output out
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by -25 scale 0
set key top right vertical samplen 2 width -2 box opaque maxrows 4
set offsets 0, 0, graph 0.35, 0
set linetype 1 lc rgb "#1b9e77"
set linetype 2 lc rgb "#d95f02"
set linetype 3 lc rgb "#7570b3"
set linetype 4 lc rgb "#e7298a"
set linetype 5 lc rgb "#66a61e"
set linetype 6 lc rgb "#e6ab02"
set linetype 7 lc rgb "#a6761d"
set linetype 8 lc rgb "#444444"

# The x of policy j (1-based) in scenario row i (0-based) of a clustered histogram.
px(i, j) = i + (j - (npol + 1) / 2.0) / (npol + 1.0)

set multiplot layout 3,2 title "pressurefs: the same pressure and workload under each allocation-failure policy (H = hung, C = crashed)"

set title "application errors + 1, log scale (medians as in the table; write/fsync/metadata, not ENOTCONN)"
set logscale y
set yrange [1:*]
plot for [i=2:npol+1] datadir."/plot-errors.dat" using (column(i) + 1):xtic(1) title columnheader(i), \
     datadir."/plot-marks.dat" using (px($1, $2)):($3 + 1):4 with labels offset 0,0.7 font ",11" notitle

set title "max write() latency + 1 ms, log scale: stalls"
plot for [i=2:npol+1] datadir."/plot-latency.dat" using (column(i) + 1):xtic(1) title columnheader(i), \
     datadir."/plot-marks.dat" using (px($1, $2)):($5 + 1):4 with labels offset 0,0.7 font ",11" notitle
unset logscale y
set yrange [0:*]

set title "bytes lost after write ack or refused (MiB)"
plot for [i=2:npol+1] datadir."/plot-lost.dat" using i:xtic(1) title columnheader(i)

set title "throughput (MB/s acknowledged)"
plot for [i=2:npol+1] datadir."/plot-mbps.dat" using i:xtic(1) title columnheader(i)

set title "hung runs (fraction of the repeats; colours as above)"
unset key
set yrange [0:1.05]
plot for [i=2:npol+1] datadir."/plot-hung.dat" using i:xtic(1) title columnheader(i)

set title "crashed runs (fraction of the repeats)"
plot for [i=2:npol+1] datadir."/plot-crashed.dat" using i:xtic(1) title columnheader(i)

unset multiplot
