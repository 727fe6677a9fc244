/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The source side's reading of libvirt's events, as a pure state machine. Why
 * each transition is what it is (libvirt 9.0's qemu driver):
 *
 *  - libvirt has no "outgoing migration started" event. The first sign is a
 *    MIGRATION_ITERATION event (QEMU's MIGRATION_PASS), which libvirt also
 *    emits for save and snapshot jobs, since those use QEMU's migration too.
 *    So the first iteration only asks for a probe of the job's operation, and
 *    the migration is reported as started when libvirt says MIGRATION_OUT.
 *  - SUSPENDED/MIGRATED (or POSTCOPY) is the switchover: QEMU stopped the vCPUs.
 *  - Success is STOPPED/MIGRATED together with JOB_COMPLETED (operation
 *    MIGRATION_OUT); JOB_COMPLETED is only emitted for a successful migration.
 *  - A failure or cancel after the switchover resumes the guest here
 *    (RESUMED/MIGRATED, libvirt's RUNNING_MIGRATION_CANCELED). A failure before
 *    it emits nothing at all: only probing the job shows it ended. A probe that
 *    says "ended" is believed only the second time in a row, a poll interval
 *    later, because its reply can overtake the events that explain the end.
 *  - Events of one domain arrive in order; probe answers can be stale, so each
 *    carries the epoch of the state it was asked in, and a stale one is dropped.
 *
 * Every migration is reported as STARTED once, then at most one SWITCHOVER,
 * then exactly one FINISHED or FAILED.
 */
#include "config.h"

#include <string.h>

#include <libvirt/libvirt.h>

#include "migd-error.h"
#include "migd-libvirt-tracker.h"
#include "migd-plugin.h"

/* ---- domain maps ---- */

MigdLibvirtDomainMap *
migd_libvirt_domain_map_new(const gchar *domain, const gchar *const *devices, const gchar *peer)
{
	MigdLibvirtDomainMap *map = g_new0(MigdLibvirtDomainMap, 1);

	map->domain = g_strdup(domain);
	map->devices = g_strdupv((gchar **)devices);
	if (map->devices == NULL)
		map->devices = g_new0(gchar *, 1);
	map->peer = g_strdup(peer);
	return map;
}

MigdLibvirtDomainMap *
migd_libvirt_domain_map_copy(const MigdLibvirtDomainMap *map)
{
	return migd_libvirt_domain_map_new(map->domain, (const gchar *const *)map->devices,
					   map->peer);
}

void
migd_libvirt_domain_map_free(MigdLibvirtDomainMap *map)
{
	if (map == NULL)
		return;
	g_free(map->domain);
	g_strfreev(map->devices);
	g_free(map->peer);
	g_free(map);
}

#define MIGD_LV_GROUP_PREFIX "libvirt-domain "

GPtrArray *
migd_libvirt_domain_maps_from_key_file(GKeyFile *key_file, GError **error)
{
	g_autoptr(GPtrArray) maps =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_libvirt_domain_map_free);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_auto(GStrv) groups = g_key_file_get_groups(key_file, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		const gchar *group = groups[i];
		const gchar *domain;
		g_auto(GStrv) keys = NULL;
		g_auto(GStrv) devices = NULL;
		g_autofree gchar *peer = NULL;
		g_autoptr(GError) local = NULL;

		if (!g_str_has_prefix(group, MIGD_LV_GROUP_PREFIX))
			continue;
		domain = group + strlen(MIGD_LV_GROUP_PREFIX);
		if (*domain == '\0' || g_hash_table_contains(seen, domain)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "[%s]: %s",
				    group,
				    *domain == '\0' ? "no domain name" : "domain named twice");
			return NULL;
		}
		g_hash_table_add(seen, (gpointer)domain);
		keys = g_key_file_get_keys(key_file, group, NULL, NULL);
		for (guint k = 0; keys != NULL && keys[k] != NULL; k++) {
			if (g_strcmp0(keys[k], "devices") != 0 && g_strcmp0(keys[k], "peer") != 0) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "[%s]: unknown key '%s'", group, keys[k]);
				return NULL;
			}
		}
		if (!migd_plugin_config_check_escape(key_file, group, "devices", error)) {
			g_prefix_error(error, "[%s]: ", group);
			return NULL;
		}
		devices = g_key_file_get_string_list(key_file, group, "devices", NULL, &local);
		if (devices == NULL || devices[0] == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[%s]: devices= must name at least one device", group);
			return NULL;
		}
		for (guint d = 0; devices[d] != NULL; d++) {
			g_strstrip(devices[d]);
			if (devices[d][0] == '\0') {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "[%s]: an empty device name in devices=", group);
				return NULL;
			}
		}
		peer = migd_plugin_config_get_string(key_file, group, "peer", NULL);
		if (peer == NULL || *g_strstrip(peer) == '\0') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[%s]: peer= (the destination vfio-migd's address) is required",
				    group);
			return NULL;
		}
		g_ptr_array_add(
		    maps, migd_libvirt_domain_map_new(domain, (const gchar *const *)devices, peer));
	}
	return g_steal_pointer(&maps);
}

