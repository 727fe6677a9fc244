/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Who may call vfio-migd, on a private bus configured like the system bus with
 * the shipped bus policy (data/org.vfiomigd.Migd1.conf): only root may own the
 * name, any user reaches the daemon, and the daemon decides. Root is allowed
 * without polkit; another user (nobody) is allowed or refused by polkit, here a
 * mock authority: this process owns org.freedesktop.PolicyKit1 on the private
 * bus (a thread of its own), answers CheckAuthorization per action id as each
 * test sets, and records what it was asked. One case runs the real polkitd
 * (test_real_polkitd; skipped where it is missing).
 * Callers are `gdbus call` and vfio-migctl run as nobody. Needs root (to be
 * root, and to become another user); skipped otherwise.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUS_NAME      "org.vfiomigd.Migd1"
#define MANAGER_PATH  "/org/vfiomigd/Migd1"
#define MANAGER	      "org.vfiomigd.Migd1.Manager"
#define POLKIT_NAME   "org.freedesktop.PolicyKit1"
#define POLKIT_PATH   "/org/freedesktop/PolicyKit1/Authority"
#define ACTION_READ   "org.vfiomigd.migd.read"
#define ACTION_CHANGE "org.vfiomigd.migd.change"
#define NOBODY	      65534

static gchar *migd_path;
static gchar *migctl_path;

/* ---- the mock polkit authority ---- */

typedef struct {
	gchar *subject_kind;
	gchar *subject_name;
	gchar *action;
	guint32 flags;
} PolkitCall;

typedef struct {
	GMutex lock;
	GCond ready_cond;
	gboolean ready;
	gchar *address;
	GThread *thread;
	GMainContext *context;
	GMainLoop *loop;
	GHashTable *answers; /* action -> "yes", "no" or "challenge"; absent: "no" */
	GPtrArray *calls;    /* PolkitCall */
} MockPolkit;

static const gchar mock_polkit_xml[] =
    "<node><interface name='org.freedesktop.PolicyKit1.Authority'>"
    "<method name='CheckAuthorization'>"
    "<arg type='(sa{sv})' direction='in'/><arg type='s' direction='in'/>"
    "<arg type='a{ss}' direction='in'/><arg type='u' direction='in'/>"
    "<arg type='s' direction='in'/><arg type='(bba{ss})' direction='out'/></method>"
    "<method name='CancelCheckAuthorization'><arg type='s' direction='in'/></method>"
    "</interface></node>";

static void
polkit_call_free(PolkitCall *call)
{
	g_free(call->subject_kind);
	g_free(call->subject_name);
	g_free(call->action);
	g_free(call);
}

static void
mock_polkit_method_call(GDBusConnection *connection, const gchar *sender, const gchar *path,
			const gchar *iface, const gchar *method, GVariant *parameters,
			GDBusMethodInvocation *invocation, gpointer user_data)
{
	MockPolkit *mock = user_data;
	g_autoptr(GVariant) subject_details = NULL;
	g_autoptr(GVariant) details = NULL;
	PolkitCall *call;
	const gchar *kind, *action, *cancellation_id, *answer;
	g_autofree gchar *answer_copy = NULL;
	guint32 flags;
	g_auto(GVariantBuilder) result = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{ss}"));

	if (g_strcmp0(method, "CancelCheckAuthorization") == 0) {
		g_dbus_method_invocation_return_value(invocation, NULL);
		return;
	}
	g_variant_get(parameters, "((&s@a{sv})&s@a{ss}u&s)", &kind, &subject_details, &action,
		      &details, &flags, &cancellation_id);
	call = g_new0(PolkitCall, 1);
	call->subject_kind = g_strdup(kind);
	g_variant_lookup(subject_details, "name", "s", &call->subject_name);
	call->action = g_strdup(action);
	call->flags = flags;
	g_mutex_lock(&mock->lock);
	g_ptr_array_add(mock->calls, call);
	answer = g_hash_table_lookup(mock->answers, action);
	answer_copy = g_strdup(answer != NULL ? answer : "no");
	g_mutex_unlock(&mock->lock);
	g_dbus_method_invocation_return_value(
	    invocation,
	    g_variant_new("((bb@a{ss}))", g_str_equal(answer_copy, "yes"),
			  g_str_equal(answer_copy, "challenge"), g_variant_builder_end(&result)));
}

