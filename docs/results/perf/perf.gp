set terminal pngcairo noenhanced size 2000,1100 font 'sans,9'
set output '/work/main/docs/results/perf/perf.png'
set datafile missing '?'
set linetype 1 lc rgb '#4d4d4d'
set linetype 2 lc rgb '#1b9e77'
set linetype 3 lc rgb '#7fc97f'
set linetype 4 lc rgb '#d95f02'
set linetype 5 lc rgb '#e6ab02'
set linetype 6 lc rgb '#7570b3'
set linetype 7 lc rgb '#e7298a'
set linetype 8 lc rgb '#a6761d'
set linetype 9 lc rgb '#fdbf6f'
set linetype 10 lc rgb '#66a61e'
set linetype 11 lc rgb '#1f78b4'
set linetype 12 lc rgb '#fb9a99'
set linetype 13 lc rgb '#b15928'
set linetype 14 lc rgb '#6a3d9a'
set linetype 15 lc rgb '#a6cee3'
set linetype 16 lc rgb '#000000'
set multiplot
set origin 0,0.42
set size 1,0.58
set title 'throughput relative to passthrough_ll (median of runs; >1 is faster)'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -30 nomirror
set grid ytics
set key outside right top
set logscale y 2
set yrange [0.0625:*]
plot for [i=2:10] '/work/main/docs/results/perf/perf-ratio.dat' using i:xtic(1) title columnheader(i)
unset logscale y
set yrange [*:*]
unset style
set style data linespoints
set xtics norotate
set key inside top right
unset multiplot
