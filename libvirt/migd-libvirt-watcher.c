/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The libvirt I/O around MigdLibvirtTracker: a connection with its event
 * registrations, reconnection, job probes on worker threads, and the callbacks.
 *
 * Lifetimes. libvirt keeps the opaque pointer of each registration until it
 * calls the free callback, which may be long after the watcher is gone, so the
 * opaque is a small refcounted link holding a weak reference to the watcher and
 * the generation of the connection it belongs to. Every connect attempt and
 * every teardown bumps the watcher's generation; anything that arrives for an
 * older one (events, close notifications, probe answers) is dropped.
 */
#include "config.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "migd-error.h"
#include "migd-libvirt-loop.h"
#include "migd-libvirt-watcher-private.h"
#include "migd-libvirt-watcher.h"

#define MIGD_LV_DEFAULT_BACKOFF_MS     1000
#define MIGD_LV_DEFAULT_BACKOFF_MAX_MS 30000
#define MIGD_LV_DEFAULT_POLL_MS	       1000
/* keepalive: a libvirtd that stops answering is declared dead after ~15 s */
#define MIGD_LV_KEEPALIVE_INTERVAL_S 5
#define MIGD_LV_KEEPALIVE_COUNT	     3

enum {
	MIGD_LV_CB_LIFECYCLE,
	MIGD_LV_CB_ITERATION,
	MIGD_LV_CB_JOB_COMPLETED,
	MIGD_LV_CB_COUNT,
};

typedef struct {
	gint ref;
	GWeakRef watcher;
	guint generation;
	GMainContext *context; /* where close notifications are handled */
} MigdLvLink;

/* one open connection and its registrations */
typedef struct {
	virConnectPtr conn;
	gint callback_ids[MIGD_LV_CB_COUNT];
	gboolean close_registered;
	MigdLvLink *link;
} MigdLvConn;

struct _MigdLibvirtWatcher {
	GObject parent;

	gchar *uri;
	MigdLibvirtWatcherFlags flags;
	MigdLibvirtWatcherCallbacks callbacks;
	gpointer user_data;
	MigdLibvirtTracker *tracker;
	GMainContext *context;

	gboolean running;
	guint generation;
	MigdLvConn *conn; /* installed connection, or NULL */
	gint reported;	  /* the last connection state reported: -1 none, 0 down, 1 up */
	guint attempts;
	guint backoff_initial_ms;
	guint backoff_max_ms;
	guint backoff_ms;
	GSource *retry_source;
	guint poll_interval_ms;
	GSource *poll_source;
	GHashTable *probing; /* uuid -> in flight */
	gboolean probe_unsupported;
	guint probe_count;
	guint callback_depth; /* > 0 while inside a libvirt callback */
};

G_DEFINE_TYPE(MigdLibvirtWatcher, migd_libvirt_watcher, G_TYPE_OBJECT)

static void migd_lv_connect_now(MigdLibvirtWatcher *self);
static void migd_lv_update_poll(MigdLibvirtWatcher *self);
static void migd_lv_start_probe(MigdLibvirtWatcher *self, const gchar *uuid, guint64 epoch);

/* ---- the link ---- */

static MigdLvLink *
migd_lv_link_new(MigdLibvirtWatcher *self)
{
	MigdLvLink *link = g_new0(MigdLvLink, 1);

	link->ref = 1;
	g_weak_ref_init(&link->watcher, self);
	link->generation = self->generation;
	link->context = g_main_context_ref(self->context);
	return link;
}

static MigdLvLink *
migd_lv_link_ref(MigdLvLink *link)
{
	g_atomic_int_inc(&link->ref);
	return link;
}

static void
migd_lv_link_unref(void *data)
{
	MigdLvLink *link = data;

	if (!g_atomic_int_dec_and_test(&link->ref))
		return;
	g_weak_ref_clear(&link->watcher);
	g_main_context_unref(link->context);
	g_free(link);
}

/* the watcher of a link, if it still lives and the link is current (transfer full) */
static MigdLibvirtWatcher *
migd_lv_link_get(MigdLvLink *link)
{
	MigdLibvirtWatcher *self = g_weak_ref_get(&link->watcher);

	if (self != NULL && (!self->running || self->generation != link->generation))
		g_clear_object(&self);
	return self;
}

static gboolean
migd_lv_unref_idle(gpointer data)
{
	g_object_unref(data);
	return G_SOURCE_REMOVE;
}

/* drops @self from an idle, so that a last unref never finalizes the watcher
 * inside libvirt's event dispatch */
static void
migd_lv_unref_later(MigdLibvirtWatcher *self)
{
	g_autoptr(GSource) idle = g_idle_source_new();

	g_source_set_priority(idle, G_PRIORITY_DEFAULT);
	g_source_set_callback(idle, migd_lv_unref_idle, self, NULL);
	g_source_attach(idle, self->context);
}