/* ---- inputs ---- */

void
migd_libvirt_probe_init(MigdLibvirtProbe *probe)
{
	*probe = (MigdLibvirtProbe){
	    .job = MIGD_LIBVIRT_JOB_UNKNOWN,
	    .operation = -1,
	    .state = -1,
	    .reason = -1,
	    .completed = MIGD_LIBVIRT_JOB_UNKNOWN,
	};
}

MigdLibvirtJob
migd_libvirt_job_from_type(gint type)
{
	switch (type) {
	case VIR_DOMAIN_JOB_NONE:
		return MIGD_LIBVIRT_JOB_NONE;
	case VIR_DOMAIN_JOB_BOUNDED:
	case VIR_DOMAIN_JOB_UNBOUNDED:
		return MIGD_LIBVIRT_JOB_ACTIVE;
	case VIR_DOMAIN_JOB_COMPLETED:
		return MIGD_LIBVIRT_JOB_COMPLETED;
	case VIR_DOMAIN_JOB_FAILED:
		return MIGD_LIBVIRT_JOB_FAILED;
	case VIR_DOMAIN_JOB_CANCELLED:
		return MIGD_LIBVIRT_JOB_CANCELLED;
	default:
		return MIGD_LIBVIRT_JOB_UNKNOWN;
	}
}

void
migd_libvirt_job_params_parse(virTypedParameterPtr params, gint n_params, gint *operation,
			      gint *success, const gchar **error_message)
{
	gint op = -1, ok = -1;
	const char *msg = NULL;

	if (params != NULL && n_params > 0) {
		if (virTypedParamsGetInt(params, n_params, VIR_DOMAIN_JOB_OPERATION, &op) != 1)
			op = -1;
		if (virTypedParamsGetBoolean(params, n_params, VIR_DOMAIN_JOB_SUCCESS, &ok) != 1)
			ok = -1;
		else
			ok = ok != 0;
		if (virTypedParamsGetString(params, n_params, VIR_DOMAIN_JOB_ERRMSG, &msg) != 1)
			msg = NULL;
	}
	if (operation != NULL)
		*operation = op;
	if (success != NULL)
		*success = ok;
	if (error_message != NULL)
		*error_message = msg;
}

/* ---- actions ---- */

static void
migd_libvirt_action_clear(gpointer data)
{
	MigdLibvirtAction *action = data;

	g_free(action->uuid);
	g_free(action->name);
	g_free(action->message);
}

GArray *
migd_libvirt_actions_new(void)
{
	GArray *actions = g_array_new(FALSE, TRUE, sizeof(MigdLibvirtAction));

	g_array_set_clear_func(actions, migd_libvirt_action_clear);
	return actions;
}

const gchar *
migd_libvirt_action_kind_to_string(MigdLibvirtActionKind kind)
{
	switch (kind) {
	case MIGD_LIBVIRT_ACTION_STARTED:
		return "started";
	case MIGD_LIBVIRT_ACTION_SWITCHOVER:
		return "switchover";
	case MIGD_LIBVIRT_ACTION_FINISHED:
		return "finished";
	case MIGD_LIBVIRT_ACTION_FAILED:
		return "failed";
	case MIGD_LIBVIRT_ACTION_PROBE:
		return "probe";
	}
	return "unknown";
}

