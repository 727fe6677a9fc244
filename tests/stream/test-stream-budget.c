/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdStreamBudget: the daemon's one bound on state in flight. Fair shares,
 * the first chunk of a stream that holds nothing, the two halves, waking, and
 * no deadlock with every stream holding its chunk and wanting more.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-stream-budget.h"

#define KiB ((guint64)1024)
#define MiB (1024 * KiB)

/* a stream holding some takes only up to its fair share: half / streams */
static void
test_fair_share(void **state)
{
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(8 * MiB);
	MigdStreamBudgetMember *m[4];
	guint64 total = 0;

	for (guint i = 0; i < 4; i++)
		m[i] = migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_SEND, NULL, NULL);
	assert_int_equal(migd_stream_budget_get_n_members(budget, MIGD_STREAM_BUDGET_SEND), 4);
	/* the greedy one stops at 4 MiB / 4 */
	while (migd_stream_budget_try_take(m[0], 256 * KiB))
		;
	assert_int_equal(migd_stream_budget_member_get_held(m[0]), 1 * MiB);
	/* a partial grant stops at the share too */
	assert_int_equal(migd_stream_budget_take(m[1], 3 * MiB, 64 * KiB), 1 * MiB);
	/* so everybody still gets theirs */
	for (guint i = 2; i < 4; i++) {
		while (migd_stream_budget_try_take(m[i], 128 * KiB))
			;
		assert_int_equal(migd_stream_budget_member_get_held(m[i]), 1 * MiB);
	}
	for (guint i = 0; i < 4; i++)
		total += migd_stream_budget_member_get_held(m[i]);
	assert_int_equal(total, 4 * MiB);
	assert_int_equal(migd_stream_budget_get_used(budget), 4 * MiB);
	/* one leaves: the others' shares grow to a third of the half */
	migd_stream_budget_leave(m[3]);
	assert_true(migd_stream_budget_try_take(m[0], 256 * KiB));
	assert_false(migd_stream_budget_try_take(m[0], 256 * KiB));
	assert_true(migd_stream_budget_get_peak(budget) <= 4 * MiB);
	for (guint i = 0; i < 3; i++)
		migd_stream_budget_leave(m[i]);
	assert_int_equal(migd_stream_budget_get_used(budget), 0);
}

/*
 * A stream holding nothing takes its one chunk as soon as the bytes are free,
 * even above its share; an empty half takes any chunk at all.
 */
static void
test_first_chunk(void **state)
{
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(16 * MiB);
	MigdStreamBudgetMember *m[8];

	for (guint i = 0; i < 8; i++)
		m[i] = migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_RECEIVE, NULL, NULL);
	/* share 1 MiB; the largest chunk the wire allows, into an empty half */
	assert_true(migd_stream_budget_try_take(m[0], 8 * MiB));
	/* the half is full now: nothing for anybody */
	assert_false(migd_stream_budget_try_take(m[1], 64 * KiB));
	migd_stream_budget_give(m[0], 8 * MiB);
	/* 3 MiB chunks: above the 1 MiB share, one each while there is room */
	assert_true(migd_stream_budget_try_take(m[1], 3 * MiB));
	assert_true(migd_stream_budget_try_take(m[2], 3 * MiB));
	assert_false(migd_stream_budget_try_take(m[3], 3 * MiB)); /* 6 of 8 MiB used */
	assert_true(migd_stream_budget_try_take(m[3], 2 * MiB));
	/* a holder above its share gets nothing more, however small */
	migd_stream_budget_give(m[2], 3 * MiB);
	assert_false(migd_stream_budget_try_take(m[1], 4 * KiB));
	assert_true(migd_stream_budget_get_peak(budget) <= 8 * MiB);
	for (guint i = 0; i < 8; i++)
		migd_stream_budget_leave(m[i]);
}

/* the halves do not share: a full send half leaves the receive half alone */
static void
test_halves(void **state)
{
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(8 * MiB);
	MigdStreamBudgetMember *send =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_SEND, NULL, NULL);
	MigdStreamBudgetMember *recv =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_RECEIVE, NULL, NULL);

	assert_int_equal(migd_stream_budget_take(send, 4 * MiB, 4 * MiB), 4 * MiB);
	assert_false(migd_stream_budget_try_take(send, 1));
	assert_true(migd_stream_budget_try_take(recv, 4 * MiB));
	assert_int_equal(migd_stream_budget_get_peak(budget), 8 * MiB);
	assert_int_equal(migd_stream_budget_get_peak_side(budget, MIGD_STREAM_BUDGET_SEND),
			 4 * MiB);
	/* leaving gives everything back */
	migd_stream_budget_leave(send);
	migd_stream_budget_leave(recv);
	assert_int_equal(migd_stream_budget_get_used(budget), 0);
}

static void
count_wake(gpointer member, gpointer user_data)
{
	g_atomic_int_inc((gint *)user_data);
}

/* a refused try_take is followed by a wake once bytes of its half come back */
static void
test_wake(void **state)
{
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(2 * MiB);
	gint wakes = 0;
	MigdStreamBudgetMember *a =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_RECEIVE, count_wake, &wakes);
	MigdStreamBudgetMember *b =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_RECEIVE, count_wake, &wakes);
	MigdStreamBudgetMember *other =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_SEND, NULL, NULL);

	assert_true(migd_stream_budget_try_take(a, 1 * MiB));
	assert_false(migd_stream_budget_try_take(b, 512 * KiB));
	/* the other half's bytes do not wake it */
	assert_int_equal(migd_stream_budget_take(other, 64 * KiB, 64 * KiB), 64 * KiB);
	migd_stream_budget_give(other, 64 * KiB);
	assert_int_equal(g_atomic_int_get(&wakes), 0);
	migd_stream_budget_give(a, 512 * KiB);
	assert_int_equal(g_atomic_int_get(&wakes), 1);
	assert_true(migd_stream_budget_try_take(b, 512 * KiB));
	/* once per refusal */
	migd_stream_budget_give(a, 512 * KiB);
	assert_int_equal(g_atomic_int_get(&wakes), 1);
	migd_stream_budget_leave(a);
	migd_stream_budget_leave(b);
	migd_stream_budget_leave(other);
}