/*
 * Whether the caller dropped its last reference from inside a callback. Every
 * path that runs callbacks holds one reference of its own for the duration
 * (an event dispatch, a probe's answer, a connection result), so that the
 * object outlives the callback; but nothing more may reach a caller that let
 * go, whose user_data may be gone: such a watcher stops at once.
 */
static gboolean
migd_lv_orphaned(MigdLibvirtWatcher *self)
{
	return g_atomic_int_get(&G_OBJECT(self)->ref_count) == 1;
}

/* ---- connections ---- */

static void migd_lv_close_cb(virConnectPtr conn, int reason, void *opaque);

static void
migd_lv_conn_teardown(gpointer data)
{
	MigdLvConn *c = data;

	for (guint i = 0; i < MIGD_LV_CB_COUNT; i++) {
		/* on a dead connection this fails after removing the callback locally,
		 * which is all that matters */
		if (c->callback_ids[i] >= 0)
			virConnectDomainEventDeregisterAny(c->conn, c->callback_ids[i]);
	}
	if (c->close_registered)
		virConnectUnregisterCloseCallback(c->conn, migd_lv_close_cb);
	virConnectClose(c->conn);
	/* the close callback borrowed the link; unregistered, nothing can call it now */
	migd_lv_link_unref(c->link);
	g_free(c);
}

static gboolean
migd_lv_conn_teardown_idle(gpointer data)
{
	migd_lv_conn_teardown(data);
	return G_SOURCE_REMOVE;
}

/* tears @c down now, or from an idle when inside a libvirt callback, where
 * deregistering and closing the connection would re-enter libvirt */
static void
migd_lv_conn_release(MigdLibvirtWatcher *self, MigdLvConn *c)
{
	g_autoptr(GSource) idle = NULL;

	if (self->callback_depth == 0) {
		migd_lv_conn_teardown(c);
		return;
	}
	idle = g_idle_source_new();
	g_source_set_priority(idle, G_PRIORITY_DEFAULT);
	g_source_set_callback(idle, migd_lv_conn_teardown_idle, c, NULL);
	g_source_attach(idle, self->context);
}

static void
migd_lv_report_connection(MigdLibvirtWatcher *self, gboolean connected, const gchar *message)
{
	/* a failure is reported once per outage, not at every retry */
	if (self->reported == (connected ? 1 : 0))
		return;
	self->reported = connected ? 1 : 0;
	if (connected)
		g_debug("connected to %s", self->uri);
	else
		g_debug("not connected to %s: %s", self->uri, message);
	if (self->callbacks.connection_changed != NULL) {
		self->callbacks.connection_changed(self, connected, message, self->user_data);
		if (migd_lv_orphaned(self))
			migd_libvirt_watcher_stop(self);
	}
}

static gboolean
migd_lv_retry_cb(gpointer data)
{
	MigdLibvirtWatcher *self = data;

	g_clear_pointer(&self->retry_source, g_source_unref);
	migd_lv_connect_now(self);
	return G_SOURCE_REMOVE;
}

static void
migd_lv_schedule_retry(MigdLibvirtWatcher *self)
{
	guint delay = self->backoff_ms;

	if (!self->running || self->retry_source != NULL)
		return;
	self->backoff_ms = MIN(self->backoff_ms * 2, self->backoff_max_ms);
	self->retry_source = g_timeout_source_new(delay);
	g_source_set_name(self->retry_source, "libvirt reconnect");
	g_source_set_callback(self->retry_source, migd_lv_retry_cb, self, NULL);
	g_source_attach(self->retry_source, self->context);
}

static void
migd_lv_forget_connection(MigdLibvirtWatcher *self)
{
	g_hash_table_remove_all(self->probing);
	self->probe_unsupported = FALSE;
	if (self->poll_source != NULL) {
		g_source_destroy(self->poll_source);
		g_clear_pointer(&self->poll_source, g_source_unref);
	}
}

static void
migd_lv_connection_lost(MigdLibvirtWatcher *self, const gchar *message)
{
	MigdLvConn *c = g_steal_pointer(&self->conn);

	if (c == NULL)
		return;
	self->generation++;
	migd_lv_conn_release(self, c);
	migd_lv_forget_connection(self);
	migd_lv_report_connection(self, FALSE, message);
	if (self->running)
		migd_lv_schedule_retry(self);
}

static const gchar *
migd_lv_close_reason(gint reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_ERROR:
		return "I/O error";
	case VIR_CONNECT_CLOSE_REASON_EOF:
		return "end of file (libvirtd stopped?)";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
		return "keepalive timeout";
	case VIR_CONNECT_CLOSE_REASON_CLIENT:
		return "closed by the client";
	default:
		return "unknown reason";
	}
}

typedef struct {
	MigdLvLink *link;
	gint reason;
} MigdLvClose;

