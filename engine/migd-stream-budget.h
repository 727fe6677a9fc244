/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * One bound on the device state a daemon holds in flight, over all its streams
 * and jobs: the chunks its stream readers have read and the network has not
 * taken yet (source), and the chunks queued for its stream writers (destination).
 * Each window (MigdStreamWindow) still bounds its own stream; this bounds their sum.
 *
 * The rules, and why they cannot deadlock (docs/performance.md):
 *  - The budget is split in two halves: one for the streams the daemon sends
 *    (readers), one for those it receives (writers). A daemon that is the source
 *    of one migration and the destination of another can then never starve its
 *    incoming streams with outgoing ones, whose bytes are only given back once
 *    a peer's incoming streams took them.
 *  - Within a half, a stream that holds nothing may take one chunk as soon as
 *    that many bytes are free (a whole empty half takes any chunk, so a chunk
 *    larger than half the budget still moves, alone); a stream that holds some
 *    may take more only up to its fair share, the half divided by the streams
 *    of that half. So no stream can crowd out the others.
 *  - Nothing holding bytes of a half waits for bytes of the same half to give
 *    them back: a writer gives back after writing into its device, a reader
 *    after its connection took the chunk, which depends only on the peer's
 *    receiving half. The waits form no cycle, so every wait ends.
 *
 * Thread-safe; members are used by one stream each (any thread).
 */
typedef struct _MigdStreamBudget MigdStreamBudget;
typedef struct _MigdStreamBudgetMember MigdStreamBudgetMember;

/* [daemon] max-inflight= (vfio-migd.conf(5)) when not configured */
#define MIGD_STREAM_BUDGET_DEFAULT ((guint64)256 * 1024 * 1024)
/* the smallest: each half takes the largest chunk the wire allows (8 MiB) */
#define MIGD_STREAM_BUDGET_MIN ((guint64)16 * 1024 * 1024)
#define MIGD_STREAM_BUDGET_MAX ((guint64)64 * 1024 * 1024 * 1024)

typedef enum {
	MIGD_STREAM_BUDGET_SEND,    /* stream readers: device state read, not yet sent */
	MIGD_STREAM_BUDGET_RECEIVE, /* stream writers: device state received, not yet written */
} MigdStreamBudgetSide;

MigdStreamBudget *migd_stream_budget_new(guint64 max_bytes);
MigdStreamBudget *migd_stream_budget_ref(MigdStreamBudget *self);
void migd_stream_budget_unref(MigdStreamBudget *self);
/* bytes held now, and the most ever held at once, over both halves */
guint64 migd_stream_budget_get_used(MigdStreamBudget *self);
guint64 migd_stream_budget_get_peak(MigdStreamBudget *self);
/* the same for one half */
guint64 migd_stream_budget_get_peak_side(MigdStreamBudget *self, MigdStreamBudgetSide side);
/* streams of @side now */
guint migd_stream_budget_get_n_members(MigdStreamBudget *self, MigdStreamBudgetSide side);

/*
 * A stream joins @side. @wake (optional, any thread, no lock held) is called
 * after a refused try_take() once bytes of the half were given back.
 */
MigdStreamBudgetMember *migd_stream_budget_join(MigdStreamBudget *self, MigdStreamBudgetSide side,
						GFunc wake, gpointer wake_data);
/* gives back everything the stream holds and leaves; NULL-safe */
void migd_stream_budget_leave(MigdStreamBudgetMember *member);

/*
 * Blocks until it can take between @min and @want bytes (@min <= @want), and
 * takes as many as the rules allow up to @want. Returns the bytes taken, 0 once
 * the member was cancelled.
 */
guint64 migd_stream_budget_take(MigdStreamBudgetMember *member, guint64 want, guint64 min);
/* never blocks: all of @size or nothing (then @wake follows later) */
gboolean migd_stream_budget_try_take(MigdStreamBudgetMember *member, guint64 size);
void migd_stream_budget_give(MigdStreamBudgetMember *member, guint64 size);
/* bytes the member holds */
guint64 migd_stream_budget_member_get_held(MigdStreamBudgetMember *member);
/* take() returns 0 at once, now and from now on */
void migd_stream_budget_cancel(MigdStreamBudgetMember *member);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdStreamBudget, migd_stream_budget_unref)

G_END_DECLS
