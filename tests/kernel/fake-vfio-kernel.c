/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A fake VFIO kernel for test-kernel-device: the binary is linked with
 * -Wl,--wrap=ioctl, so every ioctl the library issues lands in __wrap_ioctl
 * below, which checks argsz, flags, feature index and payload the way
 * drivers/vfio/vfio_main.c does and answers like a driver. The fds themselves
 * are real files in a temporary /sys and /dev tree, told apart by their path.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake-vfio-kernel.h"

FakeKernel fk;

int __real_ioctl(int fd, unsigned long request, ...);
int __wrap_ioctl(int fd, unsigned long request, ...);

static FdKind
fake_classify(gint fd)
{
	g_autofree gchar *proc = g_strdup_printf("/proc/self/fd/%d", fd);
	g_autofree gchar *path = NULL;
	g_autofree gchar *base = NULL;

	if (fk.tmpdir == NULL || fd < 0)
		return FD_OTHER;
	path = g_file_read_link(proc, NULL);
	if (path == NULL || !g_str_has_prefix(path, fk.tmpdir))
		return FD_OTHER;
	if (g_strcmp0(path, fk.device_path) == 0)
		return FD_DEVICE;
	base = g_path_get_basename(path);
	if (g_str_has_suffix(path, "/dev/vfio/vfio"))
		return FD_CONTAINER;
	if (g_str_has_suffix(path, "/dev/vfio/42"))
		return FD_GROUP;
	if (g_str_has_suffix(path, "/dev/iommu"))
		return FD_IOMMU;
	if (g_str_has_suffix(path, "/dev/vfio/devices/vfio3"))
		return fk.cdev_bound ? FD_DEVICE : FD_CDEV;
	return FD_OTHER;
}

static gint
fake_fail(gint err)
{
	errno = err;
	return -1;
}

/* the payload size each feature/op pair must carry (what the core's minsz checks) */
static guint32
fake_expected_payload(guint32 flags)
{
	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		return 0; /* we never send a payload with a probe */
	switch (flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
		return 8;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		return 24;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return 32;
	default:
		return 0;
	}
}

static gint
fake_mig_state(struct vfio_device_feature *f)
{
	struct vfio_device_feature_mig_state *ms = (void *)f->data;
	gint pipefd[2];
	MigdState target = ms->device_state;
	gboolean opens;

	if (f->flags & VFIO_DEVICE_FEATURE_GET) {
		if (fk.get_errno != 0)
			return fake_fail(fk.get_errno);
		ms->device_state = fk.state;
		ms->data_fd = -1;
		return 0;
	}
	g_array_append_val(fk.set_targets, target);
	if (fk.set_errno != 0) {
		/* like the core: the requested state is echoed back, the fd is -1 */
		ms->data_fd = -1;
		return fake_fail(fk.set_errno);
	}
	opens = (migd_state_is_saving(target) && !migd_state_is_saving(fk.state)) ||
		target == MIGD_STATE_RESUMING || fk.set_returns_bogus_fd;
	fk.state = target;
	ms->data_fd = -1;
	if (!opens)
		return 0;
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	if (target == MIGD_STATE_RESUMING) {
		ms->data_fd = pipefd[1];
		fk.data_fd_peer = pipefd[0];
	} else {
		ms->data_fd = pipefd[0];
		fk.data_fd_peer = pipefd[1];
	}
	fk.data_fd_given = ms->data_fd;
	return 0;
}

