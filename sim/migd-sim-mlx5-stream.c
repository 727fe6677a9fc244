/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Generating and parsing the mlx5 record stream. Generation works by offset, so
 * an image of GiBs is never held in memory: only its (page, key) list is.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "migd-sim-mlx5-stream.h"
#include "migd-sim-prng.h"

#define MIGD_SIM_MLX5_CHUNK_MAGIC 0x354d49534447494dull /* "MIGDSIM5" */
#define MIGD_SIM_MLX5_CHUNK_LAST  1u
#define MIGD_SIM_MLX5_FULL_CHUNK                                                                   \
	((guint64)MIGD_SIM_MLX5_HDR_SIZE + MIGD_SIM_MLX5_CHUNK_HDR_SIZE +                          \
	 (guint64)MIGD_SIM_MLX5_ENTRIES_PER_CHUNK * MIGD_SIM_MLX5_ENTRY_SIZE)

/*
 * The simulated firmware also covers the driver header's flags: the real driver
 * ignores flags on a known tag, but a flipped bit must not load silently here
 */
static guint64
migd_sim_mlx5_check_begin(guint64 seq, guint32 n_entries, guint32 flags, guint32 rec_flags,
			  guint64 state_size)
{
	return migd_sim_mix64(seq ^ migd_sim_mix64(((guint64)flags << 32) | n_entries) ^
			      migd_sim_mix64(state_size ^ migd_sim_mix64(rec_flags)));
}

static guint64
migd_sim_mlx5_check_add(guint64 check, guint64 page, guint64 key)
{
	return migd_sim_mix64(migd_sim_mix64(check ^ page) ^ key);
}

guint64
migd_sim_mlx5_image_estimate(guint64 n_entries)
{
	guint64 n_chunks = MAX(1, (n_entries + MIGD_SIM_MLX5_ENTRIES_PER_CHUNK - 1) /
				      MIGD_SIM_MLX5_ENTRIES_PER_CHUNK);
	return n_chunks * (MIGD_SIM_MLX5_HDR_SIZE + MIGD_SIM_MLX5_CHUNK_HDR_SIZE) +
	       n_entries * MIGD_SIM_MLX5_ENTRY_SIZE;
}

static guint32
migd_sim_mlx5_chunk_n(MigdSimMlx5Image *self, guint64 c)
{
	guint64 first = c * MIGD_SIM_MLX5_ENTRIES_PER_CHUNK;
	return (guint32)MIN((guint64)MIGD_SIM_MLX5_ENTRIES_PER_CHUNK, self->n_entries - first);
}

static MigdSimPageEntry
migd_sim_mlx5_image_entry(MigdSimMlx5Image *self, guint64 idx)
{
	if (self->entries != NULL)
		return g_array_index(self->entries, MigdSimPageEntry, idx);
	return (MigdSimPageEntry){.page = idx, .key = migd_sim_pages_seeded_key(self->seed, idx)};
}

static gsize
migd_sim_mlx5_entry_len(MigdSimMlx5Image *self, guint64 idx)
{
	MigdSimPageEntry e = migd_sim_mlx5_image_entry(self, idx);
	return MIGD_SIM_MLX5_ENTRY_HDR_SIZE + migd_sim_pages_page_len(self->state_size, e.page);
}

