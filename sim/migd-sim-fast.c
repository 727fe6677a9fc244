/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * fast_data=1: a device stand-in that costs (almost) nothing, so a benchmark
 * measures the engine and the link, not the simulator. The state is generated
 * once, when the device is created, into a memfd. A read of the save data fd is
 * one memcpy from the memfd's mapping: the one copy a driver's copy_to_user from
 * its buffers makes, without the page cache's per-page lookups of pread(2), which
 * cost more than the engine (2.3 GB/s against memcpy's 9.6 here). A write to the
 * resume data fd compares what arrived with the content the stream's header names,
 * one pass over the bytes as a driver's copy_from_user is; RESUMING -> STOP
 * fails with EINVAL unless every byte matched and the length is exact.
 *
 * The stream: a 32-byte header ("MIGDFAST", seed, size, a check word) and then
 * the body generated from the seed. What is compared is exactly what is sent:
 * the header names the content, the whole stream (header included) is compared
 * with it, and its length must be the header's size. A corrupted seed names
 * other content, whose first body word differs (the generator's first word is a
 * bijection of the seed); a corrupted size fails the length check. The device
 * takes the loaded content's identity only then, so equal digests on both sides
 * mean equal bytes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-sim-device-private.h"
#include "migd-sim-prng.h"

#define MIGD_SIM_FAST_MAGIC  "MIGDFAST"
#define MIGD_SIM_FAST_HEADER 32u
#define MIGD_SIM_FAST_TAG    0x6661737464617461ull /* "fastdata" */
/* content is generated in pieces this large and written into its memfd */
#define MIGD_SIM_FAST_GEN_CHUNK (1u << 20)

/* ---- content: generated once per (seed, size), shared in the process ---- */

typedef struct {
	gint ref; /* under migd_sim_fast_lock */
	guint64 seed;
	guint64 size;
	gint fd;	    /* memfd holding the content */
	const guint8 *data; /* its mapping, read only */
} MigdSimFastContent;

static GMutex migd_sim_fast_lock;
static GHashTable *migd_sim_fast_cache; /* "seed:size" -> MigdSimFastContent (not a ref) */

static guint64
migd_sim_fast_check(guint64 seed, guint64 size)
{
	return migd_sim_mix64(seed ^ migd_sim_mix64(size ^ MIGD_SIM_FAST_TAG));
}

/* @len bytes of the content of (@seed, @size) from offset @off (a multiple of 8) */
static void
migd_sim_fast_generate(guint8 *buf, guint64 seed, guint64 size, guint64 off, gsize len)
{
	guint8 header[MIGD_SIM_FAST_HEADER];

	memcpy(header, MIGD_SIM_FAST_MAGIC, 8);
	migd_sim_put_le64(header + 8, seed);
	migd_sim_put_le64(header + 16, size);
	migd_sim_put_le64(header + 24, migd_sim_fast_check(seed, size));
	if (off < MIGD_SIM_FAST_HEADER) {
		gsize n = MIN(len, MIGD_SIM_FAST_HEADER - off);
		memcpy(buf, header + off, n);
		buf += n;
		off += n;
		len -= n;
	}
	/* key = mix(seed ^ tag): the body's first word is a bijection of the seed */
	migd_sim_fill_bytes(migd_sim_mix64(seed ^ MIGD_SIM_FAST_TAG), off - MIGD_SIM_FAST_HEADER,
			    buf, len);
}

static gboolean
migd_sim_fast_content_fill(MigdSimFastContent *content, GError **error)
{
	g_autofree guint8 *buf = g_malloc(MIGD_SIM_FAST_GEN_CHUNK);
	void *map;

	content->fd = memfd_create("migd-sim-fast", MFD_CLOEXEC);
	if (content->fd < 0) {
		migd_set_errno_error(error, errno, "fast_data: memfd_create");
		return FALSE;
	}
	/* written, not stored through a mapping: no page fault per page */
	for (guint64 off = 0; off < content->size;) {
		gsize n = MIN(content->size - off, MIGD_SIM_FAST_GEN_CHUNK);
		gssize w;
		migd_sim_fast_generate(buf, content->seed, content->size, off, n);
		w = pwrite(content->fd, buf, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			migd_set_errno_error(error, w < 0 ? errno : ENOSPC,
					     "fast_data: %" G_GUINT64_FORMAT " bytes",
					     content->size);
			return FALSE;
		}
		off += w;
	}
	/* the destination compares with this: populated now, not faulted in during a load */
	map = mmap(NULL, content->size, PROT_READ, MAP_SHARED | MAP_POPULATE, content->fd, 0);
	if (map == MAP_FAILED) {
		migd_set_errno_error(error, errno, "fast_data: mmap");
		return FALSE;
	}
	content->data = map;
	return TRUE;
}

static void
migd_sim_fast_content_destroy(MigdSimFastContent *content)
{
	if (content->data != NULL)
		munmap((void *)content->data, content->size);
	if (content->fd >= 0)
		close(content->fd);
	g_free(content);
}

/* the content of (@seed, @size): shared if some device holds it, else generated now */
static MigdSimFastContent *
migd_sim_fast_content_get(guint64 seed, guint64 size, GError **error)
{
	g_autofree gchar *key =
	    g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, seed, size);
	MigdSimFastContent *content;

	g_mutex_lock(&migd_sim_fast_lock);
	if (migd_sim_fast_cache == NULL)
		migd_sim_fast_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	content = g_hash_table_lookup(migd_sim_fast_cache, key);
	if (content != NULL) {
		content->ref++;
		g_mutex_unlock(&migd_sim_fast_lock);
		return content;
	}
	content = g_new0(MigdSimFastContent, 1);
	content->ref = 1;
	content->seed = seed;
	content->size = size;
	content->fd = -1;
	/* generated under the lock: two devices asking for the same content wait for one */
	if (!migd_sim_fast_content_fill(content, error)) {
		g_mutex_unlock(&migd_sim_fast_lock);
		migd_sim_fast_content_destroy(content);
		return NULL;
	}
	g_hash_table_insert(migd_sim_fast_cache, g_steal_pointer(&key), content);
	g_mutex_unlock(&migd_sim_fast_lock);
	return content;
}