const gchar *
migd_libvirt_end_to_string(MigdLibvirtEnd end)
{
	switch (end) {
	case MIGD_LIBVIRT_END_ABORTED:
		return "aborted";
	case MIGD_LIBVIRT_END_FAILED:
		return "failed";
	case MIGD_LIBVIRT_END_CANCELLED:
		return "cancelled";
	case MIGD_LIBVIRT_END_DOMAIN_STOPPED:
		return "domain-stopped";
	case MIGD_LIBVIRT_END_POSTCOPY_FAILED:
		return "postcopy-failed";
	case MIGD_LIBVIRT_END_UNKNOWN:
		return "unknown";
	}
	return "unknown";
}

/* ---- the tracker ---- */

typedef enum {
	MIGD_LV_IDLE,
	MIGD_LV_PROBING,    /* an iteration came: is it an outgoing migration? */
	MIGD_LV_MIGRATING,  /* reported STARTED */
	MIGD_LV_SWITCHOVER, /* reported SWITCHOVER */
	MIGD_LV_OTHER_JOB,  /* the iterations belong to a save/snapshot/dump job */
} MigdLvState;

typedef struct {
	gchar *uuid; /* lower case */
	gchar *name;
	const MigdLibvirtDomainMap *map;
	MigdLvState state;
	guint64 epoch;		/* bumped on every state change */
	guint64 migration;	/* the current or last reported migration */
	guint ended_probes;	/* probes in a row that saw the job over */
	gboolean just_finished; /* a success was reported; its trailing events follow */
} MigdLvDomain;

struct _MigdLibvirtTracker {
	GPtrArray *maps;     /* MigdLibvirtDomainMap*, ours */
	GHashTable *domains; /* uuid -> MigdLvDomain*, mapped domains seen so far */
	guint64 last_migration;
};

/* a probe must see the job over this many times in a row before it is believed */
#define MIGD_LV_ENDED_PROBES 2

static void
migd_lv_domain_free(gpointer data)
{
	MigdLvDomain *d = data;

	g_free(d->uuid);
	g_free(d->name);
	g_free(d);
}

MigdLibvirtTracker *
migd_libvirt_tracker_new(GPtrArray *maps)
{
	MigdLibvirtTracker *self = g_new0(MigdLibvirtTracker, 1);

	self->maps = g_ptr_array_new_with_free_func((GDestroyNotify)migd_libvirt_domain_map_free);
	for (guint i = 0; maps != NULL && i < maps->len; i++)
		g_ptr_array_add(self->maps,
				migd_libvirt_domain_map_copy(g_ptr_array_index(maps, i)));
	self->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, migd_lv_domain_free);
	return self;
}

void
migd_libvirt_tracker_free(MigdLibvirtTracker *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->maps);
	g_hash_table_unref(self->domains);
	g_free(self);
}

const MigdLibvirtDomainMap *
migd_libvirt_tracker_lookup(MigdLibvirtTracker *self, const gchar *uuid, const gchar *name)
{
	/* the UUID wins: a name can be reused by another domain, a UUID cannot */
	for (guint i = 0; uuid != NULL && i < self->maps->len; i++) {
		const MigdLibvirtDomainMap *map = g_ptr_array_index(self->maps, i);
		if (g_uuid_string_is_valid(map->domain) &&
		    g_ascii_strcasecmp(map->domain, uuid) == 0)
			return map;
	}
	for (guint i = 0; name != NULL && i < self->maps->len; i++) {
		const MigdLibvirtDomainMap *map = g_ptr_array_index(self->maps, i);
		if (g_strcmp0(map->domain, name) == 0)
			return map;
	}
	return NULL;
}

