/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-file.h"
#include "migd-hook-core.h"

/* ---- configuration ---- */

static void
migd_hook_domain_conf_free(gpointer data)
{
	MigdHookDomainConf *conf = data;

	g_strfreev(conf->devices);
	g_free(conf->listen);
	g_free(conf);
}

MigdHookConfig *
migd_hook_config_new(void)
{
	MigdHookConfig *config = g_new0(MigdHookConfig, 1);

	config->timeout_ms = MIGD_HOOK_DEFAULT_TIMEOUT_MS;
	config->hostdevs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	config->domains =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, migd_hook_domain_conf_free);
	return config;
}

void
migd_hook_config_free(MigdHookConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->migctl);
	g_free(config->bus_name);
	g_free(config->listen);
	g_free(config->cert);
	g_free(config->key);
	g_free(config->ca);
	g_hash_table_unref(config->hostdevs);
	g_hash_table_unref(config->domains);
	g_free(config);
}

gboolean
migd_hook_config_is_empty(const MigdHookConfig *config)
{
	return g_hash_table_size(config->hostdevs) == 0 && g_hash_table_size(config->domains) == 0;
}

static gboolean
migd_hook_parse_hex(const gchar *s, guint max, guint *value)
{
	gchar *end = NULL;
	guint64 v;

	if (s == NULL || *s == '\0' || !g_ascii_isxdigit(*s))
		return FALSE;
	v = g_ascii_strtoull(s, &end, 16);
	if (end == s || *end != '\0' || v > max)
		return FALSE;
	*value = (guint)v;
	return TRUE;
}

gchar *
migd_hook_pci_key(const gchar *address)
{
	g_auto(GStrv) parts = NULL;
	g_auto(GStrv) slot_fn = NULL;
	guint domain = 0, bus, slot, function, n;

	if (address == NULL)
		return NULL;
	parts = g_strsplit(address, ":", -1);
	n = g_strv_length(parts);
	if (n != 2 && n != 3)
		return NULL;
	if (n == 3 && (strlen(parts[0]) > 4 || !migd_hook_parse_hex(parts[0], 0xffff, &domain)))
		return NULL;
	slot_fn = g_strsplit(parts[n - 1], ".", -1);
	if (g_strv_length(slot_fn) != 2 || strlen(parts[n - 2]) > 2 ||
	    !migd_hook_parse_hex(parts[n - 2], 0xff, &bus) || strlen(slot_fn[0]) > 2 ||
	    !migd_hook_parse_hex(slot_fn[0], 0x1f, &slot) || strlen(slot_fn[1]) != 1 ||
	    !migd_hook_parse_hex(slot_fn[1], 7, &function))
		return NULL;
	return g_strdup_printf("pci:%04x:%02x:%02x.%x", domain, bus, slot, function);
}

gchar *
migd_hook_mdev_key(const gchar *uuid)
{
	g_autofree gchar *lower = NULL;

	if (uuid == NULL || !g_uuid_string_is_valid(uuid))
		return NULL;
	lower = g_ascii_strdown(uuid, -1);
	return g_strdup_printf("mdev:%s", lower);
}

static gboolean
migd_hook_check_keys(GKeyFile *kf, const gchar *group, const gchar *const *allowed, GError **error)
{
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(allowed, keys[i])) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[%s]: unknown key '%s'", group, keys[i]);
			return FALSE;
		}
	}
	return TRUE;
}

/* a string value, stripped; NULL when absent; an error when present but empty */
static gboolean
migd_hook_get_string(GKeyFile *kf, const gchar *group, const gchar *key, gchar **value,
		     GError **error)
{
	g_autofree gchar *v = NULL;

	if (!g_key_file_has_key(kf, group, key, NULL))
		return TRUE;
	v = g_key_file_get_string(kf, group, key, NULL);
	if (v == NULL || *g_strstrip(v) == '\0') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "[%s]: %s= must not be empty", group, key);
		return FALSE;
	}
	g_free(*value);
	*value = g_steal_pointer(&v);
	return TRUE;
}

static gboolean
migd_hook_get_bool(GKeyFile *kf, const gchar *group, const gchar *key, gboolean *value,
		   GError **error)
{
	g_autoptr(GError) local = NULL;
	gboolean v;

	if (!g_key_file_has_key(kf, group, key, NULL))
		return TRUE;
	v = g_key_file_get_boolean(kf, group, key, &local);
	if (local != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "[%s]: %s= must be true or false", group, key);
		return FALSE;
	}
	*value = v;
	return TRUE;
}

/* device= of a [pci]/[mdev] group; by default the name vfio-migd gives a device
 * it opens by address (AddDevice): the address or UUID itself, after @key's "pci:"
 * or "mdev:" */