static MigdSimFastContent *
migd_sim_fast_content_ref(MigdSimFastContent *content)
{
	g_mutex_lock(&migd_sim_fast_lock);
	content->ref++;
	g_mutex_unlock(&migd_sim_fast_lock);
	return content;
}

static void
migd_sim_fast_content_unref(MigdSimFastContent *content)
{
	g_autofree gchar *key = NULL;

	if (content == NULL)
		return;
	g_mutex_lock(&migd_sim_fast_lock);
	if (--content->ref > 0) {
		g_mutex_unlock(&migd_sim_fast_lock);
		return;
	}
	key = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, content->seed,
			      content->size);
	g_hash_table_remove(migd_sim_fast_cache, key);
	g_mutex_unlock(&migd_sim_fast_lock);
	migd_sim_fast_content_destroy(content);
}

/* ---- the device ---- */

typedef struct {
	MigdSimFastContent *content; /* what the device holds: its own, or what it loaded */
} MigdSimFast;

/* one save or resume file; shared by the session (its file) and the daemon's fd */
typedef struct {
	gint ref;
	MigdDataFdDirection direction;
	GMutex lock;
	MigdSimFastContent *content; /* save: what is read */
	gint stop_copy;		     /* save, atomic: the device is stopped, the state flows */
	guint64 pos;		     /* the file position: bytes read or written */
	/* resume */
	guint64 capacity; /* the device's state_size: more is refused (ENOSPC) */
	guint8 header[MIGD_SIM_FAST_HEADER];
	MigdSimFastContent *loaded; /* what the header names */
	gchar *bad;		    /* why the stream is refused; NULL while it matches */
} MigdSimFastFile;

static MigdSimFastFile *
migd_sim_fast_file_ref(MigdSimFastFile *file)
{
	g_atomic_int_inc(&file->ref);
	return file;
}

