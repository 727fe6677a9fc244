/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-stream-budget.h"

typedef struct {
	guint64 used;
	guint64 peak;
	GList *members; /* MigdStreamBudgetMember */
	guint n_members;
} MigdStreamBudgetHalf;

struct _MigdStreamBudget {
	gint refcount;
	guint64 max;
	GMutex lock;
	GCond cond; /* bytes were given back, or a member was cancelled */
	MigdStreamBudgetHalf half[2];
	guint64 peak; /* of both halves together */
};

struct _MigdStreamBudgetMember {
	MigdStreamBudget *budget;
	MigdStreamBudgetSide side;
	guint64 held;
	gboolean cancelled;
	gboolean want_wake; /* a try_take() was refused */
	guint waking;	    /* calls of @wake running: leave() waits for them */
	GFunc wake;
	gpointer wake_data;
};

MigdStreamBudget *
migd_stream_budget_new(guint64 max_bytes)
{
	MigdStreamBudget *self = g_new0(MigdStreamBudget, 1);

	g_return_val_if_fail(max_bytes >= 2, NULL);
	self->refcount = 1;
	self->max = max_bytes;
	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	return self;
}

MigdStreamBudget *
migd_stream_budget_ref(MigdStreamBudget *self)
{
	g_atomic_int_inc(&self->refcount);
	return self;
}

void
migd_stream_budget_unref(MigdStreamBudget *self)
{
	if (self == NULL || !g_atomic_int_dec_and_test(&self->refcount))
		return;
	g_warn_if_fail(self->half[0].members == NULL && self->half[1].members == NULL);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
	g_free(self);
}

guint64
migd_stream_budget_get_used(MigdStreamBudget *self)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	return self->half[0].used + self->half[1].used;
}

guint64
migd_stream_budget_get_peak(MigdStreamBudget *self)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	return self->peak;
}

guint64
migd_stream_budget_get_peak_side(MigdStreamBudget *self, MigdStreamBudgetSide side)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	return self->half[side].peak;
}

guint
migd_stream_budget_get_n_members(MigdStreamBudget *self, MigdStreamBudgetSide side)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	return self->half[side].n_members;
}

/* the bytes of one half: the first half gets the odd byte */
static guint64
migd_stream_budget_half_max(MigdStreamBudget *self, MigdStreamBudgetSide side)
{
	return side == MIGD_STREAM_BUDGET_SEND ? self->max - self->max / 2 : self->max / 2;
}

/*
 * Under the lock: how many of @want bytes @member may take now, at least @min,
 * else 0 (see the rules in the header).
 */
static guint64
migd_stream_budget_grant(MigdStreamBudgetMember *member, guint64 want, guint64 min)
{
	MigdStreamBudget *self = member->budget;
	MigdStreamBudgetHalf *half = &self->half[member->side];
	guint64 max = migd_stream_budget_half_max(self, member->side);
	guint64 share = max / MAX(half->n_members, 1);
	guint64 free_bytes = max > half->used ? max - half->used : 0;
	guint64 grant;

	/* an empty half takes any chunk: the largest must move, even alone */
	if (half->used == 0)
		return want;
	if (member->held == 0) {
		/* its one chunk, as soon as that many bytes are free */
		grant = MIN(want, MAX(share, min));
	} else {
		/* more only up to its fair share */
		if (member->held >= share)
			return 0;
		grant = MIN(want, share - member->held);
	}
	grant = MIN(grant, free_bytes);
	return grant >= min ? grant : 0;
}

/* under the lock */
static void
migd_stream_budget_add(MigdStreamBudgetMember *member, guint64 size)
{
	MigdStreamBudget *self = member->budget;
	MigdStreamBudgetHalf *half = &self->half[member->side];

	member->held += size;
	half->used += size;
	half->peak = MAX(half->peak, half->used);
	self->peak = MAX(self->peak, self->half[0].used + self->half[1].used);
}

MigdStreamBudgetMember *
migd_stream_budget_join(MigdStreamBudget *self, MigdStreamBudgetSide side, GFunc wake,
			gpointer wake_data)
{
	MigdStreamBudgetMember *member = g_new0(MigdStreamBudgetMember, 1);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	member->budget = migd_stream_budget_ref(self);
	member->side = side;
	member->wake = wake;
	member->wake_data = wake_data;
	self->half[side].members = g_list_prepend(self->half[side].members, member);
	self->half[side].n_members++;
	return member;
}

