/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libvirt's event loop on a GMainContext. Each libvirt handle or timer is one
 * custom GSource for its whole life: a handle's fd is added to or removed from
 * it as libvirt changes the events it wants, and a timer is its ready time.
 * Nothing is re-created on update, so there is no window in which a source is
 * destroyed in one thread while another dispatches it.
 */
#include "config.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "migd-error.h"
#include "migd-libvirt-loop.h"

typedef struct {
	gint id;
	gboolean is_timer;
	gboolean removed; /* libvirt removed it; the free idle is queued */
	GSource *source;  /* our reference, dropped by the free idle */
	void *opaque;
	virFreeCallback ff;
	/* handle */
	gint fd;
	gint events;  /* VIR_EVENT_HANDLE_* libvirt wants */
	gpointer tag; /* the fd in the source; NULL while events is 0 */
	virEventHandleCallback handle_cb;
	/* timer */
	gint interval_ms; /* -1: disabled */
	virEventTimeoutCallback timer_cb;
} MigdLvWatch;

typedef struct {
	GSource parent;
	MigdLvWatch *watch; /* freed only after the source is destroyed (see free idle) */
} MigdLvSource;

/* every field below is protected by migd_lv_lock, except migd_lv_context, written once */
static GMutex migd_lv_lock;
static GMainContext *migd_lv_context;
static GHashTable *migd_lv_watches; /* id -> MigdLvWatch* */
static gint migd_lv_next_id = 1;

static GIOCondition
migd_lv_events_to_condition(gint events)
{
	GIOCondition cond = 0;

	if (events & VIR_EVENT_HANDLE_READABLE)
		cond |= G_IO_IN;
	if (events & VIR_EVENT_HANDLE_WRITABLE)
		cond |= G_IO_OUT;
	if (events & VIR_EVENT_HANDLE_ERROR)
		cond |= G_IO_ERR;
	if (events & VIR_EVENT_HANDLE_HANGUP)
		cond |= G_IO_HUP;
	return cond;
}

static gint
migd_lv_condition_to_events(GIOCondition cond)
{
	gint events = 0;

	if (cond & G_IO_IN)
		events |= VIR_EVENT_HANDLE_READABLE;
	if (cond & G_IO_OUT)
		events |= VIR_EVENT_HANDLE_WRITABLE;
	/* libvirt has no NVAL: an invalid fd is an error to it */
	if (cond & (G_IO_ERR | G_IO_NVAL))
		events |= VIR_EVENT_HANDLE_ERROR;
	if (cond & G_IO_HUP)
		events |= VIR_EVENT_HANDLE_HANGUP;
	return events;
}

/* the ready time of a timer armed now for @interval_ms (-1: never) */
static gint64
migd_lv_ready_time(gint interval_ms)
{
	if (interval_ms < 0)
		return -1;
	return g_get_monotonic_time() + (gint64)interval_ms * 1000;
}

