/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hook's decisions, directly: its configuration, the domain XML, the plan,
 * vfio-migctl's arguments and JSON, and running a command with a deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-hook-core.h"

#define DOMAIN_OPEN  "<domain type='kvm'><name>g</name><devices>"
#define DOMAIN_CLOSE "</devices></domain>"

static MigdHookDomain *
parse_ok(const gchar *xml)
{
	g_autoptr(GError) error = NULL;
	MigdHookDomain *d = migd_hook_domain_parse(xml, -1, &error);

	if (d == NULL)
		fail_msg("%s: %s", xml, error->message);
	return d;
}

static void
parse_fails(const gchar *xml, const gchar *fragment)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdHookDomain) d = migd_hook_domain_parse(xml, -1, &error);

	assert_null(d);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	if (fragment != NULL && strstr(error->message, fragment) == NULL)
		fail_msg("'%s' does not mention '%s'", error->message, fragment);
}

static gchar *
joined(GPtrArray *array)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < array->len; i++)
		g_string_append_printf(s, "%s%s", i > 0 ? " " : "",
				       (const gchar *)g_ptr_array_index(array, i));
	return g_string_free(s, FALSE);
}

static void
test_xml_realistic_domain(void **state)
{
	g_autofree gchar *path =
	    g_build_filename(g_getenv("MIGD_HOOK_DATA"), "domain-vfio.xml", NULL);
	g_autofree gchar *xml = NULL;
	g_autoptr(MigdHookDomain) d = NULL;
	g_autofree gchar *keys = NULL;

	assert_true(g_file_get_contents(path, &xml, NULL, NULL));
	d = parse_ok(xml);
	assert_string_equal(d->name, "guest1");
	assert_string_equal(d->uuid, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
	/* host sides only, in order: the pci hostdev, the mdev, the VF NIC; not the
	 * guest addresses, the disk, the usb hostdev, metadata or the description */
	keys = joined(d->hostdevs);
	assert_string_equal(keys, "pci:0000:3b:00.2 mdev:3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11 "
				  "pci:0000:3b:10.1");
}

static void
test_xml_variants(void **state)
{
	g_autoptr(MigdHookDomain) a = NULL;
	g_autoptr(MigdHookDomain) b = NULL;
	g_autoptr(MigdHookDomain) c = NULL;
	g_autoptr(MigdHookDomain) d = NULL;
	g_autofree gchar *keys = NULL;

	/* libvirt's parser takes any C base; the domain defaults to 0; a repeat is one */
	a = parse_ok(DOMAIN_OPEN "<hostdev mode='subsystem' type='pci'><source>"
				 "<address bus='59' slot='0' function='1'/></source></hostdev>"
				 "<hostdev type='pci'><source><address domain='0x0000' bus='0x3b' "
				 "slot='0x00' function='0x1'/></source></hostdev>" DOMAIN_CLOSE);
	keys = joined(a->hostdevs);
	assert_string_equal(keys, "pci:0000:3b:00.1");
	assert_null(a->uuid);
	/* an entity in the name; a capabilities hostdev (LXC) is no VFIO device */
	b = parse_ok("<?xml version='1.0'?><domain><name> a&amp;b </name><devices>"
		     "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf1</block>"
		     "</source></hostdev>" DOMAIN_CLOSE);
	assert_string_equal(b->name, "a&b");
	assert_int_equal(b->hostdevs->len, 0);
	/* a hostdev NIC with a non-PCI address, and hostdevs outside <devices> */
	c = parse_ok(DOMAIN_OPEN "<interface type='hostdev'><source><address type='usb' bus='1' "
				 "device='2'/></source></interface>" DOMAIN_CLOSE
				 "<!-- <hostdev/> -->");
	assert_int_equal(c->hostdevs->len, 0);
	d = parse_ok("<domain><name>n</name><hostdev mode='subsystem' type='pci'><source><address "
		     "bus='1' slot='2' function='3'/></source></hostdev></domain>");
	assert_int_equal(d->hostdevs->len, 0);
}

static void
test_xml_errors(void **state)
{
	parse_fails("", "empty");
	parse_fails("<domain><name>x</name>", NULL);
	parse_fails("<domain><name>x</name></domian>", NULL);
	parse_fails("<network><name>x</name></network>", "<network>");
	parse_fails("<domain><devices/></domain>", "no <name>");
	parse_fails("<domain><name>x</name><uuid>nope</uuid></domain>", "not a UUID");
	parse_fails("<domain><name>x&bogus;</name></domain>", NULL);
	parse_fails("<domain><name>\xff\xfe</name></domain>", NULL);
	/* a host device that cannot be read might be one of ours: an error */
	parse_fails(DOMAIN_OPEN "<hostdev mode='subsystem' type='pci'><source><address bus='0x3b' "
				"slot='0x20' function='0'/></source></hostdev>" DOMAIN_CLOSE,
		    "unreadable");
	parse_fails(DOMAIN_OPEN "<hostdev mode='subsystem' type='pci'><source><address bus='0x3b' "
				"slot='0x1' function='0x8'/></source></hostdev>" DOMAIN_CLOSE,
		    "unreadable");
	parse_fails(DOMAIN_OPEN "<hostdev mode='subsystem' type='pci'><source><address bus='x' "
				"slot='0x1' function='0'/></source></hostdev>" DOMAIN_CLOSE,
		    "unreadable");
	parse_fails(DOMAIN_OPEN "<hostdev mode='subsystem' type='pci'><source><address "
				"slot='0x1' function='0'/></source></hostdev>" DOMAIN_CLOSE,
		    "unreadable");
	parse_fails(DOMAIN_OPEN "<hostdev mode='subsystem' type='mdev'><source><address "
				"uuid='zz'/></source></hostdev>" DOMAIN_CLOSE,
		    "mediated");
}

static void
test_keys(void **state)
{
	const struct {
		const gchar *in;
		const gchar *out;
	} pci[] = {
	    {"0000:3b:00.2", "pci:0000:3b:00.2"},
	    {"3B:00.2", "pci:0000:3b:00.2"},
	    {"1:2:3.4", "pci:0001:02:03.4"},
	    {"ffff:ff:1f.7", "pci:ffff:ff:1f.7"},
	    {"3b:20.0", NULL},
	    {"3b:00.8", NULL},
	    {"3b:00", NULL},
	    {"10000:00:00.0", NULL},
	    {"0000:3b:00.2.1", NULL},
	    {"", NULL},
	    {"0000:-1:00.0", NULL},
	    {"0x3b:00.0", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(pci); i++) {
		g_autofree gchar *key = migd_hook_pci_key(pci[i].in);
		if (g_strcmp0(key, pci[i].out) != 0)
			fail_msg("%s: got %s", pci[i].in, key);
	}
	{
		g_autofree gchar *m = migd_hook_mdev_key("3B3B0A1C-5F0E-4F56-A4A6-2B3A9A1E0C11");
		g_autofree gchar *bad = migd_hook_mdev_key("3b3b0a1c");
		assert_string_equal(m, "mdev:3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11");
		assert_null(bad);
	}
}

static const gchar *full_config = "[hook]\n"
				  "timeout-ms=2500\n"
				  "migctl=/opt/bin/vfio-migctl\n"
				  "bus-name=org.test.Migd\n"
				  "session=true\n"
				  "[listen]\n"
				  "address=tcp:0.0.0.0:47000\n"
				  "cert=/etc/vfio-migd/tls/host.pem\n"
				  "key=/etc/vfio-migd/tls/host.key\n"
				  "ca=/etc/vfio-migd/tls/ca.pem\n"
				  "[pci 3b:00.2]\n"
				  "device=vf0\n"
				  "[pci 0000:3b:10.1]\n"
				  "device=vf1\n"
				  "[mdev 3B3B0A1C-5F0E-4F56-A4A6-2B3A9A1E0C11]\n"
				  "device=mtty0\n"
				  "[pci 0000:5e:00.3]\n"
				  "[domain guest1]\n"
				  "devices=extra0;vf0\n"
				  "[domain 0B1D6A37-0000-4000-8000-000000000002]\n"
				  "listen=tcp:10.0.0.5:47001\n";

static void
test_config_full(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdHookConfig) c = migd_hook_config_load_data(full_config, &error);
	MigdHookDomainConf *dc;

	assert_non_null(c);
	assert_int_equal(c->timeout_ms, 2500);
	assert_string_equal(c->migctl, "/opt/bin/vfio-migctl");
	assert_string_equal(c->bus_name, "org.test.Migd");
	assert_true(c->session);
	assert_string_equal(c->listen, "tcp:0.0.0.0:47000");
	assert_false(c->plain);
	assert_string_equal(c->ca, "/etc/vfio-migd/tls/ca.pem");
	assert_string_equal(g_hash_table_lookup(c->hostdevs, "pci:0000:3b:00.2"), "vf0");
	assert_string_equal(g_hash_table_lookup(c->hostdevs, "pci:0000:3b:10.1"), "vf1");
	assert_string_equal(
	    g_hash_table_lookup(c->hostdevs, "mdev:3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11"), "mtty0");
	/* without device=: the name vfio-migd gives a device opened by address */
	assert_string_equal(g_hash_table_lookup(c->hostdevs, "pci:0000:5e:00.3"), "0000:5e:00.3");
	dc = g_hash_table_lookup(c->domains, "guest1");
	assert_non_null(dc);
	assert_string_equal(dc->devices[0], "extra0");
	assert_null(dc->listen);
	/* UUID groups are kept in lower case */
	dc = g_hash_table_lookup(c->domains, "0b1d6a37-0000-4000-8000-000000000002");
	assert_non_null(dc);
	assert_string_equal(dc->listen, "tcp:10.0.0.5:47001");
	assert_null(dc->devices[0]);
	assert_false(migd_hook_config_is_empty(c));
}

static void
test_config_defaults_and_missing_file(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdHookConfig) c =
	    migd_hook_config_load("/nonexistent/vfio-migd/hook.conf", &error);
	g_autoptr(MigdHookConfig) e = migd_hook_config_load_data("", &error);

	/* not configured: inert */
	assert_non_null(c);
	assert_true(migd_hook_config_is_empty(c));
	assert_int_equal(c->timeout_ms, MIGD_HOOK_DEFAULT_TIMEOUT_MS);
	assert_null(c->migctl);
	assert_non_null(e);
	assert_true(migd_hook_config_is_empty(e));
}

