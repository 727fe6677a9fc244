/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The paged device state behind the mlx5 profile (a device image of GiBs).
 */
#include "config.h"

#include "migd-sim-pages.h"
#include "migd-sim-prng.h"

#define BIT_WORD(n) ((n) / 64)
#define BIT_MASK(n) (1ull << ((n) % 64))

MigdSimPages *
migd_sim_pages_new(guint64 size, guint64 seed)
{
	MigdSimPages *self = g_new0(MigdSimPages, 1);
	guint64 words;

	self->size = size;
	self->n_pages = (size + MIGD_SIM_PAGE_SIZE - 1) / MIGD_SIM_PAGE_SIZE;
	words = (self->n_pages + 63) / 64;
	/* zeroed, so untouched by the allocator: resident once a digest hashes */
	self->hashes = g_new0(guint64, self->n_pages);
	self->hash_valid = g_new0(guint64, words);
	self->dirty = g_new0(guint64, words);
	self->seed = seed;
	self->rng = seed ^ 0x70616765735f7267ull;
	return self;
}

guint64
migd_sim_pages_seeded_key(guint64 seed, guint64 page)
{
	return migd_sim_mix64(seed ^ migd_sim_mix64(page));
}

/* the seed whose seeded key of @page is @key: splitmix64's finaliser undone */
static guint64
migd_sim_pages_key_seed(guint64 key, guint64 page)
{
	guint64 z = key;

	z ^= (z >> 31) ^ (z >> 62);
	z *= 0x319642b2d24d8ec3ull; /* the inverse of 0x94d049bb133111eb mod 2^64 */
	z ^= (z >> 27) ^ (z >> 54);
	z *= 0x96de1b173f119089ull; /* the inverse of 0xbf58476d1ce4e5b9 */
	z ^= (z >> 30) ^ (z >> 60);
	z -= MIGD_SIM_GOLDEN;
	return z ^ migd_sim_mix64(page);
}

guint64
migd_sim_pages_key(const MigdSimPages *self, guint64 page)
{
	if (self->keys != NULL)
		return self->keys[page];
	if (self->foreign != NULL && (self->foreign[BIT_WORD(page)] & BIT_MASK(page)) != 0)
		return migd_sim_pages_seeded_key(self->foreign_seed, page);
	return migd_sim_pages_seeded_key(self->seed, page);
}

gboolean
migd_sim_pages_seeded(const MigdSimPages *self)
{
	return self->keys == NULL && self->foreign == NULL;
}

/* every key held from now on: a page is about to get a key of its own */
static void
migd_sim_pages_hold_keys(MigdSimPages *self)
{
	guint64 *keys;

	if (self->keys != NULL)
		return;
	keys = g_new(guint64, self->n_pages);
	for (guint64 p = 0; p < self->n_pages; p++)
		keys[p] = migd_sim_pages_key(self, p);
	self->keys = keys;
	g_clear_pointer(&self->foreign, g_free);
	self->n_foreign = 0;
}

/* @key for @page without holding keys if it is a seeded one of ours or of the one foreign
 * seed; FALSE when the keys must be held */
static gboolean
migd_sim_pages_set_seeded(MigdSimPages *self, guint64 page, guint64 key)
{
	guint64 seed = migd_sim_pages_key_seed(key, page);
	gboolean was =
	    self->foreign != NULL && (self->foreign[BIT_WORD(page)] & BIT_MASK(page)) != 0;

	if (seed == self->seed) {
		if (was) {
			self->foreign[BIT_WORD(page)] &= ~BIT_MASK(page);
			self->n_foreign--;
		}
		return TRUE;
	}
	if (self->foreign == NULL) {
		self->foreign = g_new0(guint64, (self->n_pages + 63) / 64);
		self->foreign_seed = seed;
	} else if (seed != self->foreign_seed) {
		return FALSE;
	}
	if (!was) {
		self->foreign[BIT_WORD(page)] |= BIT_MASK(page);
		self->n_foreign++;
	}
	/* every page is the other device's now: its seed is ours, as if we had been it */
	if (self->n_foreign == self->n_pages) {
		self->seed = self->foreign_seed;
		g_clear_pointer(&self->foreign, g_free);
		self->n_foreign = 0;
	}
	return TRUE;
}

void
migd_sim_pages_free(MigdSimPages *self)
{
	if (self == NULL)
		return;
	g_free(self->keys);
	g_free(self->foreign);
	if (self->bad != NULL)
		g_hash_table_unref(self->bad);
	g_free(self->hashes);
	g_free(self->hash_valid);
	g_free(self->dirty);
	g_free(self);
}

gsize
migd_sim_pages_page_len(guint64 state_size, guint64 page)
{
	guint64 off = page * MIGD_SIM_PAGE_SIZE;

	if (off >= state_size)
		return 0;
	return (gsize)MIN((guint64)MIGD_SIM_PAGE_SIZE, state_size - off);
}

void
migd_sim_pages_touch(MigdSimPages *self, guint64 n)
{
	if (n > 0)
		migd_sim_pages_hold_keys(self);
	for (guint64 i = 0; i < n; i++) {
		guint64 p = migd_sim_prng_next(&self->rng) % self->n_pages;

		self->keys[p] = migd_sim_mix64(self->keys[p] ^ ++self->generation);
		self->hash_valid[BIT_WORD(p)] &= ~BIT_MASK(p);
		/* the page's bytes are its new key's stream, whatever arrived before */
		if (self->bad != NULL)
			g_hash_table_remove(self->bad, &p);
		if ((self->dirty[BIT_WORD(p)] & BIT_MASK(p)) == 0) {
			self->dirty[BIT_WORD(p)] |= BIT_MASK(p);
			self->n_dirty++;
		}
	}
}