static gboolean
migd_hook_get_device(GKeyFile *kf, const gchar *group, const gchar *key, gchar **device,
		     GError **error)
{
	if (!migd_hook_get_string(kf, group, "device", device, error))
		return FALSE;
	if (*device == NULL)
		*device = g_strdup(strchr(key, ':') + 1);
	return TRUE;
}

static gboolean
migd_hook_config_group(MigdHookConfig *c, GKeyFile *kf, const gchar *group, GError **error)
{
	static const gchar *const hook_keys[] = {"timeout-ms", "migctl", "bus-name",
						 "session",    "start",	 NULL};
	static const gchar *const listen_keys[] = {
	    "address", "plain", "insecure-plain-tcp", "cert", "key", "ca", NULL};
	static const gchar *const device_keys[] = {"device", NULL};
	static const gchar *const domain_keys[] = {"devices", "listen", NULL};

	if (g_strcmp0(group, "hook") == 0) {
		g_autofree gchar *timeout = NULL;
		g_autofree gchar *start = NULL;
		if (!migd_hook_check_keys(kf, group, hook_keys, error) ||
		    !migd_hook_get_string(kf, group, "timeout-ms", &timeout, error) ||
		    !migd_hook_get_string(kf, group, "start", &start, error) ||
		    !migd_hook_get_string(kf, group, "migctl", &c->migctl, error) ||
		    !migd_hook_get_string(kf, group, "bus-name", &c->bus_name, error) ||
		    !migd_hook_get_bool(kf, group, "session", &c->session, error))
			return FALSE;
		if (timeout != NULL) {
			guint64 ms;
			if (!g_ascii_string_to_unsigned(timeout, 10, 1, MIGD_HOOK_MAX_TIMEOUT_MS,
							&ms, NULL)) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "[hook]: timeout-ms= must be 1..%u",
					    MIGD_HOOK_MAX_TIMEOUT_MS);
				return FALSE;
			}
			c->timeout_ms = (guint)ms;
		}
		if (start != NULL && g_strcmp0(start, "manual") != 0 &&
		    g_strcmp0(start, "auto") != 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[hook]: start= must be manual or auto");
			return FALSE;
		}
		c->start_auto = g_strcmp0(start, "auto") == 0;
		if (c->migctl != NULL && !g_path_is_absolute(c->migctl)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[hook]: migctl= must be an absolute path");
			return FALSE;
		}
		return TRUE;
	}
	if (g_strcmp0(group, "listen") == 0) {
		return migd_hook_check_keys(kf, group, listen_keys, error) &&
		       migd_hook_get_string(kf, group, "address", &c->listen, error) &&
		       migd_hook_get_bool(kf, group, "plain", &c->plain, error) &&
		       migd_hook_get_bool(kf, group, "insecure-plain-tcp", &c->insecure_plain_tcp,
					  error) &&
		       migd_hook_get_string(kf, group, "cert", &c->cert, error) &&
		       migd_hook_get_string(kf, group, "key", &c->key, error) &&
		       migd_hook_get_string(kf, group, "ca", &c->ca, error);
	}
	if (g_str_has_prefix(group, "pci ") || g_str_has_prefix(group, "mdev ")) {
		gboolean pci = g_str_has_prefix(group, "pci ");
		const gchar *address = group + (pci ? 4 : 5);
		g_autofree gchar *key =
		    pci ? migd_hook_pci_key(address) : migd_hook_mdev_key(address);
		g_autofree gchar *device = NULL;
		if (key == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[%s]: not a %s", group,
				    pci ? "PCI address (DDDD:BB:SS.F)" : "mdev UUID");
			return FALSE;
		}
		if (!migd_hook_check_keys(kf, group, device_keys, error) ||
		    !migd_hook_get_device(kf, group, key, &device, error))
			return FALSE;
		if (g_hash_table_contains(c->hostdevs, key)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[%s]: the same host device is mapped twice", group);
			return FALSE;
		}
		g_hash_table_insert(c->hostdevs, g_steal_pointer(&key), g_steal_pointer(&device));
		return TRUE;
	}
	if (g_str_has_prefix(group, "domain ") && group[7] != '\0') {
		const gchar *name = group + 7;
		g_autofree gchar *key =
		    g_uuid_string_is_valid(name) ? g_ascii_strdown(name, -1) : g_strdup(name);
		MigdHookDomainConf *conf;
		g_auto(GStrv) devices = NULL;
		if (!migd_hook_check_keys(kf, group, domain_keys, error))
			return FALSE;
		if (g_hash_table_contains(c->domains, key)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[%s]: the same domain is configured twice", group);
			return FALSE;
		}
		if (g_key_file_has_key(kf, group, "devices", NULL)) {
			devices = g_key_file_get_string_list(kf, group, "devices", NULL, NULL);
			for (guint i = 0; devices != NULL && devices[i] != NULL; i++) {
				if (*g_strstrip(devices[i]) == '\0') {
					g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
						    "[%s]: an empty name in devices=", group);
					return FALSE;
				}
			}
		}
		conf = g_new0(MigdHookDomainConf, 1);
		conf->devices = devices != NULL ? g_steal_pointer(&devices) : g_new0(gchar *, 1);
		g_hash_table_insert(c->domains, g_steal_pointer(&key), conf);
		return migd_hook_get_string(kf, group, "listen", &conf->listen, error);
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "[%s]: unknown group (expected [hook], [listen], [pci ADDRESS], "
		    "[mdev UUID] or [domain NAME])",
		    group);
	return FALSE;
}