/* libvirt waits for the hook: a FIFO or a device as its configuration is refused at once */
static void
test_config_not_a_file(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-hook-XXXXXX", NULL);
	g_autofree gchar *fifo = g_build_filename(dir, "hook.conf", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdHookConfig) c = NULL;
	g_autoptr(MigdHookConfig) z = NULL;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	c = migd_hook_config_load(fifo, &error);
	assert_null(c);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "a FIFO, but a regular file is required"));
	assert_non_null(strstr(error->message, fifo));
	g_clear_error(&error);
	z = migd_hook_config_load("/dev/zero", &error);
	assert_null(z);
	assert_string_equal(error->message,
			    "/dev/zero: a character device, but a regular file is required");
	assert_int_equal(unlink(fifo), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_config_errors(void **state)
{
	const struct {
		const gchar *text;
		const gchar *message;
	} bad[] = {
	    {"[hook]\ntimeout=5\n", "unknown key 'timeout'"},
	    {"[hook]\ntimeout-ms=0\n", "timeout-ms"},
	    {"[hook]\ntimeout-ms=999999\n", "timeout-ms"},
	    {"[hook]\ntimeout-ms=ten\n", "timeout-ms"},
	    {"[hook]\nmigctl=vfio-migctl\n", "absolute"},
	    {"[hook]\nsession=maybe\n", "true or false"},
	    {"[hook]\nstart=later\n", "start= must be manual or auto"},
	    {"[listen]\naddress=\n", "must not be empty"},
	    {"[listen]\naddress=tcp:x:1\ncert=/a\n", "go together"},
	    {"[pci 3b:00.9]\ndevice=vf0\n", "not a PCI address"},
	    {"[pci 3b:00.1]\ndevice=vf0\ncolor=blue\n", "unknown key"},
	    {"[pci 3b:00.1]\ndevice=vf0\n[pci 0000:3b:00.1]\ndevice=vf1\n", "mapped twice"},
	    {"[mdev nope]\ndevice=m\n", "mdev UUID"},
	    {"[domain g]\ndevices=a;;b\n", "empty name"},
	    {"[domain g]\n[domain g ]\n", NULL},
	    {"[domain g]\nlisten=\n", "must not be empty"},
	    {"[domain ]\n", "unknown group"},
	    {"[plugin mlx5]\nread-size=4M\n", "unknown group"},
	    {"this is not a key file\n", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdHookConfig) c = migd_hook_config_load_data(bad[i].text, &error);
		if (c != NULL && bad[i].message == NULL)
			continue; /* GKeyFile's own leniency, e.g. trailing spaces */
		if (c != NULL)
			fail_msg("accepted: %s", bad[i].text);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (bad[i].message != NULL && strstr(error->message, bad[i].message) == NULL)
			fail_msg("'%s' does not mention '%s'", error->message, bad[i].message);
	}
}

/* the installed example: inert as shipped, valid with every setting enabled */
static void
test_example_config(void **state)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GString) enabled = g_string_new(NULL);
	g_autoptr(MigdHookConfig) as_shipped = NULL;
	g_autoptr(MigdHookConfig) all = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) lines = NULL;

	assert_true(g_file_get_contents(g_getenv("MIGD_HOOK_EXAMPLE"), &text, NULL, NULL));
	as_shipped = migd_hook_config_load_data(text, &error);
	assert_non_null(as_shipped);
	assert_true(migd_hook_config_is_empty(as_shipped));
	/* "#key=value" and "#[group]" are settings; "# text" is prose */
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *l = lines[i];
		if (l[0] == '#' && l[1] != ' ' && l[1] != '\0')
			l++;
		g_string_append_printf(enabled, "%s\n", l);
	}
	all = migd_hook_config_load_data(enabled->str, &error);
	if (all == NULL)
		fail_msg("%s", error->message);
	assert_string_equal(all->listen, "tcp:0.0.0.0:4821");
	assert_string_equal(g_hash_table_lookup(all->hostdevs, "pci:0000:3b:00.2"), "0000:3b:00.2");
	assert_string_equal(
	    g_hash_table_lookup(all->hostdevs, "mdev:3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11"),
	    "3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11");
	assert_non_null(g_hash_table_lookup(all->domains, "guest1"));
}