static gint
fake_feature(struct vfio_device_feature *f)
{
	guint32 index = f->flags & VFIO_DEVICE_FEATURE_MASK;
	guint32 ops = f->flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET);
	gboolean probe = (f->flags & VFIO_DEVICE_FEATURE_PROBE) != 0;

	fk.last_argsz = f->argsz;
	fk.last_flags = f->flags;
	/* vfio_ioctl_device_feature() */
	assert_true(f->argsz >= 8);
	assert_int_equal(f->flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET |
				      VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE),
			 0);
	assert_true(ops != (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET) || probe);
	assert_int_equal(f->argsz, 8 + fake_expected_payload(f->flags));
	if (fk.gone)
		return fake_fail(ENODEV);

	switch (index) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
		assert_int_equal(ops, VFIO_DEVICE_FEATURE_GET);
		if (fk.mig_errno != 0)
			return fake_fail(fk.mig_errno);
		((struct vfio_device_feature_migration *)(void *)f->data)->flags = fk.mig_flags;
		return 0;
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		assert_false(probe);
		assert_true(ops == VFIO_DEVICE_FEATURE_GET || ops == VFIO_DEVICE_FEATURE_SET);
		return fake_mig_state(f);
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		assert_int_equal(ops, VFIO_DEVICE_FEATURE_GET);
		if (fk.size_errno != 0)
			return fake_fail(fk.size_errno);
		((struct vfio_device_feature_mig_data_size *)(void *)f->data)->stop_copy_length =
		    fk.stop_copy_length;
		return 0;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START: {
		struct vfio_device_feature_dma_logging_control *c = (void *)f->data;
		const struct vfio_device_feature_dma_logging_range *r;

		assert_int_equal(ops, VFIO_DEVICE_FEATURE_SET);
		if (probe)
			return fk.dma_probe_errno != 0 ? fake_fail(fk.dma_probe_errno) : 0;
		if (fk.dma_errno != 0)
			return fake_fail(fk.dma_errno);
		assert_int_equal(c->__reserved, 0);
		assert_true(c->num_ranges <= G_N_ELEMENTS(fk.ranges));
		if (c->num_ranges == 0)
			return fake_fail(EINVAL);
		r = (const void *)(guintptr)c->ranges;
		assert_non_null(r);
		memcpy(fk.ranges, r, c->num_ranges * sizeof(*r));
		fk.n_ranges = c->num_ranges;
		fk.page_size_hint = c->page_size;
		/* mlx5 clamps to its tracker's range and writes the choice back */
		c->page_size = fk.chosen_page_size;
		return 0;
	}
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
		assert_int_equal(ops, VFIO_DEVICE_FEATURE_SET);
		return 0;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: {
		struct vfio_device_feature_dma_logging_report *rep = (void *)f->data;

		assert_int_equal(ops, VFIO_DEVICE_FEATURE_GET);
		fk.report_iova = rep->iova;
		fk.report_length = rep->length;
		fk.report_page_size = rep->page_size;
		fk.report_bitmap = (guint64 *)(guintptr)rep->bitmap;
		if (rep->page_size < 4096 || (rep->page_size & (rep->page_size - 1)) != 0)
			return fake_fail(EINVAL);
		/* pages 0, 3 and 64 were written */
		fk.report_bitmap[0] |= (1ull << 0) | (1ull << 3);
		fk.report_bitmap[1] |= 1ull << 0;
		return 0;
	}
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
		assert_int_equal(ops, VFIO_DEVICE_FEATURE_SET);
		if (probe)
			return fk.lp_probe_errno != 0 ? fake_fail(fk.lp_probe_errno) : 0;
		fk.n_lp_entry++;
		return 0;
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: {
		struct vfio_device_low_power_entry_with_wakeup *w = (void *)f->data;

		assert_int_equal(ops, VFIO_DEVICE_FEATURE_SET);
		if (probe)
			return fk.lpw_probe_errno != 0 ? fake_fail(fk.lpw_probe_errno) : 0;
		assert_int_equal(w->reserved, 0);
		if (w->wakeup_eventfd < 0)
			return fake_fail(EINVAL);
		fk.lp_eventfd = w->wakeup_eventfd;
		fk.n_lp_wakeup++;
		return 0;
	}
	case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
		assert_int_equal(ops, VFIO_DEVICE_FEATURE_SET);
		fk.n_lp_exit++;
		return 0;
	default:
		return fake_fail(ENOTTY);
	}
}

static gint
fake_device_ioctl(unsigned long request, gulong arg)
{
	switch (request) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info *info = (void *)arg;
		assert_true(info->argsz >= sizeof(*info));
		info->flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		return fk.gone ? fake_fail(ENODEV) : 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO: {
		/* only the PCI config space, at FAKE_CONFIG_OFFSET of the device node file */
		struct vfio_region_info *info = (void *)arg;
		if (info->index != VFIO_PCI_CONFIG_REGION_INDEX)
			return fake_fail(EINVAL);
		info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		info->offset = FAKE_CONFIG_OFFSET;
		info->size = 256;
		return 0;
	}
	case VFIO_DEVICE_RESET:
		if (fk.gone)
			return fake_fail(ENODEV);
		fk.n_reset++;
		if (fk.reset_errno != 0)
			return fake_fail(fk.reset_errno);
		fk.state = MIGD_STATE_RUNNING;
		return 0;
	case VFIO_DEVICE_FEATURE:
		return fake_feature((struct vfio_device_feature *)arg);
	default:
		return fake_fail(ENOTTY);
	}
}