typedef struct {
	MigdStreamBudgetMember *member;
	guint64 chunk;
	guint64 max_held;
	GAsyncQueue *out; /* Grant, to the consumer */
} Streamer;

typedef struct {
	Streamer *streamer; /* NULL: the consumer stops */
	guint64 bytes;
} Grant;

#define STREAMER_ROUNDS 300

/*
 * A reader's worker: takes its next chunk (blocking) whatever it still holds,
 * and hands it on. It gives nothing back itself: the consumer does.
 */
static gpointer
streamer_thread(gpointer data)
{
	Streamer *s = data;

	for (guint i = 0; i < STREAMER_ROUNDS; i++) {
		Grant *g = g_new0(Grant, 1);

		g->streamer = s;
		g->bytes = migd_stream_budget_take(s->member, s->chunk, 4 * KiB);
		assert_true(g->bytes > 0);
		s->max_held = MAX(s->max_held, migd_stream_budget_member_get_held(s->member));
		g_async_queue_push(s->out, g);
	}
	return NULL;
}

/* the network (or a device): takes every stream's chunks in turn, never waits for the budget */
static gpointer
consumer_thread(gpointer data)
{
	GAsyncQueue *queue = data;
	g_autoptr(GRand) rand = g_rand_new_with_seed(7);

	for (;;) {
		g_autofree Grant *g = g_async_queue_pop(queue);

		if (g->streamer == NULL)
			return NULL;
		g_usleep(g_rand_int_range(rand, 0, 50));
		migd_stream_budget_give(g->streamer->member, g->bytes);
	}
}

/*
 * Every stream holds its chunk and wants more, the shares are below most
 * chunks, and both halves run at once: every wait ends, and the bound holds.
 */
static void
test_no_deadlock(void **state)
{
	const guint n = 24;
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(4 * MiB);
	g_autoptr(GAsyncQueue) queue = g_async_queue_new();
	g_autofree Streamer *s = g_new0(Streamer, n);
	g_autofree GThread **threads = g_new0(GThread *, n);
	GThread *consumer = g_thread_new("consumer", consumer_thread, queue);
	guint64 half = 2 * MiB;
	Grant *stop = g_new0(Grant, 1);

	for (guint i = 0; i < n; i++) {
		s[i].member = migd_stream_budget_join(
		    budget, i % 2 ? MIGD_STREAM_BUDGET_RECEIVE : MIGD_STREAM_BUDGET_SEND, NULL,
		    NULL);
		/* 12 streams a half: 170 KiB shares, chunks of 64 KiB .. 432 KiB */
		s[i].chunk = (64 + 16 * i) * KiB;
		s[i].out = queue;
	}
	for (guint i = 0; i < n; i++)
		threads[i] = g_thread_new("streamer", streamer_thread, &s[i]);
	for (guint i = 0; i < n; i++)
		g_thread_join(threads[i]);
	g_async_queue_push(queue, stop);
	g_thread_join(consumer);
	for (guint i = 0; i < n; i++) {
		/* its share, or its one chunk when that is larger, and a last 4 KiB grant */
		assert_true(s[i].max_held <= MAX(half / (n / 2), s[i].chunk) + 4 * KiB);
		assert_int_equal(migd_stream_budget_member_get_held(s[i].member), 0);
		migd_stream_budget_leave(s[i].member);
	}
	assert_true(migd_stream_budget_get_peak_side(budget, MIGD_STREAM_BUDGET_SEND) <= half);
	assert_true(migd_stream_budget_get_peak_side(budget, MIGD_STREAM_BUDGET_RECEIVE) <= half);
	assert_true(migd_stream_budget_get_peak(budget) <= 4 * MiB);
	assert_int_equal(migd_stream_budget_get_used(budget), 0);
}

static gpointer
blocked_take_thread(gpointer data)
{
	return GSIZE_TO_POINTER(migd_stream_budget_take(data, 1 * MiB, 1 * MiB));
}

/* cancel wakes a blocked take, which takes nothing */
static void
test_cancel(void **state)
{
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(2 * MiB);
	MigdStreamBudgetMember *a =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_SEND, NULL, NULL);
	MigdStreamBudgetMember *b =
	    migd_stream_budget_join(budget, MIGD_STREAM_BUDGET_SEND, NULL, NULL);
	GThread *thread;

	assert_int_equal(migd_stream_budget_take(a, 1 * MiB, 1 * MiB), 1 * MiB);
	thread = g_thread_new("blocked", blocked_take_thread, b);
	g_usleep(20000);
	migd_stream_budget_cancel(b);
	assert_int_equal(GPOINTER_TO_SIZE(g_thread_join(thread)), 0);
	assert_int_equal(migd_stream_budget_take(b, 4 * KiB, 4 * KiB), 0);
	migd_stream_budget_leave(a);
	migd_stream_budget_leave(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fair_share),	cmocka_unit_test(test_first_chunk),
	    cmocka_unit_test(test_halves),	cmocka_unit_test(test_wake),
	    cmocka_unit_test(test_no_deadlock), cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests_name("stream-budget", tests, NULL, NULL);
}
