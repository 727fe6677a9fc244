/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The planner against an independent oracle: the arcs the kernel requires of a
 * driver and the combination paths listed in drivers/vfio/vfio_main.c, written
 * out here by hand per flag set (vfio-uapi.md §2.2-2.3), for every
 * (current, target, flags) triple.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-error.h"
#include "migd-fsm.h"

#define F_SC  (MIGD_MIG_FLAG_STOP_COPY)
#define F_P2P (MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P)
#define F_PRE (MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY)
#define F_ALL (MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P | MIGD_MIG_FLAG_PRE_COPY)

typedef struct {
	guint32 flags;
	const gchar *states;  /* the supported states */
	const gchar *direct;  /* the real arcs the driver implements */
	const gchar *paths;   /* the combination paths; "X>Y: X A B Y" */
	const gchar *refused; /* pairs refused although both states are supported */
} FsmOracle;

static const FsmOracle oracles[] = {
    {F_SC, "ST RU SC RE", "RU>ST ST>RU ST>SC SC>ST ST>RE RE>ST",
     "RU>SC:RU,ST,SC RU>RE:RU,ST,RE SC>RU:SC,ST,RU SC>RE:SC,ST,RE RE>RU:RE,ST,RU "
     "RE>SC:RE,ST,SC",
     ""},
    {F_P2P, "ST RU SC RE RP", "RU>RP RP>RU RP>ST ST>RP ST>SC SC>ST ST>RE RE>ST",
     "RU>ST:RU,RP,ST RU>SC:RU,RP,ST,SC RU>RE:RU,RP,ST,RE ST>RU:ST,RP,RU SC>RU:SC,ST,RP,RU "
     "SC>RP:SC,ST,RP RE>RU:RE,ST,RP,RU RE>RP:RE,ST,RP RP>SC:RP,ST,SC RP>RE:RP,ST,RE "
     "SC>RE:SC,ST,RE RE>SC:RE,ST,SC",
     ""},
    {F_PRE, "ST RU SC RE PC", "RU>ST ST>RU ST>SC SC>ST ST>RE RE>ST RU>PC PC>RU PC>SC",
     "PC>ST:PC,RU,ST PC>RE:PC,RU,ST,RE ST>PC:ST,RU,PC RE>PC:RE,ST,RU,PC RU>SC:RU,ST,SC "
     "RU>RE:RU,ST,RE SC>RU:SC,ST,RU SC>RE:SC,ST,RE RE>RU:RE,ST,RU RE>SC:RE,ST,SC",
     "SC>PC"},
    {F_ALL, "ST RU SC RE RP PC PP",
     "RU>RP RP>RU RP>ST ST>RP ST>SC SC>ST ST>RE RE>ST RU>PC PC>RU PC>PP PP>PC PP>RP PP>SC "
     "RP>PP",
     "RU>PP:RU,RP,PP RU>ST:RU,RP,ST RU>SC:RU,RP,ST,SC RP>PC:RP,RU,PC PC>RP:PC,RU,RP "
     "PC>ST:PC,RU,RP,ST PC>SC:PC,PP,SC PC>RE:PC,RU,RP,ST,RE PP>RU:PP,RP,RU PP>ST:PP,RP,ST "
     "PP>RE:PP,RP,ST,RE ST>RU:ST,RP,RU ST>PC:ST,RP,RU,PC ST>PP:ST,RP,PP SC>RU:SC,ST,RP,RU "
     "SC>RP:SC,ST,RP RE>RU:RE,ST,RP,RU RE>PC:RE,ST,RP,RU,PC RE>PP:RE,ST,RP,PP "
     "RE>SC:RE,ST,SC RU>RE:RU,RP,ST,RE RP>SC:RP,ST,SC RP>RE:RP,ST,RE SC>RE:SC,ST,RE "
     "RE>RP:RE,ST,RP",
     "SC>PC SC>PP"},
};

static const gchar *
state_to_abbrev(MigdState s)
{
	static const gchar *const abbrev[] = {"ER", "ST", "RU", "SC", "RE", "RP", "PC", "PP"};
	return abbrev[s];
}

static gboolean
oracle_has_word(const gchar *list, const gchar *word)
{
	g_auto(GStrv) words = g_strsplit(list, " ", -1);
	return g_strv_contains((const gchar *const *)words, word);
}

