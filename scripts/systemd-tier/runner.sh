#!/bin/bash
# The systemd tier's checks, run by vfio-migd-tier-run.service in the guest
# (scripts/check-systemd.sh): vfio-migd.service as installed, under the real
# systemd, on the real system bus, with the kernel's mtty devices A and C
# configured as [device mtty-a] / [device mtty-c] address=UUID. Prints TAP
# between the host's markers; every wait is bounded.
# Settings (from /etc/vfio-migd-tier.env): BEGIN_MARKER END_MARKER UUID_A
# UUID_B UUID_C UART_TOOL TIER.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 SYSTEMD_PAGER='' SYSTEMD_COLORS=0

UNIT=vfio-migd.service
STEP_S=${STEP_S:-60}
N_CASES=11
WORK=$(mktemp -d /run/vfio-migd-tier.XXXXXX)
PRIV_BUS_PID=
PRIV_PID=
DST_PID=
DST_NAME=org.vfiomigd.SystemdTier.Destination
# what goes into A's two ports before the migration that is killed
TEXT0=SYSD
TEXT0_HEX=53595344
TEXT1=42
TEXT1_HEX=3432
# what goes into B's port 0 before the TLS migration into A
TEXT_TLS=TLS
TEXT_TLS_HEX=544c53

n=0
failed=0
WHY=

fail() {
	WHY="${WHY}#   $*
"
}

fail_file() { # file what
	[ -s "$1" ] || return 0
	fail "$2:"
	WHY="${WHY}$(tail -n 15 "$1" | sed 's/^/#   | /')
"
}

check_begin() {
	WHY=
}

check_end() { # name [note]
	n=$((n + 1))
	if [ -z "$WHY" ]; then
		echo "ok $n - $1${2:+ # $2}"
	else
		failed=$((failed + 1))
		echo "not ok $n - $1${2:+ # $2}"
		printf '%s' "$WHY"
	fi
}

expect() { # what got want
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# a property of the unit
prop() { # property [unit]
	systemctl show -p "$1" --value "${2:-$UNIT}"
}

migctl() {
	timeout -k 5 "$STEP_S" vfio-migctl "$@"
}

dst_migctl() {
	migctl --session --bus-name "$DST_NAME" "$@"
}

uart_tool() {
	timeout -k 5 "$STEP_S" "$UART_TOOL" "$@"
}

# waits (bounded, $2 s) until the unit's ActiveState is $1
wait_state() { # state seconds
	local deadline=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ "$(prop ActiveState)" = "$1" ] && return 0
		sleep 0.2
	done
	[ "$(prop ActiveState)" = "$1" ]
}

# the state of device $1 in the system daemon's --json devices list, "none" if absent
device_state() { # name
	migctl --json devices 2>/dev/null |
		jq -r --arg n "$1" '[.devices[] | select(.name == $n) | .state][0] // "none"' 2>/dev/null ||
		echo none
}

# the unit's journal, as JSON lines
journal_json() {
	journalctl --sync 2>/dev/null
	journalctl -u "$UNIT" -o json --no-pager
}

# the messages of the unit's current main process
main_messages() {
	journalctl --sync 2>/dev/null
	journalctl -u "$UNIT" -o json --no-pager _PID="$(prop MainPID)" | jq -r .MESSAGE
}

cleanup() {
	[ -n "$DST_PID" ] && kill "$DST_PID" 2>/dev/null && wait "$DST_PID" 2>/dev/null
	[ -n "$PRIV_BUS_PID" ] && kill "$PRIV_BUS_PID" 2>/dev/null && wait "$PRIV_BUS_PID" 2>/dev/null
	rm -rf "$WORK"
}

# ---- the checks ----

# 1: Type=notify, READY=1 reached at boot, STATUS= sent, no restart
check_ready() {
	check_begin
	wait_state active "$STEP_S" || fail "not active within ${STEP_S} s"
	expect Type "$(prop Type)" notify
	expect ActiveState "$(prop ActiveState)" active
	expect SubState "$(prop SubState)" running
	expect NRestarts "$(prop NRestarts)" 0
	expect ExecMainStatus "$(prop ExecMainStatus)" 0
	[ -n "$(prop StatusText)" ] || fail "no STATUS= text from the daemon"
	[ "$(prop MainPID)" -gt 0 ] 2>/dev/null || fail "no MainPID"
	local usec
	usec=$(prop ActiveEnterTimestampMonotonic)
	BOOT_TO_READY="$((usec / 1000000)).$(printf '%03d' $(((usec / 1000) % 1000)))"
	[ -z "$WHY" ] || {
		systemctl status --no-pager "$UNIT" >"$WORK/status" 2>&1
		fail_file "$WORK/status" "systemctl status"
	}
	check_end unit-notify-ready "active (READY=1) ${BOOT_TO_READY} s after boot"
}

