/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl's JSON output (--json): one object per line, through json-glib
 * (docs/ABI/testing/cli-json).
 */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-ranges.h"
#include "migctl.h"
#include "migctl-help.h"
#include "migctl-util.h"

/* ---- JSON (json-glib) ---- */

static void
migctl_json_uint(JsonBuilder *builder, guint64 value)
{
	/* json-glib holds signed integers: a larger value stays a number, if inexact */
	if (value > G_MAXINT64)
		json_builder_add_double_value(builder, (gdouble)value);
	else
		json_builder_add_int_value(builder, (gint64)value);
}

void
migctl_json_member_uint(JsonBuilder *builder, const gchar *key, guint64 value)
{
	json_builder_set_member_name(builder, key);
	migctl_json_uint(builder, value);
}

void
migctl_json_double(JsonBuilder *builder, gdouble value)
{
	/* NaN and infinities have no JSON spelling */
	if (!isfinite(value))
		json_builder_add_null_value(builder);
	else
		json_builder_add_double_value(builder, value);
}

void
migctl_json_string(JsonBuilder *builder, const gchar *value)
{
	json_builder_add_string_value(builder, value != NULL ? value : "");
}

/* one object per line, flushed so a reader sees each event as it happens */
void
migctl_json_print(JsonBuilder *builder)
{
	g_autoptr(JsonNode) root = json_builder_get_root(builder);
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autofree gchar *text = NULL;
	g_autoptr(GString) line = NULL;

	json_generator_set_root(generator, root);
	text = json_generator_to_data(generator, NULL);
	/* json-glib 1.6 writes U+001F raw (its escaping stops at U+001E); in the
	 * compact output a control byte can only be inside a string, where RFC 8259
	 * wants it as \u00XX */
	line = g_string_sized_new(strlen(text) + 1);
	for (const gchar *p = text; *p != '\0'; p++) {
		if ((guchar)*p < 0x20)
			g_string_append_printf(line, "\\u%04x", (guint)(guchar)*p);
		else
			g_string_append_c(line, *p);
	}
	g_print("%s\n", line->str);
	fflush(stdout);
}

/* {"KEY": "VALUE"}, or with FLAG, {"KEY": "VALUE", "FLAG": true}: what most commands print */
void
migctl_json_print_result(const gchar *key, const gchar *value, const gchar *flag)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();

	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, key);
	migctl_json_string(builder, value);
	if (flag != NULL) {
		json_builder_set_member_name(builder, flag);
		json_builder_add_boolean_value(builder, TRUE);
	}
	json_builder_end_object(builder);
	migctl_json_print(builder);
}

/* a digest compares as text: a 64-bit number does not survive every JSON parser */
static gboolean
migctl_key_is_digest(const gchar *key)
{
	return g_str_has_suffix(key, "digest");
}

void
migctl_json_variant(JsonBuilder *builder, const gchar *key, GVariant *value)
{
	if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
		migctl_json_string(builder, g_variant_get_string(value, NULL));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN)) {
		json_builder_add_boolean_value(builder, g_variant_get_boolean(value));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64)) {
		guint64 v = g_variant_get_uint64(value);
		if (migctl_key_is_digest(key)) {
			g_autofree gchar *hex = g_strdup_printf("%016" G_GINT64_MODIFIER "x", v);
			migctl_json_string(builder, hex);
		} else {
			migctl_json_uint(builder, v);
		}
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32)) {
		json_builder_add_int_value(builder, g_variant_get_uint32(value));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT64)) {
		json_builder_add_int_value(builder, g_variant_get_int64(value));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT32)) {
		json_builder_add_int_value(builder, g_variant_get_int32(value));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_DOUBLE)) {
		migctl_json_double(builder, g_variant_get_double(value));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY)) {
		g_autofree const gchar **strv = g_variant_get_strv(value, NULL);
		json_builder_begin_array(builder);
		for (guint i = 0; strv[i] != NULL; i++)
			migctl_json_string(builder, strv[i]);
		json_builder_end_array(builder);
	} else {
		/* a type a newer daemon added: still valid JSON, as GVariant text */
		g_autofree gchar *text = g_variant_print(value, FALSE);
		migctl_json_string(builder, text);
	}
}