void
migd_sim_pages_resize(MigdSimPages *self, guint64 size)
{
	guint64 old_pages = self->n_pages;
	guint64 keep;
	guint64 words;
	guint64 *valid;

	/* the foreign bitmap is sized for the old pages: a rare case, the keys are held */
	if (self->foreign != NULL)
		migd_sim_pages_hold_keys(self);
	self->size = size;
	self->n_pages = (size + MIGD_SIM_PAGE_SIZE - 1) / MIGD_SIM_PAGE_SIZE;
	words = (self->n_pages + 63) / 64;
	/* loaded hashes stay, except where the last page's length may have changed */
	keep = MIN(old_pages, self->n_pages);
	keep = keep > 0 ? keep - 1 : 0;
	if (self->bad != NULL) {
		GHashTableIter iter;
		gpointer page;

		g_hash_table_iter_init(&iter, self->bad);
		while (g_hash_table_iter_next(&iter, &page, NULL)) {
			if (*(guint64 *)page >= keep)
				g_hash_table_iter_remove(&iter);
		}
	}
	if (self->keys != NULL)
		self->keys = g_renew(guint64, self->keys, self->n_pages);
	self->hashes = g_renew(guint64, self->hashes, self->n_pages);
	valid = g_new0(guint64, words);
	for (guint64 p = 0; p < keep; p++)
		valid[BIT_WORD(p)] |= self->hash_valid[BIT_WORD(p)] & BIT_MASK(p);
	g_free(self->hash_valid);
	self->hash_valid = valid;
	g_free(self->dirty);
	self->dirty = g_new0(guint64, words);
	self->n_dirty = 0;
	for (guint64 p = old_pages; self->keys != NULL && p < self->n_pages; p++)
		self->keys[p] = migd_sim_pages_seeded_key(self->seed, p);
}

void
migd_sim_pages_clear_dirty(MigdSimPages *self)
{
	memset(self->dirty, 0, ((self->n_pages + 63) / 64) * sizeof(guint64));
	self->n_dirty = 0;
}

GArray *
migd_sim_pages_snapshot(MigdSimPages *self, gboolean dirty_only)
{
	GArray *entries = g_array_sized_new(FALSE, FALSE, sizeof(MigdSimPageEntry),
					    (guint)(dirty_only ? self->n_dirty : self->n_pages));

	for (guint64 p = 0; p < self->n_pages; p++) {
		MigdSimPageEntry e;

		if (dirty_only) {
			/* skip 64 clean pages at a time */
			if (p % 64 == 0 && self->dirty[BIT_WORD(p)] == 0) {
				p += 63;
				continue;
			}
			if ((self->dirty[BIT_WORD(p)] & BIT_MASK(p)) == 0)
				continue;
		}
		e = (MigdSimPageEntry){.page = p, .key = migd_sim_pages_key(self, p)};
		g_array_append_val(entries, e);
	}
	migd_sim_pages_clear_dirty(self);
	return entries;
}

gboolean
migd_sim_pages_load(MigdSimPages *self, guint64 page, guint64 key, gboolean intact,
		    guint64 content_hash)
{
	if (page >= self->n_pages)
		return FALSE;
	if (self->keys != NULL || !migd_sim_pages_set_seeded(self, page, key)) {
		migd_sim_pages_hold_keys(self);
		self->keys[page] = key;
	}
	if (intact) {
		if (self->bad != NULL)
			g_hash_table_remove(self->bad, &page);
	} else {
		if (self->bad == NULL)
			self->bad =
			    g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
		g_hash_table_insert(self->bad, g_memdup2(&page, sizeof(page)),
				    g_memdup2(&content_hash, sizeof(content_hash)));
	}
	/* hashed again from its key (or bad) when a digest asks */
	self->hash_valid[BIT_WORD(page)] &= ~BIT_MASK(page);
	return TRUE;
}

guint64
migd_sim_pages_content_hash(const void *content, gsize len)
{
	return migd_sim_hash(content, len, 0x636f6e74656e74ull);
}

/* a source page's content is its key's stream: hash it once, then cache */
static void
migd_sim_pages_hash_page(MigdSimPages *self, guint64 p)
{
	guint64 scratch[MIGD_SIM_PAGE_SIZE / 8];
	gsize len;

	if ((self->hash_valid[BIT_WORD(p)] & BIT_MASK(p)) != 0)
		return;
	len = migd_sim_pages_page_len(self->size, p);
	if (self->bad != NULL && g_hash_table_contains(self->bad, &p)) {
		self->hashes[p] = *(const guint64 *)g_hash_table_lookup(self->bad, &p);
	} else {
		migd_sim_fill_bytes(migd_sim_pages_key(self, p), 0, scratch, len);
		self->hashes[p] = migd_sim_pages_content_hash(scratch, len);
	}
	self->hash_valid[BIT_WORD(p)] |= BIT_MASK(p);
}

gboolean
migd_sim_pages_digest_step(MigdSimPages *self, guint64 *cursor, guint64 max_pages)
{
	guint64 end = *cursor + MIN(max_pages, self->n_pages);

	for (; *cursor < self->n_pages && *cursor < end; (*cursor)++)
		migd_sim_pages_hash_page(self, *cursor);
	return *cursor >= self->n_pages;
}

guint64
migd_sim_pages_digest(MigdSimPages *self)
{
	guint64 digest = migd_sim_mix64(self->size);

	for (guint64 p = 0; p < self->n_pages; p++) {
		migd_sim_pages_hash_page(self, p);
		digest = migd_sim_mix64(digest ^ migd_sim_pages_key(self, p));
		digest = migd_sim_mix64(digest ^ self->hashes[p]);
	}
	return digest;
}
