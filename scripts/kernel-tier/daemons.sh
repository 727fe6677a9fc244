#!/bin/sh
# shellcheck shell=sh
# The real-kernel tier's two-daemon migration: a private D-Bus bus, a source
# vfio-migd owning device A and a destination vfio-migd owning device B,
# vfio-migctl listen/migrate plain over a unix socket, both daemons stopped, and
# then (kernel) the UART bytes written into A before the source daemon opened
# it read back from B after the destination daemon closed it.
#
#   sh daemons.sh --build DIR --backend kernel --devices A,B   (in the guest)
#   sh daemons.sh --build DIR --backend sim                    (on the host)
#
# A and B are mtty-2 devices (kernel: mdev UUIDs; sim: mtty:ports=2). Prints
# TAP as migd-conformance does ("ok K - name # signature", the signature only
# what both backends must show alike), then "N passed, M failed"; exit status
# 0 iff every case passed. The sim backend skips the UART case: simulated
# devices live inside their daemon, nothing outside it can reach their region.
# Every wait is bounded: each call by DAEMONS_STEP_S (default 30 s), all of
# them together by DAEMONS_BUDGET_S (default 240 s; once it is spent, what is
# left fails fast), and no process started here outlives the budget by more
# than 30 s. Every process started here is stopped on the way out, whatever
# happened.
# POSIX sh: the guest runs it with the host's /bin/sh (dash) in its chroot.
set -u

STEP_S=${DAEMONS_STEP_S:-30}
BUDGET_S=${DAEMONS_BUDGET_S:-240}
LIFETIME_S=$((BUDGET_S + 30))
SRC_NAME=org.vfiomigd.KernelTier.Source
DST_NAME=org.vfiomigd.KernelTier.Destination
JOB_PATH=/org/vfiomigd/Migd1/jobs/1 # a fresh daemon numbers its jobs from 1
# what goes into A's ports (the FIFO holds 15 bytes), as the tool prints it
# back, and what goes into B's port 0
TEXT0=DAEMONS
TEXT0_HEX=4441454d4f4e53
TEXT1=99
TEXT1_HEX=3939
TEXT_B=old
N_CASES=8 # with daemons-host-devices

usage() {
	echo "usage: $0 --build DIR --backend kernel --devices A,B | --backend sim" >&2
	exit 2
}

BUILD=
BACKEND=
DEVICES=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) [ $# -ge 2 ] || usage; BUILD=$2; shift 2 ;;
	--backend) [ $# -ge 2 ] || usage; BACKEND=$2; shift 2 ;;
	--devices) [ $# -ge 2 ] || usage; DEVICES=$2; shift 2 ;;
	*) usage ;;
	esac
done
[ -n "$BUILD" ] || usage
case "$BACKEND" in
kernel)
	DEV_A=${DEVICES%%,*}
	DEV_B=${DEVICES#*,}
	if [ -z "$DEV_A" ] || [ -z "$DEV_B" ] || [ "$DEV_A" = "$DEVICES" ]; then
		usage
	fi
	;;
sim) [ -z "$DEVICES" ] || usage ;;
*) usage ;;
esac

MIGD=$BUILD/daemon/vfio-migd
MIGCTL=$BUILD/tools/vfio-migctl
UART_TOOL=$BUILD/tests/conformance/migd-uart-tool

WORK=
BUS_PID=
SRC_PID=
DST_PID=
RELAY_PID=
BROKEN= # set once the daemons cannot be driven any more: the later cases do not run

# ---- TAP ----

n=0
passed=0
failed=0
SIG=
WHY=

case_begin() {
	SIG=
	WHY=
}

sig() {
	SIG="${SIG:+$SIG }$*"
}

fail() {
	WHY="${WHY}#   $*
"
}

# the last lines of a log as diagnostics
fail_log() { # file what
	[ -s "$1" ] || return 0
	fail "$2:"
	WHY="${WHY}$(tail -n 12 "$1" | sed 's/^/#   | /')
"
}

expect() { # key got want
	sig "$1=$2"
	[ "$2" = "$3" ] || fail "$1: got $2, expected $3"
}

case_end() { # name
	n=$((n + 1))
	if [ -z "$WHY" ]; then
		passed=$((passed + 1))
		echo "ok $n - $1 # $SIG"
	else
		failed=$((failed + 1))
		echo "not ok $n - $1 # $SIG"
		printf '%s' "$WHY"
	fi
}

# a case that cannot run after an earlier failure
case_not_run() { # name
	case_begin
	sig "not-run"
	fail "not run: $BROKEN"
	case_end "$1"
}

case_skip() { # name reason
	n=$((n + 1))
	passed=$((passed + 1))
	echo "ok $n - $1 # SKIP $2"
}

# ---- processes ----

# The helpers polled in loops use shell builtins only: under emulation every
# process start costs a good part of a second.

# TRUE while $1 runs (a zombie does not count: the shell may not have reaped it)
alive() { # pid
	{ read -r _stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	_stat=${_stat##*) }
	[ "${_stat%% *}" != Z ]
}

# seconds since boot
now() {
	read -r _up _idle </proc/uptime
	echo "${_up%%.*}"
}

# the bound of the next wait: STEP_S, or what is left of the budget (at least 1 s)
bound() {
	_left=$((DEADLINE - $(now)))
	[ "$_left" -le "$STEP_S" ] || _left=$STEP_S
	[ "$_left" -ge 1 ] || _left=1
	echo "$_left"
}

# an exit status in words (124, 137: the bound ran out)
exit_reason() { # status
	case "$1" in
	124 | 137) echo "no answer within its bound (exit $1)" ;;
	*) echo "exit $1" ;;
	esac
}

# every call of the client is bounded
migctl() { # bus-name args...
	_name=$1
	shift
	timeout -k 5 "$(bound)" "$MIGCTL" --session --bus-name "$_name" "$@"
}

# the same for the UART tool: a device that hangs in the kernel fails the case
uart_tool() { # args...
	timeout -k 5 "$(bound)" "$UART_TOOL" "$@"
}

# Stops a process started under `timeout -k 5` (which passes the signal on and
# kills after 5 s) and sets STOP_RC to its exit status.
stop_process() { # pid
	STOP_RC=
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null
	# (the shell's "Terminated" notices stay off the TAP stream)
	{ wait "$1"; } 2>/dev/null
	STOP_RC=$?
}

cleanup() {
	# the daemons before their bus; each stop is bounded by its timeout's -k
	for _pid in "$RELAY_PID" "$SRC_PID" "$DST_PID" "$BUS_PID"; do
		[ -n "$_pid" ] && alive "$_pid" && stop_process "$_pid"
	done
	RELAY_PID=
	SRC_PID=
	DST_PID=
	BUS_PID=
	[ -n "$WORK" ] && rm -rf "$WORK"
}

# ---- the steps ----