static const GDBusInterfaceVTable mock_polkit_vtable = {
    mock_polkit_method_call, NULL, NULL, {NULL}};

static gpointer
mock_polkit_thread(gpointer user_data)
{
	MockPolkit *mock = user_data;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml(mock_polkit_xml, NULL);
	g_autoptr(GVariant) reply = NULL;
	guint id;

	g_main_context_push_thread_default(mock->context);
	connection = g_dbus_connection_new_for_address_sync(
	    mock->address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, NULL);
	g_assert(connection != NULL);
	id = g_dbus_connection_register_object(connection, POLKIT_PATH, info->interfaces[0],
					       &mock_polkit_vtable, mock, NULL, NULL);
	g_assert(id != 0);
	reply = g_dbus_connection_call_sync(
	    connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
	    "RequestName", g_variant_new("(su)", POLKIT_NAME, 0u), G_VARIANT_TYPE("(u)"),
	    G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
	g_assert(reply != NULL);
	g_mutex_lock(&mock->lock);
	mock->ready = TRUE;
	g_cond_signal(&mock->ready_cond);
	g_mutex_unlock(&mock->lock);
	g_main_loop_run(mock->loop);
	g_dbus_connection_unregister_object(connection, id);
	g_dbus_connection_close_sync(connection, NULL, NULL);
	g_main_context_pop_thread_default(mock->context);
	return NULL;
}

static MockPolkit *
mock_polkit_start(const gchar *address)
{
	MockPolkit *mock = g_new0(MockPolkit, 1);

	g_mutex_init(&mock->lock);
	g_cond_init(&mock->ready_cond);
	mock->address = g_strdup(address);
	mock->context = g_main_context_new();
	mock->loop = g_main_loop_new(mock->context, FALSE);
	mock->answers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	mock->calls = g_ptr_array_new_with_free_func((GDestroyNotify)polkit_call_free);
	mock->thread = g_thread_new("mock-polkit", mock_polkit_thread, mock);
	g_mutex_lock(&mock->lock);
	while (!mock->ready)
		g_cond_wait(&mock->ready_cond, &mock->lock);
	g_mutex_unlock(&mock->lock);
	return mock;
}

static void
mock_polkit_stop(MockPolkit *mock)
{
	if (mock == NULL)
		return;
	g_main_loop_quit(mock->loop);
	g_thread_join(mock->thread);
	g_main_loop_unref(mock->loop);
	g_main_context_unref(mock->context);
	g_hash_table_unref(mock->answers);
	g_ptr_array_unref(mock->calls);
	g_free(mock->address);
	g_mutex_clear(&mock->lock);
	g_cond_clear(&mock->ready_cond);
	g_free(mock);
}

static void
mock_polkit_answer(MockPolkit *mock, const gchar *action, const gchar *answer)
{
	g_mutex_lock(&mock->lock);
	g_hash_table_replace(mock->answers, g_strdup(action), g_strdup(answer));
	g_mutex_unlock(&mock->lock);
}

static guint
mock_polkit_n_calls(MockPolkit *mock)
{
	guint n;

	g_mutex_lock(&mock->lock);
	n = mock->calls->len;
	g_mutex_unlock(&mock->lock);
	return n;
}

/*
 * the @i-th question polkit was asked, or NULL (the mock only appends: the pointer
 * stays valid); the caller asserts, outside the lock: a failure jumps out of the test
 */
static const PolkitCall *
mock_polkit_call(MockPolkit *mock, guint i)
{
	const PolkitCall *call = NULL;

	g_mutex_lock(&mock->lock);
	if (i < mock->calls->len)
		call = g_ptr_array_index(mock->calls, i);
	g_mutex_unlock(&mock->lock);
	return call;
}

/* ---- the private system-like bus and the daemon ---- */

typedef struct {
	gchar *dir;
	gchar *address;
	GSubprocess *bus;
	GSubprocess *daemon;
	MockPolkit *polkit;    /* NULL: the mock is not running */
	GSubprocess *polkitd;  /* the real one, in test_real_polkitd */
	GDBusConnection *root; /* this process (root) on the bus */
} PolicyBus;

typedef enum {
	POLKIT_MOCK,
	POLKIT_NONE,
	POLKIT_REAL,
} PolkitMode;

/* Debian's polkitd, and elsewhere's */
static const gchar *const polkitd_paths[] = {"/usr/lib/polkit-1/polkitd", "/usr/libexec/polkitd",
					     NULL};

static const gchar *
polkitd_path(void)
{
	for (guint i = 0; polkitd_paths[i] != NULL; i++)
		if (g_file_test(polkitd_paths[i], G_FILE_TEST_IS_EXECUTABLE))
			return polkitd_paths[i];
	return NULL;
}

/*
 * The system bus's default policy, the file vfio-migd ships, and what polkit's own
 * file (org.freedesktop.PolicyKit1.conf) allows: root owns its name, anyone calls it.
 */
static gchar *
policy_bus_config(const gchar *dir, PolkitMode mode)
{
	/* the real polkitd runs as its own user, which its bus policy lets own the name */
	const gchar *polkitd_policy = mode == POLKIT_REAL ? "  <policy user=\"polkitd\">\n"
							    "    <allow own=\"" POLKIT_NAME "\"/>\n"
							    "  </policy>\n"
							  : "";

	return g_strdup_printf(
	    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" "
	    "\"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	    "<busconfig>\n"
	    "  <type>system</type>\n"
	    "  <listen>unix:path=%s/bus</listen>\n"
	    "  <auth>EXTERNAL</auth>\n"
	    "  <policy context=\"default\">\n"
	    "    <allow user=\"*\"/>\n"
	    "    <deny own=\"*\"/>\n"
	    "    <deny send_type=\"method_call\"/>\n"
	    "    <allow send_type=\"signal\"/>\n"
	    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	    "    <allow receive_type=\"method_call\"/>\n"
	    "    <allow receive_type=\"method_return\"/>\n"
	    "    <allow receive_type=\"error\"/>\n"
	    "    <allow receive_type=\"signal\"/>\n"
	    "    <allow send_destination=\"org.freedesktop.DBus\" "
	    "send_interface=\"org.freedesktop.DBus\"/>\n"
	    "  </policy>\n"
	    "  <policy user=\"root\">\n"
	    "    <allow own=\"" POLKIT_NAME "\"/>\n"
	    "  </policy>\n"
	    "%s"
	    "  <policy context=\"default\">\n"
	    "    <allow send_destination=\"" POLKIT_NAME "\"/>\n"
	    "  </policy>\n"
	    "  <include>%s</include>\n"
	    "</busconfig>\n",
	    dir, polkitd_policy, POLICY_FILE);
}

static gboolean
policy_bus_wait_name(const gchar *address, const gchar *name, gint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GDBusConnection) conn = g_dbus_connection_new_for_address_sync(
		    address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL, NULL, NULL);
		g_autoptr(GVariant) reply = NULL;
		gboolean has = FALSE;
		if (conn != NULL)
			reply = g_dbus_connection_call_sync(
			    conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			    "org.freedesktop.DBus", "NameHasOwner", g_variant_new("(s)", name),
			    G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
		if (reply != NULL)
			g_variant_get(reply, "(b)", &has);
		if (has)
			return TRUE;
		g_usleep(50 * 1000);
	}
	return FALSE;
}