static gboolean
migd_lv_close_idle(gpointer data)
{
	MigdLvClose *close = data;
	MigdLibvirtWatcher *self = migd_lv_link_get(close->link);

	if (self != NULL && self->conn != NULL && self->conn->link == close->link) {
		g_autofree gchar *message = g_strdup_printf("connection to %s lost: %s", self->uri,
							    migd_lv_close_reason(close->reason));
		migd_lv_connection_lost(self, message);
	}
	g_clear_object(&self);
	migd_lv_link_unref(close->link);
	g_free(close);
	return G_SOURCE_REMOVE;
}

static void
migd_lv_close_cb(virConnectPtr conn, int reason, void *opaque)
{
	MigdLvLink *link = opaque;
	MigdLvClose *close = g_new0(MigdLvClose, 1);
	g_autoptr(GSource) idle = g_idle_source_new();

	/* libvirt holds its close-callback lock while calling this; unregistering
	 * from here would deadlock, so the work happens from an idle */
	close->link = migd_lv_link_ref(link);
	close->reason = reason;
	g_source_set_priority(idle, G_PRIORITY_DEFAULT);
	g_source_set_callback(idle, migd_lv_close_idle, close, NULL);
	g_source_attach(idle, link->context);
}

/* ---- events ---- */

static void
migd_lv_run_actions(MigdLibvirtWatcher *self, GArray *actions)
{
	for (guint i = 0; i < actions->len && self->running; i++) {
		const MigdLibvirtAction *a = &g_array_index(actions, MigdLibvirtAction, i);
		MigdLibvirtMigration m = {
		    .map = a->map,
		    .uuid = a->uuid,
		    .name = a->name,
		    .id = a->migration,
		    .late = a->late,
		    .postcopy = a->postcopy,
		};

		switch (a->kind) {
		case MIGD_LIBVIRT_ACTION_PROBE:
			migd_lv_start_probe(self, a->uuid, a->epoch);
			break;
		case MIGD_LIBVIRT_ACTION_STARTED:
			g_info("libvirt migration %" G_GUINT64_FORMAT " of %s started%s", m.id,
			       m.name, m.late ? " (late: already at the switchover or done)" : "");
			if (self->callbacks.started != NULL)
				self->callbacks.started(self, &m, self->user_data);
			break;
		case MIGD_LIBVIRT_ACTION_SWITCHOVER:
			g_info("libvirt migration %" G_GUINT64_FORMAT " of %s: switchover%s", m.id,
			       m.name, m.postcopy ? " (post-copy)" : "");
			if (self->callbacks.switchover != NULL)
				self->callbacks.switchover(self, &m, self->user_data);
			break;
		case MIGD_LIBVIRT_ACTION_FINISHED:
			g_info("libvirt migration %" G_GUINT64_FORMAT " of %s finished", m.id,
			       m.name);
			if (self->callbacks.finished != NULL)
				self->callbacks.finished(self, &m, self->user_data);
			break;
		case MIGD_LIBVIRT_ACTION_FAILED:
			g_info("libvirt migration %" G_GUINT64_FORMAT " of %s failed (%s): %s",
			       m.id, m.name, migd_libvirt_end_to_string(a->end), a->message);
			if (self->callbacks.failed != NULL)
				self->callbacks.failed(self, &m, a->end, a->message,
						       self->user_data);
			break;
		}
		if (migd_lv_orphaned(self))
			migd_libvirt_watcher_stop(self);
	}
}

static void
migd_lv_handle_input(MigdLibvirtWatcher *self, const MigdLibvirtInput *input)
{
	g_autoptr(GArray) actions = NULL;
	guint generation = self->generation;

	/* any domain's lifecycle: an incoming domain has no map here */
	if (input->kind == MIGD_LIBVIRT_INPUT_LIFECYCLE && self->callbacks.lifecycle != NULL) {
		self->callbacks.lifecycle(self, input, self->user_data);
		if (migd_lv_orphaned(self))
			migd_libvirt_watcher_stop(self);
		if (!self->running || self->generation != generation)
			return; /* stopped from the callback */
	}
	/* not ours: not even logged. A probe answer is about a domain already
	 * tracked, which may have no name any more (gone): the tracker knows it */
	if (input->kind != MIGD_LIBVIRT_INPUT_PROBE &&
	    migd_libvirt_tracker_lookup(self->tracker, input->uuid, input->name) == NULL)
		return;
	if (self->callbacks.event != NULL) {
		self->callbacks.event(self, input, self->user_data);
		if (migd_lv_orphaned(self))
			migd_libvirt_watcher_stop(self);
		if (!self->running || self->generation != generation)
			return; /* stopped from the callback */
	}
	actions = migd_libvirt_actions_new();
	migd_libvirt_tracker_feed(self->tracker, input, actions);
	migd_lv_run_actions(self, actions);
	if (self->running)
		migd_lv_update_poll(self);
}

