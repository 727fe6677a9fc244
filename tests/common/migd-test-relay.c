/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Blocking sockets and two threads per connection: a test tool, kept simple.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migd-crc32c.h"
#include "migd-error.h"
#include "migd-test-relay.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

typedef struct {
	MigdTestRelay *relay;
	gint client_fd;
	gint upstream_fd;
	GThread *up;   /* client -> upstream, frames parsed */
	GThread *down; /* upstream -> client, bytes copied */
} MigdTestRelayConn;

struct _MigdTestRelay {
	gint listen_fd;
	gchar *address;
	gchar *upstream;
	gint flip_device;
	guint64 flip_offset;
	gboolean fix_chunk_crc;
	GThread *acceptor;
	GMutex lock;
	GPtrArray *conns; /* MigdTestRelayConn, under @lock */
	gboolean stopping;
	guint flipped;	/* atomic */
	guint64 chunks; /* under @lock */
};

/* tcp:HOST:PORT or unix:PATH as a sockaddr */
static gboolean
migd_test_relay_parse(const gchar *address, struct sockaddr_storage *ss, socklen_t *len,
		      GError **error)
{
	memset(ss, 0, sizeof(*ss));
	if (g_str_has_prefix(address, "unix:")) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		const gchar *path = address + 5;
		if (strlen(path) == 0 || strlen(path) >= sizeof(sun->sun_path)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "bad unix address %s", address);
			return FALSE;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		*len = sizeof(*sun);
		return TRUE;
	}
	if (g_str_has_prefix(address, "tcp:")) {
		const gchar *hostport = address + 4;
		const gchar *colon = strrchr(hostport, ':');
		g_autofree gchar *host = NULL;
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
		struct addrinfo *res = NULL;
		gint rc;

		if (colon == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "no port in %s",
				    address);
			return FALSE;
		}
		host = g_strndup(hostport, colon - hostport);
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		rc = getaddrinfo(host, colon + 1, &hints, &res);
		if (rc != 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s: %s",
				    address, gai_strerror(rc));
			return FALSE;
		}
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		return TRUE;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "%s: not tcp:HOST:PORT or unix:PATH", address);
	return FALSE;
}