/* the bus accepts connections: dbus-daemon creates its socket after it started */
static gboolean
policy_bus_wait_ready(const gchar *address, gint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GDBusConnection) conn = g_dbus_connection_new_for_address_sync(
		    address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL, NULL, NULL);
		if (conn != NULL)
			return TRUE;
		g_usleep(20 * 1000);
	}
	return FALSE;
}

static int teardown(void **state);

/* the bus and the daemon end with this process, even when a failure aborts it */
static void
die_with_parent(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn_child(GSubprocessFlags flags, const gchar *const *argv)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(flags);
	g_autoptr(GError) error = NULL;
	GSubprocess *child;

	g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
	child = g_subprocess_launcher_spawnv(launcher, argv, &error);
	if (child == NULL)
		fail_msg("%s: %s", argv[0], error->message);
	return child;
}

/*
 * The real polkitd on the private bus, reading the shipped actions and a rule that
 * grants nobody the read action: both directories are bound over the system's in a
 * mount namespace of its own, so nothing is installed. NULL (and the test skipped)
 * where polkitd or mount namespaces are missing.
 */
static GSubprocess *
polkitd_start(PolicyBus *pb)
{
	g_autofree gchar *actions = g_build_filename(pb->dir, "actions", NULL);
	g_autofree gchar *rules = g_build_filename(pb->dir, "rules", NULL);
	g_autofree gchar *policy = NULL;
	g_autofree gchar *policy_copy = g_build_filename(actions, "org.vfiomigd.migd.policy", NULL);
	g_autofree gchar *rule = g_build_filename(rules, "50-vfio-migd-test.rules", NULL);
	const gchar *polkitd = polkitd_path();
	GSubprocess *child;

	if (polkitd == NULL)
		return NULL;
	g_assert(g_mkdir(actions, 0755) == 0 && g_mkdir(rules, 0755) == 0);
	g_assert(g_file_get_contents(POLKIT_POLICY_FILE, &policy, NULL, NULL));
	g_assert(g_file_set_contents(policy_copy, policy, -1, NULL));
	g_assert(g_file_set_contents(rule,
				     "polkit.addRule(function(action, subject) {\n"
				     "  if (action.id == \"" ACTION_READ
				     "\" && subject.user == \"nobody\")\n"
				     "    return polkit.Result.YES;\n"
				     "});\n",
				     -1, NULL));
	g_chmod(policy_copy, 0644);
	g_chmod(rule, 0644);
	{
		const gchar *argv[] = {"unshare",
				       "-m",
				       "sh",
				       "-c",
				       "mount --bind \"$1\" /usr/share/polkit-1/actions && "
				       "mount --bind \"$2\" /etc/polkit-1/rules.d && "
				       "exec \"$3\" --no-debug",
				       "sh",
				       actions,
				       rules,
				       polkitd,
				       NULL};
		child = spawn_child(
		    G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, argv);
	}
	if (!policy_bus_wait_name(pb->address, POLKIT_NAME, 20)) {
		g_subprocess_force_exit(child);
		g_subprocess_wait(child, NULL, NULL);
		g_object_unref(child);
		return NULL;
	}
	return child;
}

