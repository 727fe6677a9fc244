/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * make bench dirty: how many bytes a device DMA tracker is started on, with
 * our range plan (migd_dirty_ranges_plan, closing the smallest gaps) at
 * mlx5-like range limits, against QEMU's three-range reduction
 * (migd_dirty_ranges_plan_qemu) of the same guest mappings. A size comparison:
 * nothing here is timed. The bytes a device tracks decide the tracker's
 * memory and the bitmap every REPORT reads and clears (the driver's and the
 * firmware's work per sync), so fewer is better; every plan covers every
 * mapping, so none can miss a write.
 *
 * The guest (docs/performance.md describes it): 1 TiB of RAM on q35 + OVMF,
 *   - below 4 GiB: 640 KiB, the 0xc0000-0xfffff shadow ROM area, RAM up to 2 GiB,
 *     then the 32-bit PCI window with the assigned GPU's 16 MiB BAR0;
 *   - above 4 GiB: 126 GiB of boot RAM, then the device-memory (hotplug) region:
 *     six 32 GiB DIMMs hot-plugged over the VM's life, two of them unplugged
 *     again, and one virtio-mem device per NUMA node (max-size 2 TiB each,
 *     384 GiB plugged in 96 runs of 128 MiB blocks, holes of 128 MiB to 16 GiB
 *     left by plug/unplug cycles);
 *   - the 64-bit PCI window after the device-memory region, with the assigned
 *     GPU's 64 GiB BAR1 and 32 MiB BAR3 and a NIC VF's 32 MiB BAR0 (P2P
 *     mappings, which QEMU puts in its third range).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench-dirty.h"
#include "migd-dirty-ranges.h"

#define KiB    ((guint64)1024)
#define MiB    (1024 * KiB)
#define GiB    (1024 * MiB)
#define TARGET 0.50

/* splitmix64: the layout is the same on every run and every host */
static guint64
bench_rand(guint64 *state)
{
	guint64 z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [lo, hi], in units of @unit */
static guint64
bench_rand_units(guint64 *state, guint64 lo, guint64 hi, guint64 unit)
{
	return (lo + bench_rand(state) % (hi - lo + 1)) * unit;
}

typedef struct {
	GArray *mapped;	  /* the DMA mappings: what a device can write, what we plan over */
	GArray *sections; /* what QEMU's dirty-tracking listener sees */
} BenchLayout;

static void
bench_add_to(GArray *ranges, guint64 iova, guint64 length)
{
	MigdIovaRange r = {.iova = iova, .length = length};
	g_array_append_val(ranges, r);
}

/* a mapping that is also one memory section */
static void
bench_add(BenchLayout *layout, guint64 iova, guint64 length)
{
	bench_add_to(layout->mapped, iova, length);
	bench_add_to(layout->sections, iova, length);
}

static guint64
bench_align_up(guint64 v, guint64 align)
{
	return (v + align - 1) / align * align;
}

/*
 * One virtio-mem device of @size at @base, its plugged blocks: @n_runs runs
 * adding up to @plugged, between holes of 128 MiB to 16 GiB (mostly small, some
 * large: the guest could not offline every block it was asked to unplug).
 *
 * vfio DMA-maps only the plugged blocks (vfio_listener_region_add hands a
 * section with a RamDiscardManager to vfio_ram_discard_register_listener), but
 * QEMU's dirty-tracking listener (vfio_dirty_tracking_update) takes every RAM
 * section whole, so it sees the device's whole memory region.
 */
static void
bench_virtio_mem(BenchLayout *layout, guint64 base, guint64 size, guint n_runs, guint64 plugged,
		 guint64 *seed)
{
	const guint64 block = 128 * MiB; /* the Linux memory block a guest onlines at once */
	g_autofree guint64 *runs = g_new(guint64, n_runs);
	guint64 sum = 0;
	guint64 left = plugged;
	guint64 at = base;

	for (guint i = 0; i < n_runs; i++) {
		runs[i] = bench_rand_units(seed, 1, 64, block);
		sum += runs[i];
	}
	/* scale to exactly @plugged, in whole blocks; the last run takes the rest */
	for (guint i = 0; i + 1 < n_runs; i++) {
		runs[i] = MAX(runs[i] / block * (plugged / block) / (sum / block) * block, block);
		left -= runs[i];
	}
	runs[n_runs - 1] = left;
	bench_add_to(layout->sections, base, size);
	for (guint i = 0; i < n_runs; i++) {
		bench_add_to(layout->mapped, at, runs[i]);
		at += runs[i];
		/* three holes in four small (128 MiB - 1 GiB), the rest up to 16 GiB */
		if (bench_rand(seed) % 4 != 0)
			at += bench_rand_units(seed, 1, 8, block);
		else
			at += bench_rand_units(seed, 8, 128, block);
	}
	g_assert(at <= base + size);
}

/* the guest's DMA mappings and QEMU's sections; *@hole64 is its 64-bit PCI window */
static void
bench_guest_layout(BenchLayout *layout, MigdIovaRange *hole64, guint64 *ram)
{
	guint64 seed = 0x1f2e3d4c5b6a7988ull;
	guint64 dimm_base, vmem_base, end, hole;

	layout->mapped = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	layout->sections = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));

	/* below 4 GiB: q35 keeps 2 GiB low when the guest has more than 2.75 GiB */
	bench_add(layout, 0, 640 * KiB);
	bench_add(layout, 0xc0000, 256 * KiB);
	bench_add(layout, 1 * MiB, 2 * GiB - 1 * MiB);
	bench_add(layout, 0xfd000000, 16 * MiB); /* GPU BAR0, 32-bit */

	/* boot RAM above 4 GiB: 128 GiB in all with the low part */
	bench_add(layout, 4 * GiB, 126 * GiB);

	/* the device-memory region starts at the next GiB: six DIMM slots used, two unplugged */
	dimm_base = bench_align_up(130 * GiB, GiB);
	for (guint i = 0; i < 6; i++) {
		if (i != 2 && i != 4)
			bench_add(layout, dimm_base + i * 32 * GiB, 32 * GiB);
	}
	/* one virtio-mem device per NUMA node, each with room to grow to 2 TiB */
	vmem_base = bench_align_up(dimm_base + 6 * 32 * GiB, GiB);
	bench_virtio_mem(layout, vmem_base, 2048 * GiB, 96, 384 * GiB, &seed);
	vmem_base += 2048 * GiB;
	bench_virtio_mem(layout, vmem_base, 2048 * GiB, 96, 384 * GiB, &seed);
	end = vmem_base + 2048 * GiB;

	/* the 64-bit PCI window after device memory; the 64 GiB BAR goes first, naturally aligned
	 */
	hole = bench_align_up(end, GiB);
	*hole64 = (MigdIovaRange){.iova = hole, .length = 256 * GiB};
	bench_add(layout, bench_align_up(hole, 64 * GiB), 64 * GiB);		/* GPU BAR1 */
	bench_add(layout, bench_align_up(hole, 64 * GiB) + 64 * GiB, 32 * MiB); /* GPU BAR3 */
	bench_add(layout, bench_align_up(hole, 64 * GiB) + 64 * GiB + 32 * MiB,
		  32 * MiB); /* NIC VF BAR0 */

	*ram = 0;
	for (guint i = 0; i < layout->mapped->len; i++) {
		const MigdIovaRange *r = &g_array_index(layout->mapped, MigdIovaRange, i);
		gboolean bar = r->iova == 0xfd000000 || r->iova >= hole;
		if (!bar)
			*ram += r->length;
	}
}

