/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl's small helpers with no D-Bus call: argument spellings (short job
 * ids, lspci BDFs), error wording for operators, the terminal's width, counts.
 */
#pragma once

#include <gio/gio.h>

#define MIGCTL_JOBS_PATH "/org/vfiomigd/Migd1/jobs/"

/* "3" -> "/org/vfiomigd/Migd1/jobs/3"; a D-Bus object path as is; NULL with @error otherwise */
gchar *migctl_job_path(const gchar *arg, GError **error);
/* the job's number, the last element of its path ("3"), or the path itself */
const gchar *migctl_job_number(const gchar *path);
/* lspci's short "00:1f.2" -> "0000:00:1f.2"; anything else as is */
gchar *migctl_pci_address(const gchar *arg);
/* "1 device", "2 devices" */
gchar *migctl_count(guint64 n, const gchar *one, const gchar *many);
/* the terminal's columns: TIOCGWINSZ on stdout, else $COLUMNS, else 80 */
guint migctl_term_columns(void);
/* "1m05s", "42s", or "-" when unknown */
gchar *migctl_eta(gdouble progress, guint64 bytes, guint64 rate);
/* the message an operator can act on for a failed bus connection or call */
gchar *migctl_explain_error(const GError *error, const gchar *remote_name, const gchar *bus_name,
			    gboolean session);
/* a job that ended through Job.Cancel: the engine's message says so */
gboolean migctl_is_cancelled(const gchar *phase, const gchar *message);

/* A table whose columns are as wide as their widest cell (the header's included), printed at once
 */
typedef struct _MigctlTable MigctlTable;
/* @n_columns headers follow */
MigctlTable *migctl_table_new(guint n_columns, ...);
/* @n_columns cells (copied); NULL prints as "-" */
void migctl_table_add_row(MigctlTable *table, ...);
/* to stdout: cells one space apart, the last column not padded */
void migctl_table_print(MigctlTable *table);
void migctl_table_free(MigctlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigctlTable, migctl_table_free)