static gboolean
migd_test_relay_write_all(gint fd, const guint8 *buf, gsize len)
{
	while (len > 0) {
		gssize n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		buf += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* a frame as it goes out; flips the chosen byte if this chunk holds it */
static gboolean
migd_test_relay_forward(MigdTestRelayConn *conn, GBytes *packed, guint64 *stream_pos)
{
	MigdTestRelay *relay = conn->relay;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdWireFrame) frame = migd_wire_frame_decode_bytes(packed, &error);
	g_autoptr(GByteArray) out = g_byte_array_new();
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(packed, &len);

	if (frame != NULL && frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK) {
		Migd__Wire__StateChunk *chunk = frame->state_chunk;
		g_mutex_lock(&relay->lock);
		relay->chunks++;
		g_mutex_unlock(&relay->lock);
		if (relay->flip_device >= 0 && chunk->device == (guint32)relay->flip_device) {
			guint64 pos = stream_pos[chunk->device];
			stream_pos[chunk->device] += chunk->data.len;
			if (relay->flip_offset >= pos &&
			    relay->flip_offset < pos + chunk->data.len) {
				/* the payload is ours: the frame points into @packed */
				chunk->data.data[relay->flip_offset - pos] ^= 0xff;
				g_atomic_int_inc(&relay->flipped);
				if (relay->fix_chunk_crc && chunk->has_crc32c)
					chunk->crc32c = migd_crc32c_update(0, chunk->data.data,
									   chunk->data.len);
				if (!migd_wire_frame_append(frame, out, &error)) {
					g_warning("relay: re-encoding: %s", error->message);
					return FALSE;
				}
				return migd_test_relay_write_all(conn->upstream_fd, out->data,
								 out->len);
			}
		}
	}
	/* anything else goes out as it came, undecodable frames included */
	if (!migd_test_relay_write_all(conn->upstream_fd, prefix,
				       migd_wire_varint_encode(len, prefix)))
		return FALSE;
	return migd_test_relay_write_all(conn->upstream_fd, data, len);
}

#define MIGD_TEST_RELAY_BUF (64 * 1024)

/* what arrived on one side, for the other; FALSE ends the connection */
typedef gboolean (*MigdTestRelayHandler)(MigdTestRelayConn *conn, const guint8 *buf, gsize n,
					 gpointer data);

static void
migd_test_relay_loop(MigdTestRelayConn *conn, gint from_fd, MigdTestRelayHandler handle,
		     gpointer data)
{
	g_autofree guint8 *buf = g_malloc(MIGD_TEST_RELAY_BUF);

	for (;;) {
		gssize n = recv(from_fd, buf, MIGD_TEST_RELAY_BUF, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !handle(conn, buf, (gsize)n, data))
			break;
	}
	/* either direction ending ends both, as a proxy would */
	shutdown(conn->upstream_fd, SHUT_RDWR);
	shutdown(conn->client_fd, SHUT_RDWR);
}

typedef struct {
	MigdWireDecoder *decoder;
	guint64 stream_pos[MIGD_WIRE_MAX_DEVICES]; /* bytes of each device's stream so far */
} MigdTestRelayUp;

/* source -> destination: whole frames, the chosen one altered */
static gboolean
migd_test_relay_up(MigdTestRelayConn *conn, const guint8 *buf, gsize n, gpointer data)
{
	MigdTestRelayUp *up = data;
	g_autoptr(GError) error = NULL;
	GBytes *packed;

	if (!migd_wire_decoder_feed(up->decoder, buf, n, &error)) {
		g_warning("relay: %s", error->message);
		return FALSE;
	}
	while ((packed = migd_wire_decoder_pop(up->decoder)) != NULL) {
		gboolean ok = migd_test_relay_forward(conn, packed, up->stream_pos);
		g_bytes_unref(packed);
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

static gpointer
migd_test_relay_up_thread(gpointer user_data)
{
	MigdTestRelayConn *conn = user_data;
	g_autofree MigdTestRelayUp *up = g_new0(MigdTestRelayUp, 1);

	up->decoder = migd_wire_decoder_new();
	migd_test_relay_loop(conn, conn->client_fd, migd_test_relay_up, up);
	migd_wire_decoder_free(up->decoder);
	return NULL;
}

/* destination -> source: bytes as they come */
static gboolean
migd_test_relay_down(MigdTestRelayConn *conn, const guint8 *buf, gsize n, gpointer data)
{
	return migd_test_relay_write_all(conn->client_fd, buf, n);
}

static gpointer
migd_test_relay_down_thread(gpointer user_data)
{
	MigdTestRelayConn *conn = user_data;

	migd_test_relay_loop(conn, conn->upstream_fd, migd_test_relay_down, NULL);
	return NULL;
}

static gpointer
migd_test_relay_accept_thread(gpointer user_data)
{
	MigdTestRelay *self = user_data;

	for (;;) {
		g_autoptr(GError) error = NULL;
		struct sockaddr_storage ss;
		socklen_t ss_len = 0;
		MigdTestRelayConn *conn;
		gint upstream_fd;
		gint fd = accept4(self->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			break;
		if (!migd_test_relay_parse(self->upstream, &ss, &ss_len, &error)) {
			g_warning("relay: %s", error->message);
			close(fd);
			continue;
		}
		upstream_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (upstream_fd < 0 || connect(upstream_fd, (struct sockaddr *)&ss, ss_len) != 0) {
			g_warning("relay: connecting to %s: %s", self->upstream, g_strerror(errno));
			if (upstream_fd >= 0)
				close(upstream_fd);
			close(fd);
			continue;
		}
		conn = g_new0(MigdTestRelayConn, 1);
		conn->relay = self;
		conn->client_fd = fd;
		conn->upstream_fd = upstream_fd;
		g_mutex_lock(&self->lock);
		if (self->stopping) {
			g_mutex_unlock(&self->lock);
			close(fd);
			close(upstream_fd);
			g_free(conn);
			break;
		}
		conn->up = g_thread_new("relay-up", migd_test_relay_up_thread, conn);
		conn->down = g_thread_new("relay-down", migd_test_relay_down_thread, conn);
		g_ptr_array_add(self->conns, conn);
		g_mutex_unlock(&self->lock);
	}
	return NULL;
}

MigdTestRelay *
migd_test_relay_new(const gchar *listen_address, const gchar *upstream, gint flip_device,
		    guint64 flip_offset, GError **error)
{
	g_autoptr(MigdTestRelay) self = g_new0(MigdTestRelay, 1);
	struct sockaddr_storage ss;
	socklen_t ss_len = 0;
	gint one = 1;

	g_mutex_init(&self->lock);
	self->conns = g_ptr_array_new();
	self->listen_fd = -1;
	self->upstream = g_strdup(upstream);
	self->flip_device = flip_device;
	self->flip_offset = flip_offset;
	if (!migd_test_relay_parse(listen_address, &ss, &ss_len, error))
		return NULL;
	/* the upstream address must parse too, before anyone connects */
	{
		struct sockaddr_storage up;
		socklen_t up_len = 0;
		if (!migd_test_relay_parse(upstream, &up, &up_len, error))
			return NULL;
	}
	self->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (self->listen_fd < 0 ||
	    setsockopt(self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(self->listen_fd, (struct sockaddr *)&ss, ss_len) != 0 ||
	    listen(self->listen_fd, 16) != 0 ||
	    getsockname(self->listen_fd, (struct sockaddr *)&ss, &ss_len) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "relay: listening on %s: %s",
			    listen_address, g_strerror(errno));
		return NULL;
	}
	if (ss.ss_family == AF_UNIX) {
		self->address = g_strdup(listen_address);
	} else {
		gchar host[NI_MAXHOST];
		gchar port[NI_MAXSERV];
		getnameinfo((struct sockaddr *)&ss, ss_len, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		self->address = ss.ss_family == AF_INET6
				    ? g_strdup_printf("tcp:[%s]:%s", host, port)
				    : g_strdup_printf("tcp:%s:%s", host, port);
	}
	self->acceptor = g_thread_new("relay-accept", migd_test_relay_accept_thread, self);
	return g_steal_pointer(&self);
}

void
migd_test_relay_set_fix_chunk_crc(MigdTestRelay *self, gboolean fix)
{
	self->fix_chunk_crc = fix;
}

const gchar *
migd_test_relay_get_address(MigdTestRelay *self)
{
	return self->address;
}

guint
migd_test_relay_get_flipped(MigdTestRelay *self)
{
	return (guint)g_atomic_int_get(&self->flipped);
}

guint64
migd_test_relay_get_chunks(MigdTestRelay *self)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	return self->chunks;
}

void
migd_test_relay_free(MigdTestRelay *self)
{
	if (self == NULL)
		return;
	g_mutex_lock(&self->lock);
	self->stopping = TRUE;
	g_mutex_unlock(&self->lock);
	if (self->listen_fd >= 0)
		shutdown(self->listen_fd, SHUT_RDWR);
	if (self->acceptor != NULL)
		g_thread_join(self->acceptor);
	for (guint i = 0; i < self->conns->len; i++) {
		MigdTestRelayConn *conn = g_ptr_array_index(self->conns, i);
		shutdown(conn->client_fd, SHUT_RDWR);
		shutdown(conn->upstream_fd, SHUT_RDWR);
		g_thread_join(conn->up);
		g_thread_join(conn->down);
		close(conn->client_fd);
		close(conn->upstream_fd);
		g_free(conn);
	}
	g_ptr_array_unref(self->conns);
	if (self->listen_fd >= 0)
		close(self->listen_fd);
	if (self->address != NULL && g_str_has_prefix(self->address, "unix:"))
		unlink(self->address + 5);
	g_mutex_clear(&self->lock);
	g_free(self->address);
	g_free(self->upstream);
	g_free(self);
}