static const gchar *
migd_lv_state_name(MigdLvState state)
{
	switch (state) {
	case MIGD_LV_IDLE:
		return "idle";
	case MIGD_LV_PROBING:
		return "probing";
	case MIGD_LV_MIGRATING:
		return "migrating";
	case MIGD_LV_SWITCHOVER:
		return "switchover";
	case MIGD_LV_OTHER_JOB:
		return "other-job";
	}
	return "unknown";
}

const gchar *
migd_libvirt_tracker_get_state(MigdLibvirtTracker *self, const gchar *uuid)
{
	g_autofree gchar *key = g_ascii_strdown(uuid, -1);
	MigdLvDomain *d = g_hash_table_lookup(self->domains, key);

	return migd_lv_state_name(d != NULL ? d->state : MIGD_LV_IDLE);
}

static MigdLibvirtAction *
migd_lv_emit(GArray *actions, MigdLvDomain *d, MigdLibvirtActionKind kind)
{
	MigdLibvirtAction action = {
	    .kind = kind,
	    .map = d->map,
	    .uuid = g_strdup(d->uuid),
	    .name = g_strdup(d->name),
	    .migration = d->migration,
	    .epoch = d->epoch,
	};

	g_array_append_val(actions, action);
	return &g_array_index(actions, MigdLibvirtAction, actions->len - 1);
}

static void
migd_lv_set_state(MigdLvDomain *d, MigdLvState state)
{
	d->state = state;
	d->epoch++;
	d->ended_probes = 0;
}

static void
migd_lv_start(MigdLibvirtTracker *self, MigdLvDomain *d, GArray *actions, gboolean late)
{
	d->migration = ++self->last_migration;
	d->just_finished = FALSE;
	migd_lv_set_state(d, MIGD_LV_MIGRATING);
	migd_lv_emit(actions, d, MIGD_LIBVIRT_ACTION_STARTED)->late = late;
}

static void
migd_lv_switchover(MigdLvDomain *d, GArray *actions, gboolean postcopy)
{
	migd_lv_set_state(d, MIGD_LV_SWITCHOVER);
	migd_lv_emit(actions, d, MIGD_LIBVIRT_ACTION_SWITCHOVER)->postcopy = postcopy;
}

static void
migd_lv_finish(MigdLvDomain *d, GArray *actions)
{
	migd_lv_set_state(d, MIGD_LV_IDLE);
	d->just_finished = TRUE;
	migd_lv_emit(actions, d, MIGD_LIBVIRT_ACTION_FINISHED);
}

static void migd_lv_fail(MigdLvDomain *d, GArray *actions, MigdLibvirtEnd end, const gchar *fmt,
			 ...) G_GNUC_PRINTF(4, 5);

static void
migd_lv_fail(MigdLvDomain *d, GArray *actions, MigdLibvirtEnd end, const gchar *fmt, ...)
{
	MigdLibvirtAction *action;
	va_list args;

	migd_lv_set_state(d, MIGD_LV_IDLE);
	action = migd_lv_emit(actions, d, MIGD_LIBVIRT_ACTION_FAILED);
	action->end = end;
	va_start(args, fmt);
	action->message = g_strdup_vprintf(fmt, args);
	va_end(args);
}

static const gchar *
migd_lv_stopped_detail_name(gint detail)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
		return "shut down";
	case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
		return "destroyed";
	case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
		return "crashed";
	case VIR_DOMAIN_EVENT_STOPPED_SAVED:
		return "saved";
	case VIR_DOMAIN_EVENT_STOPPED_FAILED:
		return "its emulator failed";
	case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT:
		return "reverted to a snapshot";
	default:
		return "stopped";
	}
}

static const gchar *
migd_lv_state_words(gint state)
{
	switch (state) {
	case VIR_DOMAIN_RUNNING:
		return "running";
	case VIR_DOMAIN_PAUSED:
		return "paused";
	case VIR_DOMAIN_SHUTDOWN:
		return "shutting down";
	case VIR_DOMAIN_SHUTOFF:
		return "shut off";
	case VIR_DOMAIN_CRASHED:
		return "crashed";
	case VIR_DOMAIN_PMSUSPENDED:
		return "suspended by the guest";
	default:
		return "in an unknown state";
	}
}