static int
setup_common(void **state, PolkitMode mode)
{
	PolicyBus *pb = g_new0(PolicyBus, 1);
	g_autofree gchar *config = NULL;
	g_autofree gchar *config_path = NULL;
	g_autofree gchar *state_dir = NULL;
	g_autoptr(GError) error = NULL;

	pb->dir = g_dir_make_tmp("migd-policy-XXXXXX", NULL);
	/* the other user must reach the socket, and be refused or allowed by the daemon */
	g_chmod(pb->dir, 0755);
	config = policy_bus_config(pb->dir, mode);
	config_path = g_build_filename(pb->dir, "bus.conf", NULL);
	state_dir = g_build_filename(pb->dir, "state", NULL);
	g_assert(g_file_set_contents(config_path, config, -1, NULL));
	pb->address = g_strdup_printf("unix:path=%s/bus", pb->dir);
	{
		const gchar *argv[] = {"dbus-daemon", "--nofork", "--config-file", config_path,
				       NULL};
		pb->bus = spawn_child(G_SUBPROCESS_FLAGS_STDERR_SILENCE, argv);
	}
	/*
	 * started before the bus listens, vfio-migd cannot connect and exits (seen
	 * on a loaded machine): the bus must be up first
	 */
	if (!policy_bus_wait_ready(pb->address, 20)) {
		g_printerr("the policy bus did not come up\n");
		g_subprocess_force_exit(pb->bus);
		g_subprocess_wait(pb->bus, NULL, NULL);
		return -1;
	}
	/* vfio-migd (and vfio-migctl, polkitd) on "the system bus", as the services would */
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", pb->address, TRUE);
	if (mode == POLKIT_MOCK)
		pb->polkit = mock_polkit_start(pb->address);
	if (mode == POLKIT_REAL)
		pb->polkitd = polkitd_start(pb);
	{
		const gchar *argv[] = {migd_path,     "--sim-device", "mlx5:seed=1",
				       "--state-dir", state_dir,      NULL};
		pb->daemon = spawn_child(G_SUBPROCESS_FLAGS_NONE, argv);
	}
	if (!policy_bus_wait_name(pb->address, BUS_NAME, 20)) {
		g_printerr("vfio-migd did not own %s on the policy bus\n", BUS_NAME);
		/* stop what was started, so that the failure is prompt, not a timeout */
		teardown((void **)&pb);
		return -1;
	}
	pb->root = g_dbus_connection_new_for_address_sync(
	    pb->address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, &error);
	g_assert(pb->root != NULL);
	*state = pb;
	return 0;
}