# A private bus; its address goes to DBUS_SESSION_BUS_ADDRESS. Its own
# configuration, the session bus's policy without the includes and service
# directories: nothing of the host's D-Bus setup takes part (and under
# emulation every file read costs).
start_bus() {
	_bound=$(bound)
	_deadline=$(($(now) + _bound))
	cat >"$WORK/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$WORK/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
	# --print-address writes once the bus listens
	timeout -k 5 "$LIFETIME_S" dbus-daemon --config-file="$WORK/bus.conf" --nofork \
		--nopidfile --print-address=3 3>"$WORK/bus.address" >"$WORK/bus.log" 2>&1 &
	BUS_PID=$!
	while [ ! -s "$WORK/bus.address" ]; do
		if ! alive "$BUS_PID"; then
			fail "the private bus (dbus-daemon) exited at start"
			fail_log "$WORK/bus.log" "dbus-daemon"
			return 1
		fi
		if [ "$(now)" -ge "$_deadline" ]; then
			fail "the private bus (dbus-daemon) did not start within ${_bound} s"
			fail_log "$WORK/bus.log" "dbus-daemon"
			return 1
		fi
		sleep 0.1
	done
	DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$WORK/bus.address")
	export DBUS_SESSION_BUS_ADDRESS
}

# Starts a daemon in the background under a lifetime bound; sets DAEMON_PID.
# The build's plugins and an empty configuration (or DAEMON_CONFIG): nothing
# installed on the host takes part.
start_daemon() { # bus-name log device-options...
	_name=$1
	_log=$2
	shift 2
	_config=${DAEMON_CONFIG:-$WORK/vfio-migd.conf}
	[ -n "${DAEMON_CONFIG:-}" ] || : >"$_config"
	# each plugin's build directory, as one search path
	_plugin_dirs=
	for _so in "$BUILD"/plugins/*/migd-plugin-*.so; do
		[ -e "$_so" ] || continue
		_plugin_dirs="${_plugin_dirs:+$_plugin_dirs:}${_so%/*}"
	done
	timeout -k 5 "$LIFETIME_S" "$MIGD" --session --bus-name "$_name" \
		--config "$_config" --plugin-dir "$_plugin_dirs" "$@" >"$_log" 2>&1 &
	DAEMON_PID=$!
}

# Waits until both daemons own their names (a daemon exports its objects
# first): one `gdbus wait` each, both at once; a daemon that exits meanwhile
# fails at once. FALSE with the reasons recorded.
wait_daemons() {
	_bound=$(bound)
	timeout -k 5 $((_bound + 5)) gdbus wait --session --timeout "$_bound" "$DST_NAME" \
		>"$WORK/dst.wait" 2>&1 &
	_gw_dst=$!
	timeout -k 5 $((_bound + 5)) gdbus wait --session --timeout "$_bound" "$SRC_NAME" \
		>"$WORK/src.wait" 2>&1 &
	_gw_src=$!
	_exited=
	while alive "$_gw_dst" || alive "$_gw_src"; do
		alive "$DST_PID" || _exited="$_exited dst"
		alive "$SRC_PID" || _exited="$_exited src"
		[ -z "$_exited" ] || break
		sleep 0.1
	done
	if [ -n "$_exited" ]; then
		kill "$_gw_dst" "$_gw_src" 2>/dev/null
		{ wait "$_gw_dst"; } 2>/dev/null
		{ wait "$_gw_src"; } 2>/dev/null
		for _role in $_exited; do
			fail "the $_role daemon exited before it owned its bus name"
			fail_log "$WORK/$_role.log" "$_role daemon log"
		done
		return 1
	fi
	wait "$_gw_dst"
	_rc_dst=$?
	wait "$_gw_src"
	_rc_src=$?
	for _role in dst src; do
		if [ "$_role" = dst ]; then _rc=$_rc_dst; else _rc=$_rc_src; fi
		[ "$_rc" -eq 0 ] && continue
		fail "the $_role daemon did not own its bus name within ${_bound} s (gdbus wait: $_rc)"
		fail_log "$WORK/$_role.wait" "gdbus wait"
		fail_log "$WORK/$_role.log" "$_role daemon log"
	done
	[ "$_rc_dst" -eq 0 ] && [ "$_rc_src" -eq 0 ]
}

# both daemons' device lists at once, into $WORK/<role>.devices
list_devices() {
	migctl "$SRC_NAME" --json devices >"$WORK/src.devices" 2>"$WORK/src.devices.err" &
	_pid_src=$!
	migctl "$DST_NAME" --json devices >"$WORK/dst.devices" 2>"$WORK/dst.devices.err" &
	_pid_dst=$!
	wait "$_pid_src"
	_rc_src=$?
	wait "$_pid_dst"
	_rc_dst=$?
	for _role in src dst; do
		if [ "$_role" = src ]; then _rc=$_rc_src; else _rc=$_rc_dst; fi
		[ "$_rc" -eq 0 ] && continue
		fail "vfio-migctl devices ($_role) failed: $(exit_reason "$_rc")"
		fail_log "$WORK/$_role.devices.err" "vfio-migctl devices ($_role)"
	done
	[ "$_rc_src" -eq 0 ] && [ "$_rc_dst" -eq 0 ]
}

# The parsers below use builtins only, like the polling helpers.

# how often NEEDLE stands in a role's last device list (one line of JSON)
count_in_devices() { # role needle
	_cline=
	[ -f "$WORK/$1.devices" ] && read -r _cline <"$WORK/$1.devices"
	_count=0
	_rest=$_cline
	while :; do
		case "$_rest" in
		*"$2"*)
			_count=$((_count + 1))
			_rest=${_rest#*"$2"}
			;;
		*) break ;;
		esac
	done
	echo "$_count"
}

# the state and the flags of the daemon's one device, from vfio-migctl --json
# devices (one line: {"devices":[{"name":...,"state":...,"flags":...}]});
# signature key <role>_devices
sig_devices() { # role
	_line=
	[ -f "$WORK/$1.devices" ] && read -r _line <"$WORK/$1.devices"
	expect "$1_devices" "$(count_in_devices "$1" '"name":')" 1
	json_value state "$_line"
	DEVICE_STATE=$JSON_VALUE
	json_value flags "$_line"
	DEVICE_FLAGS=$JSON_VALUE
}

# JSON_VALUE: the value of a key of one line of vfio-migctl --json output (a
# string without its quotes, a number or a boolean), "none" if absent
json_value() { # key line
	_key="\"$1\":"
	case "$2" in
	*"$_key"*) ;;
	*)
		JSON_VALUE=none
		return
		;;
	esac
	JSON_VALUE=${2##*"$_key"}
	case "$JSON_VALUE" in
	\"*)
		JSON_VALUE=${JSON_VALUE#\"}
		JSON_VALUE=${JSON_VALUE%%\"*}
		;;
	*) JSON_VALUE=${JSON_VALUE%%[,\}]*} ;;
	esac
}

# checks vfio-migctl's exit status and the job's final --json line: success,
# role, phase, one device, some bytes moved
sig_job_result() { # exit-status file role
	_line=$(grep '"event":"completed"' "$2" | tail -n 1)
	expect exit "$1" 0
	if [ -z "$_line" ]; then
		sig "completed=none"
		fail "no final 'completed' object from vfio-migctl ($(exit_reason "$1"))"
		return
	fi
	json_value success "$_line"
	expect success "$JSON_VALUE" true
	if [ "$JSON_VALUE" != true ]; then
		json_value message "$_line"
		fail "job message: $JSON_VALUE"
	fi
	json_value role "$_line"
	expect role "$JSON_VALUE" "$3"
	json_value phase "$_line"
	expect phase "$JSON_VALUE" completed
	json_value devices "$_line"
	expect devices "$JSON_VALUE" 1
	json_value bytes "$_line"
	sig "bytes=$JSON_VALUE"
	[ "$JSON_VALUE" -gt 0 ] 2>/dev/null || fail "bytes: got $JSON_VALUE, expected more than 0"
}

case_start() {
	case_begin
	if [ "$BACKEND" = kernel ]; then
		# before any daemon opens them: A's ports carry the bytes, B holds
		# something else, which the migration must replace
		uart_tool write "$DEV_A" "$TEXT0" "$TEXT1" -- write "$DEV_B" "$TEXT_B" \
			>"$WORK/write.log" 2>&1
		_rc=$?
		[ "$_rc" -eq 0 ] ||
			UART_WRITE_ERROR="$(exit_reason "$_rc"): $(tail -n 1 "$WORK/write.log")"
		set -- --device "$DEV_A"
		_dst_device="--device $DEV_B"
	else
		set -- --sim-device mtty:ports=2,seed=1
		_dst_device="--sim-device mtty:ports=2,seed=2"
	fi
	if ! start_bus; then
		sig "bus=down"
		BROKEN="the private bus did not start"
		case_end daemons-start
		return
	fi
	sig "bus=up"
	# shellcheck disable=SC2086 # one option and its value, no spaces in either
	start_daemon "$DST_NAME" "$WORK/dst.log" $_dst_device
	DST_PID=$DAEMON_PID
	start_daemon "$SRC_NAME" "$WORK/src.log" "$@"
	SRC_PID=$DAEMON_PID
	if ! wait_daemons || ! list_devices; then
		sig "daemons=down"
		BROKEN="the daemons did not start"
		case_end daemons-start
		return
	fi
	sig_devices src
	expect src "$DEVICE_STATE" RUNNING
	sig "src_flags=$DEVICE_FLAGS"
	sig_devices dst
	expect dst "$DEVICE_STATE" RUNNING
	sig "dst_flags=$DEVICE_FLAGS"
	case_end daemons-start
}

# ---- host discovery (issue 15) ----

HOST_DEVICES_LINE=
# HOST_ENTRY: the object of host-devices' --json line whose name is $1, "" if none
host_entry() { # name
	HOST_ENTRY=
	_rest=$HOST_DEVICES_LINE
	case "$_rest" in
	*"\"name\":\"$1\""*) ;;
	*) return ;;
	esac
	# the objects hold no nested objects ("held-by" is an array of strings)
	_rest=${_rest#*"\"name\":\"$1\""}
	HOST_ENTRY=${_rest%%\}*}
}

# how many entries of a kind the line holds
count_kind() { # kind
	_count=0
	_rest=$HOST_DEVICES_LINE
	while :; do
		case "$_rest" in
		*"\"kind\":\"$1\""*)
			_count=$((_count + 1))
			_rest=${_rest#*"\"kind\":\"$1\""}
			;;
		*) break ;;
		esac
	done
	echo "$_count"
}

# The source daemon lists the guest's VFIO devices (vfio-migctl host-devices
# --json): the mtty parent's two types with their available instances, the
# three instances (A and B mtty-2, C mtty-1) with type, parent, group and vfio-dev
# entry; A is the source's (served), B the destination daemon's (held by it,
# seen through /proc). Run while both daemons hold their device.
case_host_devices() {
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-host-devices \
			"simulated devices are no host devices: there is no sysfs to discover"
		return
	fi
	case_begin
	migctl "$SRC_NAME" --json host-devices >"$WORK/host-devices.json" \
		2>"$WORK/host-devices.err"
	_rc=$?
	expect exit "$_rc" 0
	HOST_DEVICES_LINE=
	[ -f "$WORK/host-devices.json" ] && read -r HOST_DEVICES_LINE <"$WORK/host-devices.json"
	expect types "$(count_kind mdev-type)" 2
	expect mdevs "$(count_kind mdev)" 3
	for _type in mtty-1 mtty-2; do
		host_entry "mtty/$_type"
		if [ -z "$HOST_ENTRY" ]; then
			sig "$_type=none"
			fail "no mdev type mtty/$_type"
			continue
		fi
		json_value device-api "$HOST_ENTRY"
		expect "${_type}_api" "$JSON_VALUE" vfio-pci
		json_value available-instances "$HOST_ENTRY"
		# how many are left depends on the instances made: recorded, checked as a number
		sig "${_type}_available=$JSON_VALUE"
		[ "$JSON_VALUE" -ge 0 ] 2>/dev/null ||
			fail "mtty/$_type available-instances: got $JSON_VALUE, expected a number"
	done
	for _dev in A B; do
		if [ "$_dev" = A ]; then _uuid=$DEV_A; else _uuid=$DEV_B; fi
		host_entry "$_uuid"
		if [ -z "$HOST_ENTRY" ]; then
			sig "$_dev=none"
			fail "no mdev $_uuid ($_dev)"
			continue
		fi
		json_value kind "$HOST_ENTRY"
		expect "${_dev}_kind" "$JSON_VALUE" mdev
		json_value type "$HOST_ENTRY"
		expect "${_dev}_type" "$JSON_VALUE" mtty-2
		json_value parent "$HOST_ENTRY"
		expect "${_dev}_parent" "$JSON_VALUE" mtty
		json_value cdev "$HOST_ENTRY"
		case "$JSON_VALUE" in
		vfio[0-9]*) sig "${_dev}_cdev=vfioN" ;;
		*)
			sig "${_dev}_cdev=$JSON_VALUE"
			fail "$_dev: no vfio-dev entry (cdev $JSON_VALUE)"
			;;
		esac
		json_value cdev-node "$HOST_ENTRY"
		sig "${_dev}_cdev_node=$JSON_VALUE"
		json_value iommu-group "$HOST_ENTRY"
		[ "$JSON_VALUE" -ge 0 ] 2>/dev/null ||
			fail "$_dev: iommu-group: got $JSON_VALUE, expected a number"
		json_value served "$HOST_ENTRY"
		if [ "$_dev" = A ]; then
			expect A_served "$JSON_VALUE" true
			# the source daemon's own fds are what served says
			case "$HOST_ENTRY" in
			*'"held-by":[]'*) sig "A_held_by=none" ;;
			*) fail "A: held by another process: ${HOST_ENTRY#*\"held-by\":}" ;;
			esac
		else
			expect B_served "$JSON_VALUE" false
			# (DST_PID is its timeout's; the daemon is that one's child)
			case "$HOST_ENTRY" in
			*'"held-by":["'[0-9]*':vfio-migd"]'*) sig "B_held_by=vfio-migd" ;;
			*)
				sig "B_held_by=other"
				fail "B: held-by does not name the destination daemon: ${HOST_ENTRY#*\"held-by\":}"
				;;
			esac
		fi
	done
	if [ -n "$WHY" ]; then
		fail_log "$WORK/host-devices.err" "vfio-migctl host-devices"
		fail "the line: $HOST_DEVICES_LINE"
	fi
	case_end daemons-host-devices
}

case_listen() {
	case_begin
	# plain (no TLS) only over a unix socket, whose peer the daemon checks by uid;
	# abstract, so that no directory has to be writable
	_want="unix:@vfio-migd-tier-$$"
	ADDRESS=$(migctl "$DST_NAME" listen "$_want" --plain 2>"$WORK/listen.err")
	_rc=$?
	expect exit "$_rc" 0
	case "$ADDRESS" in
	"$_want") sig "address=unix:@*" ;;
	*)
		sig "address=${ADDRESS:-none}"
		fail "listen answered '$ADDRESS', expected $_want"
		fail_log "$WORK/listen.err" "vfio-migctl listen"
		fail_log "$WORK/dst.log" "destination daemon log"
		BROKEN="the destination does not listen"
		;;
	esac
	case_end daemons-listen
}

case_migrate() {
	case_begin
	# the job gives up on its own first; the client's bound is the backstop
	_bound=$(bound)
	timeout -k 5 $((_bound + 10)) "$MIGCTL" --session --bus-name "$SRC_NAME" --json \
		migrate "$ADDRESS" --plain --timeout-s "$_bound" >"$WORK/migrate.json" \
		2>"$WORK/migrate.err"
	_rc=$?
	sig_job_result "$_rc" "$WORK/migrate.json" source
	if [ -n "$WHY" ]; then
		fail_log "$WORK/migrate.err" "vfio-migctl migrate"
		fail_log "$WORK/src.log" "source daemon log"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	case_end daemons-migrate
}

case_destination_job() {
	case_begin
	migctl "$DST_NAME" --json watch "$JOB_PATH" >"$WORK/dst-job.json" 2>"$WORK/dst-job.err"
	sig_job_result $? "$WORK/dst-job.json" destination
	if [ -n "$WHY" ]; then
		fail_log "$WORK/dst-job.err" "vfio-migctl watch"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	case_end daemons-destination-job
}

# the daemons' own view once the job is over: the source stopped, the destination running
case_source_stopped() {
	case_begin
	if list_devices; then
		sig_devices src
		expect src "$DEVICE_STATE" STOP
		sig_devices dst
		expect dst "$DEVICE_STATE" RUNNING
	else
		sig "devices=none"
	fi
	case_end daemons-source-stopped
}

case_stop() {
	case_begin
	stop_process "$SRC_PID"
	SRC_PID=
	expect src_exit "$STOP_RC" 0
	[ "$STOP_RC" = 0 ] || fail_log "$WORK/src.log" "source daemon log"
	stop_process "$DST_PID"
	DST_PID=
	expect dst_exit "$STOP_RC" 0
	[ "$STOP_RC" = 0 ] || fail_log "$WORK/dst.log" "destination daemon log"
	case_end daemons-stop
}

# FIELD: a field of migd-uart-tool's "state=STATE uart0=HEX uart1=HEX", "none" if absent
tool_field() { # key line
	case " $2" in
	*" $1="*) ;;
	*)
		FIELD=none
		return
		;;
	esac
	FIELD=" $2"
	FIELD=${FIELD##*" $1="}
	FIELD=${FIELD%% *}
}

# After both daemons closed their devices: A still STOP, B RUNNING with A's bytes
case_uart() {
	case_begin
	if [ -n "$UART_WRITE_ERROR" ]; then
		sig "write=failed"
		fail "writing the UARTs before the migration failed: $UART_WRITE_ERROR"
		case_end daemons-migrate-uart
		return
	fi
	# one process for both (each start costs about a second under emulation)
	uart_tool state "$DEV_A" -- read "$DEV_B" 2 >"$WORK/uart.out" 2>"$WORK/uart.err"
	_rc=$?
	if [ "$_rc" -eq 0 ]; then
		{
			read -r _state_a
			read -r _read_b
		} <"$WORK/uart.out"
		expect a "${_state_a:-none}" STOP
		tool_field state "$_read_b"
		expect b "$FIELD" RUNNING
		tool_field uart0 "$_read_b"
		expect uart0 "$FIELD" "$TEXT0_HEX"
		tool_field uart1 "$_read_b"
		expect uart1 "$FIELD" "$TEXT1_HEX"
	else
		sig "read=failed"
		fail "migd-uart-tool state A -- read B failed: $(exit_reason "$_rc")"
		fail_log "$WORK/uart.err" "migd-uart-tool"
	fi
	case_end daemons-migrate-uart
}

# ---- a destination killed mid-stream and restarted; a device handed over as an fd ----
# (issue 12, items 3 and 4) Each runs on its own pair of daemons, after the cases above.

N_CASES=$((N_CASES + 5))
STATE_DIR_DST= # the destination's journal (--state-dir), for the crash case
TEXT2=CRASH
TEXT2_HEX=4352415348
TEXT3=FD
TEXT3_HEX=4644
TEXT4=FLIP
TEXT4_HEX=464c4950
FLIP_RELAY=$BUILD/tests/conformance/migd-flip-relay
N_CASES=$((N_CASES + 2))

# the pid behind a bus name (the daemon itself, not the timeout wrapping it)
bus_pid() { # bus-name
	_reply=$(timeout -k 5 "$(bound)" gdbus call --session --dest org.freedesktop.DBus \
		--object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.GetConnectionUnixProcessID "$1" 2>/dev/null)
	_reply=${_reply#*uint32 }
	echo "${_reply%%,*}"
}

# how many devices of a role's last list are in STATE
count_state() { # role state
	count_in_devices "$1" "\"state\":\"$2\""
}

# a fresh pair: the destination with a journal; each with a slow simulated
# mtty (device 0, 4 bytes/s: its pre-copy alone takes 6 s) next to the device
# under test (device 1)
crash_start() {
	STATE_DIR_DST=$WORK/dst-state
	if [ "$BACKEND" = kernel ]; then
		uart_tool write "$DEV_A" "$TEXT2" -- write "$DEV_B" "$TEXT_B" >"$WORK/write2.log" 2>&1 ||
			UART_WRITE_ERROR="$(tail -n 1 "$WORK/write2.log")"
		CRASH_SRC="--device $DEV_A"
		CRASH_DST="--device $DEV_B"
	else
		CRASH_SRC="--sim-device mtty:ports=2,seed=1"
		CRASH_DST="--sim-device mtty:ports=2,seed=2,persist=$WORK/b.state"
	fi
	# shellcheck disable=SC2086 # options and values without spaces
	start_daemon "$DST_NAME" "$WORK/dst.log" --sim-device mtty:ports=2,seed=22 $CRASH_DST \
		--state-dir "$STATE_DIR_DST"
	DST_PID=$DAEMON_PID
	# shellcheck disable=SC2086
	start_daemon "$SRC_NAME" "$WORK/src.log" --sim-device mtty:ports=2,seed=21,save_rate=4 \
		$CRASH_SRC
	SRC_PID=$DAEMON_PID
	wait_daemons && list_devices
}

case_destination_crash() {
	case_begin
	if ! crash_start; then
		sig "daemons=down"
		BROKEN="the daemons of the crash case did not start"
		case_end daemons-destination-crash
		return
	fi
	expect src_running "$(count_state src RUNNING)" 2
	expect dst_running "$(count_state dst RUNNING)" 2
	ADDRESS=$(migctl "$DST_NAME" listen "unix:@vfio-migd-tier-$$-2" --plain 2>"$WORK/listen.err")
	migctl "$SRC_NAME" migrate "$ADDRESS" --plain --no-wait >"$WORK/migrate2.out" \
		2>"$WORK/migrate2.err"
	expect migrate_exit $? 0
	# the destination's devices resume while the slow one pre-copies
	_deadline=$(($(now) + $(bound)))
	_resuming=0
	while [ "$(now)" -lt "$_deadline" ]; do
		migctl "$DST_NAME" --json devices >"$WORK/dst.devices" 2>/dev/null
		_resuming=$(count_state dst RESUMING)
		[ "$_resuming" -lt 2 ] || break
	done
	expect dst_resuming "$_resuming" 2
	_pid=$(bus_pid "$DST_NAME")
	if [ -n "$_pid" ] && kill -KILL "$_pid" 2>/dev/null; then
		sig "dst=killed"
		{ wait "$DST_PID"; } 2>/dev/null
	else
		sig "dst=not-killed"
		fail "no pid for $DST_NAME to kill"
	fi
	DST_PID=
	# the source sees the peer go, and rolls back
	migctl "$SRC_NAME" --json watch "$JOB_PATH" >"$WORK/src-job2.json" 2>"$WORK/src-job2.err"
	json_value success "$(grep '"event":"completed"' "$WORK/src-job2.json" | tail -n 1)"
	expect src_success "$JSON_VALUE" false
	migctl "$SRC_NAME" --json devices >"$WORK/src.devices" 2>/dev/null
	expect src_running "$(count_state src RUNNING)" 2
	[ -z "$WHY" ] || fail_log "$WORK/dst.log" "destination daemon log"
	case_end daemons-destination-crash
}

# the restarted destination finds its journal, brings its devices back, and takes a migration
case_destination_restarted() {
	case_begin
	: >"$WORK/dst.log"
	# shellcheck disable=SC2086
	start_daemon "$DST_NAME" "$WORK/dst.log" --sim-device mtty:ports=2,seed=22 $CRASH_DST \
		--state-dir "$STATE_DIR_DST"
	DST_PID=$DAEMON_PID
	if ! wait_daemons || ! list_devices; then
		sig "daemons=down"
		BROKEN="the destination did not restart"
		case_end daemons-destination-restarted
		return
	fi
	expect dst_running "$(count_state dst RUNNING)" 2
	_records=$(ls "$STATE_DIR_DST" 2>/dev/null | wc -l)
	expect journal_left "$_records" 0
	case "$(cat "$WORK/dst.log")" in
	*"recovered 1 unfinished job(s)"*) sig "journal=recovered" ;;
	*)
		sig "journal=none"
		fail "the restarted destination recovered no job"
		;;
	esac
	# the slow pair goes; the device under test migrates again
	migctl "$SRC_NAME" detach sim0 >/dev/null 2>"$WORK/detach.err"
	expect src_detach $? 0
	migctl "$DST_NAME" detach sim0 >/dev/null 2>>"$WORK/detach.err"
	expect dst_detach $? 0
	ADDRESS=$(migctl "$DST_NAME" listen "unix:@vfio-migd-tier-$$-3" --plain 2>"$WORK/listen.err")
	_bound=$(bound)
	timeout -k 5 $((_bound + 10)) "$MIGCTL" --session --bus-name "$SRC_NAME" --json \
		migrate "$ADDRESS" --plain --timeout-s "$_bound" >"$WORK/migrate3.json" \
		2>"$WORK/migrate3.err"
	_rc=$?
	_line=$(grep '"event":"completed"' "$WORK/migrate3.json" | tail -n 1)
	expect migrate_exit "$_rc" 0
	json_value success "$_line"
	expect success "$JSON_VALUE" true
	if list_devices; then
		expect src_stopped "$(count_state src STOP)" 1
		expect dst_running "$(count_state dst RUNNING)" 1
	fi
	if [ -n "$WHY" ]; then
		fail_log "$WORK/migrate3.err" "vfio-migctl migrate"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	stop_process "$SRC_PID"
	SRC_PID=
	expect src_exit "$STOP_RC" 0
	stop_process "$DST_PID"
	DST_PID=
	expect dst_exit "$STOP_RC" 0
	case_end daemons-destination-restarted
}

# kernel: after both daemons closed their devices, B holds what A's ports held
case_uart_again() { # name text0-hex
	case_begin
	if [ -n "$UART_WRITE_ERROR" ]; then
		sig "write=failed"
		fail "writing the UART failed: $UART_WRITE_ERROR"
		case_end "$1"
		return
	fi
	uart_tool state "$DEV_A" -- read "$DEV_B" 2 >"$WORK/uart.out" 2>"$WORK/uart.err"
	_rc=$?
	if [ "$_rc" -eq 0 ]; then
		{
			read -r _state_a
			read -r _read_b
		} <"$WORK/uart.out"
		expect a "${_state_a:-none}" STOP
		tool_field state "$_read_b"
		expect b "$FIELD" RUNNING
		tool_field uart0 "$_read_b"
		expect uart0 "$FIELD" "$2"
	else
		sig "read=failed"
		fail "migd-uart-tool state A -- read B failed: $(exit_reason "$_rc")"
		fail_log "$WORK/uart.err" "migd-uart-tool"
	fi
	case_end "$1"
}

# A opened through its group by another process (as a VMM would) and handed to
# the source daemon as an fd with its address; the destination opened B by UUID
case_attached_fd() {
	case_begin
	uart_tool write "$DEV_A" "$TEXT3" -- write "$DEV_B" "$TEXT_B" >"$WORK/write3.log" 2>&1 ||
		UART_WRITE_ERROR="$(tail -n 1 "$WORK/write3.log")"
	start_daemon "$DST_NAME" "$WORK/dst.log" --device "$DEV_B"
	DST_PID=$DAEMON_PID
	start_daemon "$SRC_NAME" "$WORK/src.log"
	SRC_PID=$DAEMON_PID
	if ! wait_daemons; then
		sig "daemons=down"
		case_end daemons-attached-fd
		return
	fi
	uart_tool hand "$DEV_A" "$MIGCTL" --session --bus-name "$SRC_NAME" attach "$DEV_A" \
		--fd "{fd}" --address "$DEV_A" >"$WORK/attach.out" 2>"$WORK/attach.err"
	expect attach_exit $? 0
	ADDRESS=$(migctl "$DST_NAME" listen "unix:@vfio-migd-tier-$$-4" --plain 2>"$WORK/listen.err")
	_bound=$(bound)
	timeout -k 5 $((_bound + 10)) "$MIGCTL" --session --bus-name "$SRC_NAME" --json \
		migrate "$ADDRESS" --plain --timeout-s "$_bound" >"$WORK/migrate4.json" \
		2>"$WORK/migrate4.err"
	sig_job_result $? "$WORK/migrate4.json" source
	if [ -n "$WHY" ]; then
		fail_log "$WORK/attach.err" "migd-uart-tool hand / vfio-migctl attach"
		fail_log "$WORK/migrate4.err" "vfio-migctl migrate"
		fail_log "$WORK/src.log" "source daemon log"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	stop_process "$SRC_PID"
	SRC_PID=
	expect src_exit "$STOP_RC" 0
	stop_process "$DST_PID"
	DST_PID=
	expect dst_exit "$STOP_RC" 0
	case_end daemons-attached-fd
}

# A migrates to B through a relay that flips one byte of A's state stream (a
# plain link, so the relay can see it): the stream checksum must refuse it
# before B runs, A must be back in RUNNING with its UART bytes, B reset
case_corrupted_relay() {
	case_begin
	if [ "$BACKEND" = kernel ]; then
		uart_tool write "$DEV_A" "$TEXT4" -- write "$DEV_B" "$TEXT_B" >"$WORK/write5.log" 2>&1 ||
			UART_WRITE_ERROR="$(tail -n 1 "$WORK/write5.log")"
		start_daemon "$DST_NAME" "$WORK/dst.log" --device "$DEV_B"
		DST_PID=$DAEMON_PID
		start_daemon "$SRC_NAME" "$WORK/src.log" --device "$DEV_A"
		SRC_PID=$DAEMON_PID
	else
		start_daemon "$DST_NAME" "$WORK/dst.log" --sim-device mtty:ports=2,seed=52
		DST_PID=$DAEMON_PID
		start_daemon "$SRC_NAME" "$WORK/src.log" --sim-device mtty:ports=2,seed=51
		SRC_PID=$DAEMON_PID
	fi
	if ! wait_daemons; then
		sig "daemons=down"
		BROKEN="the daemons of the corruption case did not start"
		case_end daemons-corrupted-stream
		return
	fi
	# paths, not abstract names: the relay takes unix:PATH only
	ADDRESS=$(migctl "$DST_NAME" listen "unix:$WORK/dst5.sock" --plain 2>"$WORK/listen.err")
	timeout -k 5 "$(bound)" "$FLIP_RELAY" "unix:$WORK/relay.sock" "$ADDRESS" 0 30 \
		>"$WORK/relay.out" 2>"$WORK/relay.err" &
	RELAY_PID=$!
	_i=0
	while [ "$_i" -lt 100 ] && ! grep -q '^listening' "$WORK/relay.out" 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
	_bound=$(bound)
	timeout -k 5 $((_bound + 10)) "$MIGCTL" --session --bus-name "$SRC_NAME" --json \
		migrate "unix:$WORK/relay.sock" --plain --timeout-s "$_bound" >"$WORK/migrate5.json" \
		2>"$WORK/migrate5.err"
	_rc=$?
	_line=$(grep '"event":"completed"' "$WORK/migrate5.json" | tail -n 1)
	expect migrate_failed "$([ "$_rc" -ne 0 ] && echo yes || echo no)" yes
	json_value success "$_line"
	expect success "$JSON_VALUE" false
	case "$_line" in
	*checksum*) sig "cause=checksum" ;;
	*)
		sig "cause=other"
		fail "the job did not name the checksum: $_line"
		;;
	esac
	if list_devices; then
		expect src_running "$(count_state src RUNNING)" 1
		expect dst_running "$(count_state dst RUNNING)" 1
	fi
	stop_process "$RELAY_PID"
	RELAY_PID=
	case "$(cat "$WORK/relay.out")" in
	*"flipped 1 "*) sig "flipped=1" ;;
	*)
		sig "flipped=other"
		fail "the relay did not flip exactly one byte: $(tail -n 1 "$WORK/relay.out")"
		;;
	esac
	if [ -n "$WHY" ]; then
		fail_log "$WORK/relay.err" "migd-flip-relay"
		fail_log "$WORK/migrate5.err" "vfio-migctl migrate"
		fail_log "$WORK/src.log" "source daemon log"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	stop_process "$SRC_PID"
	SRC_PID=
	expect src_exit "$STOP_RC" 0
	stop_process "$DST_PID"
	DST_PID=
	expect dst_exit "$STOP_RC" 0
	case_end daemons-corrupted-stream
}

# kernel: after a migration that did not happen (refused, rolled back) A still
# runs and holds its UART bytes
case_uart_a_kept() { # name text0-hex
	case_begin
	if [ -n "$UART_WRITE_ERROR" ]; then
		sig "write=failed"
		fail "writing the UART failed: $UART_WRITE_ERROR"
		case_end "$1"
		return
	fi
	uart_tool read "$DEV_A" 2 >"$WORK/uart-a.out" 2>"$WORK/uart-a.err"
	_rc=$?
	if [ "$_rc" -eq 0 ]; then
		read -r _read_a <"$WORK/uart-a.out"
		tool_field state "$_read_a"
		expect a "$FIELD" RUNNING
		tool_field uart0 "$_read_a"
		expect uart0 "$FIELD" "$2"
	else
		sig "read=failed"
		fail "migd-uart-tool read A failed: $(exit_reason "$_rc")"
		fail_log "$WORK/uart-a.err" "migd-uart-tool"
	fi
	case_end "$1"
}

cases_issue12() {
	UART_WRITE_ERROR=
	for _case in destination_crash destination_restarted; do
		if [ -z "$BROKEN" ]; then
			"case_$_case"
		else
			case_not_run "daemons-$(echo "$_case" | tr _ -)"
		fi
	done
	UART_WRITE_ERROR=
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-destination-restarted-uart \
			"simulated devices live inside their daemon: no region access from outside it"
		case_skip daemons-attached-fd "a simulated device has no fd to hand over"
		case_skip daemons-attached-fd-uart \
			"simulated devices live inside their daemon: no region access from outside it"
		return
	fi
	if [ -z "$BROKEN" ]; then
		case_uart_again daemons-destination-restarted-uart "$TEXT2_HEX"
	else
		case_not_run daemons-destination-restarted-uart
	fi
	UART_WRITE_ERROR=
	if [ -z "$BROKEN" ]; then
		case_attached_fd
		case_uart_again daemons-attached-fd-uart "$TEXT3_HEX"
	else
		case_not_run daemons-attached-fd
		case_not_run daemons-attached-fd-uart
	fi
}

cases_corruption() {
	UART_WRITE_ERROR=
	if [ -z "$BROKEN" ]; then
		case_corrupted_relay
	else
		case_not_run daemons-corrupted-stream
	fi
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-corrupted-stream-uart \
			"simulated devices live inside their daemon: no region access from outside it"
	elif [ -z "$BROKEN" ]; then
		case_uart_a_kept daemons-corrupted-stream-uart "$TEXT4_HEX"
	else
		case_not_run daemons-corrupted-stream-uart
	fi
}

# ---- a coordinated migration: vfio-migctl plays the VMM (issue 13) ----
# The source pre-copies until the VMM's Switchover; the destination's devices
# wait in STOP until its Start; a Rollback after the Switchover gives the
# source its devices back with their state.

N_CASES=$((N_CASES + 4))
TEXT5=COORD
TEXT5_HEX=434f4f5244
TEXT6=BACK
TEXT6_HEX=4241434b

# a fresh pair of daemons with one device each; $1: what goes into A's port 0
coordinated_start() { # text seed
	if [ "$BACKEND" = kernel ]; then
		uart_tool write "$DEV_A" "$1" -- write "$DEV_B" "$TEXT_B" >"$WORK/write-c.log" 2>&1 ||
			UART_WRITE_ERROR="$(tail -n 1 "$WORK/write-c.log")"
		start_daemon "$DST_NAME" "$WORK/dst.log" --device "$DEV_B"
		DST_PID=$DAEMON_PID
		start_daemon "$SRC_NAME" "$WORK/src.log" --device "$DEV_A"
		SRC_PID=$DAEMON_PID
	else
		start_daemon "$DST_NAME" "$WORK/dst.log" --sim-device "mtty:ports=2,seed=${2}2"
		DST_PID=$DAEMON_PID
		start_daemon "$SRC_NAME" "$WORK/src.log" --sim-device "mtty:ports=2,seed=${2}1"
		SRC_PID=$DAEMON_PID
	fi
	wait_daemons || return 1
	ADDRESS=$(migctl "$DST_NAME" listen "unix:@vfio-migd-tier-$$-$2" --plain --start manual \
		2>"$WORK/listen.err")
	[ -n "$ADDRESS" ] || {
		fail "listen --start manual failed"
		fail_log "$WORK/listen.err" "vfio-migctl listen"
		return 1
	}
	SRC_JOB=$(migctl "$SRC_NAME" migrate "$ADDRESS" --plain --switchover manual --no-wait \
		2>"$WORK/migrate-c.err")
	case "$SRC_JOB" in
	/org/vfiomigd/Migd1/jobs/*) ;;
	*)
		fail "migrate --switchover manual --no-wait printed '$SRC_JOB'"
		fail_log "$WORK/migrate-c.err" "vfio-migctl migrate"
		return 1
		;;
	esac
}

# waits (bounded) until the source job reports "converged"; the device must
# still be pre-copying then, and a second later too: nothing stops before the VMM says so
coordinated_wait_converged() {
	_deadline=$(($(now) + $(bound)))
	_conv=no
	while [ "$(now)" -lt "$_deadline" ]; do
		migctl "$SRC_NAME" --json jobs >"$WORK/src.jobs" 2>/dev/null
		if grep -q '"converged":true' "$WORK/src.jobs"; then
			_conv=yes
			break
		fi
		sleep 0.2
	done
	expect converged "$_conv" yes
	sleep 1
	migctl "$SRC_NAME" --json devices >"$WORK/src.devices" 2>/dev/null
	expect src_precopy "$(count_state src PRE_COPY)" 1
	migctl "$DST_NAME" --json devices >"$WORK/dst.devices" 2>/dev/null
	expect dst_resuming "$(count_state dst RESUMING)" 1
}

coordinated_stop_daemons() {
	stop_process "$SRC_PID"
	SRC_PID=
	expect src_exit "$STOP_RC" 0
	stop_process "$DST_PID"
	DST_PID=
	expect dst_exit "$STOP_RC" 0
}

case_coordinated() {
	case_begin
	if ! coordinated_start "$TEXT5" 6; then
		sig "daemons=down"
		BROKEN="the daemons of the coordinated case did not start"
		case_end daemons-coordinated
		return
	fi
	coordinated_wait_converged
	migctl "$SRC_NAME" switchover "$SRC_JOB" >"$WORK/switchover.out" 2>"$WORK/switchover.err"
	expect switchover_exit $? 0
	# Switchover returned: B loaded and validated, waiting for Start; A stopped
	if list_devices; then
		expect src_stopped "$(count_state src STOP)" 1
		expect dst_stopped "$(count_state dst STOP)" 1
	fi
	migctl "$DST_NAME" start "$JOB_PATH" >"$WORK/start.out" 2>"$WORK/start.err"
	expect start_exit $? 0
	migctl "$SRC_NAME" --json watch "$SRC_JOB" >"$WORK/src-c.json" 2>"$WORK/src-c.err"
	json_value success "$(grep '"event":"completed"' "$WORK/src-c.json" | tail -n 1)"
	expect src_success "$JSON_VALUE" true
	migctl "$DST_NAME" --json watch "$JOB_PATH" >"$WORK/dst-c.json" 2>"$WORK/dst-c.err"
	json_value success "$(grep '"event":"completed"' "$WORK/dst-c.json" | tail -n 1)"
	expect dst_success "$JSON_VALUE" true
	if list_devices; then
		expect src_stopped "$(count_state src STOP)" 1
		expect dst_running "$(count_state dst RUNNING)" 1
	fi
	if [ -n "$WHY" ]; then
		fail_log "$WORK/switchover.err" "vfio-migctl switchover"
		fail_log "$WORK/start.err" "vfio-migctl start"
		fail_log "$WORK/src.log" "source daemon log"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	coordinated_stop_daemons
	case_end daemons-coordinated
}

case_coordinated_rollback() {
	case_begin
	if ! coordinated_start "$TEXT6" 7; then
		sig "daemons=down"
		BROKEN="the daemons of the rollback case did not start"
		case_end daemons-coordinated-rollback
		return
	fi
	coordinated_wait_converged
	migctl "$SRC_NAME" switchover "$SRC_JOB" >"$WORK/switchover.out" 2>"$WORK/switchover.err"
	expect switchover_exit $? 0
	# the VM migration failed after the switchover: the VMM takes its devices back
	migctl "$SRC_NAME" rollback "$SRC_JOB" >"$WORK/rollback.out" 2>"$WORK/rollback.err"
	expect rollback_exit $? 0
	migctl "$SRC_NAME" --json watch "$SRC_JOB" >"$WORK/src-r.json" 2>"$WORK/src-r.err"
	_line=$(grep '"event":"completed"' "$WORK/src-r.json" | tail -n 1)
	json_value success "$_line"
	expect src_success "$JSON_VALUE" false
	json_value rolled_back "$_line"
	expect src_rolled_back "$JSON_VALUE" true
	# the destination hears it and resets B; a Start now must fail
	migctl "$DST_NAME" --json watch "$JOB_PATH" >"$WORK/dst-r.json" 2>"$WORK/dst-r.err"
	json_value success "$(grep '"event":"completed"' "$WORK/dst-r.json" | tail -n 1)"
	expect dst_success "$JSON_VALUE" false
	if list_devices; then
		expect src_running "$(count_state src RUNNING)" 1
		expect dst_running "$(count_state dst RUNNING)" 1
	fi
	if [ -n "$WHY" ]; then
		fail_log "$WORK/rollback.err" "vfio-migctl rollback"
		fail_log "$WORK/src.log" "source daemon log"
		fail_log "$WORK/dst.log" "destination daemon log"
	fi
	coordinated_stop_daemons
	case_end daemons-coordinated-rollback
}

cases_coordinated() {
	UART_WRITE_ERROR=
	if [ -z "$BROKEN" ]; then
		case_coordinated
	else
		case_not_run daemons-coordinated
	fi
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-coordinated-uart \
			"simulated devices live inside their daemon: no region access from outside it"
	elif [ -z "$BROKEN" ]; then
		case_uart_again daemons-coordinated-uart "$TEXT5_HEX"
	else
		case_not_run daemons-coordinated-uart
	fi
	UART_WRITE_ERROR=
	if [ -z "$BROKEN" ]; then
		case_coordinated_rollback
	else
		case_not_run daemons-coordinated-rollback
	fi
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-coordinated-rollback-uart \
			"simulated devices live inside their daemon: no region access from outside it"
	elif [ -z "$BROKEN" ]; then
		case_uart_a_kept daemons-coordinated-rollback-uart "$TEXT6_HEX"
	else
		case_not_run daemons-coordinated-rollback-uart
	fi
}

# ---- a configured device that appears after the daemon started (issue 15, item 2) ----
# [device late] names an mdev that does not exist yet: the daemon starts anyway,
# says why it cannot open it, and serves it once the mdev is created.

N_CASES=$((N_CASES + 1))
UUID_LATE=6f0e1a52-8d1c-4c3e-9a01-0000000000d4
LATE_NAME=org.vfiomigd.KernelTier.Late
MTTY_TYPES=/sys/devices/virtual/mtty/mtty/mdev_supported_types

# TRUE once the daemon on $LATE_NAME lists the device "late"
late_listed() {
	migctl "$LATE_NAME" --json devices >"$WORK/late.devices" 2>"$WORK/late.devices.err" &&
		grep -q '"name":"late"' "$WORK/late.devices"
}

# "late" is not listed yet, and LOG warns about it with PATTERN; keys start with PREFIX
late_not_yet() { # prefix log pattern
	late_listed
	expect "${1}listed_before" "$(grep -c '"name":"late"' "$WORK/late.devices")" 0
	_warned=no
	grep -q "late.conf:2: \[device late\] address: .*$3" "$2" && _warned=yes
	expect "${1}warned" "$_warned" yes
}

case_configured_late_device() {
	case_begin
	printf '[device late]\naddress=%s\n' "$UUID_LATE" >"$WORK/late.conf"
	DAEMON_CONFIG="$WORK/late.conf" start_daemon "$LATE_NAME" "$WORK/late.log"
	_late_pid=$DAEMON_PID
	_bound=$(bound)
	if ! timeout -k 5 $((_bound + 5)) gdbus wait --session --timeout "$_bound" "$LATE_NAME" \
		>"$WORK/late.wait" 2>&1; then
		fail "a daemon whose configured device is absent did not start"
		fail_log "$WORK/late.log" "daemon log"
		stop_process "$_late_pid"
		case_end daemons-configured-late-device
		return
	fi
	# the warning names the file, the group and the key, and that it retries
	late_not_yet "" "$WORK/late.log" "retrying until it opens"
	[ "$_warned" = yes ] || fail_log "$WORK/late.log" "daemon log"
	if echo "$UUID_LATE" >"$MTTY_TYPES/mtty-1/create" 2>"$WORK/late.create.err"; then
		# the retries back off (1, 2, 4, 8 s...): one is due within 16 s
		_deadline=$(($(now) + 20))
		until late_listed || [ "$(now)" -ge "$_deadline" ]; do
			sleep 0.5
		done
		expect listed_after "$(grep -c '"name":"late"' "$WORK/late.devices")" 1
		_state=$(sed -n 's/.*"name":"late"[^}]*"state":"\([A-Z_0-9]*\)".*/\1/p' \
			"$WORK/late.devices")
		expect state "$_state" RUNNING
		[ -n "$_state" ] || fail_log "$WORK/late.log" "daemon log"
	else
		fail "creating mdev $UUID_LATE failed: $(cat "$WORK/late.create.err")"
	fi
	stop_process "$_late_pid"
	expect exit "$STOP_RC" 0
	if [ -e "/sys/bus/mdev/devices/$UUID_LATE" ]; then
		echo 1 >"/sys/bus/mdev/devices/$UUID_LATE/remove" ||
			fail "removing mdev $UUID_LATE failed"
	fi
	configured_unbound_device
	case_end daemons-configured-late-device
}