static void
test_plan(void **state)
{
	g_autoptr(MigdHookConfig) c = migd_hook_config_load_data(full_config, NULL);
	g_autoptr(MigdHookDomain) d = NULL;
	g_autoptr(GPtrArray) devices = NULL;
	g_autofree gchar *list = NULL;
	const gchar *listen = NULL;

	assert_non_null(c);
	d = parse_ok("<domain><name>guest1</name><devices>"
		     "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x3b' "
		     "slot='0x10' function='1'/></source></hostdev>"
		     "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x3b' "
		     "slot='0' function='2'/></source></hostdev>"
		     "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x5e' "
		     "slot='0' function='0'/></source></hostdev>" DOMAIN_CLOSE);
	/* the domain's own list first, then its mapped hostdevs, no repeats; an
	 * unmapped hostdev is not vfio-migd's */
	devices = migd_hook_plan(c, "guest1", d, &listen);
	list = joined(devices);
	assert_string_equal(list, "extra0 vf0 vf1");
	assert_string_equal(listen, "tcp:0.0.0.0:47000");
	g_clear_pointer(&devices, g_ptr_array_unref);

	/* libvirt's object name may differ from nothing we know: the XML's name
	 * and UUID are tried too; the UUID group overrides the address */
	g_clear_pointer(&d, migd_hook_domain_free);
	d = parse_ok(
	    "<domain><name>renamed</name><uuid>0b1d6a37-0000-4000-8000-000000000002</uuid>"
	    "<devices><hostdev mode='subsystem' type='mdev'><source><address "
	    "uuid='3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11'/></source></hostdev>" DOMAIN_CLOSE);
	devices = migd_hook_plan(c, "renamed", d, &listen);
	g_clear_pointer(&list, g_free);
	list = joined(devices);
	assert_string_equal(list, "mtty0");
	assert_string_equal(listen, "tcp:10.0.0.5:47001");
	g_clear_pointer(&devices, g_ptr_array_unref);

	/* nothing mapped */
	g_clear_pointer(&d, migd_hook_domain_free);
	d = parse_ok("<domain><name>other</name></domain>");
	devices = migd_hook_plan(c, "other", d, &listen);
	assert_int_equal(devices->len, 0);
}