static int
setup(void **state)
{
	return setup_common(state, POLKIT_MOCK);
}

static int
setup_no_polkit(void **state)
{
	return setup_common(state, POLKIT_NONE);
}

static int
setup_real_polkit(void **state)
{
	return setup_common(state, POLKIT_REAL);
}

static int
teardown(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *cmd = NULL;

	if (pb == NULL)
		return 0;
	g_clear_object(&pb->root);
	g_subprocess_send_signal(pb->daemon, SIGTERM);
	g_subprocess_wait(pb->daemon, NULL, NULL);
	mock_polkit_stop(pb->polkit);
	if (pb->polkitd != NULL) {
		g_subprocess_send_signal(pb->polkitd, SIGTERM);
		g_subprocess_wait(pb->polkitd, NULL, NULL);
		g_object_unref(pb->polkitd);
	}
	g_subprocess_force_exit(pb->bus);
	g_subprocess_wait(pb->bus, NULL, NULL);
	g_object_unref(pb->daemon);
	g_object_unref(pb->bus);
	cmd = g_strdup_printf("rm -rf '%s'", pb->dir);
	g_assert(system(cmd) == 0);
	g_free(pb->address);
	g_free(pb->dir);
	g_free(pb);
	return 0;
}

/* ---- callers ---- */

static void
become_user(gpointer user_data)
{
	uid_t uid = GPOINTER_TO_UINT(user_data);
	/* a fresh process that execs: no GLib state is inherited across the fork */
	if (uid != 0 && (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
		_exit(127);
}

/* @argv as @uid; returns its exit status, *@out and *@err get its output */
static gint
run_as(uid_t uid, gchar **out, gchar **err, const gchar *const *argv)
{
	gint status = -1;
	g_autoptr(GError) error = NULL;

	g_assert(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, become_user,
			      GUINT_TO_POINTER(uid), out, err, &status, &error));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `gdbus call` as @uid (--interactive when @interactive); arguments end with NULL */
static gint
gdbus_as(uid_t uid, gboolean interactive, gchar **err, const gchar *address, const gchar *dest,
	 const gchar *path, const gchar *method, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree gchar *out = NULL;
	const gchar *arg;
	va_list args;

	g_ptr_array_add(argv, (gpointer) "gdbus");
	g_ptr_array_add(argv, (gpointer) "call");
	if (interactive)
		g_ptr_array_add(argv, (gpointer) "--interactive");
	g_ptr_array_add(argv, (gpointer) "--address");
	g_ptr_array_add(argv, (gpointer)address);
	g_ptr_array_add(argv, (gpointer) "--dest");
	g_ptr_array_add(argv, (gpointer)dest);
	g_ptr_array_add(argv, (gpointer) "--object-path");
	g_ptr_array_add(argv, (gpointer)path);
	g_ptr_array_add(argv, (gpointer) "--method");
	g_ptr_array_add(argv, (gpointer)method);
	va_start(args, method);
	while ((arg = va_arg(args, const gchar *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	/* its stdout (the reply) must not mix with the TAP stream */
	return run_as(uid, &out, err, (const gchar *const *)argv->pdata);
}

static GVariant *
root_call(PolicyBus *pb, const gchar *method, GVariant *params, const gchar *reply_type)
{
	g_autoptr(GError) error = NULL;
	GVariant *reply = g_dbus_connection_call_sync(pb->root, BUS_NAME, MANAGER_PATH, MANAGER,
						      method, params, G_VARIANT_TYPE(reply_type),
						      G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);

	if (reply == NULL)
		fail_msg("%s as root: %s", method, error->message);
	return reply;
}

static gsize
root_n_devices(PolicyBus *pb)
{
	g_autoptr(GVariant) reply = root_call(pb, "ListDevices", NULL, "(a(sa{sv}))");
	g_autoptr(GVariant) devices = g_variant_get_child_value(reply, 0);

	return g_variant_n_children(devices);
}

static gsize
root_n_listeners(PolicyBus *pb)
{
	g_autoptr(GVariant) reply = root_call(pb, "ListListeners", NULL, "(as)");
	g_autoptr(GVariant) addresses = g_variant_get_child_value(reply, 0);

	return g_variant_n_children(addresses);
}

static void
assert_contains(const gchar *text, const gchar *what)
{
	if (text == NULL || strstr(text, what) == NULL)
		fail_msg("'%s' not in: %s", what, text != NULL ? text : "(null)");
}

/* a question about nobody's call: through its bus name, as polkit wants it */
static void
assert_polkit_asked(MockPolkit *mock, guint i, const gchar *action, guint32 flags)
{
	const PolkitCall *call = mock_polkit_call(mock, i);

	if (call == NULL) {
		fail_msg("polkit was not asked question #%u", i);
		return;
	}

	assert_string_equal(call->action, action);
	assert_string_equal(call->subject_kind, "system-bus-name");
	assert_non_null(call->subject_name);
	assert_true(call->subject_name[0] == ':');
	assert_int_equal(call->flags, flags);
}

/* ---- the cases ---- */

/* the bus: only root owns the name, anyone reaches the daemon (which then decides) */
static void
test_bus_policy(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;

	/* nobody may not take the daemon's name */
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, "org.freedesktop.DBus",
				      "/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName",
				      BUS_NAME, "uint32 0", NULL),
			     0);
	assert_contains(err, "AccessDenied");
	/* nobody's call reaches the daemon: the refusal is the daemon's, not the bus's */
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".ListDevices", NULL),
			     0);
	assert_contains(err, "org.vfiomigd.Migd1.Error.NotAuthorized");
	assert_null(strstr(err, "AccessDenied"));
	/* introspection reaches the daemon too, and is GDBus's, not a method of ours */
	g_clear_pointer(&err, g_free);
	assert_int_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  "org.freedesktop.DBus.Introspectable.Introspect", NULL),
			 0);
}