static MigdHookConfig *
migd_hook_config_from_key_file(GKeyFile *kf, GError **error)
{
	g_autoptr(MigdHookConfig) config = migd_hook_config_new();
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		if (!migd_hook_config_group(config, kf, groups[i], error))
			return NULL;
	}
	if (!config->plain && (config->cert == NULL) != (config->key == NULL)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[listen]: cert= and key= go together");
		return NULL;
	}
	return g_steal_pointer(&config);
}

MigdHookConfig *
migd_hook_config_load_data(const gchar *data, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;

	if (!g_key_file_load_from_data(kf, data, (gsize)-1, G_KEY_FILE_NONE, &local)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s", local->message);
		return NULL;
	}
	return migd_hook_config_from_key_file(kf, error);
}

MigdHookConfig *
migd_hook_config_load(const gchar *path, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;
	MigdHookConfig *config;

	/* libvirt waits for its hooks: a FIFO or /dev/zero here must not hang or grow it */
	if (!migd_file_load_key_file(kf, path, &local)) {
		/* not configured: the hook is installed but inert */
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return migd_hook_config_new();
		/* MIGD_ERROR_INVALID_ARGUMENT, naming the path */
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	config = migd_hook_config_from_key_file(kf, &local);
	if (config == NULL)
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s: %s", path,
			    local->message);
	return config;
}

/* ---- the domain XML ---- */

typedef enum {
	MIGD_HOOK_DEV_NONE,
	MIGD_HOOK_DEV_PCI,
	MIGD_HOOK_DEV_MDEV,
} MigdHookDevKind;

typedef struct {
	GPtrArray *stack; /* element names, borrowed from GMarkup for their lifetime */
	MigdHookDomain *domain;
	GString *text;		/* text of <name> or <uuid> */
	MigdHookDevKind device; /* of the <hostdev>/<interface> being read */
	gboolean saw_uuid;
} MigdHookXml;

void
migd_hook_domain_free(MigdHookDomain *domain)
{
	if (domain == NULL)
		return;
	g_free(domain->name);
	g_free(domain->uuid);
	g_ptr_array_unref(domain->hostdevs);
	g_free(domain);
}

static const gchar *
migd_hook_xml_attr(const gchar **names, const gchar **values, const gchar *name)
{
	for (guint i = 0; names[i] != NULL; i++) {
		if (g_strcmp0(names[i], name) == 0)
			return values[i];
	}
	return NULL;
}

/* the element @depth levels above the current one ("" beyond the root) */
static const gchar *
migd_hook_xml_up(MigdHookXml *x, guint depth)
{
	if (depth >= x->stack->len)
		return "";
	return g_ptr_array_index(x->stack, x->stack->len - 1 - depth);
}

/* libvirt writes PCI address parts as 0x-prefixed hex; it accepts any C base */
static gboolean
migd_hook_xml_number(const gchar *s, guint max, guint *value)
{
	gchar *end = NULL;
	guint64 v;

	if (s == NULL || !g_ascii_isdigit(*s))
		return FALSE;
	errno = 0;
	v = g_ascii_strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return FALSE;
	*value = (guint)v;
	return TRUE;
}

static void
migd_hook_xml_add(MigdHookXml *x, gchar *key)
{
	for (guint i = 0; i < x->domain->hostdevs->len; i++) {
		if (g_strcmp0(g_ptr_array_index(x->domain->hostdevs, i), key) == 0) {
			g_free(key);
			return;
		}
	}
	g_ptr_array_add(x->domain->hostdevs, key);
}