static void
test_argv(void **state)
{
	g_autoptr(MigdHookConfig) c = migd_hook_config_load_data(full_config, NULL);
	g_autoptr(MigdHookConfig) plain =
	    migd_hook_config_load_data("[listen]\naddress=unix:/run/m\nplain=true\n", NULL);
	g_auto(GStrv) a = migd_hook_devices_argv(c, "/bin/ctl");
	g_auto(GStrv) b = migd_hook_listen_argv(c, "/bin/ctl", "tcp:0.0.0.0:47000");
	g_auto(GStrv) p = migd_hook_listen_argv(plain, "/bin/ctl", "-weird");
	g_autofree gchar *sa = g_strjoinv(" ", a);
	g_autofree gchar *sb = g_strjoinv(" ", b);
	g_autofree gchar *sp = g_strjoinv(" ", p);

	assert_string_equal(sa, "/bin/ctl --session --bus-name org.test.Migd --json devices");
	assert_string_equal(sb,
			    "/bin/ctl --session --bus-name org.test.Migd --json listen "
			    "--cert /etc/vfio-migd/tls/host.pem --key /etc/vfio-migd/tls/host.key "
			    "--ca /etc/vfio-migd/tls/ca.pem -- tcp:0.0.0.0:47000");
	/* "--": an address can never be taken for an option */
	assert_string_equal(sp, "/bin/ctl --json listen --plain -- -weird");
}