/* root never waits for polkit: the mock is not even asked */
static void
test_root_without_polkit(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;
	g_autofree gchar *listen_address = g_strdup_printf("unix:%s/listen", pb->dir);
	g_autoptr(GVariant) reply = NULL;

	assert_int_equal(gdbus_as(0, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".ListDevices", NULL),
			 0);
	/* a change, with its arguments passed through to the handler */
	reply = root_call(pb, "Listen",
			  g_variant_new_parsed("(%s, {'plain': <true>})", listen_address), "(s)");
	assert_int_equal(root_n_listeners(pb), 1);
	assert_int_equal(mock_polkit_n_calls(pb->polkit), 0);
}

static void
test_read_allowed(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;

	mock_polkit_answer(pb->polkit, ACTION_READ, "yes");
	assert_int_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".ListDevices", NULL),
			 0);
	assert_int_equal(mock_polkit_n_calls(pb->polkit), 1);
	assert_polkit_asked(pb->polkit, 0, ACTION_READ, 0);
}

static void
test_read_refused(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;

	mock_polkit_answer(pb->polkit, ACTION_READ, "no");
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".ListJobs", NULL),
			     0);
	assert_contains(err, "org.vfiomigd.Migd1.Error.NotAuthorized");
	assert_contains(err, "ListJobs needs root or the polkit action org.vfiomigd.migd.read "
			     "(not authorized: polkit denies it to uid 65534)");
	assert_polkit_asked(pb->polkit, 0, ACTION_READ, 0);
	/* polkit would ask for a password, but the caller did not allow interaction */
	mock_polkit_answer(pb->polkit, ACTION_READ, "challenge");
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".ListJobs", NULL),
			     0);
	assert_contains(err, "uid 65534 must authenticate, and the call did not allow interactive "
			     "authorization");
}