static void
migd_lv_deliver(void *opaque, virDomainPtr dom, MigdLibvirtInput *input)
{
	MigdLibvirtWatcher *self = migd_lv_link_get(opaque);
	char uuid[VIR_UUID_STRING_BUFLEN];

	if (self == NULL)
		return;
	if (virDomainGetUUIDString(dom, uuid) == 0) {
		input->uuid = uuid;
		input->name = virDomainGetName(dom);
		self->callback_depth++;
		migd_lv_handle_input(self, input);
		self->callback_depth--;
	}
	migd_lv_unref_later(self);
}

static int
migd_lv_lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	MigdLibvirtInput input = {
	    .kind = MIGD_LIBVIRT_INPUT_LIFECYCLE,
	    .event = event,
	    .detail = detail,
	};

	migd_lv_deliver(opaque, dom, &input);
	return 0;
}

static void
migd_lv_iteration_cb(virConnectPtr conn, virDomainPtr dom, int iteration, void *opaque)
{
	MigdLibvirtInput input = {
	    .kind = MIGD_LIBVIRT_INPUT_ITERATION,
	    .iteration = iteration,
	};

	migd_lv_deliver(opaque, dom, &input);
}

static void
migd_lv_job_completed_cb(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params,
			 int n_params, void *opaque)
{
	MigdLibvirtInput input = {
	    .kind = MIGD_LIBVIRT_INPUT_JOB_COMPLETED,
	};

	/* the strings stay libvirt's: params live until this callback returns */
	migd_libvirt_job_params_parse(params, n_params, &input.operation, &input.success,
				      &input.error_message);
	migd_lv_deliver(opaque, dom, &input);
}

/* ---- connecting ---- */

typedef struct {
	gchar *uri;
	gboolean read_write;
	MigdLvLink *link;
} MigdLvConnectData;

static void
migd_lv_connect_data_free(gpointer data)
{
	MigdLvConnectData *d = data;

	g_free(d->uri);
	migd_lv_link_unref(d->link);
	g_free(d);
}

static gint
migd_lv_register(virConnectPtr conn, gint event_id, virConnectDomainEventGenericCallback cb,
		 MigdLvLink *link)
{
	gint id = virConnectDomainEventRegisterAny(conn, NULL, event_id, cb, migd_lv_link_ref(link),
						   migd_lv_link_unref);

	/* libvirt does not call the free callback of a failed registration */
	if (id < 0)
		migd_lv_link_unref(link);
	return id;
}

/* worker thread: everything here may block on libvirtd */
static void
migd_lv_connect_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *unused)
{
	MigdLvConnectData *d = task_data;
	MigdLvConn *c = g_new0(MigdLvConn, 1);
	g_autofree gchar *what = NULL;

	for (guint i = 0; i < MIGD_LV_CB_COUNT; i++)
		c->callback_ids[i] = -1;
	c->link = migd_lv_link_ref(d->link);
	c->conn = d->read_write ? virConnectOpen(d->uri) : virConnectOpenReadOnly(d->uri);
	if (c->conn == NULL) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_FAILED,
					"cannot connect to %s: %s", d->uri,
					virGetLastErrorMessage());
		migd_lv_link_unref(c->link);
		g_free(c);
		return;
	}
	/* borrowed, no free callback: drivers without close notifications (test:///)
	 * accept the registration and would never call it; unregistered before the
	 * link is dropped (migd_lv_conn_teardown) */
	if (virConnectRegisterCloseCallback(c->conn, migd_lv_close_cb, c->link, NULL) < 0)
		what = g_strdup("the close callback");
	else
		c->close_registered = TRUE;
	if (what == NULL) {
		c->callback_ids[MIGD_LV_CB_LIFECYCLE] =
		    migd_lv_register(c->conn, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
				     VIR_DOMAIN_EVENT_CALLBACK(migd_lv_lifecycle_cb), c->link);
		if (c->callback_ids[MIGD_LV_CB_LIFECYCLE] < 0)
			what = g_strdup("lifecycle events");
	}
	if (what == NULL) {
		c->callback_ids[MIGD_LV_CB_ITERATION] =
		    migd_lv_register(c->conn, VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
				     VIR_DOMAIN_EVENT_CALLBACK(migd_lv_iteration_cb), c->link);
		if (c->callback_ids[MIGD_LV_CB_ITERATION] < 0)
			what = g_strdup("migration iteration events");
	}
	if (what == NULL) {
		c->callback_ids[MIGD_LV_CB_JOB_COMPLETED] =
		    migd_lv_register(c->conn, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
				     VIR_DOMAIN_EVENT_CALLBACK(migd_lv_job_completed_cb), c->link);
		if (c->callback_ids[MIGD_LV_CB_JOB_COMPLETED] < 0)
			what = g_strdup("job completed events");
	}
	if (what != NULL) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_FAILED,
					"cannot register %s on %s: %s", what, d->uri,
					virGetLastErrorMessage());
		migd_lv_conn_teardown(c);
		return;
	}
	/* a libvirtd that hangs is noticed; local drivers do not support it (-1) */
	if (virConnectSetKeepAlive(c->conn, MIGD_LV_KEEPALIVE_INTERVAL_S, MIGD_LV_KEEPALIVE_COUNT) <
	    0)
		g_debug("no keepalive on %s: %s", d->uri, virGetLastErrorMessage());
	g_task_return_pointer(task, c, migd_lv_conn_teardown);
}