static void
test_expect_argv(void **state)
{
	g_autoptr(MigdHookConfig) c = migd_hook_config_load_data(full_config, NULL);
	g_autoptr(MigdHookConfig) automatic =
	    migd_hook_config_load_data("[hook]\nstart=auto\n", NULL);
	g_autoptr(GPtrArray) devices = g_ptr_array_new();
	const gchar *id = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
	g_auto(GStrv) e = NULL;
	g_auto(GStrv) a = NULL;
	g_auto(GStrv) x = migd_hook_cancel_expectation_argv(c, "/bin/ctl", id);
	g_autofree gchar *se = NULL;
	g_autofree gchar *sa = NULL;
	g_autofree gchar *sx = g_strjoinv(" ", x);

	g_ptr_array_add(devices, "vf0");
	g_ptr_array_add(devices, "mtty0");
	e = migd_hook_expect_argv(c, "/bin/ctl", id, devices);
	a = migd_hook_expect_argv(automatic, "/bin/ctl", id, devices);
	se = g_strjoinv(" ", e);
	sa = g_strjoinv(" ", a);
	/* start=manual by default: the daemon's [libvirt] starts them with the guest */
	assert_string_equal(se, "/bin/ctl --session --bus-name org.test.Migd --json expect "
				"c7a5fdbd-edaf-9455-926a-d65c16db1809 --device vf0 --device mtty0 "
				"--start manual");
	assert_string_equal(sa, "/bin/ctl --json expect c7a5fdbd-edaf-9455-926a-d65c16db1809 "
				"--device vf0 --device mtty0 --start auto");
	assert_string_equal(sx, "/bin/ctl --session --bus-name org.test.Migd --json "
				"cancel-expectation c7a5fdbd-edaf-9455-926a-d65c16db1809");
}