/*
 * Gives @size back; the members whose try_take() was refused are returned in
 * @wake, to be called once the lock is dropped. Under the lock.
 */
static void
migd_stream_budget_give_locked(MigdStreamBudgetMember *member, guint64 size, GPtrArray *wake)
{
	MigdStreamBudget *self = member->budget;
	MigdStreamBudgetHalf *half = &self->half[member->side];

	g_return_if_fail(size <= member->held);
	member->held -= size;
	half->used -= size;
	g_cond_broadcast(&self->cond);
	for (GList *l = half->members; l != NULL; l = l->next) {
		MigdStreamBudgetMember *m = l->data;
		if (!m->want_wake || m->wake == NULL)
			continue;
		m->want_wake = FALSE;
		m->waking++;
		g_ptr_array_add(wake, m);
	}
}

/* the wakes collected under the lock, called without it (they take their streams' locks) */
static void
migd_stream_budget_run_wakes(MigdStreamBudget *self, GPtrArray *wake)
{
	for (guint i = 0; i < wake->len; i++) {
		MigdStreamBudgetMember *m = g_ptr_array_index(wake, i);
		m->wake(m, m->wake_data);
	}
	if (wake->len == 0)
		return;
	g_mutex_lock(&self->lock);
	for (guint i = 0; i < wake->len; i++) {
		MigdStreamBudgetMember *m = g_ptr_array_index(wake, i);
		m->waking--;
	}
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
}

void
migd_stream_budget_leave(MigdStreamBudgetMember *member)
{
	MigdStreamBudget *self;
	g_autoptr(GPtrArray) wake = NULL;

	if (member == NULL)
		return;
	self = member->budget;
	wake = g_ptr_array_new();
	g_mutex_lock(&self->lock);
	member->want_wake = FALSE;
	self->half[member->side].members = g_list_remove(self->half[member->side].members, member);
	self->half[member->side].n_members--;
	/* fewer members: a larger share for the rest, so wake them even with nothing held */
	migd_stream_budget_give_locked(member, member->held, wake);
	/* another thread may be calling our wake: its owner must outlive that */
	while (member->waking > 0)
		g_cond_wait(&self->cond, &self->lock);
	g_mutex_unlock(&self->lock);
	migd_stream_budget_run_wakes(self, wake);
	migd_stream_budget_unref(self);
	g_free(member);
}

guint64
migd_stream_budget_take(MigdStreamBudgetMember *member, guint64 want, guint64 min)
{
	MigdStreamBudget *self = member->budget;
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	guint64 grant = 0;

	g_return_val_if_fail(min > 0 && min <= want, 0);
	while (!member->cancelled && (grant = migd_stream_budget_grant(member, want, min)) == 0)
		g_cond_wait(&self->cond, &self->lock);
	if (member->cancelled)
		return 0;
	migd_stream_budget_add(member, grant);
	return grant;
}

gboolean
migd_stream_budget_try_take(MigdStreamBudgetMember *member, guint64 size)
{
	MigdStreamBudget *self = member->budget;
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (size == 0)
		return TRUE;
	if (migd_stream_budget_grant(member, size, size) != size) {
		member->want_wake = TRUE;
		return FALSE;
	}
	migd_stream_budget_add(member, size);
	return TRUE;
}

void
migd_stream_budget_give(MigdStreamBudgetMember *member, guint64 size)
{
	g_autoptr(GPtrArray) wake = g_ptr_array_new();

	if (size == 0)
		return;
	g_mutex_lock(&member->budget->lock);
	migd_stream_budget_give_locked(member, size, wake);
	g_mutex_unlock(&member->budget->lock);
	migd_stream_budget_run_wakes(member->budget, wake);
}

guint64
migd_stream_budget_member_get_held(MigdStreamBudgetMember *member)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&member->budget->lock);
	return member->held;
}

void
migd_stream_budget_cancel(MigdStreamBudgetMember *member)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&member->budget->lock);

	member->cancelled = TRUE;
	g_cond_broadcast(&member->budget->cond);
}