static void
migd_lv_resync(MigdLibvirtWatcher *self)
{
	g_autoptr(GArray) busy = migd_libvirt_actions_new();

	/* events may have been missed: ask about everything in progress */
	migd_libvirt_tracker_list_busy(self->tracker, busy);
	for (guint i = 0; i < busy->len; i++) {
		const MigdLibvirtAction *a = &g_array_index(busy, MigdLibvirtAction, i);
		migd_lv_start_probe(self, a->uuid, a->epoch);
	}
	migd_lv_update_poll(self);
}

static void
migd_lv_connect_done(GObject *unused_source, GAsyncResult *result, gpointer unused)
{
	MigdLvConnectData *d = g_task_get_task_data(G_TASK(result));
	g_autoptr(MigdLibvirtWatcher) self = migd_lv_link_get(d->link);
	g_autoptr(GError) error = NULL;
	MigdLvConn *c = g_task_propagate_pointer(G_TASK(result), &error);

	if (self == NULL) {
		/* stopped or superseded meanwhile */
		if (c != NULL)
			migd_lv_conn_teardown(c);
		return;
	}
	if (c == NULL) {
		migd_lv_report_connection(self, FALSE, error->message);
		migd_lv_schedule_retry(self);
		return;
	}
	self->conn = c;
	self->backoff_ms = self->backoff_initial_ms;
	migd_lv_report_connection(self, TRUE, NULL);
	if (self->running && self->conn == c)
		migd_lv_resync(self);
}

static void
migd_lv_connect_now(MigdLibvirtWatcher *self)
{
	g_autoptr(GTask) task = NULL;
	MigdLvConnectData *d;

	if (!self->running)
		return;
	self->generation++;
	self->attempts++;
	d = g_new0(MigdLvConnectData, 1);
	d->uri = g_strdup(self->uri);
	d->read_write = (self->flags & MIGD_LIBVIRT_WATCHER_READ_WRITE) != 0;
	d->link = migd_lv_link_new(self);
	/* no source object: a pending task must not keep the watcher alive */
	task = g_task_new(NULL, NULL, migd_lv_connect_done, NULL);
	g_task_set_source_tag(task, migd_lv_connect_now);
	g_task_set_task_data(task, d, migd_lv_connect_data_free);
	g_task_run_in_thread(task, migd_lv_connect_thread);
}

/* ---- job probes ---- */

typedef struct {
	GWeakRef watcher;
	virConnectPtr conn;
	gchar *uuid;
	gchar *name;
	guint64 epoch;
	guint generation;
	MigdLibvirtProbe probe;
	gchar *error_message;
} MigdLvProbeData;

static void
migd_lv_probe_data_free(gpointer data)
{
	MigdLvProbeData *d = data;

	g_weak_ref_clear(&d->watcher);
	virConnectClose(d->conn);
	g_free(d->uuid);
	g_free(d->name);
	g_free(d->error_message);
	g_free(d);
}

static gboolean
migd_lv_job_over(MigdLibvirtJob job)
{
	return job == MIGD_LIBVIRT_JOB_NONE || job == MIGD_LIBVIRT_JOB_FAILED ||
	       job == MIGD_LIBVIRT_JOB_CANCELLED;
}

/* worker thread: read-only queries, each may wait for the domain's job lock */
static void
migd_lv_probe_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *unused)
{
	MigdLvProbeData *d = task_data;
	virDomainPtr dom = virDomainLookupByUUIDString(d->conn, d->uuid);
	virTypedParameterPtr params = NULL;
	gint n_params = 0, type = 0, state = 0, reason = 0;

	if (dom == NULL) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			d->probe.domain_gone = TRUE;
		g_task_return_boolean(task, TRUE);
		return;
	}
	d->name = g_strdup(virDomainGetName(dom));
	if (virDomainGetJobStats(dom, &type, &params, &n_params, 0) < 0) {
		gint code = virGetLastErrorCode();
		if (code == VIR_ERR_NO_SUPPORT)
			d->probe.job = MIGD_LIBVIRT_JOB_UNSUPPORTED;
		else if (code == VIR_ERR_NO_DOMAIN)
			d->probe.domain_gone = TRUE;
	} else {
		d->probe.job = migd_libvirt_job_from_type(type);
		migd_libvirt_job_params_parse(params, n_params, &d->probe.operation, NULL, NULL);
		virTypedParamsFree(params, n_params);
	}
	if (migd_lv_job_over(d->probe.job)) {
		if (virDomainGetState(dom, &state, &reason, 0) == 0) {
			d->probe.state = state;
			d->probe.reason = reason;
		} else if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
			d->probe.domain_gone = TRUE;
		}
		params = NULL;
		n_params = 0;
		if (virDomainGetJobStats(dom, &type, &params, &n_params,
					 VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
			gint operation = -1;
			const gchar *message = NULL;
			migd_libvirt_job_params_parse(params, n_params, &operation, NULL, &message);
			/* another job's outcome (a save, a backup) says nothing here */
			if (operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT) {
				d->probe.completed = migd_libvirt_job_from_type(type);
				d->error_message = g_strdup(message);
			}
			virTypedParamsFree(params, n_params);
		}
	}
	virDomainFree(dom);
	g_task_return_boolean(task, TRUE);
}

