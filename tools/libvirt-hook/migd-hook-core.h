/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * The parts of vfio-migd-qemu-hook that decide, separate from its main() so
 * that they are tested directly: the hook's configuration, the domain XML
 * libvirt passes on stdin, vfio-migctl's JSON, and running vfio-migctl with a
 * deadline. Errors are MIGD_ERROR. Nothing here links or calls libvirt.
 */

/* ---- configuration (docs/ABI/testing/libvirt-hook) ---- */

#define MIGD_HOOK_DEFAULT_TIMEOUT_MS 10000
#define MIGD_HOOK_MAX_TIMEOUT_MS     120000

typedef struct {
	GStrv devices; /* devices the domain needs besides its mapped hostdevs */
	gchar *listen; /* overrides [listen] address=, or NULL */
} MigdHookDomainConf;

typedef struct {
	guint timeout_ms;    /* the whole hook's budget for talking to vfio-migd */
	gchar *migctl;	     /* NULL: the installed vfio-migctl */
	gchar *bus_name;     /* NULL: vfio-migctl's default */
	gboolean session;    /* the session bus (tests) */
	gboolean start_auto; /* [hook] start=auto: the devices run at the commit (default
				manual: the daemon's [libvirt] starts them with the guest) */
	gchar *listen;	     /* [listen] address=; NULL: the daemon listens by itself */
	gboolean plain;
	gboolean insecure_plain_tcp; /* plain over TCP: only on a link secured otherwise */
	gchar *cert;
	gchar *key;
	gchar *ca;
	/* "pci:DDDD:BB:SS.F" / "mdev:UUID" -> device name (default: the address) */
	GHashTable *hostdevs;
	GHashTable *domains; /* domain name or lower-case UUID -> MigdHookDomainConf* */
} MigdHookConfig;

/* an empty configuration: the hook then handles nothing */
MigdHookConfig *migd_hook_config_new(void);
/* parses @path; a missing file gives an empty configuration, anything wrong
 * in an existing one is an error naming the group and key */
MigdHookConfig *migd_hook_config_load(const gchar *path, GError **error);
MigdHookConfig *migd_hook_config_load_data(const gchar *data, GError **error);
void migd_hook_config_free(MigdHookConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdHookConfig, migd_hook_config_free)
/* whether any domain could need vfio-migd with this configuration */
gboolean migd_hook_config_is_empty(const MigdHookConfig *config);

/* "pci:0000:3b:00.2" from "0000:3b:00.2" or "3b:00.2" (hex), NULL if malformed */
gchar *migd_hook_pci_key(const gchar *address);
/* "mdev:<lower-case uuid>", NULL if not a UUID */
gchar *migd_hook_mdev_key(const gchar *uuid);

/* ---- the domain XML ---- */

typedef struct {
	gchar *name;
	gchar *uuid;	     /* lower case, or NULL when absent */
	GPtrArray *hostdevs; /* host devices, keyed as in the configuration, in order */
} MigdHookDomain;

/*
 * Reads libvirt's domain XML with GMarkup: <name>, <uuid>, and the host side
 * of every VFIO device: <hostdev mode='subsystem' type='pci'|'mdev'> and
 * <interface type='hostdev'>, by their <source><address>. Guest-side
 * <address> elements are not host devices and are skipped. Malformed XML,
 * another root element or an unreadable host address is an error.
 */
MigdHookDomain *migd_hook_domain_parse(const gchar *xml, gssize length, GError **error);
void migd_hook_domain_free(MigdHookDomain *domain);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdHookDomain, migd_hook_domain_free)

/*
 * The vfio-migd devices this domain needs on this host: the devices of its
 * [domain] group (matched by @object, the name libvirt passed, then the XML's
 * name and UUID), then the devices mapped from its host devices, without
 * repeats. Empty: the domain is not vfio-migd's. @listen: the address to
 * listen on (the domain's override or [listen] address=), NULL if none.
 */
GPtrArray *migd_hook_plan(const MigdHookConfig *config, const gchar *object,
			  const MigdHookDomain *domain, const gchar **listen);

/* ---- vfio-migctl ---- */

/* argv of "vfio-migctl [--session] [--bus-name N] --json devices" */
GStrv migd_hook_devices_argv(const MigdHookConfig *config, const gchar *migctl);
/* argv of "vfio-migctl ... --json listen [--plain [--insecure-plain-tcp] | --cert --key --ca]
 * ADDRESS" */
GStrv migd_hook_listen_argv(const MigdHookConfig *config, const gchar *migctl,
			    const gchar *address);

/*
 * argv of "vfio-migctl ... --json expect MIGRATION_ID --device D ... --start
 * auto|manual": reserves @devices (names, in offer order) for the incoming
 * migration tagged @migration_id (the domain's UUID)
 */
GStrv migd_hook_expect_argv(const MigdHookConfig *config, const gchar *migctl,
			    const gchar *migration_id, GPtrArray *devices);
/* argv of "vfio-migctl ... --json cancel-expectation MIGRATION_ID" */
GStrv migd_hook_cancel_expectation_argv(const MigdHookConfig *config, const gchar *migctl,
					const gchar *migration_id);

/*
 * Runs @argv (stdin /dev/null, stdout and stderr captured) in its own process
 * group until it exits or @deadline_us (g_get_monotonic_time) passes; then the
 * whole group is killed and MIGD_ERROR_TIMED_OUT returned. @exit_status: the
 * exit code; a death by signal is an error.
 */
gboolean migd_hook_run(const gchar *const *argv, gint64 deadline_us, gchar **out, gchar **err,
		       gint *exit_status, GError **error);

/* bounds on a document of vfio-migctl's untrusted output */
#define MIGD_HOOK_JSON_MAX_SIZE	 (4u * 1024 * 1024)
#define MIGD_HOOK_JSON_MAX_DEPTH 64u

/* parses one JSON value with json-glib; more than MIGD_HOOK_JSON_MAX_SIZE bytes,
 * nesting deeper than MIGD_HOOK_JSON_MAX_DEPTH, a raw control character in a
 * string, no value or a syntax error is MIGD_ERROR_PROTOCOL */
JsonNode *migd_hook_json_parse(const gchar *text, GError **error);

/*
 * Judges one vfio-migctl run (docs/ABI/testing/cli-json). Exit 0: its JSON
 * object (transfer full). Exit 1: the error it printed, with a sentence for a
 * daemon that is not running; @busy_ok accepts org.vfiomigd.Migd1.Error.Busy
 * ("already listening") as success and returns NULL without an error. Exit 2:
 * a usage error, i.e. a vfio-migctl that does not match this hook; that, and a
 * daemon without the method (UnknownMethod, org.vfiomigd.Migd1.Error.NotSupported),
 * is MIGD_ERROR_NOT_SUPPORTED.
 */
JsonObject *migd_hook_migctl_result(gint exit_status, const gchar *out, const gchar *err,
				    gboolean busy_ok, GError **error);

/* checks that every device of @wanted is served and not busy, from the JSON of
 * "vfio-migctl --json devices"; a device only reserved for @migration_id (a
 * retried migration of the same domain; NULL: none) counts as free */
gboolean migd_hook_check_devices(JsonObject *devices_json, GPtrArray *wanted,
				 const gchar *migration_id, GError **error);

G_END_DECLS
