/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The authorization's data: every method of the introspection XML has its polkit
 * action in the authority's table (a new method is refused to others until it
 * has one), and the shipped polkit policy defines both actions with the defaults
 * the documentation promises. The calls themselves: test-dbus-policy.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <string.h>

#include "migd-authority.h"

/* every method, once, in the authority's table; only the listings are read */
static void
test_every_method_has_an_action(void **state)
{
	g_autofree gchar *xml = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusNodeInfo) node = NULL;
	guint methods = 0;
	/* a second statement of the table's read rows: a change here is a decision */
	const gchar *const read_methods[] = {"ListDevices", "ListHostDevices",	"ListListeners",
					     "ListJobs",    "ListExpectations", "ListVMs",
					     NULL};

	assert_true(g_file_get_contents(INTROSPECTION_FILE, &xml, NULL, &error));
	node = g_dbus_node_info_new_for_xml(xml, &error);
	assert_non_null(node);
	for (guint i = 0; node->interfaces[i] != NULL; i++) {
		GDBusInterfaceInfo *iface = node->interfaces[i];
		for (guint j = 0; iface->methods != NULL && iface->methods[j] != NULL; j++) {
			const gchar *name = iface->methods[j]->name;
			const gchar *action = migd_authority_lookup_action(iface->name, name);

			if (action == NULL)
				fail_msg("%s.%s has no polkit action in daemon/migd-authority.c",
					 iface->name, name);
			/* the listings read; everything else acts or hands out a VMM's data */
			assert_string_equal(action, g_strv_contains(read_methods, name)
							? MIGD_AUTHORITY_ACTION_READ
							: MIGD_AUTHORITY_ACTION_CHANGE);
			methods++;
		}
	}
	/* the Manager's and the Job's: the XML was read, not an empty file */
	assert_true(methods >= 20);
}

/* what the table lacks has no action, which the check takes as change */
static void
test_unknown_method_has_none(void **state)
{
	assert_null(migd_authority_lookup_action("org.vfiomigd.Migd1.Manager", "NoSuchMethod"));
	assert_null(migd_authority_lookup_action("org.vfiomigd.Migd1.Other", "ListDevices"));
	assert_null(migd_authority_lookup_action(NULL, NULL));
}

typedef struct {
	GHashTable *actions; /* id -> GHashTable (element -> text) */
	GHashTable *current; /* the action being read */
	gchar *element;	     /* the element whose text comes next */
} PolicyParse;

static void
policy_start(GMarkupParseContext *context, const gchar *element, const gchar **names,
	     const gchar **values, gpointer user_data, GError **error)
{
	PolicyParse *p = user_data;

	if (g_str_equal(element, "action")) {
		const gchar *id = NULL;
		for (guint i = 0; names[i] != NULL; i++)
			if (g_str_equal(names[i], "id"))
				id = values[i];
		if (id == NULL) {
			g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_MISSING_ATTRIBUTE,
				    "an action without id");
			return;
		}
		p->current = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		g_hash_table_replace(p->actions, g_strdup(id), p->current);
	}
	g_free(p->element);
	p->element = g_strdup(element);
}

static void
policy_end(GMarkupParseContext *context, const gchar *element, gpointer user_data, GError **error)
{
	PolicyParse *p = user_data;

	if (g_str_equal(element, "action"))
		p->current = NULL;
	g_clear_pointer(&p->element, g_free);
}

static void
policy_text(GMarkupParseContext *context, const gchar *text, gsize len, gpointer user_data,
	    GError **error)
{
	PolicyParse *p = user_data;
	g_autofree gchar *stripped = g_strstrip(g_strndup(text, len));

	if (p->current != NULL && p->element != NULL && *stripped != '\0')
		g_hash_table_replace(p->current, g_strdup(p->element), g_steal_pointer(&stripped));
}

static void
assert_action(GHashTable *actions, const gchar *id, const gchar *any, const gchar *inactive,
	      const gchar *active)
{
	GHashTable *action = g_hash_table_lookup(actions, id);

	if (action == NULL)
		fail_msg("no action %s in the policy", id);
	assert_non_null(g_hash_table_lookup(action, "description"));
	assert_non_null(g_hash_table_lookup(action, "message"));
	assert_string_equal(g_hash_table_lookup(action, "allow_any"), any);
	assert_string_equal(g_hash_table_lookup(action, "allow_inactive"), inactive);
	assert_string_equal(g_hash_table_lookup(action, "allow_active"), active);
}

/* well-formed, both actions, the documented defaults */
static void
test_policy_file(void **state)
{
	const GMarkupParser parser = {policy_start, policy_end, policy_text, NULL, NULL};
	PolicyParse p = {0};
	g_autofree gchar *xml = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GMarkupParseContext) context = NULL;

	assert_true(g_file_get_contents(POLKIT_POLICY_FILE, &xml, NULL, &error));
	p.actions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  (GDestroyNotify)g_hash_table_unref);
	context = g_markup_parse_context_new(&parser, 0, &p, NULL);
	if (!g_markup_parse_context_parse(context, xml, -1, &error) ||
	    !g_markup_parse_context_end_parse(context, &error))
		fail_msg("%s: %s", POLKIT_POLICY_FILE, error->message);
	assert_int_equal(g_hash_table_size(p.actions), 2);
	assert_action(p.actions, MIGD_AUTHORITY_ACTION_READ, "no", "no", "yes");
	assert_action(p.actions, MIGD_AUTHORITY_ACTION_CHANGE, "auth_admin", "auth_admin",
		      "auth_admin_keep");
	g_hash_table_unref(p.actions);
	g_free(p.element);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_method_has_an_action),
	    cmocka_unit_test(test_unknown_method_has_none),
	    cmocka_unit_test(test_policy_file),
	};

	return cmocka_run_group_tests_name("dbus-authority", tests, NULL, NULL);
}
