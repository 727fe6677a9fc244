/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MIGD_SIM_PAGE_SIZE 4096u

/*
 * A device state of up to GiBs without holding it: page p's content is the
 * seeded stream of its key (migd_sim_fill_bytes). Until a page is touched every
 * key is a seeded one (migd_sim_pages_seeded_key) and no key is held (keys is
 * NULL): the device's own seed's, or, for a page loaded from a device that was
 * itself untouched, that device's seed's (one bit a page says which). A
 * destination checks each page it loads against its key's stream and remembers
 * only the pages whose bytes differ (bad: page -> content hash). So an untouched
 * source, and a destination loaded from one, hold bitmaps of one bit a page; a
 * touch holds every key (keys[p], 8 bytes a page). hashes is the digest's cache,
 * filled only when a digest is asked for.
 */
typedef struct {
	guint64 size;
	guint64 n_pages;
	guint64 *keys;	      /* NULL: every page has a seeded key */
	guint64 foreign_seed; /* keys NULL: the seed of the pages set in foreign */
	guint64 *foreign;     /* bitmap, NULL for none: loaded with foreign_seed's keys */
	guint64 n_foreign;    /* bits set in foreign */
	GHashTable *bad;      /* page -> content hash: loaded with other bytes than its key's */
	guint64 *hashes; /* the digest's cache of content hashes, valid where hash_valid is set */
	guint64 *hash_valid; /* bitmap */
	guint64 *dirty;	     /* bitmap: changed since the last snapshot */
	guint64 n_dirty;
	guint64 seed;
	guint64 rng;
	guint64 generation; /* bumped on each touch, so keys never repeat */
} MigdSimPages;

typedef struct {
	guint64 page;
	guint64 key;
} MigdSimPageEntry;

MigdSimPages *migd_sim_pages_new(guint64 size, guint64 seed);
void migd_sim_pages_free(MigdSimPages *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdSimPages, migd_sim_pages_free)

/* the key of page @page of a device seeded @seed that nothing touched or loaded */
guint64 migd_sim_pages_seeded_key(guint64 seed, guint64 page);
/* the key of page @page */
guint64 migd_sim_pages_key(const MigdSimPages *self, guint64 page);
/* TRUE while every page has the device's own seeded key: a full snapshot is then
 * (seed, n_pages) */
gboolean migd_sim_pages_seeded(const MigdSimPages *self);
/* bytes in page @page (the last one may be short) */
gsize migd_sim_pages_page_len(guint64 state_size, guint64 page);
/* the guest changed @n random pages: new keys, marked dirty */
void migd_sim_pages_touch(MigdSimPages *self, guint64 n);
void migd_sim_pages_clear_dirty(MigdSimPages *self);
/* a loaded image of another size: new pages get seeded content, dirty bits clear */
void migd_sim_pages_resize(MigdSimPages *self, guint64 size);
/* (page, key) of every page, or of the dirty ones; clears the dirty bits taken */
GArray *migd_sim_pages_snapshot(MigdSimPages *self, gboolean dirty_only);
/* a destination loaded @page with @key: its bytes were @key's stream (@intact) or hashed to
 * @content_hash; FALSE when @page is out of range */
gboolean migd_sim_pages_load(MigdSimPages *self, guint64 page, guint64 key, gboolean intact,
			     guint64 content_hash);
/* hash of @len bytes of page content */
guint64 migd_sim_pages_content_hash(const void *content, gsize len);
guint64 migd_sim_pages_digest(MigdSimPages *self);
/* hashes up to @max_pages pages ahead of a digest from *@cursor on; TRUE when all are */
gboolean migd_sim_pages_digest_step(MigdSimPages *self, guint64 *cursor, guint64 max_pages);

G_END_DECLS