static MigdSimMlx5Image *
migd_sim_mlx5_image_init(guint64 seq, guint64 state_size, GArray *entries, guint64 n_entries,
			 guint64 seed, gboolean size_record, guint64 stop_copy_size)
{
	MigdSimMlx5Image *self = g_new0(MigdSimMlx5Image, 1);

	self->ref = 1;
	self->seq = seq;
	self->state_size = state_size;
	self->entries = entries;
	self->n_entries = n_entries;
	self->seed = seed;
	self->size_record = size_record;
	self->stop_copy_size = stop_copy_size;
	self->n_chunks = MAX(1, (n_entries + MIGD_SIM_MLX5_ENTRIES_PER_CHUNK - 1) /
				    MIGD_SIM_MLX5_ENTRIES_PER_CHUNK);
	self->chunk_check = g_new(guint64, self->n_chunks);
	self->len = size_record ? MIGD_SIM_MLX5_SIZE_RECORD : 0;
	for (guint64 c = 0; c < self->n_chunks; c++) {
		guint32 n = migd_sim_mlx5_chunk_n(self, c);
		guint32 flags = c + 1 == self->n_chunks ? MIGD_SIM_MLX5_CHUNK_LAST : 0;
		guint64 check = migd_sim_mlx5_check_begin(seq, n, flags, 0, state_size);

		self->len += MIGD_SIM_MLX5_HDR_SIZE + MIGD_SIM_MLX5_CHUNK_HDR_SIZE;
		for (guint64 i = c * MIGD_SIM_MLX5_ENTRIES_PER_CHUNK;
		     i < c * MIGD_SIM_MLX5_ENTRIES_PER_CHUNK + n; i++) {
			MigdSimPageEntry e = migd_sim_mlx5_image_entry(self, i);
			check = migd_sim_mlx5_check_add(check, e.page, e.key);
			self->len += migd_sim_mlx5_entry_len(self, i);
		}
		self->chunk_check[c] = check;
	}
	return self;
}

MigdSimMlx5Image *
migd_sim_mlx5_image_new(guint64 seq, guint64 state_size, GArray *entries, gboolean size_record,
			guint64 stop_copy_size)
{
	return migd_sim_mlx5_image_init(seq, state_size, entries, entries->len, 0, size_record,
					stop_copy_size);
}

MigdSimMlx5Image *
migd_sim_mlx5_image_new_seeded(guint64 seq, guint64 state_size, guint64 seed, gboolean size_record,
			       guint64 stop_copy_size)
{
	guint64 n_pages = (state_size + MIGD_SIM_PAGE_SIZE - 1) / MIGD_SIM_PAGE_SIZE;

	return migd_sim_mlx5_image_init(seq, state_size, NULL, n_pages, seed, size_record,
					stop_copy_size);
}

void
migd_sim_mlx5_image_unref(MigdSimMlx5Image *self)
{
	if (self == NULL || --self->ref > 0)
		return;
	if (self->entries != NULL)
		g_array_unref(self->entries);
	g_free(self->chunk_check);
	g_free(self);
}

/* copies [@off, @off + @len) of the @src_len bytes at @src; returns bytes copied */
static gsize
migd_sim_mlx5_copy_part(const guint8 *src, gsize src_len, guint64 off, guint8 *buf, gsize len)
{
	gsize n = MIN(len, src_len - off);
	memcpy(buf, src + off, n);
	return n;
}

/* one piece of chunk @c at chunk offset @coff; returns bytes produced */
static gsize
migd_sim_mlx5_chunk_read(MigdSimMlx5Image *self, guint64 c, guint64 coff, guint8 *buf, gsize len)
{
	guint32 n = migd_sim_mlx5_chunk_n(self, c);
	guint64 hdrs = MIGD_SIM_MLX5_HDR_SIZE + MIGD_SIM_MLX5_CHUNK_HDR_SIZE;
	guint64 rel, idx, eoff;
	MigdSimPageEntry e;
	gsize plen;

	if (coff < hdrs) {
		guint8 h[MIGD_SIM_MLX5_HDR_SIZE + MIGD_SIM_MLX5_CHUNK_HDR_SIZE];
		guint64 rec = MIGD_SIM_MLX5_CHUNK_HDR_SIZE;
		for (guint64 i = c * MIGD_SIM_MLX5_ENTRIES_PER_CHUNK;
		     i < c * MIGD_SIM_MLX5_ENTRIES_PER_CHUNK + n; i++)
			rec += migd_sim_mlx5_entry_len(self, i);
		migd_sim_put_le64(h, rec);
		migd_sim_put_le32(h + 8, 0);
		migd_sim_put_le32(h + 12, MIGD_SIM_MLX5_TAG_FW_DATA);
		migd_sim_put_le64(h + 16, MIGD_SIM_MLX5_CHUNK_MAGIC);
		migd_sim_put_le32(h + 24, n);
		migd_sim_put_le32(h + 28, c + 1 == self->n_chunks ? MIGD_SIM_MLX5_CHUNK_LAST : 0);
		migd_sim_put_le64(h + 32, self->seq);
		migd_sim_put_le64(h + 40, self->state_size);
		migd_sim_put_le64(h + 48, self->chunk_check[c]);
		return migd_sim_mlx5_copy_part(h, sizeof(h), coff, buf, len);
	}
	/* every entry is full size except possibly the device's last page, which is last */
	rel = coff - hdrs;
	idx = rel / MIGD_SIM_MLX5_ENTRY_SIZE;
	eoff = rel % MIGD_SIM_MLX5_ENTRY_SIZE;
	e = migd_sim_mlx5_image_entry(self, c * MIGD_SIM_MLX5_ENTRIES_PER_CHUNK + idx);
	if (eoff < MIGD_SIM_MLX5_ENTRY_HDR_SIZE) {
		guint8 h[MIGD_SIM_MLX5_ENTRY_HDR_SIZE];
		migd_sim_put_le64(h, e.page);
		migd_sim_put_le64(h + 8, e.key);
		return migd_sim_mlx5_copy_part(h, sizeof(h), eoff, buf, len);
	}
	plen = migd_sim_pages_page_len(self->state_size, e.page);
	eoff -= MIGD_SIM_MLX5_ENTRY_HDR_SIZE;
	len = MIN(len, plen - eoff);
	migd_sim_fill_bytes(e.key, eoff, buf, len);
	return len;
}