# 2: the watchdog is armed and the daemon pets it (systemd records each WATCHDOG=1)
check_watchdog() {
	check_begin
	local first now deadline
	expect WatchdogUSec "$(prop WatchdogUSec)" 30s
	first=$(prop WatchdogTimestampMonotonic)
	[ "${first:-0}" -gt 0 ] 2>/dev/null || fail "no WATCHDOG=1 recorded yet"
	# the daemon pets every WatchdogSec/2: a new one within 20 s
	deadline=$((SECONDS + 20))
	while [ "$SECONDS" -lt "$deadline" ]; do
		now=$(prop WatchdogTimestampMonotonic)
		[ "$now" != "$first" ] && break
		sleep 0.5
	done
	[ "$now" != "$first" ] || fail "WatchdogTimestamp did not advance within 20 s"
	expect NRestarts "$(prop NRestarts)" 0
	check_end unit-watchdog "WatchdogUSec=$(prop WatchdogUSec), pets seen"
}

# 3: vfio-migctl over the system bus: the configured mtty devices, RUNNING, real VFIO devices
check_status() {
	check_begin
	local rc name
	migctl status >"$WORK/status.out" 2>"$WORK/status.err"
	rc=$?
	expect "status exit" "$rc" 0
	grep -q '^Devices: 2 devices' "$WORK/status.out" || fail "status does not count 2 devices"
	migctl devices >"$WORK/devices.out" 2>>"$WORK/status.err"
	expect "devices exit" "$?" 0
	for name in mtty-a mtty-c; do
		grep -q "$name" "$WORK/devices.out" || fail "devices does not list $name"
	done
	migctl --json status >"$WORK/status.json" 2>>"$WORK/status.err"
	expect "status --json exit" "$?" 0
	jq -e . "$WORK/status.json" >/dev/null 2>&1 || fail "status --json is not JSON"
	for name in mtty-a mtty-c; do
		expect "$name state" "$(device_state "$name")" RUNNING
	done
	# the kernel's view: both mdevs served by this daemon
	migctl --json host-devices >"$WORK/host.json" 2>>"$WORK/status.err"
	for uuid in "$UUID_A" "$UUID_C"; do
		expect "$uuid served" "$(jq -r --arg u "$uuid" \
			'[."host-devices"[] | select(.name == $u) | .served | tostring][0] // "none"' \
			"$WORK/host.json" 2>/dev/null)" true
	done
	if [ -n "$WHY" ]; then
		fail_file "$WORK/status.out" "vfio-migctl status"
		fail_file "$WORK/devices.out" "vfio-migctl devices"
		fail_file "$WORK/status.err" "stderr"
		fail_file "$WORK/host.json" "host-devices"
	fi
	check_end status-system-bus
}

# 4: the running unit's exposure, as systemd-analyze scores it
check_security() {
	check_begin
	local level
	timeout -k 5 "$STEP_S" systemd-analyze security --no-pager "$UNIT" >"$WORK/security" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$WORK/security")
	if [ -z "$level" ]; then
		fail "no overall exposure level"
		fail_file "$WORK/security" "systemd-analyze security"
	elif ! awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }'; then
		fail "exposure $level > 3.0"
		grep '✗' "$WORK/security" >"$WORK/security.bad"
		fail_file "$WORK/security.bad" "what counts"
	fi
	check_end security-exposure "exposure ${level:-none}"
}

