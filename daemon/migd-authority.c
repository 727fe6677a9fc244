/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "migd-authority.h"
#include "migd-error.h"
#include "migd-log.h"

#define MIGD_AUTHORITY_POLKIT_NAME	"org.freedesktop.PolicyKit1"
#define MIGD_AUTHORITY_POLKIT_PATH	"/org/freedesktop/PolicyKit1/Authority"
#define MIGD_AUTHORITY_POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorization's flags: AllowUserInteraction */
#define MIGD_AUTHORITY_POLKIT_ALLOW_USER_INTERACTION 1u

/* a bound on the cache, should NameOwnerChanged be missed (a name gone before it was cached) */
#define MIGD_AUTHORITY_UIDS_MAX 1024

struct _MigdAuthority {
	GObject parent_instance;
	guint64 next_check;	  /* makes the cancellation ids unique */
	guint pending_dispatches; /* calls waiting for their check */
	/*
	 * unique name -> uid + 1 (0 is no entry). A unique name is never reused and its
	 * connection's uid never changes: an entry is only dropped when the name goes,
	 * to keep the table to the callers that are still there.
	 */
	GHashTable *uids;
	GDBusConnection *connection; /* the bus whose NameOwnerChanged clears entries */
	guint name_owner_changed_id;
};

G_DEFINE_TYPE(MigdAuthority, migd_authority, G_TYPE_OBJECT)

typedef struct {
	const gchar *interface_name;
	const gchar *method_name;
	const gchar *action;
} MigdAuthorityRule;

/*
 * The one table: every method of data/org.vfiomigd.Migd1.xml, once
 * (tests/dbus/test-dbus-authority.c checks both ways). Read: listings and
 * queries an observer may see. Change: whatever acts on devices, jobs, listeners
 * or VMs, and the dirty bitmaps, which are a VMM's migration data (which pages a
 * guest's device wrote), not a status.
 */
static const MigdAuthorityRule migd_authority_rules[] = {
    {"org.vfiomigd.Migd1.Manager", "ListDevices", MIGD_AUTHORITY_ACTION_READ},
    {"org.vfiomigd.Migd1.Manager", "ListHostDevices", MIGD_AUTHORITY_ACTION_READ},
    {"org.vfiomigd.Migd1.Manager", "ListListeners", MIGD_AUTHORITY_ACTION_READ},
    {"org.vfiomigd.Migd1.Manager", "ListJobs", MIGD_AUTHORITY_ACTION_READ},
    {"org.vfiomigd.Migd1.Manager", "ListExpectations", MIGD_AUTHORITY_ACTION_READ},
    {"org.vfiomigd.Migd1.Manager", "ListVMs", MIGD_AUTHORITY_ACTION_READ},
    {"org.vfiomigd.Migd1.Manager", "Migrate", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "Listen", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "StopListening", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "AddDevice", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "AttachDevice", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "DetachDevice", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "GetDirtyBitmap", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "Expect", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "CancelExpectation", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "AttachVM", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Manager", "DetachVM", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Job", "Cancel", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Job", "Switchover", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Job", "Start", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Job", "Abandon", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Job", "Rollback", MIGD_AUTHORITY_ACTION_CHANGE},
    {"org.vfiomigd.Migd1.Job", "SyncDirtyBitmap", MIGD_AUTHORITY_ACTION_CHANGE},
};

const gchar *
migd_authority_lookup_action(const gchar *interface_name, const gchar *method_name)
{
	for (guint i = 0; i < G_N_ELEMENTS(migd_authority_rules); i++) {
		const MigdAuthorityRule *rule = &migd_authority_rules[i];
		if (g_strcmp0(rule->interface_name, interface_name) == 0 &&
		    g_strcmp0(rule->method_name, method_name) == 0)
			return rule->action;
	}
	return NULL;
}

/* ---- callers' uids ---- */

static void
migd_authority_name_owner_changed_cb(GDBusConnection *connection, const gchar *sender,
				     const gchar *path, const gchar *interface_name,
				     const gchar *signal_name, GVariant *parameters,
				     gpointer user_data)
{
	MigdAuthority *self = MIGD_AUTHORITY(user_data);
	const gchar *name, *old_owner, *new_owner;

	g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
	if (*new_owner == '\0')
		g_hash_table_remove(self->uids, name);
}