static void
migd_lv_on_lifecycle(MigdLibvirtTracker *self, MigdLvDomain *d, const MigdLibvirtInput *in,
		     GArray *actions)
{
	gboolean switchover = in->event == VIR_DOMAIN_EVENT_SUSPENDED &&
			      (in->detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
			       in->detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY);
	gboolean postcopy = in->detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY;
	gboolean postcopy_failed = (in->event == VIR_DOMAIN_EVENT_SUSPENDED &&
				    in->detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED) ||
				   (in->event == VIR_DOMAIN_EVENT_RESUMED &&
				    in->detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED);
	gboolean stopped = in->event == VIR_DOMAIN_EVENT_STOPPED;
	gboolean migrated_away = stopped && in->detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED;

	switch (d->state) {
	case MIGD_LV_IDLE:
		if (in->event == VIR_DOMAIN_EVENT_STARTED) {
			/* a new life: trailing events of an old success are over */
			d->just_finished = FALSE;
		} else if (switchover) {
			/* no iteration was seen (QEMU without migration events, or an
			 * event lost while disconnected): too late for pre-copy */
			migd_lv_start(self, d, actions, TRUE);
			migd_lv_switchover(d, actions, postcopy);
		} else if (migrated_away && !d->just_finished) {
			migd_lv_start(self, d, actions, TRUE);
			migd_lv_finish(d, actions);
		}
		return;
	case MIGD_LV_PROBING:
	case MIGD_LV_OTHER_JOB:
		if (switchover) {
			/* only a migration pauses for MIGRATED: conclusive, but late */
			migd_lv_start(self, d, actions, TRUE);
			migd_lv_switchover(d, actions, postcopy);
		} else if (migrated_away) {
			migd_lv_start(self, d, actions, TRUE);
			migd_lv_finish(d, actions);
		} else if (stopped || in->event == VIR_DOMAIN_EVENT_UNDEFINED) {
			/* the job ended some other way; nothing was started */
			migd_lv_set_state(d, MIGD_LV_IDLE);
		}
		return;
	case MIGD_LV_MIGRATING:
	case MIGD_LV_SWITCHOVER:
		if (switchover) {
			if (d->state == MIGD_LV_MIGRATING)
				migd_lv_switchover(d, actions, postcopy);
		} else if (postcopy_failed) {
			migd_lv_fail(d, actions, MIGD_LIBVIRT_END_POSTCOPY_FAILED,
				     "the migration of %s failed in post-copy; libvirt keeps the "
				     "guest paused until it is recovered",
				     d->name);
		} else if (migrated_away) {
			migd_lv_finish(d, actions);
		} else if (stopped) {
			migd_lv_fail(d, actions, MIGD_LIBVIRT_END_DOMAIN_STOPPED,
				     "%s stopped during its migration (%s)", d->name,
				     migd_lv_stopped_detail_name(in->detail));
		} else if (in->event == VIR_DOMAIN_EVENT_RESUMED &&
			   (d->state == MIGD_LV_SWITCHOVER ||
			    in->detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED)) {
			/* libvirt resumes the source after a failed or cancelled
			 * migration (RUNNING_MIGRATION_CANCELED); it cannot be a user's
			 * resume after the switchover, which libvirt forbids during
			 * the job. A plain resume before it is a guest paused earlier */
			migd_lv_fail(d, actions, MIGD_LIBVIRT_END_ABORTED,
				     "%s resumed on this host: libvirt cancelled its migration "
				     "or the migration failed",
				     d->name);
		}
		return;
	}
}

static void
migd_lv_on_iteration(MigdLvDomain *d, GArray *actions)
{
	if (d->state == MIGD_LV_IDLE) {
		migd_lv_set_state(d, MIGD_LV_PROBING);
		migd_lv_emit(actions, d, MIGD_LIBVIRT_ACTION_PROBE);
		return;
	}
	/* the job is alive: an earlier "ended" probe was wrong or stale */
	d->ended_probes = 0;
}

