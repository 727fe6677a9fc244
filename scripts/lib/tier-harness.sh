# shellcheck shell=bash
# The frame the QEMU tier scripts share (scripts/check-kernel.sh,
# scripts/check-systemd.sh, scripts/kernel-tier/cdev-tier.sh): their messages
# under TIER_NAME, the counts, and the last line "N passed, M failed" that
# every exit prints; an exit that did not print it (an error, set -e) counts as
# one failure. The scratch directory $work is removed on exit, after
# tier_on_exit_hook if the script defines one.
# Sourced, never run; the sourcing script sets TIER_NAME first.
# shellcheck disable=SC2034 # (passed, failed, work: the sourcing script's)

passed=0
failed=0
summary_printed=0
work=""

log() {
	echo "$TIER_NAME: $*"
}

die() {
	echo "$TIER_NAME: ERROR: $*" >&2
	exit 1
}

print_summary() {
	summary_printed=1
	echo "${passed} passed, ${failed} failed"
}

tier_on_exit() {
	local rc=$?
	if [ -n "$work" ] && [ -d "$work" ]; then
		if declare -F tier_on_exit_hook >/dev/null; then
			tier_on_exit_hook || true
		fi
		rm -rf "$work"
	fi
	if [ "$summary_printed" -eq 0 ]; then
		[ "$rc" -ne 0 ] || rc=1
		failed=$((failed + 1))
		print_summary
	fi
	exit "$rc"
}
trap tier_on_exit EXIT