/* the expected path as "ST,RP,RU" (excluding the start), or NULL when refused */
static gchar *
oracle_expected(const FsmOracle *o, MigdState cur, MigdState target)
{
	g_autofree gchar *pair =
	    g_strdup_printf("%s>%s", state_to_abbrev(cur), state_to_abbrev(target));
	g_auto(GStrv) paths = g_strsplit(o->paths, " ", -1);

	if (oracle_has_word(o->refused, pair))
		return NULL;
	if (cur == target)
		return g_strdup("");
	if (oracle_has_word(o->direct, pair))
		return g_strdup(state_to_abbrev(target));
	for (guint i = 0; paths[i] != NULL; i++) {
		if (g_str_has_prefix(paths[i], pair) && paths[i][strlen(pair)] == ':') {
			/* drop "X>Y:X," */
			return g_strdup(paths[i] + strlen(pair) + 1 + 3);
		}
	}
	fail_msg("oracle has no entry for %s (flags 0x%x)", pair, o->flags);
	return NULL;
}

static gchar *
path_to_abbrev(GArray *path)
{
	g_autoptr(GString) str = g_string_new(NULL);
	for (guint i = 0; i < path->len; i++) {
		if (i > 0)
			g_string_append_c(str, ',');
		g_string_append(str, state_to_abbrev(g_array_index(path, guint, i)));
	}
	return g_string_free(g_steal_pointer(&str), FALSE);
}

static void
test_fsm_every_triple(void **state)
{
	guint checked = 0;

	for (guint k = 0; k < G_N_ELEMENTS(oracles); k++) {
		const FsmOracle *o = &oracles[k];
		for (guint cur = 0; cur < MIGD_STATE_NR; cur++) {
			for (guint target = 0; target < MIGD_STATE_NR; target++) {
				gboolean cur_ok = oracle_has_word(o->states, state_to_abbrev(cur));
				gboolean tgt_ok =
				    oracle_has_word(o->states, state_to_abbrev(target));
				g_autoptr(GError) error = NULL;
				g_autoptr(GArray) path =
				    migd_fsm_plan(o->flags, cur, target, &error);
				g_autofree gchar *expected = NULL;
				g_autofree gchar *got = NULL;

				/* the flag set decides which states exist */
				assert_int_equal(migd_fsm_state_supported(o->flags, cur), cur_ok);
				checked++;
				if (!cur_ok || !tgt_ok) {
					assert_null(path);
					assert_non_null(error);
					assert_true(error->domain == MIGD_ERROR);
					continue;
				}
				expected = oracle_expected(o, cur, target);
				if (expected == NULL) {
					assert_null(path);
					assert_true(g_error_matches(error, MIGD_ERROR,
								    MIGD_ERROR_REFUSED_ARC));
					continue;
				}
				if (path == NULL)
					fail_msg("%s -> %s (flags 0x%x) refused: %s",
						 state_to_abbrev(cur), state_to_abbrev(target),
						 o->flags, error->message);
				got = path_to_abbrev(path);
				if (g_strcmp0(got, expected) != 0)
					fail_msg("%s -> %s flags 0x%x: got %s, kernel %s",
						 state_to_abbrev(cur), state_to_abbrev(target),
						 o->flags, got, expected);
			}
		}
	}
	assert_int_equal(checked, G_N_ELEMENTS(oracles) * MIGD_STATE_NR * MIGD_STATE_NR);
}

/* every step is one of the driver's real arcs, and no interior arc opens a session */
static void
test_fsm_steps_are_real_arcs(void **state)
{
	for (guint k = 0; k < G_N_ELEMENTS(oracles); k++) {
		const FsmOracle *o = &oracles[k];
		for (guint cur = 1; cur < MIGD_STATE_NR; cur++) {
			for (guint target = 1; target < MIGD_STATE_NR; target++) {
				g_autoptr(GArray) path = migd_fsm_plan(o->flags, cur, target, NULL);
				MigdState from = cur;
				if (path == NULL)
					continue;
				for (guint i = 0; i < path->len; i++) {
					MigdState to = g_array_index(path, guint, i);
					g_autofree gchar *arc = g_strdup_printf(
					    "%s>%s", state_to_abbrev(from), state_to_abbrev(to));
					if (!oracle_has_word(o->direct, arc))
						fail_msg("flags 0x%x: %s is not a real arc",
							 o->flags, arc);
					/* a session may only open on the final arc */
					if (i + 1 < path->len)
						assert_false(migd_fsm_arc_opens_session(from, to));
					from = to;
				}
			}
		}
	}
}

static void
test_fsm_refuses_error_target(void **state)
{
	for (guint cur = 1; cur < MIGD_STATE_NR; cur++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GArray) path = migd_fsm_plan(F_ALL, cur, MIGD_STATE_ERROR, &error);
		assert_null(path);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC));
		assert_non_null(strstr(error->message, "ERROR cannot be requested"));
	}
}

