# The workload comparison: intact, lost and refused units per scenario/policy (medians).
# gnuplot -e "dat='plot-workload.dat'; out='compare.png'; unit='records'; n=8" workload.gp
set terminal pngcairo size (n < 8 ? 900 : 110 * n + 200), 700 font ',10'
set output out
set multiplot layout 2, 1 title 'your workload under pressure (' . unit . ')'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set key top left
set xtics rotate by -30 noenhanced
set yrange [0:*]
set ylabel 'intact ' . unit
set xtics format ''
plot dat using 2:xtic(1) title 'intact' lc rgb '#4a8c4a'
set ylabel 'lost / refused ' . unit
set yrange [0:*]
plot dat using 3:xtic(1) title 'lost (told kept, missing)' lc rgb '#c0392b', \
     '' using 4 title 'refused (told failed)' lc rgb '#e6a23c'
unset multiplot