# The same device present but without its driver, so without an IOMMU group: how an
# mdev looks between its creation and its driver's probe (a retry once caught one
# there and gave up), or a PCI function before vfio-pci binds it. The daemon warns and
# goes on retrying: once a bound mdev of that name appears, it serves it.
configured_unbound_device() {
	if ! echo "$UUID_LATE" >"$MTTY_TYPES/mtty-1/create" 2>"$WORK/unbound.err" ||
		! echo "$UUID_LATE" >/sys/bus/mdev/drivers/mtty/unbind 2>>"$WORK/unbound.err"; then
		fail "creating and unbinding mdev $UUID_LATE failed: $(cat "$WORK/unbound.err")"
		return
	fi
	DAEMON_CONFIG="$WORK/late.conf" start_daemon "$LATE_NAME" "$WORK/unbound.log"
	_late_pid=$DAEMON_PID
	_bound=$(bound)
	if timeout -k 5 $((_bound + 5)) gdbus wait --session --timeout "$_bound" "$LATE_NAME" \
		>"$WORK/unbound.wait" 2>&1; then
		late_not_yet unbound_ "$WORK/unbound.log" "has no IOMMU group.*retrying until it opens"
		# (binding mtty again fails with EIO on 6.12: a new mdev with a driver instead)
		if echo 1 >"/sys/bus/mdev/devices/$UUID_LATE/remove" 2>"$WORK/unbound.err" &&
			echo "$UUID_LATE" >"$MTTY_TYPES/mtty-1/create" 2>>"$WORK/unbound.err"; then
			_deadline=$(($(now) + 20))
			until late_listed || [ "$(now)" -ge "$_deadline" ]; do
				sleep 0.5
			done
			expect unbound_listed_after "$(grep -c '"name":"late"' "$WORK/late.devices")" 1
		else
			fail "creating mdev $UUID_LATE again failed: $(cat "$WORK/unbound.err")"
		fi
		[ "$_warned" = yes ] || fail_log "$WORK/unbound.log" "daemon log"
	else
		fail "a daemon whose configured device has no driver did not start"
		fail_log "$WORK/unbound.log" "daemon log"
	fi
	stop_process "$_late_pid"
	expect unbound_exit "$STOP_RC" 0
	if [ -e "/sys/bus/mdev/devices/$UUID_LATE" ]; then
		echo 1 >"/sys/bus/mdev/devices/$UUID_LATE/remove" ||
			fail "removing mdev $UUID_LATE failed"
	fi
}