static void
migd_sim_fast_file_unref(gpointer data)
{
	MigdSimFastFile *file = data;

	if (!g_atomic_int_dec_and_test(&file->ref))
		return;
	migd_sim_fast_content_unref(file->content);
	migd_sim_fast_content_unref(file->loaded);
	g_free(file->bad);
	g_mutex_clear(&file->lock);
	g_free(file);
}

static MigdSimFastFile *
migd_sim_fast_file_new(MigdDataFdDirection direction)
{
	MigdSimFastFile *file = g_new0(MigdSimFastFile, 1);

	file->ref = 1;
	file->direction = direction;
	g_mutex_init(&file->lock);
	return file;
}

static gboolean
migd_sim_fast_init(MigdSimDevice *self, GError **error)
{
	MigdSimFast *fast = g_new0(MigdSimFast, 1);

	if (self->config->state_size < MIGD_SIM_FAST_HEADER) {
		g_free(fast);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "fast_data: state_size must be at least %u bytes",
			    MIGD_SIM_FAST_HEADER);
		return FALSE;
	}
	fast->content =
	    migd_sim_fast_content_get(self->config->seed, self->config->state_size, error);
	if (fast->content == NULL) {
		g_free(fast);
		return FALSE;
	}
	self->priv = fast;
	return TRUE;
}

static void
migd_sim_fast_finalize(MigdSimDevice *self)
{
	MigdSimFast *fast = self->priv;

	if (fast == NULL)
		return;
	migd_sim_fast_content_unref(fast->content);
	g_free(fast);
	self->priv = NULL;
}

static MigdSimSession *
migd_sim_fast_new_save(MigdSimDevice *self, gboolean stop_copy)
{
	MigdSimFast *fast = self->priv;
	MigdSimFastFile *file = migd_sim_fast_file_new(MIGD_DATA_FD_SAVE);

	file->content = migd_sim_fast_content_ref(fast->content);
	file->stop_copy = stop_copy;
	return migd_sim_device_new_session(self, MIGD_DATA_FD_SAVE, file, migd_sim_fast_file_unref);
}

/* lock held: the daemon wrote everything it meant to; judge what arrived */
static gint
migd_sim_fast_finish(MigdSimDevice *self, MigdSimFastFile *file)
{
	MigdSimFast *fast = self->priv;
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&file->lock);

	if (file->bad == NULL && file->loaded == NULL)
		file->bad =
		    g_strdup_printf("%" G_GUINT64_FORMAT " bytes: no complete header", file->pos);
	if (file->bad == NULL && file->pos != file->loaded->size)
		file->bad = g_strdup_printf("%" G_GUINT64_FORMAT " bytes of %" G_GUINT64_FORMAT,
					    file->pos, file->loaded->size);
	if (file->bad != NULL) {
		g_message("%s: fast_data: the loaded state is refused: %s", self->info->name,
			  file->bad);
		return EINVAL;
	}
	migd_sim_fast_content_unref(fast->content);
	fast->content = migd_sim_fast_content_ref(file->loaded);
	self->generation++;
	return 0;
}

static gint
migd_sim_fast_arc(MigdSimDevice *self, MigdState from, MigdState to, MigdSimSession **session)
{
	/* pre-copy offers nothing: every byte moves in stop-copy */
	if ((from == MIGD_STATE_RUNNING && to == MIGD_STATE_PRE_COPY) ||
	    (from == MIGD_STATE_RUNNING_P2P && to == MIGD_STATE_PRE_COPY_P2P)) {
		*session = migd_sim_fast_new_save(self, FALSE);
		return 0;
	}
	if (from == MIGD_STATE_STOP && to == MIGD_STATE_STOP_COPY) {
		*session = migd_sim_fast_new_save(self, TRUE);
		return 0;
	}
	/* the same file goes on, now with the state */
	if ((from == MIGD_STATE_PRE_COPY || from == MIGD_STATE_PRE_COPY_P2P) &&
	    to == MIGD_STATE_STOP_COPY) {
		MigdSimFastFile *file;
		if (self->session == NULL)
			return EINVAL;
		file = migd_sim_session_get_file(self->session);
		g_atomic_int_set(&file->stop_copy, 1);
		return 0;
	}
	if (from == MIGD_STATE_STOP && to == MIGD_STATE_RESUMING) {
		MigdSimFastFile *file = migd_sim_fast_file_new(MIGD_DATA_FD_RESUME);
		file->capacity = self->config->state_size;
		*session = migd_sim_device_new_session(self, MIGD_DATA_FD_RESUME, file,
						       migd_sim_fast_file_unref);
		return 0;
	}
	if (from == MIGD_STATE_RESUMING && to == MIGD_STATE_STOP) {
		if (self->session == NULL)
			return EINVAL;
		return migd_sim_fast_finish(self, migd_sim_session_get_file(self->session));
	}
	return 0;
}