static void
migd_lv_on_job_completed(MigdLibvirtTracker *self, MigdLvDomain *d, const MigdLibvirtInput *in,
			 GArray *actions)
{
	gboolean outgoing = in->operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
	/* only a backup reports success=false today; believe it for migrations too */
	gboolean failed = in->success == 0;

	switch (d->state) {
	case MIGD_LV_IDLE:
		if (outgoing && !failed && !d->just_finished) {
			migd_lv_start(self, d, actions, TRUE);
			migd_lv_finish(d, actions);
		}
		return;
	case MIGD_LV_PROBING:
	case MIGD_LV_OTHER_JOB:
		if (outgoing && !failed) {
			migd_lv_start(self, d, actions, TRUE);
			migd_lv_finish(d, actions);
		} else {
			migd_lv_set_state(d, MIGD_LV_IDLE);
		}
		return;
	case MIGD_LV_MIGRATING:
	case MIGD_LV_SWITCHOVER:
		/* libvirt before 3.3 sent no operation: during a migration it is ours */
		if (!outgoing && in->operation != -1)
			return;
		if (failed)
			migd_lv_fail(d, actions, MIGD_LIBVIRT_END_FAILED,
				     "libvirt reports the migration of %s failed%s%s", d->name,
				     in->error_message != NULL ? ": " : "",
				     in->error_message != NULL ? in->error_message : "");
		else
			migd_lv_finish(d, actions);
		return;
	}
}

static gboolean
migd_lv_job_over(MigdLibvirtJob job)
{
	return job == MIGD_LIBVIRT_JOB_NONE || job == MIGD_LIBVIRT_JOB_FAILED ||
	       job == MIGD_LIBVIRT_JOB_CANCELLED;
}

/* MIGRATING/SWITCHOVER, and the job was seen over twice in a row: how did it end? */
static void
migd_lv_conclude(MigdLvDomain *d, const MigdLibvirtProbe *p, GArray *actions)
{
	const gchar *sep = p->error_message != NULL ? ": " : "";
	const gchar *msg = p->error_message != NULL ? p->error_message : "";

	if (p->domain_gone) {
		migd_lv_fail(d, actions, MIGD_LIBVIRT_END_UNKNOWN,
			     "%s is gone from this host and libvirt did not say how its "
			     "migration ended",
			     d->name);
	} else if (p->state == VIR_DOMAIN_SHUTOFF && p->reason == VIR_DOMAIN_SHUTOFF_MIGRATED) {
		migd_lv_finish(d, actions);
	} else if (p->job == MIGD_LIBVIRT_JOB_CANCELLED ||
		   p->completed == MIGD_LIBVIRT_JOB_CANCELLED) {
		migd_lv_fail(d, actions, MIGD_LIBVIRT_END_CANCELLED,
			     "libvirt reports the migration of %s was cancelled%s%s", d->name, sep,
			     msg);
	} else if (p->job == MIGD_LIBVIRT_JOB_FAILED || p->completed == MIGD_LIBVIRT_JOB_FAILED) {
		migd_lv_fail(d, actions, MIGD_LIBVIRT_END_FAILED,
			     "libvirt reports the migration of %s failed%s%s", d->name, sep, msg);
	} else if (p->state == VIR_DOMAIN_PAUSED &&
		   p->reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) {
		migd_lv_fail(d, actions, MIGD_LIBVIRT_END_POSTCOPY_FAILED,
			     "the migration of %s failed in post-copy; libvirt keeps the guest "
			     "paused until it is recovered",
			     d->name);
	} else if (p->state == VIR_DOMAIN_SHUTOFF || p->state == VIR_DOMAIN_CRASHED) {
		migd_lv_fail(d, actions, MIGD_LIBVIRT_END_DOMAIN_STOPPED,
			     "%s stopped during its migration (%s)", d->name,
			     migd_lv_state_words(p->state));
	} else {
		migd_lv_fail(d, actions, MIGD_LIBVIRT_END_ABORTED,
			     "libvirt's migration job for %s ended and the domain is still %s "
			     "on this host",
			     d->name, migd_lv_state_words(p->state));
	}
}