/* a unique name's uid, if known */
static gboolean
migd_authority_cached_uid(MigdAuthority *self, GDBusConnection *connection, const gchar *sender,
			  guint32 *uid)
{
	gpointer value;

	if (connection != self->connection)
		return FALSE;
	value = g_hash_table_lookup(self->uids, sender);
	if (value == NULL)
		return FALSE;
	*uid = GPOINTER_TO_UINT(value) - 1;
	return TRUE;
}

static void
migd_authority_cache_uid(MigdAuthority *self, GDBusConnection *connection, const gchar *sender,
			 guint32 uid)
{
	/* one bus: the daemon's; a second connection is simply not cached */
	if (self->connection == NULL) {
		self->connection = g_object_ref(connection);
		self->name_owner_changed_id = g_dbus_connection_signal_subscribe(
		    connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
		    "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
		    migd_authority_name_owner_changed_cb, self, NULL);
	}
	if (connection != self->connection || uid == G_MAXUINT32)
		return;
	if (g_hash_table_size(self->uids) >= MIGD_AUTHORITY_UIDS_MAX)
		g_hash_table_remove_all(self->uids);
	g_hash_table_replace(self->uids, g_strdup(sender), GUINT_TO_POINTER(uid + 1));
}

/* ---- one check ---- */

typedef struct {
	GDBusMethodInvocation *invocation;
	const gchar *action;
	gchar *cancellation_id;
	guint32 uid;
} MigdAuthorityCheck;

static void
migd_authority_check_free(MigdAuthorityCheck *check)
{
	g_object_unref(check->invocation);
	g_free(check->cancellation_id);
	g_free(check);
}

/* the refusal, in the words vfio-migctl shows: what is needed, and why it is missing */
static void migd_authority_refuse(GTask *task, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static void
migd_authority_refuse(GTask *task, const gchar *format, ...)
{
	MigdAuthorityCheck *check = g_task_get_task_data(task);
	g_autofree gchar *reason = NULL;
	va_list args;

	va_start(args, format);
	reason = g_strdup_vprintf(format, args);
	va_end(args);
	g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_NOT_AUTHORIZED,
				"%s needs root or the polkit action %s (not authorized: %s)",
				g_dbus_method_invocation_get_method_name(check->invocation),
				check->action, reason);
}

static gboolean
migd_authority_uid_is_trusted(guint32 uid)
{
	/* the daemon's own uid: root on the system bus, the bus's only user on a session bus */
	return uid == 0 || uid == (guint32)getuid();
}

static void
migd_authority_polkit_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	MigdAuthorityCheck *check = g_task_get_task_data(task);
	GDBusConnection *connection = G_DBUS_CONNECTION(source);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(connection, result, &error);
	g_autoptr(GVariant) details = NULL;
	gboolean authorized = FALSE;
	gboolean challenge = FALSE;
	const gchar *dismissed = NULL;

	if (reply == NULL) {
		if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
		    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)) {
			migd_authority_refuse(task, "polkit is not running, so only root may call "
						    "vfio-migd");
			return;
		}
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
			/* polkit may still be waiting for an agent: let it stop */
			g_dbus_connection_call(
			    connection, MIGD_AUTHORITY_POLKIT_NAME, MIGD_AUTHORITY_POLKIT_PATH,
			    MIGD_AUTHORITY_POLKIT_INTERFACE, "CancelCheckAuthorization",
			    g_variant_new("(s)", check->cancellation_id), NULL,
			    G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, NULL, NULL);
			migd_authority_refuse(task, "polkit did not answer in time");
			return;
		}
		g_dbus_error_strip_remote_error(error);
		migd_authority_refuse(task, "polkit failed: %s", error->message);
		return;
	}
	g_variant_get(reply, "((bb@a{ss}))", &authorized, &challenge, &details);
	if (authorized) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_variant_lookup(details, "polkit.dismissed", "&s", &dismissed);
	if (dismissed != NULL)
		migd_authority_refuse(task, "the authentication was dismissed");
	else if (challenge)
		migd_authority_refuse(task,
				      "uid %u must authenticate, and the call did not allow "
				      "interactive authorization",
				      check->uid);
	else
		migd_authority_refuse(task, "polkit denies it to uid %u", check->uid);
}