# 5: a job that fails leaves structured records: job-started and job-failed
# (MESSAGE_ID, PRIORITY 3), VFIO_MIGD_JOB, the caller's uid, the device
check_journal() {
	check_begin
	local job
	if migctl migrate unix:@vfio-migd-tier-nobody-listens --plain --device mtty-c \
		>"$WORK/migrate-j.out" 2>"$WORK/migrate-j.err"; then
		fail "a migration to nobody succeeded"
	fi
	sleep 1
	# the daemon's first job since boot: the whole journal of the unit
	journal_json >"$WORK/j.json"
	job=$(jq -r 'select(.MESSAGE_ID == "afa4c129a3ef4d1d910836bbdbcf597f" and .PRIORITY == "3"
		and .VFIO_MIGD_EVENT == "job-failed" and .SYSLOG_IDENTIFIER == "vfio-migd")
		| .VFIO_MIGD_JOB' "$WORK/j.json" | tail -n 1)
	[ -n "$job" ] || fail "no job-failed record (MESSAGE_ID afa4c129..., PRIORITY 3) with VFIO_MIGD_JOB"
	# (-s and any(): jq 1.6's -e looks at the last input only)
	jq -e -s --arg j "$job" 'any(.[]; .MESSAGE_ID == "0206d801be584577ab55dc355489420c"
		and .VFIO_MIGD_JOB == $j and .PRIORITY == "6" and .VFIO_MIGD_EVENT == "job-started")' \
		"$WORK/j.json" >/dev/null ||
		fail "no job-started record (MESSAGE_ID 0206d801..., PRIORITY 6) for job $job"
	jq -e -s 'any(.[]; .VFIO_MIGD_CALLER_UID == "0" and .VFIO_MIGD_JOB != null)' \
		"$WORK/j.json" >/dev/null || fail "no record of the call with VFIO_MIGD_CALLER_UID=0"
	if [ -n "$WHY" ]; then
		jq -c '{MESSAGE, PRIORITY, MESSAGE_ID, VFIO_MIGD_JOB, VFIO_MIGD_EVENT}' "$WORK/j.json" \
			>"$WORK/j.short" 2>&1
		fail_file "$WORK/j.short" "the unit's journal since the call"
		fail_file "$WORK/migrate-j.err" "vfio-migctl migrate"
	fi
	check_end journal-fields "job ${job:-none}"
}

# 6: a user who is not root is refused the change actions, by polkit's name
check_polkit() {
	check_begin
	local cmd rc
	systemctl is-active --quiet polkit.service || fail "polkit.service is not running"
	for cmd in "add $UUID_B" "listen unix:@vfio-migd-tier-nobody --plain" \
		"migrate unix:@vfio-migd-tier-nobody --plain"; do
		# shellcheck disable=SC2086 # the words of one command
		timeout -k 5 "$STEP_S" setpriv --reuid=nobody --regid=nogroup --clear-groups \
			vfio-migctl $cmd >"$WORK/polkit.out" 2>"$WORK/polkit.err"
		rc=$?
		if [ "$rc" -eq 0 ]; then
			fail "'vfio-migctl ${cmd%% *}' as nobody succeeded"
		elif ! grep -q 'org\.vfiomigd\.migd\.change' "$WORK/polkit.err"; then
			fail "'vfio-migctl ${cmd%% *}' as nobody: refused without naming org.vfiomigd.migd.change:"
			fail_file "$WORK/polkit.err" "its stderr"
		fi
	done
	# the error's name, as any D-Bus client sees it
	timeout -k 5 "$STEP_S" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		gdbus call --system --dest org.vfiomigd.Migd1 --object-path /org/vfiomigd/Migd1 \
		--method org.vfiomigd.Migd1.Manager.AddDevice "$UUID_B" '@a{sv} {}' \
		>"$WORK/polkit.out" 2>"$WORK/polkit.err"
	if ! grep -q 'org\.vfiomigd\.Migd1\.Error\.NotAuthorized' "$WORK/polkit.err"; then
		fail "AddDevice as nobody: not org.vfiomigd.Migd1.Error.NotAuthorized:"
		fail_file "$WORK/polkit.err" "gdbus call"
	fi
	[ "$(device_state "$UUID_B")" = none ] || fail "the refused add added $UUID_B"
	check_end polkit-refuses-nobody
}

