#!/usr/bin/env bash
# Runs every test of vfio-migd: formatting, the normal build (warnings are
# errors), then the whole suite again under AddressSanitizer + UBSan, then each
# libFuzzer harness for a bounded time, then the real-kernel tier, then the
# Debian packages (scripts/check-package.sh), then those packages under a real
# systemd (scripts/check-systemd.sh).
# Ends with one line "N passed, M failed" counting every test case of every run.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
BUILD_SAN=${BUILD_SAN:-build-sanitize}
sanitize_only=0
[ "${1:-}" = "--sanitize-only" ] && sanitize_only=1

passed=0
failed=0
status=0

# Adds the TAP results of one meson run to the totals; a test binary that
# crashed before printing its plan counts as one failure.
count_run() {
	local log counts
	# meson appends the wrapper's name to a --logbase (valgrind -> valgrind-valgrind.json)
	log=$(ls -t "$1/meson-logs/${2:-testlog}"*.json 2>/dev/null | head -n 1)
	if [ -z "$log" ] || [ ! -f "$log" ]; then
		failed=$((failed + 1))
		return
	fi
	counts=$(python3 scripts/tap-summary.py "$log") || counts="0 1"
	passed=$((passed + ${counts% *}))
	failed=$((failed + ${counts#* }))
}

# Adds a log's last line "N passed, M failed" to the totals; without it, one failure.
count_last_line() {
	if [[ "$(tail -n 1 "$1")" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
	fi
}

run_suite() {
	local dir="$1" multiplier="$2"
	shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@" || { failed=$((failed + 1)); status=1; return; }
	fi
	if ! ninja -C "$dir"; then
		failed=$((failed + 1))
		status=1
		return
	fi
	meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier "$multiplier" || status=1
	count_run "$dir"
}

if [ "$sanitize_only" -eq 0 ]; then
	echo "== clang-format"
	if git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror; then
		passed=$((passed + 1))
	else
		echo "clang-format: files differ from .clang-format (run 'make format')"
		failed=$((failed + 1))
		status=1
	fi
	echo "== tests (werror build)"
	run_suite "$BUILD" 1

	# valgrind where it is cheap: the core suite, single-threaded and fast
	echo "== core tests under valgrind"
	if meson test -C "$BUILD" --suite core --print-errorlogs \
		--wrapper 'valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite' \
		--logbase valgrind; then
		:
	else
		status=1
	fi
	count_run "$BUILD" valgrind
fi

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# ASan+UBSan slow the code 2-3x (seen: test-transport's TLS cases past 120 s on a
# loaded machine), so the sanitizer run gets three times each test's own bound
run_suite "$BUILD_SAN" 3 -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

# the libFuzzer harnesses, each a bounded run on its seed corpus (docs/fuzzing.md);
# one test per harness, from run-fuzz.sh's last line "N passed, M failed"
if [ "$sanitize_only" -eq 0 ]; then
	echo "== fuzzing (${FUZZ_SECONDS:-20} s per harness)"
	fuzz_log=$(mktemp)
	FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash scripts/run-fuzz.sh --count 2>&1 | tee "$fuzz_log" || status=1
	count_last_line "$fuzz_log"
	rm -f "$fuzz_log"
fi

# Linux 6.12 + the mtty sample under QEMU; its last line is "N passed, M failed"
if [ "$sanitize_only" -eq 0 ]; then
	echo "== real-kernel tier"
	kernel_log=$(mktemp)
	BUILD="$BUILD" bash scripts/check-kernel.sh 2>&1 | tee "$kernel_log" || status=1
	count_last_line "$kernel_log"
	rm -f "$kernel_log"
fi

# the Debian packages: built, linted, installed with dpkg into a throw-away root;
# its last line is "N passed, M failed"
if [ "$sanitize_only" -eq 0 ]; then
	echo "== packaging"
	package_log=$(mktemp)
	bash scripts/check-package.sh 2>&1 | tee "$package_log" || status=1
	count_last_line "$package_log"
	rm -f "$package_log"
fi

# the packages just built, installed with dpkg in a guest booted with systemd as
# PID 1 (the same 6.12 kernel, real mtty devices); "N passed, M failed" too
if [ "$sanitize_only" -eq 0 ]; then
	echo "== systemd tier"
	systemd_log=$(mktemp)
	BUILD="$BUILD" SYSTEMD_TIER_DEBS="${DEB_OUT:-build-deb}" bash scripts/check-systemd.sh 2>&1 |
		tee "$systemd_log" || status=1
	count_last_line "$systemd_log"
	rm -f "$systemd_log"
fi

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] || status=1
exit "$status"