/* never called: the fast fds are memfds, not the session protocol */
static gint
migd_sim_fast_read(MigdSimDevice *self, MigdSimSession *session, void *buf, gsize len,
		   gboolean nonblock, gsize *n_read, const void **data)
{
	return EINVAL;
}

static gint
migd_sim_fast_write(MigdSimDevice *self, MigdSimSession *session, const void *buf, gsize len,
		    gsize *n_written)
{
	return EINVAL;
}

static guint64
migd_sim_fast_data_size(MigdSimDevice *self)
{
	MigdSimFast *fast = self->priv;
	return fast->content->size;
}

static guint64
migd_sim_fast_digest(MigdSimDevice *self)
{
	MigdSimFast *fast = self->priv;
	/* the content is a function of (seed, size), and taken only after a full comparison */
	return migd_sim_fast_check(fast->content->seed, fast->content->size);
}

/* the content never changes: dirty_rate has nothing to dirty */
static void
migd_sim_fast_touch(MigdSimDevice *self, guint64 n_units)
{
}

/* ---- the daemon's fds ---- */

typedef struct {
	MigdSimSession *session; /* ref */
	GObject *owner;		 /* ref: the open fd keeps the device, as a file does */
	MigdSimFastFile *file;	 /* ref */
} MigdSimFastFd;

static gssize
migd_sim_fast_fd_read(gpointer user_data, gint fd, void *buf, gsize len)
{
	MigdSimFastFd *f = user_data;
	MigdSimFastFile *file = f->file;
	gssize n;

	if (migd_sim_session_is_disabled(f->session)) {
		errno = ENODEV;
		return -1;
	}
	/* PRE_COPY: nothing for now (the temporary end) */
	if (!g_atomic_int_get(&file->stop_copy))
		return 0;
	/* one reader per fd (the engine's reader thread): pos needs no lock */
	n = MIN(len, file->content->size - file->pos);
	memcpy(buf, file->content->data + file->pos, n);
	file->pos += n;
	return n;
}

/* file lock held: compares @n bytes the daemon wrote at the stream's offset @pos */
static void
migd_sim_fast_compare(MigdSimFastFile *file, guint64 pos, const guint8 *buf, gsize n)
{
	if (file->bad != NULL)
		return;
	if (pos < MIGD_SIM_FAST_HEADER) {
		gsize take = MIN(n, MIGD_SIM_FAST_HEADER - pos);
		memcpy(file->header + pos, buf, take);
		if (pos + take == MIGD_SIM_FAST_HEADER) {
			g_autoptr(GError) error = NULL;
			guint64 seed = migd_sim_get_le64(file->header + 8);
			guint64 size = migd_sim_get_le64(file->header + 16);
			if (memcmp(file->header, MIGD_SIM_FAST_MAGIC, 8) != 0 ||
			    size < MIGD_SIM_FAST_HEADER || size > file->capacity ||
			    migd_sim_get_le64(file->header + 24) !=
				migd_sim_fast_check(seed, size)) {
				file->bad = g_strdup("not a fast_data header of this size");
				return;
			}
			file->loaded = migd_sim_fast_content_get(seed, size, &error);
			if (file->loaded == NULL) {
				file->bad = g_strdup(error->message);
				return;
			}
		}
	}
	if (file->loaded == NULL)
		return;
	if (pos + n > file->loaded->size) {
		file->bad =
		    g_strdup_printf("more than %" G_GUINT64_FORMAT " bytes", file->loaded->size);
		return;
	}
	if (memcmp(file->loaded->data + pos, buf, n) != 0) {
		for (gsize i = 0; i < n; i++) {
			if (file->loaded->data[pos + i] != buf[i]) {
				file->bad =
				    g_strdup_printf("byte %" G_GUINT64_FORMAT " differs", pos + i);
				break;
			}
		}
	}
}