/* --- type1 IOMMU (drivers/vfio/vfio_iommu_type1.c) --- */

static guint64
fake_lowest_bit(guint64 v)
{
	return v & (~v + 1);
}

/* vfio_iommu_type1_get_info(): an IOVA-range cap first, then CAP_MIGRATION */
static gint
fake_type1_get_info(gulong arg)
{
	struct vfio_iommu_type1_info *info = (void *)arg;
	/* vfio_iommu_type1_info_cap_iova_range with one range */
	struct {
		struct vfio_info_cap_header header;
		guint32 nr_iovas, reserved;
		guint64 start, end;
	} iova_cap = {{VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0}, 1, 0, 0, 0xfedfffffull};
	struct vfio_iommu_type1_info_cap_migration mig = {
	    {VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, 0}};
	guint32 caps_size = sizeof(iova_cap) + (fk.no_cap_migration ? 0 : sizeof(mig));
	guint8 *buf = (guint8 *)info;

	fk.n_get_info++;
	assert_true(info->argsz >= 16); /* offsetofend(iova_pgsizes) */
	if (fk.get_info_errno != 0)
		return fake_fail(fk.get_info_errno);
	info->flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
	info->iova_pgsizes = fk.iova_pgsizes;
	if (info->argsz < sizeof(*info) + caps_size) {
		info->argsz = sizeof(*info) + caps_size;
		info->cap_offset = 0;
		return 0;
	}
	/* vfio_info_cap_shift(): offsets count from the start of the info */
	info->cap_offset = sizeof(*info);
	if (!fk.no_cap_migration)
		iova_cap.header.next = sizeof(*info) + sizeof(iova_cap);
	memcpy(buf + sizeof(*info), &iova_cap, sizeof(iova_cap));
	if (!fk.no_cap_migration) {
		mig.pgsize_bitmap =
		    fk.cap_pgsize != 0 ? fk.cap_pgsize : fake_lowest_bit(fk.iova_pgsizes);
		mig.max_dirty_bitmap_size = fk.max_dirty_bitmap;
		memcpy(buf + sizeof(*info) + sizeof(iova_cap), &mig, sizeof(mig));
	}
	return 0;
}

/* ALIGN(n, 64) / 8 */
static guint64
fake_dirty_bitmap_bytes(guint64 npages)
{
	return ((npages + 63) / 64) * 8;
}

/*
 * update_user_bitmap(): the kernel writes whole words of the user's bitmap
 * (copy_to_user of the mapping's bitmap), so whatever the caller had there is
 * overwritten; the backend must read into a zeroed buffer of its own.
 */
static void
fake_type1_fill(guint64 *bitmap, guint64 base, guint64 pgsize, guint64 dma_iova, guint64 dma_size)
{
	guint64 first = (dma_iova - base) / pgsize;
	guint64 n = dma_size / pgsize;

	for (guint64 w = first / 64; w <= (first + n - 1) / 64; w++)
		bitmap[w] = 0;
	for (guint64 p = 0; p < n; p++) {
		gboolean dirty = fk.type1_non_pinned;
		for (guint i = 0; i < fk.n_type1_pinned && !dirty; i++)
			dirty = fk.type1_pinned[i] == dma_iova + p * pgsize;
		if (dirty)
			bitmap[(first + p) / 64] |= 1ull << ((first + p) % 64);
	}
}