static void
migd_hook_xml_source_address(MigdHookXml *x, const gchar **names, const gchar **values,
			     GError **error)
{
	if (x->device == MIGD_HOOK_DEV_PCI) {
		const gchar *type = migd_hook_xml_attr(names, values, "type");
		const gchar *d = migd_hook_xml_attr(names, values, "domain");
		guint domain = 0, bus, slot, function;

		/* <interface type='hostdev'> may name a USB or other address */
		if (type != NULL && g_strcmp0(type, "pci") != 0)
			return;
		if ((d != NULL && !migd_hook_xml_number(d, 0xffff, &domain)) ||
		    !migd_hook_xml_number(migd_hook_xml_attr(names, values, "bus"), 0xff, &bus) ||
		    !migd_hook_xml_number(migd_hook_xml_attr(names, values, "slot"), 0x1f, &slot) ||
		    !migd_hook_xml_number(migd_hook_xml_attr(names, values, "function"), 7,
					  &function)) {
			g_set_error_literal(
			    error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
			    "a host PCI device with an unreadable <source> address");
			return;
		}
		migd_hook_xml_add(
		    x, g_strdup_printf("pci:%04x:%02x:%02x.%x", domain, bus, slot, function));
	} else if (x->device == MIGD_HOOK_DEV_MDEV) {
		gchar *key = migd_hook_mdev_key(migd_hook_xml_attr(names, values, "uuid"));
		if (key == NULL) {
			g_set_error_literal(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
					    "a mediated device without a valid <source> uuid");
			return;
		}
		migd_hook_xml_add(x, key);
	}
}

static void
migd_hook_xml_start(GMarkupParseContext *context, const gchar *element, const gchar **names,
		    const gchar **values, gpointer user_data, GError **error)
{
	MigdHookXml *x = user_data;

	if (x->stack->len == 0 && g_strcmp0(element, "domain") != 0) {
		g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
			    "the root element is <%s>, not <domain>", element);
		return;
	}
	g_ptr_array_add(x->stack, (gpointer)element);

	/* /domain/name, /domain/uuid */
	if (x->stack->len == 2 &&
	    (g_strcmp0(element, "name") == 0 || g_strcmp0(element, "uuid") == 0)) {
		g_string_truncate(x->text, 0);
		return;
	}
	/* /domain/devices/hostdev, /domain/devices/interface */
	if (x->stack->len == 3 && g_strcmp0(migd_hook_xml_up(x, 1), "devices") == 0) {
		const gchar *type = migd_hook_xml_attr(names, values, "type");
		const gchar *mode = migd_hook_xml_attr(names, values, "mode");
		x->device = MIGD_HOOK_DEV_NONE;
		if (g_strcmp0(element, "hostdev") == 0 &&
		    (mode == NULL || g_strcmp0(mode, "subsystem") == 0)) {
			if (g_strcmp0(type, "pci") == 0)
				x->device = MIGD_HOOK_DEV_PCI;
			else if (g_strcmp0(type, "mdev") == 0)
				x->device = MIGD_HOOK_DEV_MDEV;
		} else if (g_strcmp0(element, "interface") == 0 &&
			   g_strcmp0(type, "hostdev") == 0) {
			/* an SR-IOV VF given to the guest as a NIC: a VFIO device too */
			x->device = MIGD_HOOK_DEV_PCI;
		}
		return;
	}
	/* .../hostdev/source/address: the host side (hostdev/address is the guest's) */
	if (x->stack->len == 5 && x->device != MIGD_HOOK_DEV_NONE &&
	    g_strcmp0(element, "address") == 0 && g_strcmp0(migd_hook_xml_up(x, 1), "source") == 0)
		migd_hook_xml_source_address(x, names, values, error);
}

static void
migd_hook_xml_end(GMarkupParseContext *context, const gchar *element, gpointer user_data,
		  GError **error)
{
	MigdHookXml *x = user_data;

	if (x->stack->len == 2 && g_strcmp0(element, "name") == 0) {
		g_free(x->domain->name);
		x->domain->name = g_strstrip(g_strdup(x->text->str));
	} else if (x->stack->len == 2 && g_strcmp0(element, "uuid") == 0) {
		g_autofree gchar *uuid = g_strstrip(g_strdup(x->text->str));
		if (!g_uuid_string_is_valid(uuid)) {
			g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
				    "<uuid> '%s' is not a UUID", uuid);
			return;
		}
		g_free(x->domain->uuid);
		x->domain->uuid = g_ascii_strdown(uuid, -1);
	} else if (x->stack->len == 3) {
		x->device = MIGD_HOOK_DEV_NONE;
	}
	g_ptr_array_set_size(x->stack, x->stack->len - 1);
}

static void
migd_hook_xml_text(GMarkupParseContext *context, const gchar *text, gsize length,
		   gpointer user_data, GError **error)
{
	MigdHookXml *x = user_data;

	if (x->stack->len == 2)
		g_string_append_len(x->text, text, (gssize)length);
}