static void
migd_authority_ask_polkit(GTask *task)
{
	MigdAuthority *self = g_task_get_source_object(task);
	MigdAuthorityCheck *check = g_task_get_task_data(task);
	GDBusMessage *message = g_dbus_method_invocation_get_message(check->invocation);
	gboolean interactive = (g_dbus_message_get_flags(message) &
				G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
	g_auto(GVariantBuilder) subject = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{sv}"));
	g_auto(GVariantBuilder) details = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{ss}"));

	/* the bus name, not a pid: polkit asks the bus itself, so the caller cannot be swapped */
	g_variant_builder_add(
	    &subject, "{sv}", "name",
	    g_variant_new_string(g_dbus_method_invocation_get_sender(check->invocation)));
	check->cancellation_id =
	    g_strdup_printf("vfio-migd-%d-%" G_GUINT64_FORMAT, (gint)getpid(), self->next_check++);
	g_dbus_connection_call(
	    g_dbus_method_invocation_get_connection(check->invocation), MIGD_AUTHORITY_POLKIT_NAME,
	    MIGD_AUTHORITY_POLKIT_PATH, MIGD_AUTHORITY_POLKIT_INTERFACE, "CheckAuthorization",
	    g_variant_new("((sa{sv})sa{ss}us)", "system-bus-name", &subject, check->action,
			  &details, interactive ? MIGD_AUTHORITY_POLKIT_ALLOW_USER_INTERACTION : 0u,
			  check->cancellation_id),
	    G_VARIANT_TYPE("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE,
	    interactive ? MIGD_AUTHORITY_INTERACTIVE_TIMEOUT_MS : MIGD_AUTHORITY_TIMEOUT_MS, NULL,
	    migd_authority_polkit_cb, task);
}

/* with the caller's uid known: root at once, anyone else by polkit */
static void
migd_authority_decide(GTask *task)
{
	MigdAuthorityCheck *check = g_task_get_task_data(task);

	if (migd_authority_uid_is_trusted(check->uid)) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	migd_authority_ask_polkit(task);
}

static void
migd_authority_uid_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	MigdAuthorityCheck *check = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

	if (reply == NULL) {
		g_dbus_error_strip_remote_error(error);
		migd_authority_refuse(task, "the bus cannot tell who called: %s", error->message);
		return;
	}
	g_variant_get(reply, "(u)", &check->uid);
	migd_authority_cache_uid(g_task_get_source_object(task), G_DBUS_CONNECTION(source),
				 g_dbus_method_invocation_get_sender(check->invocation),
				 check->uid);
	migd_authority_decide(g_steal_pointer(&task));
}

void
migd_authority_check_async(MigdAuthority *self, GDBusMethodInvocation *invocation,
			   GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	MigdAuthorityCheck *check;
	const gchar *sender;

	g_return_if_fail(MIGD_IS_AUTHORITY(self));
	g_return_if_fail(G_IS_DBUS_METHOD_INVOCATION(invocation));

	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, migd_authority_check_async);
	check = g_new0(MigdAuthorityCheck, 1);
	check->invocation = g_object_ref(invocation);
	check->action =
	    migd_authority_lookup_action(g_dbus_method_invocation_get_interface_name(invocation),
					 g_dbus_method_invocation_get_method_name(invocation));
	/* a method the table does not know is refused as a change: fail closed */
	if (check->action == NULL)
		check->action = MIGD_AUTHORITY_ACTION_CHANGE;
	g_task_set_task_data(task, check, (GDestroyNotify)migd_authority_check_free);

	sender = g_dbus_method_invocation_get_sender(invocation);
	if (sender == NULL) {
		/* a peer-to-peer connection: no bus, no polkit; the socket knows its peer */
		GCredentials *peer = g_dbus_connection_get_peer_credentials(
		    g_dbus_method_invocation_get_connection(invocation));
		uid_t uid = peer != NULL ? g_credentials_get_unix_user(peer, NULL) : (uid_t)-1;

		if (uid != (uid_t)-1 && migd_authority_uid_is_trusted((guint32)uid))
			g_task_return_boolean(task, TRUE);
		else
			migd_authority_refuse(
			    task, "a peer-to-peer caller must be root or the daemon's user");
		return;
	}
	/*
	 * Cached per unique name: the bus round trip doubled a root ListDevices'
	 * latency (docs/architecture.md, Authorization, has the numbers).
	 */
	if (migd_authority_cached_uid(self, g_dbus_method_invocation_get_connection(invocation),
				      sender, &check->uid)) {
		migd_authority_decide(g_steal_pointer(&task));
		return;
	}
	g_dbus_connection_call(
	    g_dbus_method_invocation_get_connection(invocation), "org.freedesktop.DBus",
	    "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
	    g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE,
	    MIGD_AUTHORITY_TIMEOUT_MS, NULL, migd_authority_uid_cb, g_steal_pointer(&task));
}