/* the epoch the tracker wants probes of @uuid to quote, or 0 when it is idle */
static guint64
migd_lv_wanted_epoch(MigdLibvirtWatcher *self, const gchar *uuid)
{
	g_autoptr(GArray) busy = migd_libvirt_actions_new();

	migd_libvirt_tracker_list_busy(self->tracker, busy);
	for (guint i = 0; i < busy->len; i++) {
		const MigdLibvirtAction *a = &g_array_index(busy, MigdLibvirtAction, i);
		if (g_ascii_strcasecmp(a->uuid, uuid) == 0)
			return a->epoch;
	}
	return 0;
}

static void
migd_lv_probe_done(GObject *unused_source, GAsyncResult *result, gpointer unused)
{
	MigdLvProbeData *d = g_task_get_task_data(G_TASK(result));
	g_autoptr(MigdLibvirtWatcher) self = g_weak_ref_get(&d->watcher);
	MigdLibvirtInput input = {
	    .kind = MIGD_LIBVIRT_INPUT_PROBE,
	    .uuid = d->uuid,
	    .name = d->name,
	    .epoch = d->epoch,
	    .probe = d->probe,
	};
	guint64 wanted;

	if (self == NULL || !self->running || d->generation != self->generation)
		return;
	g_hash_table_remove(self->probing, d->uuid);
	input.probe.error_message = d->error_message;
	if (d->probe.job == MIGD_LIBVIRT_JOB_UNSUPPORTED && !self->probe_unsupported) {
		/* no job API on this driver: polling would learn nothing */
		g_debug("%s has no job information; not polling migrating domains", self->uri);
		self->probe_unsupported = TRUE;
	}
	/* asked about an older state (events came meanwhile): the tracker drops
	 * the answer, and the current state is asked about at once */
	wanted = migd_lv_wanted_epoch(self, d->uuid);
	migd_lv_handle_input(self, &input);
	if (self->running && wanted != 0 && wanted != d->epoch &&
	    migd_lv_wanted_epoch(self, d->uuid) == wanted)
		migd_lv_start_probe(self, d->uuid, wanted);
}

static void
migd_lv_start_probe(MigdLibvirtWatcher *self, const gchar *uuid, guint64 epoch)
{
	g_autoptr(GTask) task = NULL;
	MigdLvProbeData *d;

	/* without a connection, the resync after reconnecting asks instead */
	if (self->conn == NULL || g_hash_table_contains(self->probing, uuid))
		return;
	d = g_new0(MigdLvProbeData, 1);
	g_weak_ref_init(&d->watcher, self);
	virConnectRef(self->conn->conn);
	d->conn = self->conn->conn;
	d->uuid = g_strdup(uuid);
	d->epoch = epoch;
	d->generation = self->generation;
	migd_libvirt_probe_init(&d->probe);
	g_hash_table_add(self->probing, g_strdup(uuid));
	self->probe_count++;
	task = g_task_new(NULL, NULL, migd_lv_probe_done, NULL);
	g_task_set_source_tag(task, migd_lv_start_probe);
	g_task_set_task_data(task, d, migd_lv_probe_data_free);
	g_task_run_in_thread(task, migd_lv_probe_thread);
}

static gboolean
migd_lv_poll_cb(gpointer data)
{
	MigdLibvirtWatcher *self = data;
	g_autoptr(GArray) busy = migd_libvirt_actions_new();

	migd_libvirt_tracker_list_busy(self->tracker, busy);
	for (guint i = 0; i < busy->len; i++) {
		const MigdLibvirtAction *a = &g_array_index(busy, MigdLibvirtAction, i);
		migd_lv_start_probe(self, a->uuid, a->epoch);
	}
	return G_SOURCE_CONTINUE;
}

