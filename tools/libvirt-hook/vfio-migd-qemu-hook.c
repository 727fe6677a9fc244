/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd-qemu-hook: libvirt's qemu hook for the DESTINATION host, installed
 * as /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook (docs/libvirt.md,
 * docs/ABI/testing/libvirt-hook). libvirt runs it as
 *
 *   qemu.d/vfio-migd-qemu-hook DOMAIN OPERATION SUB-OPERATION EXTRA  (XML on stdin)
 *
 * On "migrate begin" (an incoming migration, before anything is started) it
 * finds the domain's host devices that the configuration maps to vfio-migd
 * devices, checks with the local daemon that it serves them and that they are
 * idle, has it listen for the source daemon (unless the daemon receives on
 * a socket of its own, vfio-migd.socket: no [listen] address), and reserves the
 * devices for this domain (Expect, the migration id being the domain's UUID,
 * which the source's libvirt bridge sends). On "stopped end" and "release end"
 * it cancels an expectation a failed incoming migration left. It exits 0 for
 * every other operation and for domains without mapped devices; otherwise
 * non-zero with a reason on stderr, which makes libvirt refuse the migration
 * and log it.
 *
 * Why C and not sh: the domain XML must be read robustly (GMarkup, not grep),
 * the wait on the daemon must be bounded and its children killed, and the
 * daemon's answer is JSON. It links neither libvirt nor the D-Bus bindings and
 * talks to vfio-migd only through vfio-migctl: libvirt holds its locks while a
 * hook runs, so a hook that called libvirt back would deadlock.
 *
 * "migrate" is a filter: what a hook prints on stdout replaces the domain XML
 * for the next hook, and nothing means unchanged. This hook never writes to
 * stdout.
 */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-hook-core.h"

/* meson passes both from the install prefix; these are Debian's paths */
#ifndef MIGD_HOOK_CONFIG_FILE
#define MIGD_HOOK_CONFIG_FILE "/etc/vfio-migd/libvirt-hook.conf"
#endif
#ifndef MIGD_HOOK_MIGCTL
#define MIGD_HOOK_MIGCTL "/usr/bin/vfio-migctl"
#endif

#define HOOK_NAME "vfio-migd-qemu-hook"
/* libvirt's domain XML is a few KiB; a hundred devices still fit many times */
#define HOOK_MAX_XML (16 * 1024 * 1024)

#define HOOK_EXIT_OK	0
#define HOOK_EXIT_FAIL	1
#define HOOK_EXIT_USAGE 2

static gchar *
hook_read_stdin(GError **error)
{
	g_autoptr(GString) xml = g_string_new(NULL);
	gchar buf[65536];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "cannot read the domain XML on stdin: %s", g_strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		if (xml->len + (gsize)n > HOOK_MAX_XML) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "the domain XML on stdin exceeds %d bytes", HOOK_MAX_XML);
			return NULL;
		}
		g_string_append_len(xml, buf, n);
	}
	return g_string_free(g_steal_pointer(&xml), FALSE);
}

static gint
hook_fail(const gchar *domain, const GError *error)
{
	/* libvirt logs a failing hook's stderr with its exit status */
	g_printerr("%s: refusing the incoming migration of domain '%s': %s\n", HOOK_NAME, domain,
		   error->message);
	return HOOK_EXIT_FAIL;
}

/* runs one vfio-migctl command within @deadline; its JSON, or NULL and @error
 * (NULL without an error: "already listening" with @busy_ok) */
static JsonObject *
hook_migctl(GStrv argv, gint64 deadline, gboolean busy_ok, GError **error)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = 0;

	if (!migd_hook_run((const gchar *const *)argv, deadline, &out, &err, &status, error)) {
		if (g_error_matches(*error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT))
			g_prefix_error(error, "vfio-migd did not answer in time: ");
		return NULL;
	}
	return migd_hook_migctl_result(status, out, err, busy_ok, error);
}

/* the configuration, the domain and its vfio-migd devices; NULL: nothing to do
 * (or @error) */