/* a change refused touches nothing; the read allowed to the same caller is not enough */
static void
test_change_refused(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;
	/* a Listen root could do: only the authority stands in the way */
	g_autofree gchar *listen_address = g_strdup_printf("unix:%s/listen", pb->dir);

	mock_polkit_answer(pb->polkit, ACTION_READ, "yes");
	mock_polkit_answer(pb->polkit, ACTION_CHANGE, "no");
	assert_int_equal(root_n_devices(pb), 1);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".AddDevice", "sim9", "{'sim-spec': <'mlx5:seed=9'>}",
				      NULL),
			     0);
	assert_contains(err, "AddDevice needs root or the polkit action org.vfiomigd.migd.change");
	assert_polkit_asked(pb->polkit, 0, ACTION_CHANGE, 0);
	assert_int_equal(root_n_devices(pb), 1);
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".Listen", listen_address, "{'plain': <true>}", NULL),
			     0);
	assert_contains(err, "Listen needs root or the polkit action org.vfiomigd.migd.change");
	assert_int_equal(root_n_listeners(pb), 0);
	/* root was never a question */
	assert_int_equal(mock_polkit_n_calls(pb->polkit), 2);
}

/* allowed, the call runs with its arguments */
static void
test_change_allowed(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;

	mock_polkit_answer(pb->polkit, ACTION_CHANGE, "yes");
	assert_int_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".AddDevice", "sim9", "{'sim-spec': <'mlx5:seed=9'>}",
				  NULL),
			 0);
	assert_int_equal(root_n_devices(pb), 2);
	/* the handler's own errors still come through */
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".AddDevice", "sim9", "{'sim-spec': <'mlx5:seed=9'>}",
				      NULL),
			     0);
	assert_contains(err, "org.vfiomigd.Migd1.Error.InvalidArgument");
}

/* polls @job's Phase as root until it is @phase */
static gboolean
job_wait_phase(PolicyBus *pb, const gchar *job, const gchar *phase, gint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
		    pb->root, BUS_NAME, job, "org.freedesktop.DBus.Properties", "Get",
		    g_variant_new("(ss)", "org.vfiomigd.Migd1.Job", "Phase"), G_VARIANT_TYPE("(v)"),
		    G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
		g_autoptr(GVariant) value = NULL;

		if (reply != NULL) {
			g_variant_get(reply, "(v)", &value);
			if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) &&
			    g_str_equal(g_variant_get_string(value, NULL), phase))
				return TRUE;
		}
		g_usleep(20 * 1000);
	}
	return FALSE;
}

/* a job's methods pass the same check: a job to an address nobody listens on */
static void
test_job_methods(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;
	g_autofree gchar *unix_address = g_strdup_printf("unix:%s/nobody-listens", pb->dir);
	g_autoptr(GVariant) reply = NULL;
	const gchar *job = NULL;

	reply = root_call(pb, "Migrate",
			  g_variant_new_parsed("(%s, ['sim0'], {'plain': <true>})", unix_address),
			  "(o)");
	g_variant_get(reply, "(&o)", &job);
	/* ended before anyone cancels it: the allowed Cancel below then meets the handler's error
	 */
	assert_true(job_wait_phase(pb, job, "failed", 10));
	mock_polkit_answer(pb->polkit, ACTION_CHANGE, "no");
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, job,
				      "org.vfiomigd.Migd1.Job.Cancel", NULL),
			     0);
	assert_contains(err, "Cancel needs root or the polkit action org.vfiomigd.migd.change");
	assert_polkit_asked(pb->polkit, 0, ACTION_CHANGE, 0);
	/* allowed, the job's own handler answers (the job ended: nobody listens) */
	mock_polkit_answer(pb->polkit, ACTION_CHANGE, "yes");
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, job,
				      "org.vfiomigd.Migd1.Job.Cancel", NULL),
			     0);
	assert_contains(err, "already finished");
	assert_polkit_asked(pb->polkit, 1, ACTION_CHANGE, 0);
	/* properties are readable by whoever reaches the bus, as udisks' are */
	g_clear_pointer(&err, g_free);
	assert_int_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, job,
				  "org.freedesktop.DBus.Properties.Get", "org.vfiomigd.Migd1.Job",
				  "Role", NULL),
			 0);
	assert_int_equal(mock_polkit_n_calls(pb->polkit), 2);
}

/* polkit may ask the user only when the caller said it may wait for that */
static void
test_interactive_passed_on(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;

	mock_polkit_answer(pb->polkit, ACTION_READ, "yes");
	assert_int_equal(gdbus_as(NOBODY, TRUE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".ListDevices", NULL),
			 0);
	g_clear_pointer(&err, g_free);
	assert_int_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".ListDevices", NULL),
			 0);
	assert_polkit_asked(pb->polkit, 0, ACTION_READ, 1);
	assert_polkit_asked(pb->polkit, 1, ACTION_READ, 0);
}