static void
test_json(void **state)
{
	g_autoptr(JsonNode) v = migd_hook_json_parse(
	    " {\"a\":[1,-2.5e3,true,false,null],\"b\":\"x\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\","
	    "\"c\":{}} ",
	    NULL);
	JsonObject *obj;
	JsonArray *arr;
	/* what json-glib refuses, and what the hook refuses before it: no value, raw
	 * control characters in strings, JavaScript assignments */
	const gchar *bad[] = {
	    "",
	    "   ",
	    "{",
	    "{\"a\":1,}",
	    "{\"a\" 1}",
	    "[1 2]",
	    "{\"a\":tru}",
	    "\"raw\nnewline\"",
	    "\"raw\ttab\"",
	    "\"\\ud800\"",
	    "\"\\udc00\"",
	    "{a:1}",
	    "-",
	    "01x",
	    "\"\\u12\"",
	    "[1,]",
	    "\"unterminated",
	    "var x = {}",
	    "{\"a\":\"\xff\"}",
	};
	GString *deep = g_string_new(NULL);
	g_autofree gchar *huge = NULL;
	JsonNode *dv;

	assert_non_null(v);
	assert_true(JSON_NODE_HOLDS_OBJECT(v));
	obj = json_node_get_object(v);
	assert_string_equal(json_object_get_string_member(obj, "b"),
			    "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
	arr = json_object_get_array_member(obj, "a");
	assert_int_equal(json_array_get_length(arr), 5);
	assert_true(json_array_get_double_element(arr, 1) == -2500.0);
	assert_int_equal(json_array_get_int_element(arr, 0), 1);
	assert_true(json_array_get_boolean_element(arr, 2));
	assert_true(json_array_get_null_element(arr, 4));
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) x = migd_hook_json_parse(bad[i], &error);
		if (x != NULL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	}
	/* nesting is bounded, so hostile output cannot exhaust the stack: json-glib
	 * itself recurses without a limit, and 10^6 levels would crash it */
	for (guint i = 0; i < 100; i++)
		g_string_append_c(deep, '[');
	for (guint i = 0; i < 100; i++)
		g_string_append_c(deep, ']');
	dv = migd_hook_json_parse(deep->str, NULL);
	assert_null(dv);
	g_string_truncate(deep, 0);
	for (guint i = 0; i < 1000000; i++)
		g_string_append(deep, i % 2 == 0 ? "[" : "{\"k\":");
	dv = migd_hook_json_parse(deep->str, NULL);
	assert_null(dv);
	/* brackets in strings do not count; 64 levels are fine */
	g_string_truncate(deep, 0);
	for (guint i = 0; i < MIGD_HOOK_JSON_MAX_DEPTH; i++)
		g_string_append(deep, "[\"[{\\\"\",");
	g_string_append_c(deep, '0');
	for (guint i = 0; i < MIGD_HOOK_JSON_MAX_DEPTH; i++)
		g_string_append_c(deep, ']');
	dv = migd_hook_json_parse(deep->str, NULL);
	assert_non_null(dv);
	json_node_unref(dv);
	g_string_free(deep, TRUE);
	/* and so is the size */
	huge = g_strnfill(MIGD_HOOK_JSON_MAX_SIZE + 1, ' ');
	huge[0] = '1';
	dv = migd_hook_json_parse(huge, NULL);
	assert_null(dv);
}