void
migd_sim_mlx5_image_read(MigdSimMlx5Image *self, guint64 off, guint8 *buf, gsize len)
{
	while (len > 0) {
		gsize n;

		if (self->size_record && off < MIGD_SIM_MLX5_SIZE_RECORD) {
			guint8 h[MIGD_SIM_MLX5_SIZE_RECORD];
			migd_sim_put_le64(h, 8);
			migd_sim_put_le32(h + 8, MIGD_SIM_MLX5_FLAG_OPTIONAL);
			migd_sim_put_le32(h + 12, MIGD_SIM_MLX5_TAG_STOP_COPY_SIZE);
			migd_sim_put_le64(h + 16, self->stop_copy_size);
			n = migd_sim_mlx5_copy_part(h, sizeof(h), off, buf, len);
		} else {
			guint64 rel = off - (self->size_record ? MIGD_SIM_MLX5_SIZE_RECORD : 0);
			guint64 c = MIN(rel / MIGD_SIM_MLX5_FULL_CHUNK, self->n_chunks - 1);
			n = migd_sim_mlx5_chunk_read(self, c, rel - c * MIGD_SIM_MLX5_FULL_CHUNK,
						     buf, len);
		}
		g_assert(n > 0);
		off += n;
		buf += n;
		len -= n;
	}
}

/* ---- resume ---- */

typedef enum {
	MLX5_LOAD_HEADER,
	MLX5_LOAD_SIZE,
	MLX5_LOAD_SKIP,
	MLX5_LOAD_CHUNK_HDR,
	MLX5_LOAD_ENTRY_HDR,
	MLX5_LOAD_PAGE,
} MigdSimMlx5LoadPhase;

typedef struct {
	guint64 page;
	guint64 key;
	gboolean intact; /* the bytes are the key's stream */
	guint64 hash;	 /* when not intact: what arrived */
} MigdSimMlx5Staged;

struct _MigdSimMlx5Loader {
	MigdSimPages *pages; /* not owned */
	MigdSimMlx5LoadPhase phase;
	guint8 hdr[MIGD_SIM_MLX5_CHUNK_HDR_SIZE];
	gsize hdr_fill;
	guint64 rec_left; /* bytes of the current record not yet consumed */
	guint32 rec_flags;
	guint64 state_size; /* of the image being loaded */
	guint32 n_entries;
	guint32 entries_done;
	guint64 check;
	guint64 want_check;
	guint64 cur_page;
	guint64 cur_key;
	gsize page_len;
	gsize page_fill;
	guint64 page_buf[MIGD_SIM_PAGE_SIZE / 8];
	GArray *staged; /* a record is loaded only once it is complete and checked */
};

MigdSimMlx5Loader *
migd_sim_mlx5_loader_new(MigdSimPages *pages)
{
	MigdSimMlx5Loader *self = g_new0(MigdSimMlx5Loader, 1);
	self->pages = pages;
	self->staged = g_array_new(FALSE, FALSE, sizeof(MigdSimMlx5Staged));
	return self;
}