# 7: stopped, the daemon comes back through D-Bus activation for one call
check_dbus_activation() {
	check_begin
	systemctl stop "$UNIT" 2>/dev/null
	expect "after stop" "$(prop ActiveState)" inactive
	migctl status >"$WORK/act.out" 2>"$WORK/act.err"
	expect "status exit" "$?" 0
	grep -q '^vfio-migd ' "$WORK/act.out" || fail "no answer from the activated daemon"
	expect "after the call" "$(prop ActiveState)" active
	expect "mtty-a after activation" "$(device_state mtty-a)" RUNNING
	if [ -n "$WHY" ]; then
		fail_file "$WORK/act.out" "vfio-migctl status"
		fail_file "$WORK/act.err" "vfio-migctl status"
		journalctl -u "$UNIT" -n 15 --no-pager >"$WORK/act.journal" 2>&1
		fail_file "$WORK/act.journal" "journal"
	fi
	check_end dbus-activation
}

# connects to port 4821 once (bash's /dev/tcp), sends nothing, closes
poke_4821() {
	timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4821 && sleep 1' 2>/dev/null
}

# 8: socket activation without a [listen] setup: one clear warning, D-Bus served
check_socket_no_tls() {
	check_begin
	systemctl stop "$UNIT" 2>/dev/null
	systemctl start vfio-migd.socket || fail "vfio-migd.socket does not start"
	expect "socket" "$(prop ActiveState vfio-migd.socket)" active
	expect "service before the connection" "$(prop ActiveState)" inactive
	poke_4821 || fail "cannot connect to 127.0.0.1:4821"
	wait_state active "$STEP_S" || fail "the connection did not start $UNIT"
	sleep 2
	expect "service after the connection" "$(prop ActiveState)" active
	main_messages >"$WORK/s.txt"
	expect "warnings about the socket" "$(grep -c 'vfio-migd.socket.*not served' "$WORK/s.txt")" 1
	grep -q 'no \[listen\] setup' "$WORK/s.txt" ||
		fail "the warning does not say [listen] is not set up"
	migctl status >/dev/null 2>"$WORK/s.err" || fail "D-Bus not served after the socket was refused"
	expect NRestarts "$(prop NRestarts)" 0
	[ -z "$WHY" ] || fail_file "$WORK/s.err" "vfio-migctl status"
	check_end socket-activation-no-listen-setup
}

# 9: with [listen] TLS files, the activated daemon serves the socket: a TLS
# client with the CA's client certificate completes the handshake
check_socket_tls() {
	check_begin
	local conf=/etc/vfio-migd/vfio-migd.conf
	cp "$conf" "$WORK/conf.orig" 2>/dev/null || : >"$WORK/conf.orig"
	printf '\n[listen]\ncert=/etc/vfio-migd/tls/server-cert.pem\nkey=/etc/vfio-migd/tls/server-key.pem\nca=/etc/vfio-migd/tls/ca.pem\n' >>"$conf"
	systemctl stop "$UNIT" 2>/dev/null
	expect "socket" "$(prop ActiveState vfio-migd.socket)" active
	echo | timeout 30 openssl s_client -connect 127.0.0.1:4821 -verify_return_error \
		-CAfile /etc/vfio-migd/tls/ca.pem -cert /etc/vfio-migd/tls/client-cert.pem \
		-key /etc/vfio-migd/tls/client-key.pem -verify_hostname localhost \
		>"$WORK/tls.out" 2>&1
	expect "openssl s_client exit" "$?" 0
	grep -q 'Verify return code: 0 (ok)' "$WORK/tls.out" || fail "the server certificate did not verify"
	wait_state active "$STEP_S" || fail "the connection did not start $UNIT"
	main_messages >"$WORK/t.txt"
	! grep -q 'not served' "$WORK/t.txt" || fail "the daemon did not serve the socket"
	[ -z "$WHY" ] || {
		fail_file "$WORK/tls.out" "openssl s_client"
		fail_file "$WORK/t.txt" "journal"
	}
	check_end socket-activation-tls
}

# the configuration as it was before check 9, the socket stopped
restore_listen() {
	cp "$WORK/conf.orig" /etc/vfio-migd/vfio-migd.conf
	systemctl stop vfio-migd.socket
}

# A private bus for the runner's own daemons (as scripts/kernel-tier/daemons.sh
# has): its address goes to DBUS_SESSION_BUS_ADDRESS. Started once.
start_private_bus() {
	[ -z "$PRIV_BUS_PID" ] || return 0
	cat >"$WORK/bus.conf" <<EOB
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
EOB
	dbus-daemon --config-file="$WORK/bus.conf" --nofork --nopidfile --print-address=3 \
		3>"$WORK/bus.address" >"$WORK/bus.log" 2>&1 &
	PRIV_BUS_PID=$!
	local deadline=$((SECONDS + 10))
	while [ ! -s "$WORK/bus.address" ] && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.1
	done
	[ -s "$WORK/bus.address" ] || return 1
	DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$WORK/bus.address")
	export DBUS_SESSION_BUS_ADDRESS
}