static void
test_fsm_refuses_hang_arcs(void **state)
{
	const MigdState targets[] = {MIGD_STATE_PRE_COPY, MIGD_STATE_PRE_COPY_P2P};
	for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
		g_autoptr(GError) error = NULL;
		MigdState next = MIGD_STATE_RUNNING;
		assert_true(migd_fsm_arc_hangs_kernel(MIGD_STATE_STOP_COPY, targets[i]));
		assert_false(
		    migd_fsm_next_step(F_ALL, MIGD_STATE_STOP_COPY, targets[i], &next, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC));
		assert_non_null(strstr(error->message, "hangs"));
		/* next is left alone on failure */
		assert_int_equal(next, MIGD_STATE_RUNNING);
	}
	assert_false(migd_fsm_arc_hangs_kernel(MIGD_STATE_STOP_COPY, MIGD_STATE_STOP));
	assert_false(migd_fsm_arc_hangs_kernel(MIGD_STATE_PRE_COPY, MIGD_STATE_STOP_COPY));
}

static void
test_fsm_refuses_without_stop_copy(void **state)
{
	const guint32 bad_flags[] = {0, MIGD_MIG_FLAG_P2P, MIGD_MIG_FLAG_PRE_COPY,
				     MIGD_MIG_FLAG_P2P | MIGD_MIG_FLAG_PRE_COPY};
	for (guint i = 0; i < G_N_ELEMENTS(bad_flags); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GArray) path =
		    migd_fsm_plan(bad_flags[i], MIGD_STATE_RUNNING, MIGD_STATE_STOP, &error);
		assert_null(path);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	}
}

static void
test_fsm_unknown_flag_bits_ignored(void **state)
{
	/* future flags must not change today's paths */
	g_autoptr(GArray) a = migd_fsm_plan(F_ALL, MIGD_STATE_PRE_COPY, MIGD_STATE_STOP_COPY, NULL);
	g_autoptr(GArray) b =
	    migd_fsm_plan(F_ALL | 0x80, MIGD_STATE_PRE_COPY, MIGD_STATE_STOP_COPY, NULL);
	g_autofree gchar *sa = NULL;
	g_autofree gchar *sb = NULL;
	assert_non_null(a);
	assert_non_null(b);
	sa = path_to_abbrev(a);
	sb = path_to_abbrev(b);
	assert_string_equal(sa, sb);
	assert_string_equal(sa, "PP,SC");
}

static void
test_fsm_out_of_range(void **state)
{
	g_autoptr(GError) error = NULL;
	MigdState next;
	assert_false(migd_fsm_next_step(F_ALL, 9, MIGD_STATE_STOP, &next, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_int_equal(migd_fsm_table_lookup(42, 1), MIGD_STATE_ERROR);
	assert_string_equal(migd_state_to_string(99), "INVALID");
}

static void
test_fsm_sessions_and_names(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) path = NULL;
	g_autofree gchar *str = NULL;
	g_autofree gchar *flags = NULL;
	MigdState st = MIGD_STATE_ERROR;

	assert_true(migd_fsm_arc_opens_session(MIGD_STATE_RUNNING, MIGD_STATE_PRE_COPY));
	assert_true(migd_fsm_arc_opens_session(MIGD_STATE_RUNNING_P2P, MIGD_STATE_PRE_COPY_P2P));
	assert_true(migd_fsm_arc_opens_session(MIGD_STATE_STOP, MIGD_STATE_STOP_COPY));
	assert_true(migd_fsm_arc_opens_session(MIGD_STATE_STOP, MIGD_STATE_RESUMING));
	assert_false(migd_fsm_arc_opens_session(MIGD_STATE_PRE_COPY_P2P, MIGD_STATE_STOP_COPY));
	assert_false(migd_fsm_arc_opens_session(MIGD_STATE_PRE_COPY, MIGD_STATE_STOP_COPY));

	path = migd_fsm_plan(F_ALL, MIGD_STATE_RESUMING, MIGD_STATE_PRE_COPY, NULL);
	str = migd_fsm_path_to_string(MIGD_STATE_RESUMING, path);
	assert_string_equal(str, "RESUMING -> STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY");

	assert_true(migd_state_from_string("vfio_device_state_pre_copy_p2p", &st, NULL));
	assert_int_equal(st, MIGD_STATE_PRE_COPY_P2P);
	assert_false(migd_state_from_string("SLEEPING", &st, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "SLEEPING"));
	flags = migd_mig_flags_to_string(F_ALL | 0x10);
	assert_string_equal(flags, "STOP_COPY|P2P|PRE_COPY|0x10");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fsm_every_triple),
	    cmocka_unit_test(test_fsm_steps_are_real_arcs),
	    cmocka_unit_test(test_fsm_refuses_error_target),
	    cmocka_unit_test(test_fsm_refuses_hang_arcs),
	    cmocka_unit_test(test_fsm_refuses_without_stop_copy),
	    cmocka_unit_test(test_fsm_unknown_flag_bits_ignored),
	    cmocka_unit_test(test_fsm_out_of_range),
	    cmocka_unit_test(test_fsm_sessions_and_names),
	};
	return cmocka_run_group_tests_name("fsm", tests, NULL, NULL);
}