/* vfio_iommu_type1_dirty_pages(), check for check */
static gint
fake_type1_dirty_pages(gulong arg)
{
	const struct vfio_iommu_type1_dirty_bitmap *dirty = (const void *)arg;
	const guint32 mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
			     VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	struct vfio_iommu_type1_dirty_bitmap_get range;
	guint64 iommu_pgsize = fake_lowest_bit(fk.iova_pgsizes);
	guint64 npages;

	fk.last_dirty_argsz = dirty->argsz;
	if (fk.dirty_pages_errno != 0)
		return fake_fail(fk.dirty_pages_errno);
	if (dirty->argsz < 8 || (dirty->flags & ~mask) != 0)
		return fake_fail(EINVAL);
	if (__builtin_popcount(dirty->flags) != 1)
		return fake_fail(EINVAL);
	if (dirty->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
		fk.n_type1_start++;
		fk.type1_tracking = TRUE;
		return 0;
	}
	if (dirty->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
		fk.n_type1_stop++;
		fk.type1_tracking = FALSE;
		return 0;
	}
	fk.n_get_bitmap++;
	if (dirty->argsz - 8 < sizeof(range))
		return fake_fail(EINVAL);
	memcpy(&range, dirty->data, sizeof(range));
	fk.last_bitmap_size = range.bitmap.size;
	fk.last_bitmap_pgsize = range.bitmap.pgsize;
	if (range.iova + range.size < range.iova)
		return fake_fail(EINVAL);
	/* __ffs(0) is undefined in the kernel: the backend never sends it */
	assert_int_not_equal(range.bitmap.pgsize, 0);
	npages = range.size >> __builtin_ctzll(range.bitmap.pgsize);
	if (npages == 0 || range.bitmap.size == 0 ||
	    range.bitmap.size > FAKE_DIRTY_BITMAP_SIZE_MAX ||
	    range.bitmap.size < fake_dirty_bitmap_bytes(npages))
		return fake_fail(EINVAL);
	if (range.bitmap.pgsize != iommu_pgsize || (range.iova & (iommu_pgsize - 1)) != 0 ||
	    range.size == 0 || (range.size & (iommu_pgsize - 1)) != 0)
		return fake_fail(EINVAL);
	if (!fk.type1_tracking)
		return fake_fail(EINVAL);
	/* vfio_iova_dirty_bitmap(): no mapping may be bisected */
	for (guint i = 0; i < fk.n_type1_dma; i++) {
		guint64 s = fk.type1_dma[i].iova;
		guint64 e = s + fk.type1_dma[i].size;
		if (range.iova > s && range.iova < e)
			return fake_fail(EINVAL);
		if (range.iova + range.size > s && range.iova + range.size < e)
			return fake_fail(EINVAL);
	}
	for (guint i = 0; i < fk.n_type1_dma; i++) {
		if (fk.type1_dma[i].iova >= range.iova &&
		    fk.type1_dma[i].iova + fk.type1_dma[i].size <= range.iova + range.size)
			fake_type1_fill((guint64 *)range.bitmap.data, range.iova,
					range.bitmap.pgsize, fk.type1_dma[i].iova,
					fk.type1_dma[i].size);
	}
	/* read and cleared: the pinned pages stay dirty (vfio_dma_populate_bitmap()) */
	return 0;
}

static gint
fake_container_ioctl(gint fd, unsigned long request, gulong arg)
{
	switch (request) {
	case VFIO_IOMMU_GET_INFO:
		assert_true(fk.iommu_set);
		return fake_type1_get_info(arg);
	case VFIO_IOMMU_DIRTY_PAGES:
		assert_true(fk.iommu_set);
		return fake_type1_dirty_pages(arg);
	case VFIO_GET_API_VERSION:
		return VFIO_API_VERSION;
	case VFIO_CHECK_EXTENSION:
		return arg == VFIO_TYPE1v2_IOMMU ? 1 : 0;
	case VFIO_SET_IOMMU:
		/* the kernel needs a group in the container first */
		if (!fk.container_set)
			return fake_fail(EINVAL);
		assert_int_equal(arg, VFIO_TYPE1v2_IOMMU);
		fk.iommu_set = TRUE;
		return 0;
	default:
		return fake_fail(ENOTTY);
	}
}

static gint
fake_group_ioctl(unsigned long request, gulong arg)
{
	switch (request) {
	case VFIO_GROUP_GET_STATUS: {
		struct vfio_group_status *st = (void *)arg;
		assert_int_equal(st->argsz, sizeof(*st));
		st->flags = fk.group_not_viable ? 0 : VFIO_GROUP_FLAGS_VIABLE;
		return 0;
	}
	case VFIO_GROUP_SET_CONTAINER: {
		const gint *cfd = (const void *)arg;
		assert_int_equal(fake_classify(*cfd), FD_CONTAINER);
		fk.container_set = TRUE;
		return 0;
	}
	case VFIO_GROUP_GET_DEVICE_FD:
		assert_string_equal((const gchar *)arg, DEV_NAME);
		if (!fk.iommu_set)
			return fake_fail(EINVAL);
		return open(fk.device_path, O_RDWR | O_CLOEXEC);
	default:
		return fake_fail(ENOTTY);
	}
}