static void
migd_lv_on_probe(MigdLibvirtTracker *self, MigdLvDomain *d, const MigdLibvirtInput *in,
		 GArray *actions)
{
	const MigdLibvirtProbe *p = &in->probe;

	if (in->epoch != d->epoch)
		return; /* asked about an earlier state */

	switch (d->state) {
	case MIGD_LV_IDLE:
		return;
	case MIGD_LV_PROBING:
		if (p->domain_gone || migd_lv_job_over(p->job) ||
		    p->job == MIGD_LIBVIRT_JOB_COMPLETED) {
			/* over before we knew what it was; its events decide the rest */
			migd_lv_set_state(d, MIGD_LV_IDLE);
		} else if (p->job == MIGD_LIBVIRT_JOB_ACTIVE) {
			if (p->operation == -1 ||
			    p->operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
				migd_lv_start(self, d, actions, FALSE);
			else
				migd_lv_set_state(d, MIGD_LV_OTHER_JOB);
		} else if (p->job == MIGD_LIBVIRT_JOB_UNSUPPORTED) {
			/* a driver without job information: iterations mostly mean
			 * migrations, and reporting one lets the engine follow */
			migd_lv_start(self, d, actions, FALSE);
		}
		/* UNKNOWN: ask again at the next poll */
		return;
	case MIGD_LV_OTHER_JOB:
		if (p->domain_gone || migd_lv_job_over(p->job))
			migd_lv_set_state(d, MIGD_LV_IDLE);
		return;
	case MIGD_LV_MIGRATING:
	case MIGD_LV_SWITCHOVER:
		if (p->job == MIGD_LIBVIRT_JOB_ACTIVE || p->job == MIGD_LIBVIRT_JOB_COMPLETED) {
			d->ended_probes = 0;
			return;
		}
		if (!p->domain_gone && !migd_lv_job_over(p->job))
			return; /* nothing learnt */
		if (++d->ended_probes < MIGD_LV_ENDED_PROBES)
			return; /* the events that explain the end may still be on their way */
		migd_lv_conclude(d, p, actions);
		return;
	}
}

void
migd_libvirt_tracker_feed(MigdLibvirtTracker *self, const MigdLibvirtInput *input, GArray *actions)
{
	const MigdLibvirtDomainMap *map;
	g_autofree gchar *key = NULL;
	MigdLvDomain *d;

	if (input->uuid == NULL)
		return;
	key = g_ascii_strdown(input->uuid, -1);
	d = g_hash_table_lookup(self->domains, key);
	/* a domain seen before keeps its map: a probe of a vanished domain has no
	 * name to look it up by */
	map = d != NULL ? d->map : migd_libvirt_tracker_lookup(self, input->uuid, input->name);
	if (map == NULL)
		return; /* not a domain we handle */
	if (d == NULL) {
		d = g_new0(MigdLvDomain, 1);
		d->uuid = g_steal_pointer(&key);
		d->name = g_strdup(input->name != NULL ? input->name : d->uuid);
		g_hash_table_insert(self->domains, d->uuid, d);
	} else if (input->name != NULL && g_strcmp0(d->name, input->name) != 0) {
		g_free(d->name);
		d->name = g_strdup(input->name);
	}
	d->map = map;

	switch (input->kind) {
	case MIGD_LIBVIRT_INPUT_LIFECYCLE:
		migd_lv_on_lifecycle(self, d, input, actions);
		break;
	case MIGD_LIBVIRT_INPUT_ITERATION:
		migd_lv_on_iteration(d, actions);
		break;
	case MIGD_LIBVIRT_INPUT_JOB_COMPLETED:
		migd_lv_on_job_completed(self, d, input, actions);
		break;
	case MIGD_LIBVIRT_INPUT_PROBE:
		migd_lv_on_probe(self, d, input, actions);
		break;
	}
}

void
migd_libvirt_tracker_list_busy(MigdLibvirtTracker *self, GArray *actions)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->domains);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		MigdLvDomain *d = value;
		if (d->state != MIGD_LV_IDLE)
			migd_lv_emit(actions, d, MIGD_LIBVIRT_ACTION_PROBE);
	}
}