void
migd_sim_mlx5_loader_free(MigdSimMlx5Loader *self)
{
	if (self == NULL)
		return;
	g_array_unref(self->staged);
	g_free(self);
}

/* accumulates a header of @want bytes; returns bytes consumed */
static gsize
migd_sim_mlx5_loader_fill(MigdSimMlx5Loader *self, gsize want, const guint8 *buf, gsize len)
{
	gsize n = MIN(len, want - self->hdr_fill);
	memcpy(self->hdr + self->hdr_fill, buf, n);
	self->hdr_fill += n;
	return n;
}

/* the firmware's LOAD of one complete record */
static gint
migd_sim_mlx5_loader_commit(MigdSimMlx5Loader *self)
{
	if (self->rec_left != 0 || self->check != self->want_check) {
		g_array_set_size(self->staged, 0);
		return EIO;
	}
	/* a VF takes the state it is given: the source's size becomes ours */
	if (self->pages->size != self->state_size)
		migd_sim_pages_resize(self->pages, self->state_size);
	for (guint i = 0; i < self->staged->len; i++) {
		MigdSimMlx5Staged *s = &g_array_index(self->staged, MigdSimMlx5Staged, i);
		migd_sim_pages_load(self->pages, s->page, s->key, s->intact, s->hash);
	}
	g_array_set_size(self->staged, 0);
	self->phase = MLX5_LOAD_HEADER;
	return 0;
}

static gint
migd_sim_mlx5_loader_record_header(MigdSimMlx5Loader *self)
{
	guint64 size = migd_sim_get_le64(self->hdr);
	guint32 flags = migd_sim_get_le32(self->hdr + 8);
	guint32 tag = migd_sim_get_le32(self->hdr + 12);

	/* mlx5vf_resume_read_header(): the LOAD command's size is 32 bits */
	if (size > MIGD_SIM_MLX5_MAX_LOAD_SIZE)
		return ENOMEM;
	self->rec_left = size;
	self->rec_flags = flags;
	switch (tag) {
	case MIGD_SIM_MLX5_TAG_STOP_COPY_SIZE:
		if (size != 8)
			return EINVAL;
		self->phase = MLX5_LOAD_SIZE;
		return 0;
	case MIGD_SIM_MLX5_TAG_FW_DATA:
		if (size < MIGD_SIM_MLX5_CHUNK_HDR_SIZE)
			return EIO;
		self->phase = MLX5_LOAD_CHUNK_HDR;
		return 0;
	default:
		/* unknown tags: skipped when optional, refused when mandatory */
		if ((flags & MIGD_SIM_MLX5_FLAG_OPTIONAL) == 0)
			return EOPNOTSUPP;
		self->phase = size > 0 ? MLX5_LOAD_SKIP : MLX5_LOAD_HEADER;
		return 0;
	}
}

static gint
migd_sim_mlx5_loader_chunk_header(MigdSimMlx5Loader *self)
{
	guint32 flags;

	if (migd_sim_get_le64(self->hdr) != MIGD_SIM_MLX5_CHUNK_MAGIC)
		return EIO;
	self->n_entries = migd_sim_get_le32(self->hdr + 8);
	flags = migd_sim_get_le32(self->hdr + 12);
	self->state_size = migd_sim_get_le64(self->hdr + 24);
	self->want_check = migd_sim_get_le64(self->hdr + 32);
	/* the image defines the device's state size; a wild one is a corrupt image */
	if (self->state_size == 0 || self->state_size > MIGD_SIM_MLX5_MAX_STATE_SIZE)
		return EIO;
	self->check = migd_sim_mlx5_check_begin(migd_sim_get_le64(self->hdr + 16), self->n_entries,
						flags, self->rec_flags, self->state_size);
	self->entries_done = 0;
	self->rec_left -= MIGD_SIM_MLX5_CHUNK_HDR_SIZE;
	if (self->n_entries == 0)
		return migd_sim_mlx5_loader_commit(self);
	self->phase = MLX5_LOAD_ENTRY_HDR;
	return 0;
}

