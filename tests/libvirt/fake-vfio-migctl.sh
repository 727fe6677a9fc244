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
*) cmd=other ;;
esac
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
*)
	exit 2
	;;
esac