static gint
fake_cdev_ioctl(unsigned long request, gulong arg)
{
	struct vfio_device_bind_iommufd *bind = (void *)arg;

	/* an unbound cdev refuses everything but BIND */
	if (request != VFIO_DEVICE_BIND_IOMMUFD)
		return fake_fail(EINVAL);
	assert_int_equal(bind->argsz, MIGD_VFIO_BIND_IOMMUFD_MINSZ);
	assert_int_equal(bind->flags, 0);
	assert_int_equal(fake_classify(bind->iommufd), FD_IOMMU);
	if (fk.bind_errno != 0)
		return fake_fail(fk.bind_errno);
	fk.iommufd_seen = bind->iommufd;
	bind->out_devid = 7;
	fk.cdev_bound = TRUE;
	return 0;
}

/* --- iommufd (drivers/iommu/iommufd/) --- */

/* iommufd_get_hwpt_paging(): the dirty HWPT, the auto domain (no dirty_ops) or nothing */
static gint
fake_hwpt_lookup(guint32 id)
{
	if (fk.dirty_hwpt_id != 0 && id == fk.dirty_hwpt_id && !fk.hwpt_destroyed)
		return 0;
	if (id == FAKE_AUTO_HWPT_ID)
		return EOPNOTSUPP; /* iopt_set_dirty_tracking(): !domain->dirty_ops */
	return ENOENT;
}

static gint
fake_get_dirty_bitmap(struct iommu_hwpt_get_dirty_bitmap *get)
{
	guint64 last;
	gint err;

	fk.n_get_dirty++;
	fk.last_get_dirty_flags = get->flags;
	assert_int_equal(get->size, sizeof(*get));
	if ((get->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) != 0 || get->__reserved != 0)
		return fake_fail(EOPNOTSUPP);
	err = fake_hwpt_lookup(get->hwpt_id);
	if (err != 0)
		return fake_fail(err);
	/* iommufd_check_iova_range() with the IOAS's 4 KiB alignment */
	if (get->length == 0)
		return fake_fail(EINVAL);
	if (__builtin_add_overflow(get->iova, get->length - 1, &last))
		return fake_fail(EOVERFLOW);
	if ((get->iova & 4095) != 0 || ((last + 1) & 4095) != 0)
		return fake_fail(EINVAL);
	if (get->page_size == 0 || (get->iova & (get->page_size - 1)) != 0 ||
	    ((last + 1) & (get->page_size - 1)) != 0)
		return fake_fail(EINVAL);
	/* iova_bitmap_set(): only sets bits, every one a dirty page overlaps */
	for (guint i = 0; i < fk.n_hwpt_dirty; i++) {
		guint64 iova = fk.hwpt_dirty_iova[i];
		guint64 bit;

		if (iova < get->iova || iova > last)
			continue;
		bit = (iova - get->iova) / get->page_size;
		((guint64 *)(guintptr)get->data)[bit / 64] |= 1ull << (bit % 64);
	}
	if ((get->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) == 0) {
		guint keep = 0;
		for (guint i = 0; i < fk.n_hwpt_dirty; i++) {
			if (fk.hwpt_dirty_iova[i] < get->iova || fk.hwpt_dirty_iova[i] > last)
				fk.hwpt_dirty_iova[keep++] = fk.hwpt_dirty_iova[i];
		}
		fk.n_hwpt_dirty = keep;
	}
	return 0;
}