MigdHookDomain *
migd_hook_domain_parse(const gchar *xml, gssize length, GError **error)
{
	static const GMarkupParser parser = {
	    .start_element = migd_hook_xml_start,
	    .end_element = migd_hook_xml_end,
	    .text = migd_hook_xml_text,
	};
	g_autoptr(MigdHookDomain) domain = g_new0(MigdHookDomain, 1);
	g_autoptr(GPtrArray) stack = g_ptr_array_new();
	g_autoptr(GString) text = g_string_new(NULL);
	MigdHookXml x = {.stack = stack, .domain = domain, .text = text};
	g_autoptr(GMarkupParseContext) context = NULL;
	g_autoptr(GError) local = NULL;

	domain->hostdevs = g_ptr_array_new_with_free_func(g_free);
	context = g_markup_parse_context_new(&parser, G_MARKUP_TREAT_CDATA_AS_TEXT, &x, NULL);
	if (!g_markup_parse_context_parse(context, xml, length, &local) ||
	    !g_markup_parse_context_end_parse(context, &local)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s", local->message);
		return NULL;
	}
	if (domain->name == NULL || domain->name[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "the domain XML has no <name>");
		return NULL;
	}
	return g_steal_pointer(&domain);
}

static void
migd_hook_plan_add(GPtrArray *devices, const gchar *device)
{
	for (guint i = 0; i < devices->len; i++) {
		if (g_strcmp0(g_ptr_array_index(devices, i), device) == 0)
			return;
	}
	g_ptr_array_add(devices, g_strdup(device));
}

GPtrArray *
migd_hook_plan(const MigdHookConfig *config, const gchar *object, const MigdHookDomain *domain,
	       const gchar **listen)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func(g_free);
	const MigdHookDomainConf *conf = NULL;

	if (object != NULL)
		conf = g_hash_table_lookup(config->domains, object);
	if (conf == NULL && domain->name != NULL)
		conf = g_hash_table_lookup(config->domains, domain->name);
	if (conf == NULL && domain->uuid != NULL)
		conf = g_hash_table_lookup(config->domains, domain->uuid);
	for (guint i = 0; conf != NULL && conf->devices[i] != NULL; i++)
		migd_hook_plan_add(devices, conf->devices[i]);
	for (guint i = 0; i < domain->hostdevs->len; i++) {
		const gchar *device =
		    g_hash_table_lookup(config->hostdevs, g_ptr_array_index(domain->hostdevs, i));
		if (device != NULL)
			migd_hook_plan_add(devices, device);
	}
	if (listen != NULL)
		*listen = conf != NULL && conf->listen != NULL ? conf->listen : config->listen;
	return devices;
}

/* ---- vfio-migctl ---- */

static GPtrArray *
migd_hook_argv_start(const MigdHookConfig *config, const gchar *migctl)
{
	GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(argv, g_strdup(migctl));
	if (config->session)
		g_ptr_array_add(argv, g_strdup("--session"));
	if (config->bus_name != NULL) {
		g_ptr_array_add(argv, g_strdup("--bus-name"));
		g_ptr_array_add(argv, g_strdup(config->bus_name));
	}
	g_ptr_array_add(argv, g_strdup("--json"));
	return argv;
}

static GStrv
migd_hook_argv_end(GPtrArray *argv)
{
	g_ptr_array_add(argv, NULL);
	g_ptr_array_set_free_func(argv, NULL);
	return (GStrv)g_ptr_array_free(argv, FALSE);
}

GStrv
migd_hook_devices_argv(const MigdHookConfig *config, const gchar *migctl)
{
	GPtrArray *argv = migd_hook_argv_start(config, migctl);

	g_ptr_array_add(argv, g_strdup("devices"));
	return migd_hook_argv_end(argv);
}

GStrv
migd_hook_listen_argv(const MigdHookConfig *config, const gchar *migctl, const gchar *address)
{
	GPtrArray *argv = migd_hook_argv_start(config, migctl);

	g_ptr_array_add(argv, g_strdup("listen"));
	if (config->plain) {
		g_ptr_array_add(argv, g_strdup("--plain"));
		/* the daemon refuses plain TCP without it, and warns with it */
		if (config->insecure_plain_tcp)
			g_ptr_array_add(argv, g_strdup("--insecure-plain-tcp"));
	} else {
		const gchar *opts[][2] = {
		    {"--cert", config->cert}, {"--key", config->key}, {"--ca", config->ca}};
		for (guint i = 0; i < G_N_ELEMENTS(opts); i++) {
			if (opts[i][1] == NULL)
				continue;
			g_ptr_array_add(argv, g_strdup(opts[i][0]));
			g_ptr_array_add(argv, g_strdup(opts[i][1]));
		}
	}
	/* "--" so that an address can never be taken for an option */
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(address));
	return migd_hook_argv_end(argv);
}

GStrv
migd_hook_expect_argv(const MigdHookConfig *config, const gchar *migctl, const gchar *migration_id,
		      GPtrArray *devices)
{
	GPtrArray *argv = migd_hook_argv_start(config, migctl);

	g_ptr_array_add(argv, g_strdup("expect"));
	g_ptr_array_add(argv, g_strdup(migration_id));
	for (guint i = 0; i < devices->len; i++) {
		g_ptr_array_add(argv, g_strdup("--device"));
		g_ptr_array_add(argv, g_strdup(g_ptr_array_index(devices, i)));
	}
	g_ptr_array_add(argv, g_strdup("--start"));
	g_ptr_array_add(argv, g_strdup(config->start_auto ? "auto" : "manual"));
	return migd_hook_argv_end(argv);
}