# the start of a run (also cdev-daemons.sh's): the budget's clock, cleanup on
# every exit, and the TAP plan
run_begin() {
	UART_WRITE_ERROR=
	START=$(now)
	DEADLINE=$((START + BUDGET_S))
	trap cleanup EXIT
	# a signal (or a closed stdout) still runs cleanup, through exit
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 141' PIPE
	trap 'exit 143' TERM
	echo "1..$N_CASES"
}

main() {
	run_begin
	for _prog in "$MIGD" "$MIGCTL" "$UART_TOOL"; do
		# (the UART tool is for kernel devices only)
		[ "$_prog" != "$UART_TOOL" ] || [ "$BACKEND" = kernel ] || continue
		[ -x "$_prog" ] || BROKEN="$_prog is not built"
	done
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/migd-daemons.XXXXXX") || BROKEN="mktemp failed"
	if [ -z "$BROKEN" ]; then
		case_start
	else
		case_not_run daemons-start
	fi
	for _case in host_devices listen migrate destination_job source_stopped; do
		if [ -z "$BROKEN" ]; then
			"case_$_case"
		else
			case_not_run "daemons-$(echo "$_case" | tr _ -)"
		fi
	done
	# always: the daemons go away, and the result says how
	if [ -n "$SRC_PID$DST_PID" ]; then
		case_stop
	else
		case_not_run daemons-stop
	fi
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-migrate-uart \
			"simulated devices live inside their daemon: no region access from outside it"
	elif [ -z "$BROKEN" ]; then
		case_uart
	else
		[ -z "$UART_WRITE_ERROR" ] ||
			BROKEN="$BROKEN; and writing the UARTs failed: $UART_WRITE_ERROR"
		case_not_run daemons-migrate-uart
	fi
	cases_issue12
	cases_corruption
	cases_coordinated
	if [ "$BACKEND" = sim ]; then
		case_skip daemons-configured-late-device \
			"a simulated device is never absent: nothing can appear later"
	elif [ -z "$BROKEN" ]; then
		case_configured_late_device
	else
		case_not_run daemons-configured-late-device
	fi
	echo "# $(($(now) - START)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# cdev-daemons.sh sources this file for its helpers and runs its own cases
[ -n "${DAEMONS_AS_LIBRARY:-}" ] || main
