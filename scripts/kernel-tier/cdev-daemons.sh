#!/bin/sh
# shellcheck shell=sh
# The cdev kernel's daemon cases (the kernel tier's second kernel, built with
# IOMMUFD, VFIO_DEVICE_CDEV and VFIO_DEBUGFS): vfio-migd daemons open mtty
# devices through their device cdev (/dev/vfio/devices/vfioN: BIND_IOMMUFD,
# IOAS, ATTACH), migrate them, and after each step the daemon's view of each
# device's state must equal the kernel's own record of it
# (/sys/kernel/debug/vfio/<UUID>/migration/state).
#
#   sh cdev-daemons.sh --build DIR --backend kernel --devices A,B   (in the guest)
#   sh cdev-daemons.sh --build DIR --backend sim                    (on the host)
#
# Cases: both daemons by cdev (start, debugfs), host discovery with the cdev
# names, a second open of a held cdev (and of its group) refused naming the
# holder and saying it should hand the fd over, a migration by cdev with the
# UART bytes read back, group -> cdev and cdev -> group, and a cdev fd opened
# by another process and handed over (AttachDevice, no address: the daemon
# learns the device from the fd) migrated to a destination that opened its
# device by UUID. The simulator has no cdevs, debugfs or UART outside its
# daemon: with --backend sim every case is a SKIP, so the comparison with the
# simulator (compare-tap.py) counts the kernel's results alone.
# TAP and the final "N passed, M failed" as daemons.sh; the helpers (TAP,
# bounded waits, daemons, parsers) are daemons.sh's, sourced.
set -u

DAEMONS_AS_LIBRARY=1
DAEMONS_BUDGET_S=${DAEMONS_BUDGET_S:-300}
TIER_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/kernel-tier/daemons.sh
. "$TIER_DIR/daemons.sh"

N_CASES=7
DEBUGFS=${CDEV_DEBUGFS:-/sys/kernel/debug}

# CDEV: the cdev node of mdev $1, "" if it has none
cdev_of() { # uuid
	CDEV=
	for _d in /sys/bus/mdev/devices/"$1"/vfio-dev/vfio*; do
		[ -e "$_d" ] && CDEV=/dev/vfio/devices/${_d##*/}
	done
}

# DEBUGFS_STATE: the kernel's record of device $1's state, "none" if unreadable
debugfs_state() { # uuid
	DEBUGFS_STATE=none
	{ read -r DEBUGFS_STATE <"$DEBUGFS/vfio/$1/migration/state"; } 2>/dev/null
}

# one role's device list: its one device is named $2 and in state $3, and
# debugfs says the same state
check_role() { # role uuid want-state step
	sig_devices "$1"
	case "$(count_in_devices "$1" "\"name\":\"$2\"")" in
	1) ;;
	*) fail "$4: the $1 daemon does not list a device named $2" ;;
	esac
	expect "${4}_$1" "$DEVICE_STATE" "$3"
	debugfs_state "$2"
	expect "${4}_$1_debugfs" "$DEBUGFS_STATE" "$DEVICE_STATE"
}

# both daemons' views after a step, each against debugfs
check_both() { # step src-state dst-state
	if list_devices; then
		check_role src "$DEV_A" "$2" "$1"
		check_role dst "$DEV_B" "$3" "$1"
	else
		sig "$1=no-list"
	fi
}

stop_daemons() {
	stop_process "$SRC_PID"
	SRC_PID=
	expect src_exit "$STOP_RC" 0
	[ "$STOP_RC" = 0 ] || fail_log "$WORK/src.log" "source daemon log"
	stop_process "$DST_PID"
	DST_PID=
	expect dst_exit "$STOP_RC" 0
	[ "$STOP_RC" = 0 ] || fail_log "$WORK/dst.log" "destination daemon log"
}

# A's UART bytes go in before the daemons open the devices (by UUID: the
# tool opens and closes; the bytes stay in mtty's FIFO)
write_uarts() { # text
	UART_WRITE_ERROR=
	uart_tool write "$DEV_A" "$1" -- write "$DEV_B" "$TEXT_B" >"$WORK/write.log" 2>&1 ||
		UART_WRITE_ERROR="$(tail -n 1 "$WORK/write.log")"
}

# after both daemons closed: A STOP, B RUNNING with A's bytes; debugfs agrees
check_uart() { # text-hex
	if [ -n "$UART_WRITE_ERROR" ]; then
		fail "writing the UARTs before the migration failed: $UART_WRITE_ERROR"
		return
	fi
	uart_tool state "$DEV_A" -- read "$DEV_B" 1 >"$WORK/uart.out" 2>"$WORK/uart.err"
	_rc=$?
	if [ "$_rc" -ne 0 ]; then
		sig "uart=failed"
		fail "migd-uart-tool state A -- read B failed: $(exit_reason "$_rc")"
		fail_log "$WORK/uart.err" "migd-uart-tool"
		return
	fi
	{
		read -r _state_a
		read -r _read_b
	} <"$WORK/uart.out"
	expect uart_a "${_state_a:-none}" STOP
	debugfs_state "$DEV_A"
	expect uart_a_debugfs "$DEBUGFS_STATE" STOP
	tool_field state "$_read_b"
	expect uart_b "$FIELD" RUNNING
	debugfs_state "$DEV_B"
	expect uart_b_debugfs "$DEBUGFS_STATE" RUNNING
	tool_field uart0 "$_read_b"
	expect uart0 "$FIELD" "$1"
}

