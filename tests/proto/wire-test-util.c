/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "migd-state.h"
#include "wire-test-util.h"

const MigdWireMsgType wire_test_types[] = {
    MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO,
    MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY,
    MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER,
    MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT,
    MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT,
    MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK,
    MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS,
    MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK,
    MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK,
    MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT,
    MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT,
    MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT,
    MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE,
    MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST,
    MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT,
};
const gsize wire_test_n_types = G_N_ELEMENTS(wire_test_types);

static guint8 *
wire_test_bytes(gsize len, guint seed)
{
	guint8 *buf = g_malloc(MAX(len, 1));

	for (gsize i = 0; i < len; i++)
		buf[i] = (guint8)(i * 31 + seed);
	return buf;
}

MigdWireFrame *
wire_test_sample(MigdWireMsgType type, guint seed)
{
	MigdWireFrame *frame = g_new0(MigdWireFrame, 1);
	gpointer body = NULL;

	switch (type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO: {
		Migd__Wire__Hello *m = g_new0(Migd__Wire__Hello, 1);

		migd__wire__hello__init(m);
		m->version_min = MIGD_WIRE_PROTOCOL_VERSION_MIN;
		m->version_max = MIGD_WIRE_PROTOCOL_VERSION_MAX;
		m->capabilities = MIGD_WIRE_CAPS_KNOWN | (G_GUINT64_CONSTANT(1) << 40);
		m->host_identity = g_strdup_printf("src-host-%u.example.org", seed);
		m->session_id = g_strdup_printf("sess-%08x", seed);
		m->device_count = 2 + seed % 3;
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY: {
		Migd__Wire__HelloReply *m = g_new0(Migd__Wire__HelloReply, 1);

		migd__wire__hello_reply__init(m);
		m->session_id = g_strdup_printf("sess-%08x", seed);
		m->has_capabilities = TRUE;
		m->capabilities = MIGD_WIRE_CAP_PRECOPY;
		if (seed % 2 == 0) {
			m->has_version = TRUE;
			m->version = 1;
		} else {
			m->has_refusal = TRUE;
			m->refusal = MIGD__WIRE__REASON__REASON_BUSY;
			m->message = g_strdup("busy migrating another guest");
		}
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER: {
		Migd__Wire__DeviceOffer *m = g_new0(Migd__Wire__DeviceOffer, 1);
		Migd__Wire__DeviceDescriptor *d = g_new0(Migd__Wire__DeviceDescriptor, 1);

		migd__wire__device_offer__init(m);
		migd__wire__device_descriptor__init(d);
		d->driver_name = g_strdup("mlx5_vfio_pci");
		d->vendor_id = 0x15b3;
		d->device_id = 0x101e;
		d->subsystem_vendor_id = 0x15b3;
		d->subsystem_device_id = 0x0001 + seed % 16;
		d->migration_flags = MIGD_MIG_FLAGS_KNOWN;
		d->stop_copy_length = G_GUINT64_CONSTANT(300) * 1024 * 1024 + seed;
		d->has_plugin_data = TRUE;
		d->plugin_data.len = 40 + seed % 64;
		d->plugin_data.data = wire_test_bytes(d->plugin_data.len, seed);
		m->device = seed % 2;
		m->descriptor = d;
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT: {
		Migd__Wire__DeviceAccept *m = g_new0(Migd__Wire__DeviceAccept, 1);

		migd__wire__device_accept__init(m);
		m->device = seed % 2;
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT: {
		Migd__Wire__DeviceReject *m = g_new0(Migd__Wire__DeviceReject, 1);

		migd__wire__device_reject__init(m);
		m->device = seed % 2;
		m->reason = MIGD__WIRE__REASON__REASON_INCOMPATIBLE_DEVICE;
		m->message = g_strdup("firmware 22.31 cannot load state from 22.39");
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK: {
		Migd__Wire__StateChunk *m = g_new0(Migd__Wire__StateChunk, 1);

		migd__wire__state_chunk__init(m);
		m->device = seed % 2;
		m->phase = MIGD__WIRE__PHASE__PHASE_STOPCOPY;
		m->sequence = seed;
		m->data.len = 1 + seed % 300;
		m->data.data = wire_test_bytes(m->data.len, seed);
		m->has_last = TRUE;
		m->last = seed % 2;
		/* half the samples with the checksum, one of them with the top bit set */
		m->has_crc32c = seed % 2 == 0;
		m->crc32c = 0x80000000u | (seed * 0x9e3779b9u);
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS: {
		Migd__Wire__PrecopyProgress *m = g_new0(Migd__Wire__PrecopyProgress, 1);

		migd__wire__precopy_progress__init(m);
		m->device = seed % 2;
		m->initial_bytes = G_GUINT64_CONSTANT(1) << 33;
		m->dirty_bytes = 4096 * (guint64)seed;
		m->round = seed;
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK: {
		Migd__Wire__SwitchoverAck *m = g_new0(Migd__Wire__SwitchoverAck, 1);

		migd__wire__switchover_ack__init(m);
		m->has_device = seed % 2;
		m->device = 1;
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK: {
		Migd__Wire__DirtyBitmapChunk *m = g_new0(Migd__Wire__DirtyBitmapChunk, 1);

		migd__wire__dirty_bitmap_chunk__init(m);
		m->device = seed % 2;
		m->round = 1 + seed % 3;
		m->window = seed % 4;
		m->page_size = 4096;
		m->window_iova = G_GUINT64_CONSTANT(0x100000000) + 4096 * (guint64)seed;
		m->window_pages = 4096;
		m->first_page = 64 * (seed % 8);
		m->n_pages = 512;
		m->encoding = MIGD__WIRE__DIRTY_ENCODING__DIRTY_ENCODING_RAW;
		m->data.len = 64;
		m->data.data = wire_test_bytes(64, seed);
		m->n_dirty = seed % 100;
		m->checksum = seed * G_GUINT64_CONSTANT(0x9E3779B97F4A7C15);
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT: {
		Migd__Wire__Commit *m = g_new0(Migd__Wire__Commit, 1);

		migd__wire__commit__init(m);
		m->n_devices = 2;
		m->devices = g_new0(Migd__Wire__CommitDevice *, 2);
		for (guint i = 0; i < 2; i++) {
			m->devices[i] = g_new0(Migd__Wire__CommitDevice, 1);
			migd__wire__commit_device__init(m->devices[i]);
			m->devices[i]->device = i;
			m->devices[i]->chunks = 10 + i + seed;
			m->devices[i]->bytes = 1000000 + i;
			m->devices[i]->has_crc32c = i == 0;
			m->devices[i]->crc32c = 0xe3069283u + seed;
		}
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT: {
		Migd__Wire__CommitResult *m = g_new0(Migd__Wire__CommitResult, 1);

		migd__wire__commit_result__init(m);
		m->ok = FALSE;
		m->n_devices = 2;
		m->devices = g_new0(Migd__Wire__CommitDeviceResult *, 2);
		for (guint i = 0; i < 2; i++) {
			Migd__Wire__CommitDeviceResult *r =
			    g_new0(Migd__Wire__CommitDeviceResult, 1);

			migd__wire__commit_device_result__init(r);
			r->device = i;
			r->ok = i == 0;
			if (!r->ok) {
				r->has_reason = TRUE;
				r->reason = MIGD__WIRE__REASON__REASON_VALIDATION_FAILED;
				r->message = g_strdup("RESUMING->STOP: EINVAL");
			}
			m->devices[i] = r;
		}
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT: {
		Migd__Wire__Abort *m = g_new0(Migd__Wire__Abort, 1);

		migd__wire__abort__init(m);
		m->reason = MIGD__WIRE__REASON__REASON_CANCELLED;
		m->message = g_strdup_printf("cancelled by the operator (%u)", seed);
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE: {
		Migd__Wire__Keepalive *m = g_new0(Migd__Wire__Keepalive, 1);

		migd__wire__keepalive__init(m);
		m->monotonic_usec = G_GUINT64_CONSTANT(123456789) * (seed + 1);
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST: {
		Migd__Wire__StartRequest *m = g_new0(Migd__Wire__StartRequest, 1);

		migd__wire__start_request__init(m);
		body = m;
		break;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT: {
		Migd__Wire__StartGrant *m = g_new0(Migd__Wire__StartGrant, 1);

		migd__wire__start_grant__init(m);
		body = m;
		break;
	}
	default:
		g_assert_not_reached();
	}
	migd_wire_frame_init(frame, type, body);
	return frame;
}

GByteArray *
wire_test_prefix_raw(const guint8 *data, gsize len)
{
	GByteArray *out = g_byte_array_new();
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize n = migd_wire_varint_encode(len, prefix);

	g_byte_array_append(out, prefix, n);
	g_byte_array_append(out, data, len);
	return out;
}

GByteArray *
wire_test_pack_raw(const ProtobufCMessage *msg)
{
	gsize len = protobuf_c_message_get_packed_size(msg);
	g_autofree guint8 *buf = g_malloc(MAX(len, 1));

	protobuf_c_message_pack(msg, buf);
	return wire_test_prefix_raw(buf, len);
}