static void
test_migctl_result(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) ok = NULL;
	JsonObject *v;

	ok = migd_hook_migctl_result(0, "{\"address\":\"tcp:1.2.3.4:5\"}\n", "", FALSE, &error);
	assert_non_null(ok);
	assert_string_equal(json_object_get_string_member(ok, "address"), "tcp:1.2.3.4:5");
	/* exit 0 without JSON is a vfio-migctl that does not match */
	v = migd_hook_migctl_result(0, "listening\n", "", FALSE, &error);
	assert_null(v);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	g_clear_error(&error);
	/* Busy: an error unless it is acceptable (already listening) */
	v = migd_hook_migctl_result(
	    1,
	    "{\"event\":\"error\",\"error\":\"org.vfiomigd.Migd1.Error.Busy\",\"message\":\"x\"}",
	    "", TRUE, &error);
	assert_null(v);
	assert_null(error);
	v = migd_hook_migctl_result(
	    1,
	    "{\"event\":\"error\",\"error\":\"org.vfiomigd.Migd1.Error.Busy\",\"message\":\"x\"}",
	    "", FALSE, &error);
	assert_null(v);
	assert_non_null(strstr(error->message, "org.vfiomigd.Migd1.Error.Busy"));
	g_clear_error(&error);
	v = migd_hook_migctl_result(1,
				    "{\"event\":\"error\",\"error\":\"org.freedesktop.DBus.Error."
				    "ServiceUnknown\",\"message\":\"no .service file\"}",
				    "", FALSE, &error);
	assert_null(v);
	assert_non_null(strstr(error->message, "not running"));
	g_clear_error(&error);
	/* the daemon's names keep their code; a daemon without the method is NOT_SUPPORTED */
	v = migd_hook_migctl_result(1,
				    "{\"event\":\"error\",\"error\":\"org.vfiomigd.Migd1.Error."
				    "InvalidArgument\",\"message\":\"already expected\"}",
				    "", FALSE, &error);
	assert_null(v);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	v = migd_hook_migctl_result(1,
				    "{\"event\":\"error\",\"error\":\"org.freedesktop.DBus.Error."
				    "UnknownMethod\",\"message\":\"No such method\"}",
				    "", FALSE, &error);
	assert_null(v);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_non_null(strstr(error->message, "No such method"));
	g_clear_error(&error);
	v = migd_hook_migctl_result(2, "", "vfio-migctl: unknown option\n", FALSE, &error);
	assert_null(v);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_non_null(strstr(error->message, "unknown option"));
	g_clear_error(&error);
	/* an error object whose fields have other types: not a crash, just a failure */
	v = migd_hook_migctl_result(1, "{\"event\":\"error\",\"error\":5,\"message\":[\"x\"]}\n",
				    "", TRUE, &error);
	assert_null(v);
	assert_non_null(strstr(error->message, "exit status 1"));
	g_clear_error(&error);
	v = migd_hook_migctl_result(3, "garbage", "boom\n", FALSE, &error);
	assert_null(v);
	assert_non_null(strstr(error->message, "exit status 3"));
	assert_non_null(strstr(error->message, "boom"));
}