GStrv
migd_hook_cancel_expectation_argv(const MigdHookConfig *config, const gchar *migctl,
				  const gchar *migration_id)
{
	GPtrArray *argv = migd_hook_argv_start(config, migctl);

	g_ptr_array_add(argv, g_strdup("cancel-expectation"));
	g_ptr_array_add(argv, g_strdup(migration_id));
	return migd_hook_argv_end(argv);
}

static void
migd_hook_child_setup(gpointer unused)
{
	/* its own process group: a timeout kills whatever it started too */
	setpgid(0, 0);
}

/*
 * One of the child's output pipes, read on the run's private context. Not
 * g_subprocess_communicate: it closes the pipes with g_input_stream_close_async,
 * which GLib 2.74 runs on new thread-pool threads, and a thread still starting
 * when the hook exits is what LeakSanitizer reported as a leak (the 32 bytes
 * pthread_getattr_np holds while ASan registers the thread), ending the hook
 * with SIGABRT. Here every read is non-blocking on this thread, and the pipes
 * close with the subprocess: the hook starts no thread but GLib's worker.
 */
typedef struct {
	GPollableInputStream *stream;
	GSource *source;
	GByteArray *data;
	gboolean eof;
} MigdHookPipe;

typedef struct {
	MigdHookPipe pipes[2]; /* stdout, stderr */
	gboolean exited;
	gboolean timed_out;
	GError *error; /* a failed read */
	GSubprocess *process;
} MigdHookRun;

static gboolean
migd_hook_pipe_readable(GObject *stream, gpointer user_data)
{
	MigdHookRun *run = user_data;
	MigdHookPipe *pipe =
	    &run->pipes[G_POLLABLE_INPUT_STREAM(stream) == run->pipes[0].stream ? 0 : 1];
	g_autoptr(GError) error_local = NULL;
	guint8 buf[4096];
	gssize n = g_pollable_input_stream_read_nonblocking(pipe->stream, buf, sizeof(buf), NULL,
							    &error_local);

	if (n < 0 && g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
		return G_SOURCE_CONTINUE;
	if (n > 0) {
		g_byte_array_append(pipe->data, buf, (guint)n);
		return G_SOURCE_CONTINUE;
	}
	if (n < 0 && run->error == NULL)
		run->error = g_steal_pointer(&error_local);
	pipe->eof = TRUE;
	return G_SOURCE_REMOVE;
}

static void
migd_hook_run_exited(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdHookRun *run = user_data;

	/* without a cancellable it only ever succeeds */
	(void)g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
	run->exited = TRUE;
}

static gboolean
migd_hook_run_timeout(gpointer user_data)
{
	MigdHookRun *run = user_data;
	const gchar *id = g_subprocess_get_identifier(run->process);

	run->timed_out = TRUE;
	/* the group is led by the child, so its pid stays reserved while any member
	 * lives; after that the kill finds nobody (ESRCH) */
	if (id != NULL)
		kill(-(pid_t)atoi(id), SIGKILL);
	return G_SOURCE_REMOVE;
}

static gchar *
migd_hook_pipe_steal(MigdHookPipe *pipe)
{
	guint8 nul = 0;

	g_byte_array_append(pipe->data, &nul, 1);
	return (gchar *)g_byte_array_free(g_steal_pointer(&pipe->data), FALSE);
}

gboolean
migd_hook_run(const gchar *const *argv, gint64 deadline_us, gchar **out, gchar **err,
	      gint *exit_status, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GSource) timeout = NULL;
	g_autoptr(GError) local = NULL;
	MigdHookRun run = {0};
	gint64 remaining_ms = (deadline_us - g_get_monotonic_time()) / 1000;
	gboolean ok = FALSE;

	if (remaining_ms <= 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT, "no time left to run %s",
			    argv[0]);
		return FALSE;
	}
	g_subprocess_launcher_set_child_setup(launcher, migd_hook_child_setup, NULL, NULL);
	process = g_subprocess_launcher_spawnv(launcher, argv, &local);
	if (process == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "cannot run %s: %s", argv[0],
			    local->message);
		return FALSE;
	}
	run.process = process;
	run.pipes[0].stream = G_POLLABLE_INPUT_STREAM(g_subprocess_get_stdout_pipe(process));
	run.pipes[1].stream = G_POLLABLE_INPUT_STREAM(g_subprocess_get_stderr_pipe(process));
	g_main_context_push_thread_default(context);
	for (guint i = 0; i < G_N_ELEMENTS(run.pipes); i++) {
		MigdHookPipe *pipe = &run.pipes[i];

		pipe->data = g_byte_array_new();
		pipe->source = g_pollable_input_stream_create_source(pipe->stream, NULL);
		g_source_set_callback(pipe->source, G_SOURCE_FUNC(migd_hook_pipe_readable), &run,
				      NULL);
		g_source_attach(pipe->source, context);
	}
	g_subprocess_wait_async(process, NULL, migd_hook_run_exited, &run);
	timeout = g_timeout_source_new((guint)MIN(remaining_ms, G_MAXUINT));
	g_source_set_callback(timeout, migd_hook_run_timeout, &run, NULL);
	g_source_attach(timeout, context);
	while (!run.timed_out && run.error == NULL &&
	       !(run.exited && run.pipes[0].eof && run.pipes[1].eof))
		g_main_context_iteration(context, TRUE);
	/* closed here, on this thread: the subprocess may be freed later, by GLib's worker */
	for (guint i = 0; i < G_N_ELEMENTS(run.pipes); i++) {
		g_source_destroy(run.pipes[i].source);
		g_source_unref(run.pipes[i].source);
		g_input_stream_close(G_INPUT_STREAM(run.pipes[i].stream), NULL, NULL);
	}
	/* reap it: killed on a timeout, so at once; after a failed read, by the deadline */
	while (!run.exited)
		g_main_context_iteration(context, TRUE);
	g_source_destroy(timeout);
	g_main_context_pop_thread_default(context);

	if (run.timed_out) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
			    "%s did not finish within %u ms", argv[0], (guint)remaining_ms);
	} else if (run.error != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "running %s: %s", argv[0],
			    run.error->message);
	} else if (!g_subprocess_get_if_exited(process)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "%s was killed by signal %d",
			    argv[0], g_subprocess_get_term_sig(process));
	} else {
		*exit_status = g_subprocess_get_exit_status(process);
		if (out != NULL)
			*out = migd_hook_pipe_steal(&run.pipes[0]);
		if (err != NULL)
			*err = migd_hook_pipe_steal(&run.pipes[1]);
		ok = TRUE;
	}
	g_clear_error(&run.error);
	for (guint i = 0; i < G_N_ELEMENTS(run.pipes); i++) {
		if (run.pipes[i].data != NULL)
			g_byte_array_unref(run.pipes[i].data);
	}
	return ok;
}