static gssize
migd_sim_fast_fd_write(gpointer user_data, gint fd, const void *buf, gsize len)
{
	MigdSimFastFd *f = user_data;
	MigdSimFastFile *file = f->file;
	g_autoptr(GMutexLocker) locker = NULL;
	gssize n;

	if (migd_sim_session_is_disabled(f->session)) {
		errno = ENODEV;
		return -1;
	}
	locker = g_mutex_locker_new(&file->lock);
	if (file->pos >= file->capacity) {
		errno = ENOSPC;
		return -1;
	}
	n = MIN(len, file->capacity - file->pos);
	/* then what arrived is compared with what the header names, while in cache */
	migd_sim_fast_compare(file, file->pos, buf, n);
	file->pos += n;
	return n;
}

static gint
migd_sim_fast_fd_precopy_info(gpointer user_data, gint fd, guint64 *initial_bytes,
			      guint64 *dirty_bytes)
{
	MigdSimFastFd *f = user_data;

	if (migd_sim_session_is_disabled(f->session)) {
		errno = ENODEV;
		return -1;
	}
	if (f->file->direction != MIGD_DATA_FD_SAVE || g_atomic_int_get(&f->file->stop_copy)) {
		errno = EINVAL;
		return -1;
	}
	*initial_bytes = 0;
	*dirty_bytes = 0;
	return 0;
}

static const MigdDataFdOps migd_sim_fast_fd_ops = {
    .read = migd_sim_fast_fd_read,
    .write = migd_sim_fast_fd_write,
    .precopy_info = migd_sim_fast_fd_precopy_info,
};

static void
migd_sim_fast_fd_free(gpointer data)
{
	MigdSimFastFd *f = data;

	migd_sim_fast_file_unref(f->file);
	migd_sim_session_unref(f->session);
	g_object_unref(f->owner);
	g_free(f);
}

static MigdDataFd *
migd_sim_fast_open_fd(MigdSimDevice *self, MigdSimSession *session, GError **error)
{
	MigdSimFastFile *file = migd_sim_session_get_file(session);
	MigdSimFastFd *f;
	gint fd;

	if (file->direction == MIGD_DATA_FD_SAVE) {
		fd = fcntl(file->content->fd, F_DUPFD_CLOEXEC, 0);
	} else {
		/* what is written is compared, not stored: the fd is an empty file */
		fd = memfd_create("migd-sim-fast-load", MFD_CLOEXEC);
	}
	if (fd < 0) {
		migd_set_errno_error(error, errno, "fast_data: data fd");
		return NULL;
	}
	f = g_new0(MigdSimFastFd, 1);
	f->session = migd_sim_session_ref(session);
	f->owner = g_object_ref(G_OBJECT(self));
	f->file = migd_sim_fast_file_ref(file);
	return migd_data_fd_new(fd, file->direction, &migd_sim_fast_fd_ops, f,
				migd_sim_fast_fd_free);
}

const MigdSimBackend migd_sim_fast_backend = {
    .init = migd_sim_fast_init,
    .finalize = migd_sim_fast_finalize,
    .arc = migd_sim_fast_arc,
    .read = migd_sim_fast_read,
    .write = migd_sim_fast_write,
    .open_fd = migd_sim_fast_open_fd,
    .data_size = migd_sim_fast_data_size,
    .digest = migd_sim_fast_digest,
    .state_size = migd_sim_fast_data_size,
    .touch = migd_sim_fast_touch,
};