static GPtrArray *
hook_load(const gchar *object, MigdHookConfig **config, MigdHookDomain **domain,
	  const gchar **listen, GError **error)
{
	const gchar *config_path = g_getenv("VFIO_MIGD_HOOK_CONFIG");
	g_autofree gchar *xml = NULL;

	*config =
	    migd_hook_config_load(config_path != NULL ? config_path : MIGD_HOOK_CONFIG_FILE, error);
	if (*config == NULL)
		return NULL;
	/* nothing configured: libvirt may close stdin unread (it ignores EPIPE) */
	if (migd_hook_config_is_empty(*config))
		return NULL;
	xml = hook_read_stdin(error);
	if (xml == NULL)
		return NULL;
	/* unreadable XML might hide mapped devices: refuse rather than guess */
	*domain = migd_hook_domain_parse(xml, -1, error);
	if (*domain == NULL) {
		g_prefix_error(error, "cannot read the domain XML libvirt passed: ");
		return NULL;
	}
	return migd_hook_plan(*config, object, *domain, listen);
}

static const gchar *
hook_migctl_path(const MigdHookConfig *config)
{
	const gchar *migctl = g_getenv("VFIO_MIGD_HOOK_MIGCTL");

	if (migctl != NULL)
		return migctl;
	return config->migctl != NULL ? config->migctl : MIGD_HOOK_MIGCTL;
}

/* TRUE when vfio-migd had an expectation of @migration_id and cancelled it */
static gboolean
hook_cancel_expectation(const MigdHookConfig *config, const gchar *migctl,
			const gchar *migration_id, gint64 deadline)
{
	g_auto(GStrv) argv = migd_hook_cancel_expectation_argv(config, migctl, migration_id);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) json = hook_migctl(argv, deadline, FALSE, &error);

	return json != NULL;
}

/* "migrate begin": prepare vfio-migd for the domain's devices */
static gint
hook_migrate_begin(const gchar *object)
{
	g_autoptr(MigdHookConfig) config = NULL;
	g_autoptr(MigdHookDomain) domain = NULL;
	g_autoptr(GPtrArray) devices = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) json = NULL;
	g_autofree gchar *list = NULL;
	g_autofree gchar *where = NULL;
	g_auto(GStrv) argv = NULL;
	const gchar *listen = NULL;
	const gchar *migctl;
	gboolean listened = FALSE;
	gint64 deadline;

	devices = hook_load(object, &config, &domain, &listen, &error);
	if (error != NULL)
		return hook_fail(object, error);
	if (devices == NULL || devices->len == 0)
		return HOOK_EXIT_OK; /* not a vfio-migd domain */

	g_ptr_array_add(devices, NULL);
	list = g_strjoinv(", ", (gchar **)devices->pdata);
	g_ptr_array_set_size(devices, devices->len - 1);
	migctl = hook_migctl_path(config);
	/* one budget for the whole conversation with the daemon */
	deadline = g_get_monotonic_time() + (gint64)config->timeout_ms * 1000;

	argv = migd_hook_devices_argv(config, migctl);
	json = hook_migctl(argv, deadline, FALSE, &error);
	if (json == NULL || !migd_hook_check_devices(json, devices, domain->uuid, &error)) {
		if (!g_str_has_prefix(error->message, "vfio-migd did not answer in time"))
			g_prefix_error(&error, "cannot prepare vfio-migd devices %s: ", list);
		return hook_fail(object, error);
	}

	/* without [listen] address the daemon receives on a socket of its own
	 * (vfio-migd.socket) */
	if (listen != NULL) {
		g_clear_pointer(&argv, g_strfreev);
		g_clear_pointer(&json, json_object_unref);
		argv = migd_hook_listen_argv(config, migctl, listen);
		json = hook_migctl(argv, deadline, TRUE, &error);
		if (error != NULL) {
			if (!g_str_has_prefix(error->message, "vfio-migd did not answer in time"))
				g_prefix_error(&error, "vfio-migd cannot listen on %s: ", listen);
			return hook_fail(object, error);
		}
		listened = json != NULL;
	}
	where = listen == NULL ? g_strdup("")
		: listened     ? g_strdup_printf(" on %s", listen)
			       : g_strdup_printf(" on %s (it was already listening)", listen);

	/* reserve exactly these devices for this domain: the source's device job
	 * carries the domain's UUID as its migration id */
	if (domain->uuid != NULL) {
		g_clear_pointer(&argv, g_strfreev);
		g_clear_pointer(&json, json_object_unref);
		argv = migd_hook_expect_argv(config, migctl, domain->uuid, devices);
		json = hook_migctl(argv, deadline, FALSE, &error);
		/* an expectation left by an attempt libvirt gave up before starting
		 * QEMU (no stopped/release hook then): replace it, once */
		if (json == NULL &&
		    g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT) &&
		    hook_cancel_expectation(config, migctl, domain->uuid, deadline)) {
			g_clear_error(&error);
			json = hook_migctl(argv, deadline, FALSE, &error);
		}
		if (json != NULL) {
			g_printerr("%s: vfio-migd expects devices %s of domain '%s' (migration %s, "
				   "start %s)%s\n",
				   HOOK_NAME, list, object, domain->uuid,
				   config->start_auto ? "auto" : "manual", where);
			return HOOK_EXIT_OK;
		}
		if (!g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED)) {
			g_prefix_error(
			    &error, "vfio-migd cannot reserve devices %s for migration %s: ", list,
			    domain->uuid);
			return hook_fail(object, error);
		}
		/* an older vfio-migd: the door is open, as before expectations */
		g_printerr("%s: this vfio-migd cannot reserve devices (%s)\n", HOOK_NAME,
			   error->message);
	}
	/* stderr only reaches libvirt's debug log on success */
	g_printerr("%s: vfio-migd expects devices %s of domain '%s'%s\n", HOOK_NAME, list, object,
		   where);
	return HOOK_EXIT_OK;
}