/* ---- JSON (json-glib) ---- */

/*
 * Not a parser: json-glib 1.6 recurses once per nesting level with no limit
 * of its own (a line of '[' would exhaust the stack), so the size and nesting
 * of the child's untrusted output are bounded before json-glib sees it. Raw
 * control characters in strings, which json-glib takes, are refused: one
 * document per line cannot hold them, and vfio-migctl never writes them.
 */
static gboolean
migd_hook_json_check_bounds(const gchar *text, GError **error)
{
	gboolean in_string = FALSE;
	guint depth = 0;

	if (strnlen(text, MIGD_HOOK_JSON_MAX_SIZE + 1) > MIGD_HOOK_JSON_MAX_SIZE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad JSON: longer than %u bytes", (guint)MIGD_HOOK_JSON_MAX_SIZE);
		return FALSE;
	}
	for (const gchar *p = text; *p != '\0'; p++) {
		if (in_string) {
			if ((guchar)*p < 0x20) {
				g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
						    "bad JSON: raw control character in a string");
				return FALSE;
			}
			/* an escaped character never ends the string */
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				in_string = FALSE;
		} else if (*p == '"') {
			in_string = TRUE;
		} else if (*p == '[' || *p == '{') {
			if (++depth > MIGD_HOOK_JSON_MAX_DEPTH) {
				g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
						    "bad JSON: nested too deeply");
				return FALSE;
			}
		} else if ((*p == ']' || *p == '}') && depth > 0) {
			depth--;
		}
	}
	return TRUE;
}

JsonNode *
migd_hook_json_parse(const gchar *text, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) local = NULL;
	JsonNode *root;

	if (!migd_hook_json_check_bounds(text, error))
		return NULL;
	if (!json_parser_load_from_data(parser, text, -1, &local)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "bad JSON: %s", local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	/* json-glib takes an empty text, and JavaScript's "var name = value" */
	if (root == NULL || json_parser_has_assignment(parser, NULL)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "bad JSON: not one JSON value");
		return NULL;
	}
	return json_node_ref(root);
}

/* the member @key of @object if it is a value of @type (untrusted: anything may be anything) */
static JsonNode *
migd_hook_json_get_value(JsonObject *object, const gchar *key, GType type)
{
	JsonNode *node = json_object_get_member(object, key);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != type)
		return NULL;
	return node;
}

static const gchar *
migd_hook_json_get_string(JsonObject *object, const gchar *key)
{
	JsonNode *node = migd_hook_json_get_value(object, key, G_TYPE_STRING);
	return node != NULL ? json_node_get_string(node) : NULL;
}