/* vfio-migctl as nobody says what is missing */
static void
test_migctl_refused(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	const gchar *argv[] = {migctl_path, "devices", NULL};

	mock_polkit_answer(pb->polkit, ACTION_READ, "no");
	assert_int_equal(run_as(NOBODY, &out, &err, argv), 1);
	assert_contains(err, "vfio-migctl: ListDevices needs root or the polkit action "
			     "org.vfiomigd.migd.read (not authorized: polkit denies it to uid "
			     "65534): run vfio-migctl as root (sudo), or ask an administrator");
	assert_null(strstr(err, "GDBus.Error"));
	/* allowed, it lists */
	mock_polkit_answer(pb->polkit, ACTION_READ, "yes");
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	assert_int_equal(run_as(NOBODY, &out, &err, argv), 0);
	assert_contains(out, "sim0");
}

/* without polkit only root gets in, and the refusal says why */
static void
test_no_polkit(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	const gchar *argv[] = {migctl_path, "devices", NULL};

	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".ListDevices", NULL),
			     0);
	assert_contains(err, "ListDevices needs root or the polkit action org.vfiomigd.migd.read "
			     "(not authorized: polkit is not running, so only root may call "
			     "vfio-migd)");
	g_clear_pointer(&err, g_free);
	assert_int_equal(run_as(NOBODY, &out, &err, argv), 1);
	assert_contains(err, "polkit is not running");
	g_clear_pointer(&err, g_free);
	assert_int_equal(gdbus_as(0, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".ListDevices", NULL),
			 0);
}

/*
 * The real polkitd (with the shipped actions and a rule granting nobody the read
 * action): the daemon speaks its protocol. Without a session, the change action's
 * auth_admin is a challenge the non-interactive caller cannot meet.
 */
static void
test_real_polkitd(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;
	g_autofree gchar *listen_address = g_strdup_printf("unix:%s/listen", pb->dir);

	if (pb->polkitd == NULL) {
		printf("# skipped: polkitd or a mount namespace is missing\n");
		return;
	}
	assert_int_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				  MANAGER ".ListDevices", NULL),
			 0);
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, FALSE, &err, pb->address, BUS_NAME, MANAGER_PATH,
				      MANAGER ".Listen", listen_address, "{'plain': <true>}", NULL),
			     0);
	assert_contains(err, "Listen needs root or the polkit action org.vfiomigd.migd.change "
			     "(not authorized: uid 65534 must authenticate");
	assert_int_equal(root_n_listeners(pb), 0);
}

/*
 * Not a check: what the root fast path costs, printed for the report (the
 * timings of a shared machine are no pass or fail). 1000 ListDevices as root,
 * one after another.
 */
static void
test_root_latency(void **state)
{
	PolicyBus *pb = *state;
	const guint n = 1000;
	gint64 start = g_get_monotonic_time();

	for (guint i = 0; i < n; i++)
		g_variant_unref(root_call(pb, "ListDevices", NULL, "(a(sa{sv}))"));
	printf("# %u ListDevices as root: %.1f us per call\n", n,
	       (gdouble)(g_get_monotonic_time() - start) / n);
	assert_int_equal(mock_polkit_n_calls(pb->polkit), 0);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bus_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_without_polkit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_allowed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_allowed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_methods, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interactive_passed_on, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migctl_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_polkit, setup_no_polkit, teardown),
	    cmocka_unit_test_setup_teardown(test_real_polkitd, setup_real_polkit, teardown),
	    cmocka_unit_test_setup_teardown(test_root_latency, setup, teardown),
	};
	if (argc < 3) {
		g_printerr("usage: %s VFIO_MIGD VFIO_MIGCTL\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		/* TAP: a skipped plan, said plainly */
		printf("1..0 # SKIP needs root to become another user\n");
		return 0;
	}
	migd_path = g_canonicalize_filename(argv[1], NULL);
	migctl_path = g_canonicalize_filename(argv[2], NULL);
	return cmocka_run_group_tests_name("dbus-policy", tests, NULL, NULL);
}