gboolean
migd_authority_check_finish(MigdAuthority *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);

	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- the skeletons' method_call ---- */

typedef struct {
	GDBusInterfaceSkeleton *skeleton;
	GDBusInterfaceMethodCallFunc method_call;
	GDBusMethodInvocation *invocation;
} MigdAuthorityDispatch;

static void
migd_authority_dispatch_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdAuthorityDispatch *d = user_data;
	GDBusMethodInvocation *invocation = d->invocation;
	GDBusConnection *connection = g_dbus_method_invocation_get_connection(invocation);
	GError *error = NULL;

	MIGD_AUTHORITY(source)->pending_dispatches--;
	if (!migd_authority_check_finish(MIGD_AUTHORITY(source), result, &error)) {
		migd_log_caller(
		    invocation, G_LOG_LEVEL_MESSAGE, NULL, NULL, "refused %s.%s: %s; called by",
		    g_dbus_method_invocation_get_interface_name(invocation),
		    g_dbus_method_invocation_get_method_name(invocation), error->message);
		g_dbus_method_invocation_take_error(invocation, error);
	} else if (!g_dbus_interface_skeleton_has_connection(d->skeleton, connection)) {
		/* a job that ended while polkit was asked: as if it had not been there */
		g_dbus_method_invocation_return_error(
		    invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT, "No object at %s",
		    g_dbus_method_invocation_get_object_path(invocation));
	} else {
		/* the generated dispatcher takes the invocation, as GDBus's own call would */
		d->method_call(connection, g_dbus_method_invocation_get_sender(invocation),
			       g_dbus_method_invocation_get_object_path(invocation),
			       g_dbus_method_invocation_get_interface_name(invocation),
			       g_dbus_method_invocation_get_method_name(invocation),
			       g_dbus_method_invocation_get_parameters(invocation), invocation,
			       d->skeleton);
	}
	g_object_unref(d->skeleton);
	g_free(d);
}

void
migd_authority_dispatch(MigdAuthority *self, GDBusInterfaceSkeleton *skeleton,
			GDBusInterfaceMethodCallFunc method_call, GDBusMethodInvocation *invocation)
{
	MigdAuthorityDispatch *d;
	GDBusConnection *connection = g_dbus_method_invocation_get_connection(invocation);
	const gchar *sender = g_dbus_method_invocation_get_sender(invocation);
	guint32 uid;

	/*
	 * a caller known to be root runs at once: no task, no extra main loop iteration;
	 * not while other calls wait for their checks, which it would overtake
	 */
	if (self->pending_dispatches == 0 && sender != NULL &&
	    migd_authority_cached_uid(self, connection, sender, &uid) &&
	    migd_authority_uid_is_trusted(uid)) {
		method_call(
		    connection, sender, g_dbus_method_invocation_get_object_path(invocation),
		    g_dbus_method_invocation_get_interface_name(invocation),
		    g_dbus_method_invocation_get_method_name(invocation),
		    g_dbus_method_invocation_get_parameters(invocation), invocation, skeleton);
		return;
	}
	d = g_new0(MigdAuthorityDispatch, 1);
	d->skeleton = g_object_ref(skeleton);
	d->method_call = method_call;
	d->invocation = invocation;
	self->pending_dispatches++;
	migd_authority_check_async(self, invocation, migd_authority_dispatch_cb, d);
}

/* ---- object ---- */

static void
migd_authority_dispose(GObject *object)
{
	MigdAuthority *self = MIGD_AUTHORITY(object);

	if (self->connection != NULL) {
		g_dbus_connection_signal_unsubscribe(self->connection, self->name_owner_changed_id);
		g_clear_object(&self->connection);
	}
	G_OBJECT_CLASS(migd_authority_parent_class)->dispose(object);
}

static void
migd_authority_finalize(GObject *object)
{
	MigdAuthority *self = MIGD_AUTHORITY(object);

	g_hash_table_unref(self->uids);
	G_OBJECT_CLASS(migd_authority_parent_class)->finalize(object);
}

static void
migd_authority_init(MigdAuthority *self)
{
	self->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void
migd_authority_class_init(MigdAuthorityClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_authority_dispose;
	object_class->finalize = migd_authority_finalize;
}

MigdAuthority *
migd_authority_new(void)
{
	return g_object_new(MIGD_TYPE_AUTHORITY, NULL);
}