static gdouble
bench_gib(guint64 bytes)
{
	return (gdouble)bytes / (gdouble)GiB;
}

void
bench_dirty_ranges(BenchReport *report)
{
	const guint limits[] = {4, 8, 16};
	BenchLayout layout;
	MigdIovaRange hole64;
	guint64 ram = 0;
	g_autoptr(GArray) mapped = NULL;
	g_autoptr(GArray) sections = NULL;
	g_autoptr(GArray) joined = NULL;
	g_autoptr(GArray) qemu = NULL;
	g_autoptr(GArray) qemu_mapped = NULL;
	g_autoptr(GError) error = NULL;
	guint64 mapped_bytes, qemu_bytes, qemu_mapped_bytes;
	const MigdIovaRange *last;
	g_autoptr(GString) layout_note = g_string_new(NULL);

	bench_guest_layout(&layout, &hole64, &ram);
	mapped = layout.mapped;
	sections = layout.sections;
	joined =
	    migd_dirty_ranges_plan((const MigdIovaRange *)mapped->data, mapped->len, 0, &error);
	if (joined == NULL) {
		g_printerr("bench: dirty-ranges: bad layout: %s\n", error->message);
		exit(2);
	}
	mapped_bytes = migd_dirty_ranges_total((const MigdIovaRange *)joined->data, joined->len);
	last = &g_array_index(joined, MigdIovaRange, joined->len - 1);
	/* what QEMU starts the device on: its reduction of the sections its listener sees */
	qemu = migd_dirty_ranges_plan_qemu((const MigdIovaRange *)sections->data, sections->len,
					   &hole64);
	qemu_bytes = migd_dirty_ranges_total((const MigdIovaRange *)qemu->data, qemu->len);
	/* and, for reference, the same reduction of the DMA mappings alone */
	qemu_mapped =
	    migd_dirty_ranges_plan_qemu((const MigdIovaRange *)mapped->data, mapped->len, &hole64);
	qemu_mapped_bytes =
	    migd_dirty_ranges_total((const MigdIovaRange *)qemu_mapped->data, qemu_mapped->len);

	g_string_append_printf(
	    layout_note,
	    "guest of %.1f GiB RAM: %u DMA mappings (%u after joining), %.1f GiB "
	    "with the BARs, up to %.1f GiB; %u memory sections; QEMU's plan:",
	    bench_gib(ram), mapped->len, joined->len, bench_gib(mapped_bytes),
	    bench_gib(last->iova + last->length), sections->len);
	for (guint i = 0; i < qemu->len; i++) {
		const MigdIovaRange *r = &g_array_index(qemu, MigdIovaRange, i);
		g_string_append_printf(layout_note, " [%.3f, %.3f) GiB", bench_gib(r->iova),
				       bench_gib(r->iova + r->length));
	}
	g_string_append_printf(layout_note, " (%.1f GiB over the DMA mappings alone)",
			       bench_gib(qemu_mapped_bytes));

	for (guint i = 0; i < G_N_ELEMENTS(limits); i++) {
		g_autoptr(GArray) ours = migd_dirty_ranges_plan((const MigdIovaRange *)mapped->data,
								mapped->len, limits[i], &error);
		guint64 ours_bytes;
		g_autofree gchar *metric = NULL;
		g_autofree gchar *reference = NULL;
		g_autofree gchar *note = NULL;

		if (ours == NULL) {
			g_printerr("bench: dirty-ranges: limit %u: %s\n", limits[i],
				   error->message);
			exit(2);
		}
		ours_bytes = migd_dirty_ranges_total((const MigdIovaRange *)ours->data, ours->len);
		metric = g_strdup_printf("tracked by our plan, limit %u ranges", limits[i]);
		reference = g_strdup_printf("QEMU's %u ranges", qemu->len);
		note = g_strdup_printf("ours in %u ranges; mapped %.1f GiB%s%s", ours->len,
				       bench_gib(mapped_bytes), i == 0 ? "; " : "",
				       i == 0 ? layout_note->str : "");
		bench_report_add(report, "dirty ranges", metric, bench_gib(ours_bytes), "GiB",
				 reference, bench_gib(qemu_bytes),
				 (gdouble)ours_bytes / (gdouble)qemu_bytes, BENCH_TARGET_AT_MOST,
				 TARGET, 1, note);
	}
}
