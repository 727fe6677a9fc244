#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/, docs/fuzzing.md) with clang in
# $BUILD_FUZZ and runs each for FUZZ_SECONDS on a temporary copy of its seed
# corpus (the checked-in corpus is never changed). One line per harness:
#   fuzz-NAME: ok|CRASH|FAILED  runs N  cov N  ft N  corpus N  crashes N  (S s)
# and a crash's input is kept in $BUILD_FUZZ/fuzz-crashes/. Exits 1 if any
# harness crashed or did not run; with --count, the last line is
# "N passed, M failed" (one test per harness) for scripts/run-tests.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
HARNESSES=(fuzz-wire-frame fuzz-dirty-bitmap fuzz-dirty-file fuzz-config)
count=0
[ "${1:-}" = "--count" ] && count=1

passed=0
failed=0
if [ ! -f "$BUILD_FUZZ/build.ninja" ]; then
	CC=clang meson setup "$BUILD_FUZZ" -Dwerror=true -Dfuzzing=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false || failed=${#HARNESSES[@]}
fi
if [ "$failed" -eq 0 ] && ! ninja -C "$BUILD_FUZZ" "${HARNESSES[@]/#/tests/fuzz/}"; then
	failed=${#HARNESSES[@]}
fi
if [ "$failed" -ne 0 ]; then
	echo "fuzz: the harnesses did not build"
	[ "$count" -eq 1 ] && echo "0 passed, ${failed} failed"
	exit 1
fi

crashes_dir="$BUILD_FUZZ/fuzz-crashes"
mkdir -p "$crashes_dir"
# leaks are checked per input by libFuzzer; a sanitizer report must end the run
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
for h in "${HARNESSES[@]}"; do
	work=$(mktemp -d)
	log="$work/log"
	mkdir "$work/corpus"
	cp tests/fuzz/corpus/"$h"/* "$work/corpus/"
	dict=()
	[ -f "tests/fuzz/$h.dict" ] && dict=("-dict=tests/fuzz/$h.dict")
	start=$(date +%s)
	"$BUILD_FUZZ/tests/fuzz/$h" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
		-artifact_prefix="$crashes_dir/$h-" "${dict[@]}" "$work/corpus" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
	n_crashes=$(grep -c '^artifact_prefix=.*Test unit written' "$log")
	if [ "$rc" -eq 0 ] && [ "$n_crashes" -eq 0 ]; then
		verdict=ok
		passed=$((passed + 1))
	else
		verdict=FAILED
		[ "$n_crashes" -ne 0 ] && verdict=CRASH
		failed=$((failed + 1))
		grep -E 'ERROR|SUMMARY|Test unit written|GLib|\*\*' "$log" | head -n 20
	fi
	printf '%s: %s  runs %s  cov %s  ft %s  corpus %s  crashes %s  (%s s)\n' "$h" "$verdict" \
		"$(stat number_of_executed_units)" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
		"$n_crashes" "$secs"
	rm -rf "$work"
done
[ "$count" -eq 1 ] && echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
