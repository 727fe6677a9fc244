#!/bin/sh
# A stand-in for vfio-migctl in the hook tests (tests/libvirt/test-libvirt-hook.c):
# appends its arguments as one line to $FAKE_MIGCTL_LOG and answers as
# $FAKE_MIGCTL_MODE says, in vfio-migctl's --json format (docs/ABI/testing/cli-json).
# $FAKE_MIGCTL_DEVICES: the device objects "devices" lists, comma-separated.
printf '%s\n' "$*" >>"${FAKE_MIGCTL_LOG:?}"
mode=${FAKE_MIGCTL_MODE:-ok}
case " $* " in
*" devices "*) cmd=devices ;;
*" listen "*) cmd=listen ;;
*" expect "*) cmd=expect ;;
*" cancel-expectation "*) cmd=cancel ;;
*) cmd=other ;;
esac
# $FAKE_MIGCTL_STATE: a file that exists while the fake holds an expectation
state=${FAKE_MIGCTL_STATE:-/dev/null/none}
case "$mode:$cmd" in
hang:*)
	exec sleep 30
	;;
hang-child:*)
	# a child that keeps the output pipes open: only a group kill ends it
	sleep 30 &
	wait
	;;
down:*)
	echo '{"event":"error","error":"org.freedesktop.DBus.Error.ServiceUnknown","message":"The name org.vfiomigd.Migd1 was not provided by any .service files"}'
	echo 'vfio-migctl: The name org.vfiomigd.Migd1 was not provided by any .service files' >&2
	exit 1
	;;
usage:*)
	echo "vfio-migctl: unknown command '$cmd'" >&2
	exit 2
	;;
crash:*)
	kill -SEGV $$
	;;
*:devices)
	echo "{\"devices\":[${FAKE_MIGCTL_DEVICES:-}]}"
	;;
busy:listen)
	echo '{"event":"error","error":"org.vfiomigd.Migd1.Error.Busy","message":"already listening"}'
	exit 1
	;;
refuse:listen)
	echo '{"event":"error","error":"org.vfiomigd.Migd1.Error.InvalidArgument","message":"cannot listen on tcp:0.0.0.0:47000: Address already in use"}'
	exit 1
	;;
*:listen)
	echo '{"address":"tcp:0.0.0.0:47000"}'
	;;
expect-old:expect)
	# a vfio-migctl from before expectations
	echo "vfio-migctl: unknown command 'expect'" >&2
	exit 2
	;;
expect-unsupported:expect)
	echo '{"event":"error","error":"org.freedesktop.DBus.Error.UnknownMethod","message":"No such method Expect"}'
	exit 1
	;;
expect-refuse:expect)
	echo '{"event":"error","error":"org.vfiomigd.Migd1.Error.Busy","message":"device vf1 is reserved by another expectation"}'
	exit 1
	;;
*:expect)
	if [ -e "$state" ]; then
		echo '{"event":"error","error":"org.vfiomigd.Migd1.Error.InvalidArgument","message":"migration already expected"}'
		exit 1
	fi
	touch "$state" 2>/dev/null || true
	echo '{"address":"tcp:0.0.0.0:47000"}'
	;;
*:cancel)
	if [ ! -e "$state" ]; then
		echo '{"event":"error","error":"org.vfiomigd.Migd1.Error.InvalidArgument","message":"no expectation"}'
		exit 1
	fi
	rm -f "$state"
	echo '{}'
	;;
*)
	exit 2
	;;
esac