/*
 * "stopped end", "release end": after a failed incoming migration (or any
 * stop) the domain's expectation, if one is left, is cancelled so its devices
 * are free again. libvirt ignores these exit codes: this always exits 0 and
 * stays quiet unless it cancelled something.
 */
static gint
hook_release(const gchar *object)
{
	g_autoptr(MigdHookConfig) config = NULL;
	g_autoptr(MigdHookDomain) domain = NULL;
	g_autoptr(GPtrArray) devices = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *listen = NULL;

	devices = hook_load(object, &config, &domain, &listen, &error);
	if (devices == NULL || devices->len == 0 || domain->uuid == NULL)
		return HOOK_EXIT_OK;
	/* no expectation (the usual case: it ended with its migration) says nothing */
	if (hook_cancel_expectation(config, hook_migctl_path(config), domain->uuid,
				    g_get_monotonic_time() + (gint64)config->timeout_ms * 1000))
		g_printerr("%s: cancelled vfio-migd's expectation of domain '%s' (migration %s)\n",
			   HOOK_NAME, object, domain->uuid);
	return HOOK_EXIT_OK;
}

int
main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	if (argc != 5) {
		g_printerr("usage: %s DOMAIN OPERATION SUB-OPERATION EXTRA\n"
			   "libvirt's qemu hook for vfio-migd (docs/libvirt.md); the domain XML "
			   "comes on stdin.\n",
			   HOOK_NAME);
		return HOOK_EXIT_USAGE;
	}
	/* libvirt 9.0 calls "migrate begin -" on the destination only, before
	 * "prepare begin", "start begin" and "started begin". "prepare" also runs
	 * for every ordinary start and cannot tell a migration apart: nothing to
	 * do there, nor for any other operation but the stop of a domain */
	if (g_strcmp0(argv[2], "migrate") == 0 && g_strcmp0(argv[3], "begin") == 0)
		return hook_migrate_begin(argv[1]);
	/* after a failed incoming migration: "stopped end", then "release end" */
	if ((g_strcmp0(argv[2], "stopped") == 0 || g_strcmp0(argv[2], "release") == 0) &&
	    g_strcmp0(argv[3], "end") == 0)
		return hook_release(argv[1]);
	return HOOK_EXIT_OK;
}