static gint
fake_iommu_ioctl(unsigned long request, gulong arg)
{
	switch (request) {
	case IOMMU_IOAS_ALLOC: {
		struct iommu_ioas_alloc *ioas = (void *)arg;
		assert_int_equal(ioas->size, sizeof(*ioas));
		assert_int_equal(ioas->flags, 0);
		ioas->out_ioas_id = fk.ioas_id = 5;
		return 0;
	}
	case IOMMU_GET_HW_INFO: {
		struct iommu_hw_info *info = (void *)arg;
		assert_int_equal(info->size, sizeof(*info));
		assert_int_equal(info->flags, 0);
		assert_int_equal(info->dev_id, 7);
		assert_int_equal(info->data_len, 0);
		if (fk.hw_info_errno != 0)
			return fake_fail(fk.hw_info_errno);
		info->out_data_type = 1; /* IOMMU_HW_INFO_TYPE_INTEL_VTD */
		info->out_capabilities = fk.hw_caps;
		return 0;
	}
	case IOMMU_HWPT_ALLOC: {
		struct iommu_hwpt_alloc *alloc = (void *)arg;
		assert_int_equal(alloc->size, sizeof(*alloc));
		assert_int_equal(alloc->flags, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
		assert_int_equal(alloc->dev_id, 7);
		assert_int_equal(alloc->pt_id, fk.ioas_id);
		assert_int_equal(alloc->__reserved, 0);
		assert_int_equal(alloc->data_type, 0);
		assert_int_equal(alloc->data_len, 0);
		if (fk.hwpt_alloc_errno != 0)
			return fake_fail(fk.hwpt_alloc_errno);
		/* iommufd_hwpt_paging_alloc(): !device_iommu_capable(DIRTY_TRACKING) */
		if ((fk.hw_caps & IOMMU_HW_CAP_DIRTY_TRACKING) == 0)
			return fake_fail(EOPNOTSUPP);
		alloc->out_hwpt_id = fk.dirty_hwpt_id = FAKE_DIRTY_HWPT_ID;
		return 0;
	}
	case IOMMU_DESTROY: {
		struct iommu_destroy *destroy = (void *)arg;
		assert_int_equal(destroy->size, sizeof(*destroy));
		assert_int_equal(destroy->id, fk.dirty_hwpt_id);
		fk.hwpt_destroyed = TRUE;
		return 0;
	}
	case IOMMU_HWPT_SET_DIRTY_TRACKING: {
		struct iommu_hwpt_set_dirty_tracking *set = (void *)arg;
		gint err;
		fk.n_set_dirty++;
		assert_int_equal(set->size, sizeof(*set));
		assert_int_equal(set->__reserved, 0);
		if ((set->flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) != 0)
			return fake_fail(EOPNOTSUPP);
		err = fake_hwpt_lookup(set->hwpt_id);
		if (err == 0)
			err = fk.set_dirty_errno;
		if (err != 0)
			return fake_fail(err);
		/* enabling clears the dirty bits first (iopt_set_dirty_tracking()) */
		if (set->flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE)
			fk.n_hwpt_dirty = 0;
		fk.hwpt_tracking = (set->flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) != 0;
		return 0;
	}
	case IOMMU_HWPT_GET_DIRTY_BITMAP:
		return fake_get_dirty_bitmap((void *)arg);
	default:
		return fake_fail(ENOTTY);
	}
}

int
__wrap_ioctl(int fd, unsigned long request, ...)
{
	gulong arg = 0;
	va_list ap;

	/* these two are issued without an argument */
	if (request != VFIO_DEVICE_RESET && request != VFIO_GET_API_VERSION) {
		va_start(ap, request);
		arg = va_arg(ap, gulong);
		va_end(ap);
	}
	switch (fake_classify(fd)) {
	case FD_DEVICE:
		if (request == VFIO_DEVICE_ATTACH_IOMMUFD_PT) {
			struct vfio_device_attach_iommufd_pt *at = (void *)arg;
			assert_int_equal(at->argsz, 12);
			assert_int_equal(at->flags, 0);
			if (fk.dirty_hwpt_id != 0 && at->pt_id == fk.dirty_hwpt_id) {
				/* a HWPT: attached as it is, its id returned unchanged */
				if (fk.attach_hwpt_errno != 0)
					return fake_fail(fk.attach_hwpt_errno);
				fk.attached_pt = at->pt_id;
				return 0;
			}
			assert_int_equal(at->pt_id, fk.ioas_id);
			fk.attached_pt = at->pt_id;
			at->pt_id = FAKE_AUTO_HWPT_ID; /* the auto-domain HWPT */
			return 0;
		}
		return fake_device_ioctl(request, arg);
	case FD_CDEV:
		return fake_cdev_ioctl(request, arg);
	case FD_CONTAINER:
		return fake_container_ioctl(fd, request, arg);
	case FD_GROUP:
		return fake_group_ioctl(request, arg);
	case FD_IOMMU:
		return fake_iommu_ioctl(request, arg);
	default:
		return __real_ioctl(fd, request, arg);
	}
}

/* --- fixtures --- */

static void
write_file(const gchar *dir, const gchar *name)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	g_autofree gchar *parent = g_path_get_dirname(path);

	assert_int_equal(g_mkdir_with_parents(parent, 0755), 0);
	assert_true(g_file_set_contents(path, "", 0, NULL));
}

