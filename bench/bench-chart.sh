#!/bin/bash
# The chart of a bench run (make bench): every row with a target, its ratio as a bar (green
# met, red missed) and its target as a marker, on a log scale (the targets go from 0.02 to
# 0.95). Reads the JSON migd-bench --json writes (docs/ABI/testing/bench-json).
#
#   bench/bench-chart.sh RESULTS.json PREFIX   writes PREFIX.svg and PREFIX.png
#   bench/bench-chart.sh --install             installs gnuplot-nox if gnuplot is missing
#
# Never fails a bench: without gnuplot (or python3) it says so and draws nothing.
set -u

if [ "${1:-}" = --install ]; then
	command -v gnuplot >/dev/null 2>&1 && exit 0
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	echo "bench: installing gnuplot-nox for the chart"
	if ! { $SUDO apt-get install -y -q --no-install-recommends gnuplot-nox >/dev/null ||
		{ $SUDO apt-get update -q >/dev/null &&
			$SUDO apt-get install -y -q --no-install-recommends gnuplot-nox >/dev/null; }; }; then
		echo "bench: could not install gnuplot-nox: the bench runs without its chart" >&2
	fi
	exit 0
fi

if [ $# -ne 2 ]; then
	echo "usage: $0 RESULTS.json PREFIX | --install" >&2
	exit 2
fi
JSON=$1
PREFIX=$2

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "bench: gnuplot is not installed: no chart (make bench-deps installs gnuplot-nox)"
	exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "bench: python3 is not installed: no chart"
	exit 0
fi
if [ ! -s "$JSON" ]; then
	echo "bench: no results in $JSON: no chart"
	exit 0
fi

DATA=$(mktemp)
trap 'rm -f "$DATA"' EXIT
# one line per row with a target: index, ratio, target, met (1/0), "group: metric"
if ! python3 - "$JSON" >"$DATA" <<'PY'; then
import json, sys
doc = json.load(open(sys.argv[1]))
i = 0
for row in doc["rows"]:
    if row.get("target") is None or row.get("ratio") is None:
        continue
    label = (row["group"] + ": " + row["metric"]).replace('"', "'")
    if len(label) > 46:
        label = label[:43] + "..."
    print('%d %.6g %.6g %d "%s"' % (i, row["ratio"], row["target"],
                                  1 if row["status"] == "met" else 0, label))
    i += 1
PY
	echo "bench: $JSON could not be read: no chart"
	exit 0
fi
if [ ! -s "$DATA" ]; then
	echo "bench: no row with a target: no chart"
	exit 0
fi
N=$(wc -l <"$DATA")
DATE=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%s UTC, %d targets: %d met, %d missed" % (d["date"][:16].replace("T", " "), d["targets"], d["met"], d["missed"]))' "$JSON" 2>/dev/null)
WIDTH=$((420 + N * 60))

plot() { # terminal output
	gnuplot <<GP
set terminal $1 size $WIDTH,620 font ",11"
set output "$2"
set title "vfio-migd bench: ratio against target (${DATE//\"/\'})" noenhanced
set logscale y
set yrange [0.001:10]
set ylabel "ratio (ours / reference), log scale"
set style fill solid 0.8 border -1
set boxwidth 0.6
set xtics rotate by -35 left noenhanced font ",9"
set grid ytics
set bmargin 14
set rmargin 30
set key inside left top
plot "$DATA" using 1:2:(\$4 == 1 ? 0x2e9e44 : 0xd73027):xtic(5) with boxes lc rgb variable title "ratio (green met, red missed)", \
     "$DATA" using 1:3 with points pt 9 ps 1.8 lc rgb "black" title "target"
GP
}

mkdir -p "$(dirname "$PREFIX")"
if plot svg "$PREFIX.svg" 2>"$DATA.err"; then
	echo "bench: chart in $PREFIX.svg"
else
	echo "bench: gnuplot failed: no chart ($(head -n 3 "$DATA.err"))"
fi
if gnuplot -e 'set terminal' 2>&1 | grep -q '^ *png '; then
	plot png "$PREFIX.png" 2>/dev/null && echo "bench: chart in $PREFIX.png"
fi
rm -f "$DATA.err"
exit 0