# listen on the destination, migrate from the source, the job's result
migrate_once() { # tag
	ADDRESS=$(migctl "$DST_NAME" listen "unix:@vfio-migd-cdev-$$-$1" --plain \
		2>"$WORK/listen.err")
	_bound=$(bound)
	timeout -k 5 $((_bound + 10)) "$MIGCTL" --session --bus-name "$SRC_NAME" --json \
		migrate "$ADDRESS" --plain --timeout-s "$_bound" >"$WORK/migrate.json" \
		2>"$WORK/migrate.err"
	sig_job_result $? "$WORK/migrate.json" source
	if [ -n "$WHY" ]; then
		fail_log "$WORK/listen.err" "vfio-migctl listen"
		fail_log "$WORK/migrate.err" "vfio-migctl migrate"
		fail_log "$WORK/src.log" "source daemon log"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
}

# starts both daemons with the given --device values; FALSE (recorded) if not
start_pair() { # src-device dst-device
	start_daemon "$DST_NAME" "$WORK/dst.log" --device "$2"
	DST_PID=$DAEMON_PID
	if [ -n "$1" ]; then
		start_daemon "$SRC_NAME" "$WORK/src.log" --device "$1"
	else
		start_daemon "$SRC_NAME" "$WORK/src.log"
	fi
	SRC_PID=$DAEMON_PID
	if ! wait_daemons; then
		sig "daemons=down"
		return 1
	fi
}

# both by cdev; the daemons stay up for the next two cases
case_cdev_start() {
	case_begin
	write_uarts "$TEXT0"
	if ! start_bus; then
		sig "bus=down"
		BROKEN="the private bus did not start"
		case_end cdev-daemons-start
		return
	fi
	if ! start_pair "$CDEV_A" "$CDEV_B"; then
		BROKEN="the daemons did not open their devices by cdev"
		case_end cdev-daemons-start
		return
	fi
	# named after the device (its UUID), however it was opened
	check_both start RUNNING RUNNING
	case_end cdev-daemons-start
}

# host discovery: A and B with their cdev names, the nodes present, A served
case_cdev_host_devices() {
	case_begin
	migctl "$SRC_NAME" --json host-devices >"$WORK/host-devices.json" \
		2>"$WORK/host-devices.err"
	expect exit $? 0
	HOST_DEVICES_LINE=
	[ -f "$WORK/host-devices.json" ] && read -r HOST_DEVICES_LINE <"$WORK/host-devices.json"
	expect mdevs "$(count_kind mdev)" 3
	for _dev in A B; do
		if [ "$_dev" = A ]; then
			_uuid=$DEV_A
			_cdev=$CDEV_A
		else
			_uuid=$DEV_B
			_cdev=$CDEV_B
		fi
		host_entry "$_uuid"
		if [ -z "$HOST_ENTRY" ]; then
			sig "$_dev=none"
			fail "no mdev $_uuid ($_dev)"
			continue
		fi
		json_value cdev "$HOST_ENTRY"
		[ "$JSON_VALUE" = "${_cdev##*/}" ] ||
			fail "$_dev: cdev $JSON_VALUE, expected ${_cdev##*/}"
		sig "${_dev}_cdev=vfioN"
		json_value cdev-node "$HOST_ENTRY"
		expect "${_dev}_cdev_node" "$JSON_VALUE" true
		json_value served "$HOST_ENTRY"
		if [ "$_dev" = A ]; then
			expect A_served "$JSON_VALUE" true
		else
			expect B_served "$JSON_VALUE" false
			case "$HOST_ENTRY" in
			*'"held-by":["'[0-9]*':vfio-migd"]'*) sig "B_held_by=vfio-migd" ;;
			*) fail "B: held-by does not name the destination daemon: ${HOST_ENTRY#*\"held-by\":}" ;;
			esac
		fi
	done
	[ -z "$WHY" ] || fail_log "$WORK/host-devices.err" "vfio-migctl host-devices"
	case_end cdev-daemons-host-devices
}

# A is the source daemon's (by cdev): the destination daemon cannot open it
# again, by cdev or by group, and is told who holds it and should hand it over
case_cdev_second_open() {
	case_begin
	for _how in cdev group; do
		if [ "$_how" = cdev ]; then _what=$CDEV_A; else _what=$DEV_A; fi
		migctl "$DST_NAME" add "$_what" >"$WORK/add.out" 2>"$WORK/add-$_how.err"
		_rc=$?
		if [ "$_rc" -eq 0 ]; then
			sig "${_how}_add=ok"
			fail "a second open of A by $_how succeeded"
			continue
		fi
		sig "${_how}_add=refused"
		_msg=$(cat "$WORK/add-$_how.err")
		case "$_msg" in
		*"$DEV_A is already open, by "[0-9]*":vfio-migd"*"should hand its device fd over"*)
			sig "${_how}_message=names-holder" ;;
		*)
			sig "${_how}_message=other"
			fail "$_how: the refusal does not name the holder and the hand-over: $_msg"
			;;
		esac
	done
	# nothing changed: both still RUNNING, as debugfs says
	check_both after-refusal RUNNING RUNNING
	case_end cdev-daemons-second-open
	# what a user reads (a TAP comment: no part of the signature)
	for _how in cdev group; do
		echo "# the refusal by $_how: $(tr '\n' ' ' <"$WORK/add-$_how.err")"
	done
}