gchar *
tmp_path(const gchar *rel)
{
	return g_build_filename(fk.tmpdir, rel, NULL);
}

int
fake_setup(void **state)
{
	g_autofree gchar *pci = NULL;

	memset(&fk, 0, sizeof(fk));
	fk.tmpdir = g_dir_make_tmp("migd-kdev-XXXXXX", NULL);
	assert_non_null(fk.tmpdir);
	fk.device_path = tmp_path("device-node");
	write_file(fk.tmpdir, "device-node");
	write_file(fk.tmpdir, "dev/vfio/vfio");
	write_file(fk.tmpdir, "dev/vfio/42");
	write_file(fk.tmpdir, "dev/vfio/devices/vfio3");
	write_file(fk.tmpdir, "dev/iommu");
	pci = tmp_path("sys/bus/pci/devices/" DEV_NAME);
	assert_int_equal(g_mkdir_with_parents(pci, 0755), 0);
	fk.set_targets = g_array_new(FALSE, FALSE, sizeof(MigdState));
	fk.mig_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
	fk.state = MIGD_STATE_RUNNING;
	fk.stop_copy_length = 96;
	fk.chosen_page_size = 65536;
	fk.data_fd_peer = -1;
	fk.data_fd_given = -1;
	fk.lp_eventfd = -1;
	/* x86: 4 KiB, 2 MiB, 1 GiB */
	fk.iova_pgsizes = 0x40201000ull;
	fk.max_dirty_bitmap = FAKE_DIRTY_BITMAP_SIZE_MAX;
	/* before 6.6 (and in the old tests) GET_HW_INFO does not exist */
	fk.hw_info_errno = ENOTTY;
	return 0;
}

int
fake_teardown(void **state)
{
	g_autofree gchar *cmd = g_strdup_printf("rm -rf '%s'", fk.tmpdir);

	if (fk.data_fd_peer >= 0)
		close(fk.data_fd_peer);
	g_array_unref(fk.set_targets);
	assert_int_equal(system(cmd), 0);
	g_free(fk.tmpdir);
	g_free(fk.device_path);
	memset(&fk, 0, sizeof(fk));
	return 0;
}

void
make_group_link(void)
{
	g_autofree gchar *link = tmp_path("sys/bus/pci/devices/" DEV_NAME "/iommu_group");
	assert_int_equal(symlink("../../../../kernel/iommu_groups/42", link), 0);
}

guint
count_open_fds(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	guint n = 0;

	assert_non_null(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

MigdKernelDevice *
open_group_device(void)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autoptr(GError) error = NULL;
	MigdKernelDevice *kdev;

	make_group_link();
	kdev = migd_kernel_device_open_group_full(DEV_NAME, sys, dev, &error);
	assert_null(error);
	assert_non_null(kdev);
	return kdev;
}

MigdKernelDevice *
open_cdev_device(void)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autofree gchar *vfio_dev = tmp_path("sys/bus/pci/devices/" DEV_NAME "/vfio-dev/vfio3");
	g_autoptr(GError) error = NULL;
	MigdKernelDevice *kdev;

	assert_int_equal(g_mkdir_with_parents(vfio_dev, 0755), 0);
	kdev = migd_kernel_device_open_cdev_full(DEV_NAME, sys, dev, &error);
	assert_null(error);
	assert_non_null(kdev);
	return kdev;
}

MigdKernelDevice *
adopt_device(void)
{
	g_autoptr(GError) error = NULL;
	gint fd = open(fk.device_path, O_RDWR | O_CLOEXEC);
	MigdKernelDevice *kdev;

	assert_true(fd >= 0);
	kdev = migd_kernel_device_adopt_fd(fd, DEV_NAME, &error);
	assert_null(error);
	assert_non_null(kdev);
	assert_int_equal(migd_kernel_device_get_fd(kdev), fd);
	assert_string_equal(migd_device_get_name(MIGD_DEVICE(kdev)), DEV_NAME);
	return kdev;
}