/* polls while something is in progress, there is a connection and probes can answer */
static void
migd_lv_update_poll(MigdLibvirtWatcher *self)
{
	g_autoptr(GArray) busy = migd_libvirt_actions_new();
	gboolean want;

	migd_libvirt_tracker_list_busy(self->tracker, busy);
	want = self->running && self->conn != NULL && !self->probe_unsupported && busy->len > 0;
	if (want && self->poll_source == NULL) {
		self->poll_source = g_timeout_source_new(self->poll_interval_ms);
		g_source_set_name(self->poll_source, "libvirt job poll");
		g_source_set_callback(self->poll_source, migd_lv_poll_cb, self, NULL);
		g_source_attach(self->poll_source, self->context);
	} else if (!want && self->poll_source != NULL) {
		g_source_destroy(self->poll_source);
		g_clear_pointer(&self->poll_source, g_source_unref);
	}
}

/* ---- calls about one domain, on a worker thread (libvirt calls block) ---- */

typedef struct {
	virConnectPtr conn;
	gchar *uuid;
} MigdLvDomainCall;

static void
migd_lv_domain_call_free(gpointer data)
{
	MigdLvDomainCall *d = data;

	virConnectClose(d->conn);
	g_free(d->uuid);
	g_free(d);
}

/* runs @func on a worker thread with the connection and @uuid as its task data */
static void
migd_lv_domain_call_run(MigdLibvirtWatcher *self, GTask *task, const gchar *uuid,
			GTaskThreadFunc func)
{
	MigdLvDomainCall *d;

	if (self->conn == NULL) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_FAILED, "not connected to %s",
					self->uri);
		return;
	}
	d = g_new0(MigdLvDomainCall, 1);
	virConnectRef(self->conn->conn);
	d->conn = self->conn->conn;
	d->uuid = g_strdup(uuid);
	g_task_set_task_data(task, d, migd_lv_domain_call_free);
	g_task_run_in_thread(task, func);
}

/* ---- abort ---- */

static void
migd_lv_abort_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *unused)
{
	MigdLvDomainCall *d = task_data;
	virDomainPtr dom = virDomainLookupByUUIDString(d->conn, d->uuid);
	gint code;

	if (dom != NULL && virDomainAbortJob(dom) == 0) {
		virDomainFree(dom);
		g_task_return_boolean(task, TRUE);
		return;
	}
	code = virGetLastErrorCode();
	g_task_return_new_error(
	    task, MIGD_ERROR,
	    code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_OPERATION_DENIED
		? MIGD_ERROR_NOT_SUPPORTED
		: (code == VIR_ERR_NO_DOMAIN ? MIGD_ERROR_INVALID_ARGUMENT : MIGD_ERROR_FAILED),
	    "cannot abort the job of domain %s: %s", d->uuid, virGetLastErrorMessage());
	if (dom != NULL)
		virDomainFree(dom);
}

void
migd_libvirt_watcher_abort_job(MigdLibvirtWatcher *self, const gchar *uuid,
			       GCancellable *cancellable, GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, migd_libvirt_watcher_abort_job);
	if ((self->flags & MIGD_LIBVIRT_WATCHER_READ_WRITE) == 0) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
					"the watcher's connection to %s is read-only", self->uri);
		return;
	}
	migd_lv_domain_call_run(self, task, uuid, migd_lv_abort_thread);
}

gboolean
migd_libvirt_watcher_abort_job_finish(MigdLibvirtWatcher *self, GAsyncResult *result,
				      GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- domain state ---- */

static void
migd_lv_state_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *unused)
{
	MigdLvDomainCall *d = task_data;
	virDomainPtr dom = virDomainLookupByUUIDString(d->conn, d->uuid);
	gint state = 0, reason = 0;

	if (dom != NULL && virDomainGetState(dom, &state, &reason, 0) == 0) {
		virDomainFree(dom);
		/* both fit in the int the task returns */
		g_task_return_int(task, (gssize)state << 16 | (reason & 0xffff));
		return;
	}
	g_task_return_new_error(
	    task, MIGD_ERROR,
	    virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? MIGD_ERROR_INVALID_ARGUMENT
						       : MIGD_ERROR_FAILED,
	    "cannot read the state of domain %s: %s", d->uuid, virGetLastErrorMessage());
	if (dom != NULL)
		virDomainFree(dom);
}

void
migd_libvirt_watcher_get_state(MigdLibvirtWatcher *self, const gchar *uuid,
			       GCancellable *cancellable, GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, migd_libvirt_watcher_get_state);
	migd_lv_domain_call_run(self, task, uuid, migd_lv_state_thread);
}

gboolean
migd_libvirt_watcher_get_state_finish(MigdLibvirtWatcher *self, GAsyncResult *result, gint *state,
				      gint *reason, GError **error)
{
	gssize packed;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	packed = g_task_propagate_int(G_TASK(result), error);
	if (packed < 0)
		return FALSE;
	*state = (gint)(packed >> 16);
	*reason = (gint)(packed & 0xffff);
	return TRUE;
}

/* ---- public ---- */