static gboolean
migd_lv_dispatch(GSource *source, GSourceFunc unused_callback, gpointer unused_data)
{
	MigdLvWatch *watch = ((MigdLvSource *)source)->watch;
	virEventHandleCallback handle_cb = NULL;
	virEventTimeoutCallback timer_cb = NULL;
	void *opaque;
	gint id, fd = -1, events = 0;

	g_mutex_lock(&migd_lv_lock);
	if (watch->removed) {
		g_mutex_unlock(&migd_lv_lock);
		return G_SOURCE_CONTINUE; /* destroyed already; GLib will not call again */
	}
	id = watch->id;
	opaque = watch->opaque;
	if (watch->is_timer) {
		/* re-armed before the callback, so that an update from inside it wins */
		g_source_set_ready_time(source, migd_lv_ready_time(watch->interval_ms));
		timer_cb = watch->interval_ms >= 0 ? watch->timer_cb : NULL;
	} else if (watch->tag != NULL) {
		GIOCondition revents = g_source_query_unix_fd(source, watch->tag);
		/* report what libvirt asked for, plus errors and hang-ups, which poll()
		 * reports whether asked or not */
		events = migd_lv_condition_to_events(revents) &
			 (watch->events | VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP);
		fd = watch->fd;
		handle_cb = events != 0 ? watch->handle_cb : NULL;
	}
	g_mutex_unlock(&migd_lv_lock);

	/* outside the lock: libvirt's callbacks call back into update and remove */
	if (timer_cb != NULL)
		timer_cb(id, opaque);
	if (handle_cb != NULL)
		handle_cb(id, fd, events, opaque);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs migd_lv_source_funcs = {
    .dispatch = migd_lv_dispatch,
};

static gint
migd_lv_add(MigdLvWatch *watch)
{
	MigdLvSource *source;

	g_mutex_lock(&migd_lv_lock);
	if (migd_lv_next_id == G_MAXINT) {
		g_mutex_unlock(&migd_lv_lock);
		g_free(watch);
		return -1;
	}
	watch->id = migd_lv_next_id++;
	source = (MigdLvSource *)g_source_new(&migd_lv_source_funcs, sizeof(MigdLvSource));
	source->watch = watch;
	watch->source = &source->parent;
	if (watch->is_timer) {
		g_source_set_name(watch->source, "libvirt timer");
		g_source_set_ready_time(watch->source, migd_lv_ready_time(watch->interval_ms));
	} else {
		g_source_set_name(watch->source, "libvirt handle");
		if (watch->events != 0)
			watch->tag = g_source_add_unix_fd(
			    watch->source, watch->fd, migd_lv_events_to_condition(watch->events));
	}
	g_source_attach(watch->source, migd_lv_context);
	g_hash_table_insert(migd_lv_watches, GINT_TO_POINTER(watch->id), watch);
	g_mutex_unlock(&migd_lv_lock);
	return watch->id;
}

static gboolean
migd_lv_free_idle(gpointer data)
{
	MigdLvWatch *watch = data;

	/* a clean stack: no libvirt lock is held here, which is what the free
	 * callback needs */
	if (watch->ff != NULL)
		watch->ff(watch->opaque);
	g_mutex_lock(&migd_lv_lock);
	g_hash_table_remove(migd_lv_watches, GINT_TO_POINTER(watch->id));
	g_mutex_unlock(&migd_lv_lock);
	/* the last reference, dropped on the context's own thread */
	g_source_unref(watch->source);
	g_free(watch);
	return G_SOURCE_REMOVE;
}

static gint
migd_lv_remove(gint id, gboolean is_timer)
{
	MigdLvWatch *watch;
	g_autoptr(GSource) idle = NULL;

	g_mutex_lock(&migd_lv_lock);
	watch = g_hash_table_lookup(migd_lv_watches, GINT_TO_POINTER(id));
	if (watch == NULL || watch->removed || watch->is_timer != is_timer) {
		g_mutex_unlock(&migd_lv_lock);
		return -1;
	}
	/* removed stays TRUE, so an update racing with the free idle cannot revive it */
	watch->removed = TRUE;
	g_source_destroy(watch->source);
	idle = g_idle_source_new();
	/* default priority: a timer at 0 (ready on every iteration) must not starve it */
	g_source_set_priority(idle, G_PRIORITY_DEFAULT);
	g_source_set_name(idle, "libvirt free callback");
	g_source_set_callback(idle, migd_lv_free_idle, watch, NULL);
	g_source_attach(idle, migd_lv_context);
	g_mutex_unlock(&migd_lv_lock);
	return 0;
}

static gint
migd_lv_add_handle(gint fd, gint events, virEventHandleCallback cb, void *opaque,
		   virFreeCallback ff)
{
	MigdLvWatch *watch;

	if (fd < 0 || cb == NULL)
		return -1;
	watch = g_new0(MigdLvWatch, 1);
	watch->fd = fd;
	watch->events = events;
	watch->handle_cb = cb;
	watch->opaque = opaque;
	watch->ff = ff;
	return migd_lv_add(watch);
}

static void
migd_lv_update_handle(gint id, gint events)
{
	MigdLvWatch *watch;

	g_mutex_lock(&migd_lv_lock);
	watch = g_hash_table_lookup(migd_lv_watches, GINT_TO_POINTER(id));
	if (watch != NULL && !watch->removed && !watch->is_timer && watch->events != events) {
		watch->events = events;
		if (events == 0) {
			/* out of the poll set: poll() reports HUP/ERR even for no events,
			 * which would make the loop spin on an fd libvirt ignores */
			if (watch->tag != NULL)
				g_source_remove_unix_fd(watch->source, watch->tag);
			watch->tag = NULL;
		} else if (watch->tag == NULL) {
			watch->tag = g_source_add_unix_fd(watch->source, watch->fd,
							  migd_lv_events_to_condition(events));
		} else {
			g_source_modify_unix_fd(watch->source, watch->tag,
						migd_lv_events_to_condition(events));
		}
	}
	g_mutex_unlock(&migd_lv_lock);
}

static gint
migd_lv_remove_handle(gint id)
{
	return migd_lv_remove(id, FALSE);
}

static gint
migd_lv_add_timeout(gint interval_ms, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
	MigdLvWatch *watch;

	if (cb == NULL)
		return -1;
	watch = g_new0(MigdLvWatch, 1);
	watch->is_timer = TRUE;
	watch->interval_ms = interval_ms < 0 ? -1 : interval_ms;
	watch->timer_cb = cb;
	watch->opaque = opaque;
	watch->ff = ff;
	return migd_lv_add(watch);
}

static void
migd_lv_update_timeout(gint id, gint interval_ms)
{
	MigdLvWatch *watch;

	g_mutex_lock(&migd_lv_lock);
	watch = g_hash_table_lookup(migd_lv_watches, GINT_TO_POINTER(id));
	if (watch != NULL && !watch->removed && watch->is_timer) {
		/* libvirt re-arms from now, also when the interval is unchanged */
		watch->interval_ms = interval_ms < 0 ? -1 : interval_ms;
		g_source_set_ready_time(watch->source, migd_lv_ready_time(watch->interval_ms));
	}
	g_mutex_unlock(&migd_lv_lock);
}

static gint
migd_lv_remove_timeout(gint id)
{
	return migd_lv_remove(id, TRUE);
}

/* libvirt's default error handler prints every error on stderr; the callers here
 * read the error themselves (virGetLastErrorMessage) and decide how loud it is */
static void
migd_lv_error_func(void *unused, virErrorPtr err)
{
	if (err != NULL && err->message != NULL)
		g_debug("libvirt: %s", err->message);
}

gboolean
migd_libvirt_loop_register(GError **error)
{
	g_autoptr(GMainContext) context = g_main_context_ref_thread_default();
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&migd_lv_lock);

	if (migd_lv_context != NULL) {
		if (migd_lv_context == context)
			return TRUE;
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "libvirt's event loop is already registered on another "
				    "main context");
		return FALSE;
	}
	/* thread-safe initialisation of libvirt before anything else calls it; none
	 * of these calls comes back into the functions above, so the lock is safe */
	if (virInitialize() < 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "cannot initialise libvirt: %s",
			    virGetLastErrorMessage());
		return FALSE;
	}
	virSetErrorFunc(NULL, migd_lv_error_func);
	migd_lv_context = g_steal_pointer(&context);
	migd_lv_watches = g_hash_table_new(NULL, NULL);
	virEventRegisterImpl(migd_lv_add_handle, migd_lv_update_handle, migd_lv_remove_handle,
			     migd_lv_add_timeout, migd_lv_update_timeout, migd_lv_remove_timeout);
	return TRUE;
}

gboolean
migd_libvirt_loop_is_registered(void)
{
	return migd_libvirt_loop_get_context() != NULL;
}

GMainContext *
migd_libvirt_loop_get_context(void)
{
	GMainContext *context;

	g_mutex_lock(&migd_lv_lock);
	context = migd_lv_context;
	g_mutex_unlock(&migd_lv_lock);
	return context;
}

guint
migd_libvirt_loop_count_live(void)
{
	guint n = 0;

	g_mutex_lock(&migd_lv_lock);
	if (migd_lv_watches != NULL)
		n = g_hash_table_size(migd_lv_watches);
	g_mutex_unlock(&migd_lv_lock);
	return n;
}