# a second vfio-migd on the private bus, holding one device; sets PRIV_PID
start_private_daemon() { # bus-name device log
	start_private_bus || return 1
	: >"$WORK/empty.conf"
	vfio-migd --session --bus-name "$1" --config "$WORK/empty.conf" --device "$2" >"$3" 2>&1 &
	PRIV_PID=$!
	timeout -k 5 "$STEP_S" gdbus wait --session --timeout "$STEP_S" "$1" >/dev/null 2>&1
}

stop_private_daemon() { # pid
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# 10: the socket-activated daemon, with its TLS setup, receives a migration:
# a source daemon (private bus, device B) migrates to tcp:127.0.0.1:4821 with
# the client certificate; the system daemon expected it into A. A then holds
# B's UART bytes.
check_socket_tls_migration() {
	check_begin
	local src_name=org.vfiomigd.SystemdTier.Source src_pid job_out rc
	expect "service" "$(prop ActiveState)" active
	systemctl stop "$UNIT" 2>/dev/null
	uart_tool write "$UUID_B" "$TEXT_TLS" -- write "$UUID_A" old >"$WORK/w-tls.log" 2>&1 ||
		fail "writing B's UART failed: $(tail -n 1 "$WORK/w-tls.log")"
	if ! start_private_daemon "$src_name" "$UUID_B" "$WORK/src-tls.log"; then
		fail "the source daemon did not start"
		fail_file "$WORK/src-tls.log" "source daemon"
		check_end socket-activation-tls-migration
		return
	fi
	src_pid=$PRIV_PID
	# the service is stopped, its socket listens: the expectation's call starts it by D-Bus
	migctl expect vm-tier-tls --device mtty-a >"$WORK/expect.out" 2>"$WORK/expect.err"
	expect "expect exit" "$?" 0
	migctl --session --bus-name "$src_name" --json migrate tcp:127.0.0.1:4821 \
		--cert /etc/vfio-migd/tls/client-cert.pem --key /etc/vfio-migd/tls/client-key.pem \
		--ca /etc/vfio-migd/tls/ca.pem --peer-name localhost --migration-id vm-tier-tls \
		--timeout-s "$STEP_S" >"$WORK/m-tls.json" 2>"$WORK/m-tls.err"
	rc=$?
	expect "migrate exit" "$rc" 0
	job_out=$(grep '"event":"completed"' "$WORK/m-tls.json" | tail -n 1)
	expect success "$(echo "$job_out" | jq -r .success 2>/dev/null)" true
	expect "A after the migration" "$(device_state mtty-a)" RUNNING
	main_messages >"$WORK/tls-m.txt"
	! grep -q 'not served' "$WORK/tls-m.txt" || fail "the daemon did not serve the socket"
	stop_private_daemon "$src_pid"
	systemctl stop "$UNIT" 2>/dev/null
	uart_tool read "$UUID_A" 2 >"$WORK/r-tls.out" 2>"$WORK/r-tls.err"
	expect "A read" "$(cut -d' ' -f1,2 "$WORK/r-tls.out")" "state=RUNNING uart0=$TEXT_TLS_HEX"
	if [ -n "$WHY" ]; then
		fail_file "$WORK/expect.err" "vfio-migctl expect"
		fail_file "$WORK/m-tls.err" "vfio-migctl migrate"
		fail_file "$WORK/tls-m.txt" "the unit's journal"
		fail_file "$WORK/src-tls.log" "source daemon"
		fail_file "$WORK/r-tls.err" "migd-uart-tool read"
	fi
	check_end socket-activation-tls-migration
}

# 11: SIGKILL while a job holds A stopped after the switchover; systemd restarts
# the daemon (Restart=on-failure), which finds its journal of jobs and brings A
# back to RUNNING; A's UART still holds what was written before
check_kill_mid_migration() {
	check_begin
	local job address state deadline converged
	systemctl stop "$UNIT" 2>/dev/null
	uart_tool write "$UUID_A" "$TEXT0" "$TEXT1" -- write "$UUID_B" old >"$WORK/w.log" 2>&1 ||
		fail "writing A's UART failed: $(tail -n 1 "$WORK/w.log")"
	systemctl start "$UNIT" || fail "$UNIT does not start"
	if ! start_private_daemon "$DST_NAME" "$UUID_B" "$WORK/dst.log"; then
		fail "the destination daemon did not start"
		fail_file "$WORK/dst.log" "destination daemon"
		check_end kill-mid-migration-restart
		return
	fi
	DST_PID=$PRIV_PID
	address=$(dst_migctl listen unix:@vfio-migd-tier-dst --plain --start manual 2>"$WORK/l.err")
	[ -n "$address" ] || fail_file "$WORK/l.err" "listen"
	job=$(migctl migrate "$address" --plain --device mtty-a --switchover manual --no-wait \
		2>"$WORK/m.err")
	case "$job" in
	/org/vfiomigd/Migd1/jobs/*) ;;
	*) fail "migrate --switchover manual --no-wait printed '$job'" ;;
	esac
	deadline=$((SECONDS + STEP_S))
	converged=no
	while [ "$SECONDS" -lt "$deadline" ]; do
		if migctl --json jobs 2>/dev/null | grep -q '"converged":true'; then
			converged=yes
			break
		fi
		sleep 0.5
	done
	expect converged "$converged" yes
	migctl switchover "$job" >"$WORK/sw.out" 2>"$WORK/sw.err" || {
		fail "switchover failed"
		fail_file "$WORK/sw.err" "vfio-migctl switchover"
	}
	expect "A after the switchover" "$(device_state mtty-a)" STOP
	ls /var/lib/vfio-migd >"$WORK/journal-files" 2>&1
	[ -s "$WORK/journal-files" ] || fail "no job record in /var/lib/vfio-migd mid-migration"
	systemctl kill -s KILL "$UNIT"
	deadline=$((SECONDS + STEP_S))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ "$(prop NRestarts)" = 1 ] && [ "$(prop ActiveState)" = active ] && break
		sleep 0.2
	done
	expect "NRestarts after SIGKILL" "$(prop NRestarts)" 1
	expect "active after SIGKILL" "$(prop ActiveState)" active
	deadline=$((SECONDS + 10))
	while [ "$SECONDS" -lt "$deadline" ]; do
		state=$(device_state mtty-a)
		[ "$state" = RUNNING ] && break
		sleep 0.2
	done
	expect "A after the restart" "$state" RUNNING
	main_messages >"$WORK/k.txt"
	grep -q 'recovered 1 unfinished job' "$WORK/k.txt" ||
		fail "the restarted daemon did not log the recovery of the unfinished job"
	grep -q 'back to RUNNING' "$WORK/k.txt" || fail "no device brought back to RUNNING in the log"
	# the destination gives its side up; then A, closed by the daemon, is read directly
	dst_migctl abandon /org/vfiomigd/Migd1/jobs/1 >/dev/null 2>&1
	systemctl stop "$UNIT" 2>/dev/null
	uart_tool read "$UUID_A" 2 >"$WORK/r.out" 2>"$WORK/r.err"
	expect "uart read exit" "$?" 0
	expect "A read" "$(cat "$WORK/r.out")" "state=RUNNING uart0=$TEXT0_HEX uart1=$TEXT1_HEX"
	if [ -n "$WHY" ]; then
		fail_file "$WORK/m.err" "vfio-migctl migrate"
		fail_file "$WORK/k.txt" "the unit's journal after the kill"
		fail_file "$WORK/r.err" "migd-uart-tool read"
		fail_file "$WORK/dst.log" "destination daemon"
	fi
	systemctl start "$UNIT"
	check_end kill-mid-migration-restart
}

main() {
	local start=$SECONDS
	trap cleanup EXIT
	echo "$BEGIN_MARKER"
	echo "1..$N_CASES"
	check_ready
	check_watchdog
	check_status
	check_security
	check_journal
	check_polkit
	check_dbus_activation
	check_socket_no_tls
	check_socket_tls
	check_socket_tls_migration
	restore_listen
	check_kill_mid_migration
	echo "# boot to vfio-migd ready: ${BOOT_TO_READY:-?} s; checks: $((SECONDS - start)) s"
	echo "$END_MARKER rc=$failed"
}

main