/* the last line of @out that parses as a JSON object, or NULL */
static JsonObject *
migd_hook_last_object(const gchar *out)
{
	g_auto(GStrv) lines = g_strsplit(out != NULL ? out : "", "\n", -1);

	for (gint i = (gint)g_strv_length(lines) - 1; i >= 0; i--) {
		g_autoptr(JsonNode) node = migd_hook_json_parse(g_strstrip(lines[i]), NULL);
		if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
			return json_object_ref(json_node_get_object(node));
	}
	return NULL;
}

JsonObject *
migd_hook_migctl_result(gint exit_status, const gchar *out, const gchar *err, gboolean busy_ok,
			GError **error)
{
	g_autoptr(JsonObject) json = migd_hook_last_object(out);
	const gchar *name = NULL, *message = NULL;
	g_autofree gchar *err_line = g_strstrip(g_strdup(err != NULL ? err : ""));

	if (exit_status == 0) {
		if (json == NULL) {
			g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
					    "vfio-migctl printed no JSON object");
			return NULL;
		}
		return g_steal_pointer(&json);
	}
	if (exit_status == 2) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "vfio-migctl refused its arguments (a different version?)%s%s",
			    *err_line != '\0' ? ": " : "", err_line);
		return NULL;
	}
	if (json != NULL) {
		name = migd_hook_json_get_string(json, "error");
		message = migd_hook_json_get_string(json, "message");
	}
	if (busy_ok && g_strcmp0(name, migd_error_to_dbus_name(MIGD_ERROR_BUSY)) == 0)
		return NULL;
	/* a daemon older than the method asked for */
	if (g_strcmp0(name, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
	    g_strcmp0(name, migd_error_to_dbus_name(MIGD_ERROR_NOT_SUPPORTED)) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "vfio-migd: %s%s%s",
			    message != NULL ? message : "", message != NULL ? " " : "", name);
		return NULL;
	}
	if (g_strcmp0(name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
	    g_strcmp0(name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "vfio-migd is not running (%s)",
			    message != NULL ? message : name);
		return NULL;
	}
	if (name != NULL || message != NULL) {
		/* the daemon's own error names keep their code: callers tell them apart */
		MigdError code = MIGD_ERROR_FAILED;
		for (gint c = 0; c < MIGD_ERROR_LAST; c++) {
			if (g_strcmp0(name, migd_error_to_dbus_name((MigdError)c)) == 0)
				code = (MigdError)c;
		}
		g_set_error(error, MIGD_ERROR, code, "vfio-migd: %s%s%s",
			    message != NULL ? message : "", name != NULL ? " " : "",
			    name != NULL ? name : "");
		return NULL;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "vfio-migctl failed (exit status %d)%s%s",
		    exit_status, *err_line != '\0' ? ": " : "", err_line);
	return NULL;
}

gboolean
migd_hook_check_devices(JsonObject *devices_json, GPtrArray *wanted, const gchar *migration_id,
			GError **error)
{
	JsonNode *list = json_object_get_member(devices_json, "devices");
	g_autoptr(GHashTable) busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GString) served = g_string_new(NULL);
	JsonArray *array;

	if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "vfio-migctl devices printed no device list");
		return FALSE;
	}
	array = json_node_get_array(list);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *item = json_array_get_element(array, i);
		JsonNode *is_busy;
		const gchar *name;
		const gchar *reserved_for;
		gboolean busy_now;

		if (!JSON_NODE_HOLDS_OBJECT(item))
			continue;
		name = migd_hook_json_get_string(json_node_get_object(item), "name");
		if (name == NULL)
			continue;
		is_busy =
		    migd_hook_json_get_value(json_node_get_object(item), "busy", G_TYPE_BOOLEAN);
		busy_now = is_busy != NULL && json_node_get_boolean(is_busy);
		/* our own expectation, left by an earlier attempt: the hook replaces it */
		reserved_for =
		    migd_hook_json_get_string(json_node_get_object(item), "reserved-for");
		if (busy_now && migration_id != NULL && g_strcmp0(reserved_for, migration_id) == 0)
			busy_now = FALSE;
		g_hash_table_insert(busy, g_strdup(name), GINT_TO_POINTER(busy_now));
		g_string_append_printf(served, "%s%s", served->len > 0 ? ", " : "", name);
	}
	for (guint i = 0; i < wanted->len; i++) {
		const gchar *device = g_ptr_array_index(wanted, i);
		gpointer value;
		if (!g_hash_table_lookup_extended(busy, device, NULL, &value)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "vfio-migd has no device '%s' (it serves: %s)", device,
				    served->len > 0 ? served->str : "none");
			return FALSE;
		}
		if (GPOINTER_TO_INT(value)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "device '%s' is busy in another migration", device);
			return FALSE;
		}
	}
	return TRUE;
}