static void
test_check_devices(void **state)
{
	g_autoptr(JsonNode) json_node = migd_hook_json_parse(
	    "{\"devices\":[{\"name\":\"vf0\",\"busy\":false,\"state\":\"RUNNING\"},"
	    "{\"name\":\"vf1\",\"busy\":true,\"reserved-for\":\"vm-a\"},{\"nameless\":1},7,"
	    "{\"name\":[\"vf2\"]},{\"name\":\"vf3\",\"busy\":\"yes\"}]}",
	    NULL);
	g_autoptr(GPtrArray) wanted = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) empty_node = migd_hook_json_parse("{\"address\":\"x\"}", NULL);
	g_autoptr(JsonNode) not_list_node = migd_hook_json_parse("{\"devices\":{\"a\":1}}", NULL);
	JsonObject *json = json_node_get_object(json_node);
	JsonObject *empty = json_node_get_object(empty_node);

	g_ptr_array_add(wanted, "vf0");
	assert_true(migd_hook_check_devices(json, wanted, NULL, &error));
	g_ptr_array_add(wanted, "vf1");
	assert_false(migd_hook_check_devices(json, wanted, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	g_clear_error(&error);
	/* reserved for this migration (a retry): free; for another one: busy */
	assert_true(migd_hook_check_devices(json, wanted, "vm-a", &error));
	assert_false(migd_hook_check_devices(json, wanted, "vm-b", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	g_clear_error(&error);
	g_ptr_array_index(wanted, 1) = "vf9";
	assert_false(migd_hook_check_devices(json, wanted, NULL, &error));
	assert_non_null(strstr(error->message, "'vf9'"));
	assert_non_null(strstr(error->message, "vf0, vf1"));
	g_clear_error(&error);
	assert_false(migd_hook_check_devices(empty, wanted, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	g_clear_error(&error);
	assert_false(
	    migd_hook_check_devices(json_node_get_object(not_list_node), wanted, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	g_clear_error(&error);
	/* a name that is not a string is no device; a busy that is not a boolean is not busy */
	g_ptr_array_index(wanted, 1) = "vf3";
	assert_true(migd_hook_check_devices(json, wanted, NULL, &error));
	g_ptr_array_index(wanted, 1) = "vf2";
	assert_false(migd_hook_check_devices(json, wanted, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
}

static void
test_run(void **state)
{
	const gchar *echo[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	const gchar *killed[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
	const gchar *missing[] = {"/nonexistent/vfio-migctl", "devices", NULL};
	/* a grandchild keeps the pipes: only killing the group ends the wait */
	const gchar *hang[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;
	gint64 start;

	assert_true(migd_hook_run(echo, g_get_monotonic_time() + 10 * G_USEC_PER_SEC, &out, &err,
				  &status, &error));
	assert_int_equal(status, 3);
	assert_string_equal(out, "out\n");
	assert_string_equal(err, "err\n");

	assert_false(migd_hook_run(killed, g_get_monotonic_time() + 10 * G_USEC_PER_SEC, NULL, NULL,
				   &status, &error));
	assert_non_null(strstr(error->message, "signal"));
	g_clear_error(&error);

	assert_false(migd_hook_run(missing, g_get_monotonic_time() + 10 * G_USEC_PER_SEC, NULL,
				   NULL, &status, &error));
	assert_non_null(strstr(error->message, "cannot run"));
	g_clear_error(&error);

	start = g_get_monotonic_time();
	assert_false(migd_hook_run(hang, start + 200 * 1000, NULL, NULL, &status, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT));
	assert_true(g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC);
	g_clear_error(&error);

	/* a deadline already past */
	assert_false(migd_hook_run(echo, g_get_monotonic_time() - 1, NULL, NULL, &status, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT));
}

/* the pipes this process has open (other descriptors come and go with GLib's threads) */
static guint
count_pipes(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	const gchar *name;
	guint n = 0;

	assert_non_null(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename("/proc/self/fd", name, NULL);
		g_autofree gchar *target = g_file_read_link(path, NULL);

		if (target != NULL && g_str_has_prefix(target, "pipe:"))
			n++;
	}
	return n;
}

/* the threads of this process */
static guint
count_threads(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
	guint n = 0;

	assert_non_null(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

/*
 * A run starts no thread and leaves nothing open. GIO's communicate closed the
 * pipes on new thread-pool threads, and one still starting when the hook
 * exited was LeakSanitizer's "leak" in pthread_getattr_np: the SIGABRT of
 * test-libvirt-hook's bounded wait under load.
 */
static void
test_run_no_thread(void **state)
{
	const gchar *echo[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
	const gchar *hang[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
	g_autoptr(GError) error = NULL;
	gint status = -1;
	guint threads, pipes;

	/* before this process spawns anything: this test runs before test_run */
	threads = count_threads();
	pipes = count_pipes();
	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		assert_true(migd_hook_run(echo, g_get_monotonic_time() + 10 * G_USEC_PER_SEC, &out,
					  &err, &status, &error));
		assert_string_equal(out, "out\n");
		assert_false(migd_hook_run(hang, g_get_monotonic_time() + 100 * 1000, NULL, NULL,
					   &status, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT));
		g_clear_error(&error);
	}
	/* GLib's worker thread, started by the first spawn, and no other */
	assert_true(count_threads() <= threads + 1);
	assert_int_equal(count_pipes(), pipes);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xml_realistic_domain),
	    cmocka_unit_test(test_xml_variants),
	    cmocka_unit_test(test_xml_errors),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_config_full),
	    cmocka_unit_test(test_config_defaults_and_missing_file),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_not_a_file),
	    cmocka_unit_test(test_example_config),
	    cmocka_unit_test(test_plan),
	    cmocka_unit_test(test_argv),
	    cmocka_unit_test(test_expect_argv),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_migctl_result),
	    cmocka_unit_test(test_check_devices),
	    cmocka_unit_test(test_run_no_thread),
	    cmocka_unit_test(test_run),
	};

	return cmocka_run_group_tests_name("libvirt-hook-core", tests, NULL, NULL);
}