MigdLibvirtWatcher *
migd_libvirt_watcher_new(const gchar *uri, GPtrArray *maps, MigdLibvirtWatcherFlags flags,
			 const MigdLibvirtWatcherCallbacks *callbacks, gpointer user_data)
{
	MigdLibvirtWatcher *self = g_object_new(MIGD_TYPE_LIBVIRT_WATCHER, NULL);

	self->uri = g_strdup(uri);
	self->flags = flags;
	if (callbacks != NULL)
		self->callbacks = *callbacks;
	self->user_data = user_data;
	self->tracker = migd_libvirt_tracker_new(maps);
	return self;
}

void
migd_libvirt_watcher_set_backoff(MigdLibvirtWatcher *self, guint initial_ms, guint max_ms)
{
	self->backoff_initial_ms = MAX(initial_ms, 1);
	self->backoff_max_ms = MAX(max_ms, self->backoff_initial_ms);
	self->backoff_ms = self->backoff_initial_ms;
}

void
migd_libvirt_watcher_set_poll_interval(MigdLibvirtWatcher *self, guint interval_ms)
{
	self->poll_interval_ms = MAX(interval_ms, 1);
}

gboolean
migd_libvirt_watcher_start(MigdLibvirtWatcher *self, GError **error)
{
	GMainContext *context = migd_libvirt_loop_get_context();
	GMainContext *current = g_main_context_get_thread_default();

	if (self->running) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY, "already watching %s", self->uri);
		return FALSE;
	}
	if (current == NULL)
		current = g_main_context_default();
	if (context == NULL || context != current) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "libvirt's event loop is not registered on this thread's main "
				    "context (migd_libvirt_loop_register)");
		return FALSE;
	}
	if (self->context == NULL)
		self->context = g_main_context_ref(context);
	self->running = TRUE;
	self->backoff_ms = self->backoff_initial_ms;
	migd_lv_connect_now(self);
	return TRUE;
}

void
migd_libvirt_watcher_stop(MigdLibvirtWatcher *self)
{
	MigdLvConn *c;

	if (!self->running)
		return;
	self->running = FALSE;
	self->generation++;
	if (self->retry_source != NULL) {
		g_source_destroy(self->retry_source);
		g_clear_pointer(&self->retry_source, g_source_unref);
	}
	migd_lv_forget_connection(self);
	c = g_steal_pointer(&self->conn);
	if (c != NULL)
		migd_lv_conn_release(self, c);
	self->reported = -1;
}

gboolean
migd_libvirt_watcher_is_connected(MigdLibvirtWatcher *self)
{
	return self->conn != NULL;
}

guint
migd_libvirt_watcher_get_connect_attempts(MigdLibvirtWatcher *self)
{
	return self->attempts;
}

const MigdLibvirtDomainMap *
migd_libvirt_watcher_lookup(MigdLibvirtWatcher *self, const gchar *uuid, const gchar *name)
{
	return migd_libvirt_tracker_lookup(self->tracker, uuid, name);
}

/* ---- test seams ---- */

void
migd_libvirt_watcher_inject(MigdLibvirtWatcher *self, const MigdLibvirtInput *input)
{
	g_autoptr(MigdLibvirtWatcher) hold = g_object_ref(self);

	if (self->running)
		migd_lv_handle_input(self, input);
}

void
migd_libvirt_watcher_simulate_close(MigdLibvirtWatcher *self, gint reason)
{
	if (self->conn != NULL)
		migd_lv_close_cb(self->conn->conn, reason, self->conn->link);
}

guint
migd_libvirt_watcher_get_probe_count(MigdLibvirtWatcher *self)
{
	return self->probe_count;
}

/* ---- GObject ---- */

static void
migd_libvirt_watcher_dispose(GObject *object)
{
	migd_libvirt_watcher_stop(MIGD_LIBVIRT_WATCHER(object));
	G_OBJECT_CLASS(migd_libvirt_watcher_parent_class)->dispose(object);
}

static void
migd_libvirt_watcher_finalize(GObject *object)
{
	MigdLibvirtWatcher *self = MIGD_LIBVIRT_WATCHER(object);

	g_free(self->uri);
	migd_libvirt_tracker_free(self->tracker);
	g_hash_table_unref(self->probing);
	g_clear_pointer(&self->context, g_main_context_unref);
	G_OBJECT_CLASS(migd_libvirt_watcher_parent_class)->finalize(object);
}

static void
migd_libvirt_watcher_class_init(MigdLibvirtWatcherClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_libvirt_watcher_dispose;
	object_class->finalize = migd_libvirt_watcher_finalize;
}

static void
migd_libvirt_watcher_init(MigdLibvirtWatcher *self)
{
	self->reported = -1;
	self->backoff_initial_ms = MIGD_LV_DEFAULT_BACKOFF_MS;
	self->backoff_max_ms = MIGD_LV_DEFAULT_BACKOFF_MAX_MS;
	self->backoff_ms = MIGD_LV_DEFAULT_BACKOFF_MS;
	self->poll_interval_ms = MIGD_LV_DEFAULT_POLL_MS;
	self->probing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}