# the pair up from cdev-daemons-start migrates A to B, by cdev both
case_cdev_migrate() {
	case_begin
	migrate_once 1
	check_both migrated STOP RUNNING
	stop_daemons
	check_uart "$TEXT0_HEX"
	case_end cdev-daemons-migrate-uart
}

# one device by group, the other by cdev, on a new pair of daemons
case_mixed() { # name src-device dst-device text text-hex
	case_begin
	write_uarts "$4"
	if start_pair "$2" "$3"; then
		check_both start RUNNING RUNNING
		migrate_once "$1"
		check_both migrated STOP RUNNING
		stop_daemons
		check_uart "$5"
	else
		stop_daemons
	fi
	case_end "$1"
}

# another process opens A by cdev (as a VMM does) and hands the fd to the
# source daemon with no address: the daemon learns the device from the fd
# (/proc/self/fd -> /dev/vfio/devices/vfioN -> /sys/class/vfio-dev/vfioN/device);
# the destination opened B by UUID (its group)
case_cdev_attached_fd() {
	case_begin
	write_uarts "$TEXT3"
	if start_pair "" "$DEV_B"; then
		uart_tool hand "$CDEV_A" "$MIGCTL" --session --bus-name "$SRC_NAME" attach \
			"$DEV_A" --fd "{fd}" >"$WORK/attach.out" 2>"$WORK/attach.err"
		expect attach_exit $? 0
		[ -z "$WHY" ] || fail_log "$WORK/attach.err" "migd-uart-tool hand / vfio-migctl attach"
		# known without an address: the daemon did not warn that it is unknown
		if grep -q "does not say which device it is" "$WORK/src.log"; then
			sig "identity=unknown"
			fail "the daemon did not learn the device from its cdev fd"
		else
			sig "identity=from-fd"
		fi
		check_both attached RUNNING RUNNING
		migrate_once 4
		check_both migrated STOP RUNNING
	fi
	stop_daemons
	check_uart "$TEXT3_HEX"
	case_end cdev-daemons-attached-fd
}

cdev_main() {
	run_begin
	if [ "$BACKEND" = sim ]; then
		for _c in start host-devices second-open migrate-uart group-to-cdev cdev-to-group \
			attached-fd; do
			case_skip "cdev-daemons-$_c" \
				"device cdevs, VFIO debugfs and UARTs outside the daemon are the kernel's"
		done
		echo "$passed passed, $failed failed"
		return 0
	fi
	for _prog in "$MIGD" "$MIGCTL" "$UART_TOOL"; do
		[ -x "$_prog" ] || BROKEN="$_prog is not built"
	done
	cdev_of "$DEV_A"
	CDEV_A=$CDEV
	cdev_of "$DEV_B"
	CDEV_B=$CDEV
	[ -n "$CDEV_A" ] && [ -n "$CDEV_B" ] ||
		BROKEN="${BROKEN:+$BROKEN; }A or B has no vfio-dev cdev (CONFIG_VFIO_DEVICE_CDEV?)"
	[ -r "$DEBUGFS/vfio/$DEV_A/migration/state" ] ||
		BROKEN="${BROKEN:+$BROKEN; }no $DEBUGFS/vfio/$DEV_A/migration/state (CONFIG_VFIO_DEBUGFS, debugfs mounted?)"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/migd-cdev.XXXXXX") || BROKEN="mktemp failed"
	if [ -z "$BROKEN" ]; then
		case_cdev_start
	else
		case_not_run cdev-daemons-start
	fi
	for _case in host_devices:host-devices second_open:second-open migrate:migrate-uart; do
		if [ -z "$BROKEN" ]; then
			"case_cdev_${_case%%:*}"
		else
			case_not_run "cdev-daemons-${_case#*:}"
		fi
	done
	[ -z "$SRC_PID$DST_PID" ] || stop_daemons
	if [ -z "$BROKEN" ]; then
		case_mixed cdev-daemons-group-to-cdev "$DEV_A" "$CDEV_B" FLIP "$TEXT4_HEX"
		case_mixed cdev-daemons-cdev-to-group "$CDEV_A" "$DEV_B" "$TEXT1" "$TEXT1_HEX"
		case_cdev_attached_fd
	else
		case_not_run cdev-daemons-group-to-cdev
		case_not_run cdev-daemons-cdev-to-group
		case_not_run cdev-daemons-attached-fd
	fi
	echo "# $(($(now) - START)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

cdev_main