static gint
migd_sim_mlx5_loader_entry_header(MigdSimMlx5Loader *self)
{
	self->cur_page = migd_sim_get_le64(self->hdr);
	self->cur_key = migd_sim_get_le64(self->hdr + 8);
	self->rec_left -= MIGD_SIM_MLX5_ENTRY_HDR_SIZE;
	self->page_len = migd_sim_pages_page_len(self->state_size, self->cur_page);
	if (self->page_len == 0)
		return EIO;
	if (self->rec_left < self->page_len)
		return EIO;
	self->page_fill = 0;
	self->phase = MLX5_LOAD_PAGE;
	return 0;
}

static gint
migd_sim_mlx5_loader_page_done(MigdSimMlx5Loader *self, const void *content)
{
	MigdSimMlx5Staged s = {.page = self->cur_page, .key = self->cur_key};
	guint64 expected[MIGD_SIM_PAGE_SIZE / 8];

	/* checked against the key's stream now, so that only a page that differs is
	 * remembered: a destination of GiBs holds no hash per page */
	migd_sim_fill_bytes(s.key, 0, expected, self->page_len);
	s.intact = memcmp(content, expected, self->page_len) == 0;
	if (!s.intact)
		s.hash = migd_sim_pages_content_hash(content, self->page_len);
	g_array_append_val(self->staged, s);
	self->check = migd_sim_mlx5_check_add(self->check, s.page, s.key);
	self->rec_left -= self->page_len;
	if (++self->entries_done == self->n_entries)
		return migd_sim_mlx5_loader_commit(self);
	self->phase = MLX5_LOAD_ENTRY_HDR;
	return 0;
}

gint
migd_sim_mlx5_loader_write(MigdSimMlx5Loader *self, const guint8 *buf, gsize len)
{
	while (len > 0) {
		gsize n = 0;
		gint err = 0;

		switch (self->phase) {
		case MLX5_LOAD_HEADER:
		case MLX5_LOAD_SIZE:
		case MLX5_LOAD_CHUNK_HDR:
		case MLX5_LOAD_ENTRY_HDR: {
			static const gsize want[] = {
			    [MLX5_LOAD_HEADER] = MIGD_SIM_MLX5_HDR_SIZE,
			    [MLX5_LOAD_SIZE] = 8,
			    [MLX5_LOAD_CHUNK_HDR] = MIGD_SIM_MLX5_CHUNK_HDR_SIZE,
			    [MLX5_LOAD_ENTRY_HDR] = MIGD_SIM_MLX5_ENTRY_HDR_SIZE,
			};
			/* an entry header that does not fit the record */
			if (self->phase == MLX5_LOAD_ENTRY_HDR &&
			    self->rec_left < MIGD_SIM_MLX5_ENTRY_HDR_SIZE)
				return EIO;
			n = migd_sim_mlx5_loader_fill(self, want[self->phase], buf, len);
			if (self->hdr_fill < want[self->phase])
				break;
			self->hdr_fill = 0;
			if (self->phase == MLX5_LOAD_HEADER)
				err = migd_sim_mlx5_loader_record_header(self);
			else if (self->phase == MLX5_LOAD_SIZE)
				self->phase = MLX5_LOAD_HEADER; /* a hint: nothing to load */
			else if (self->phase == MLX5_LOAD_CHUNK_HDR)
				err = migd_sim_mlx5_loader_chunk_header(self);
			else
				err = migd_sim_mlx5_loader_entry_header(self);
			break;
		}
		case MLX5_LOAD_SKIP:
			n = (gsize)MIN((guint64)len, self->rec_left);
			self->rec_left -= n;
			if (self->rec_left == 0)
				self->phase = MLX5_LOAD_HEADER;
			break;
		case MLX5_LOAD_PAGE:
			/* a whole page in the caller's buffer: hash it in place */
			if (self->page_fill == 0 && len >= self->page_len) {
				n = self->page_len;
				err = migd_sim_mlx5_loader_page_done(self, buf);
				break;
			}
			n = MIN(len, self->page_len - self->page_fill);
			memcpy((guint8 *)self->page_buf + self->page_fill, buf, n);
			self->page_fill += n;
			if (self->page_fill == self->page_len)
				err = migd_sim_mlx5_loader_page_done(self, self->page_buf);
			break;
		default:
			return EIO;
		}
		if (err != 0)
			return err;
		buf += n;
		len -= n;
	}
	return 0;
}
