// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_pci_tph through the VFIO device cdev, on the emulated TPH endpoints
 * of tph_sim (tph-sim/): every answer and refusal of the TPH features, and
 * what the device then holds, read back from tph_sim's copy of each
 * endpoint's config space. The kernel's drivers/pci/tph.c programs the
 * device, the platform's steering tags come from real ACPI (tph_sim's SSDT
 * _DSM, evaluated by ACPICA). The TPH hints of the device's dma-bufs are
 * read back the way an importer reads them (dmabuf_tph_importer).
 *
 * The plan loads tph_sim and vfio_pci_tph and sets VFIO's noiommu mode
 * (the emulated PCI domain has no IOMMU). It runs this program twice: with
 * enable_unsafe_tph_ds_mode off and on; each case checks the mode it finds
 * (INFO's modes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "vfio_cdev.h"
#include "../../../../include/uapi/linux/vfio_pci_tph.h"

#define SIM		"/sys/kernel/debug/tph_sim/"
#define IMPORTER	"/sys/kernel/debug/dmabuf_tph_importer/"
#define PCI_TPH_CTRL	8
#define PCI_TPH_TABLE	0xc
#define MAX_ENTS	64

/* One emulated endpoint and what INFO must say about it. */
struct endpoint {
	const char *name;
	int has_tph;
	__u32 flags;		/* without ENABLED */
	/* modes: what INFO offers without and with enable_unsafe_tph_ds_mode */
	__u8 dev_modes, safe_modes, unsafe_modes, loc, req_type;
	__u16 size;
	__u16 pos;		/* where tph_sim puts the capability */
	__u8 completer;		/* the device's own TPH Completer Supported */
	__u16 next_id;		/* the extended capability after it, 0: none */
};

#define CAP_FLAGS	(VFIO_PCI_TPH_INFO_EXT | VFIO_PCI_TPH_INFO_CPU_ST)

static const struct endpoint endpoints[] = {
	{ .name = "cap16", .has_tph = 1,
	  .flags = CAP_FLAGS | VFIO_PCI_TPH_INFO_USABLE,
	  .dev_modes = 7, .safe_modes = 3, .unsafe_modes = 7, .loc = VFIO_PCI_TPH_LOC_CAP,
	  .req_type = VFIO_PCI_TPH_REQ_EXT, .size = 16, .pos = 0x100, .completer = 3 },
	{ .name = "ds_only", .has_tph = 1,
	  .flags = VFIO_PCI_TPH_INFO_USABLE | VFIO_PCI_TPH_INFO_CPU_ST,
	  .dev_modes = 4, .safe_modes = 0, .unsafe_modes = 4, .loc = VFIO_PCI_TPH_LOC_NONE,
	  .req_type = VFIO_PCI_TPH_REQ_TPH, .size = 0, .pos = 0x100, .completer = 1 },
	{ .name = "ext_limited", .has_tph = 1,
	  .flags = CAP_FLAGS | VFIO_PCI_TPH_INFO_USABLE,
	  .dev_modes = 7, .safe_modes = 3, .unsafe_modes = 7, .loc = VFIO_PCI_TPH_LOC_CAP,
	  .req_type = VFIO_PCI_TPH_REQ_TPH, .size = 8, .pos = 0x100, .completer = 1 },
	{ .name = "no_tph", .has_tph = 0, .pos = 0x100, .completer = 0 },
	{ .name = "no_completer", .has_tph = 1, .flags = CAP_FLAGS,
	  .dev_modes = 7, .safe_modes = 0, .unsafe_modes = 0, .loc = VFIO_PCI_TPH_LOC_CAP,
	  .req_type = VFIO_PCI_TPH_REQ_NONE, .size = 16, .pos = 0x100, .completer = 0 },
	/* The table in MSI-X: IV (tags user space can mmap) only when unsafe. */
	{ .name = "msix", .has_tph = 1,
	  .flags = CAP_FLAGS | VFIO_PCI_TPH_INFO_USABLE,
	  .dev_modes = 7, .safe_modes = 1, .unsafe_modes = 7, .loc = VFIO_PCI_TPH_LOC_MSIX,
	  .req_type = VFIO_PCI_TPH_REQ_EXT, .size = 16, .pos = 0x100, .completer = 3 },
	/* Between a Device Serial Number and a vendor-specific capability. */
	{ .name = "chained", .has_tph = 1,
	  .flags = CAP_FLAGS | VFIO_PCI_TPH_INFO_USABLE,
	  .dev_modes = 7, .safe_modes = 3, .unsafe_modes = 7, .loc = VFIO_PCI_TPH_LOC_CAP,
	  .req_type = VFIO_PCI_TPH_REQ_EXT, .size = 16, .pos = 0x110, .completer = 3,
	  .next_id = PCI_EXT_CAP_ID_VNDR },
	{ .name = "chained_hidden", .has_tph = 1, .flags = CAP_FLAGS,
	  .dev_modes = 7, .safe_modes = 0, .unsafe_modes = 0, .loc = VFIO_PCI_TPH_LOC_CAP,
	  .req_type = VFIO_PCI_TPH_REQ_NONE, .size = 16, .pos = 0x110, .completer = 0,
	  .next_id = PCI_EXT_CAP_ID_VNDR },
};

static const struct endpoint *endpoint(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++)
		if (!strcmp(endpoints[i].name, name))
			return &endpoints[i];
	return NULL;
}

/* The BDF tph_sim gave endpoint @name, in @bdf (64 bytes). */
static int sim_bdf(const char *name, char *bdf)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SIM "%s/bdf", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, bdf, 63);
	close(fd);
	if (n <= 0)
		return -EIO;
	bdf[n] = 0;
	bdf[strcspn(bdf, "\n")] = 0;
	return 0;
}

/* What @name holds at offset @off of tph_sim's @file (@len bytes, LE). */
static long sim_read(const char *name, const char *file, int off, int len)
{
	unsigned char b[4] = { 0 };
	char path[256];
	long v = 0;
	int fd;

	snprintf(path, sizeof(path), SIM "%s/%s", name, file);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	if (pread(fd, b, len, off) != len) {
		close(fd);
		return -EIO;
	}
	close(fd);
	for (int i = len - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* What the device holds at config offset @off. */
static long sim_config(const char *name, int off, int len)
{
	return sim_read(name, "config", off, len);
}

/* The Vector Control word of MSI-X entry @i (tag in bits 31:16, mask bit 0). */
static long sim_msix_ctrl(const char *name, int i)
{
	return sim_read(name, "bar0", 16 * i + 12, 4);
}

/* What the test puts in an endpoint's table before binding: not zero. */
static __u16 baseline(int i)
{
	return 0x0a00 + i;
}

/* Presets the table in @ep's capability to baseline(). */
static int sim_preset(const struct endpoint *ep)
{
	char path[256];
	int fd, rc = 0;

	snprintf(path, sizeof(path), SIM "%s/config", ep->name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < ep->size && !rc; i++) {
		__u16 v = baseline(i);
		unsigned char b[2] = { v, v >> 8 };

		if (pwrite(fd, b, 2, ep->pos + PCI_TPH_TABLE + 2 * i) != 2)
			rc = -errno;
	}
	close(fd);
	return rc;
}

/* Sets the platform's _DSM answer for processor UID @uid. */
static int sim_st_info(unsigned int uid, unsigned long long v)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%u 0x%llx\n", uid, v);
	return put(SIM "st_info", buf);
}

/* An st_info for volatile memory: 8-bit tag @st and 16-bit tag @xst, valid. */
static unsigned long long vm_tags(unsigned int st, unsigned int xst)
{
	return 3ULL | (unsigned long long)st << 8 | (unsigned long long)xst << 16;
}

static int bind_tph(const char *bdf)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (put(path, "vfio-pci-tph"))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
	put(path, bdf);	/* pcieport or nothing */
	return put("/sys/bus/pci/drivers_probe", bdf);
}

static void unbind_tph(const char *bdf)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/vfio-pci-tph/unbind");
	put(path, bdf);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	put(path, "\n");
}

/* VFIO_DEVICE_FEATURE with @flags | @index and @len bytes of @data. */
static int feature(int fd, __u32 flags, __u32 index, void *data, size_t len)
{
	char buf[sizeof(struct vfio_device_feature) + 16 + MAX_ENTS * 8 + 64];
	struct vfio_device_feature *f = (void *)buf;
	int rc;

	if (len > sizeof(buf) - sizeof(*f))
		return -E2BIG;
	memset(buf, 0, sizeof(buf));
	f->argsz = sizeof(*f) + len;
	f->flags = flags | index;
	if (len)
		memcpy(f->data, data, len);
	rc = ioctl(fd, VFIO_DEVICE_FEATURE, f);
	if (rc)
		return -errno;
	if (len && (flags & VFIO_DEVICE_FEATURE_GET))
		memcpy(data, f->data, len);
	return 0;
}

static int info(int fd, struct vfio_pci_tph_info *i)
{
	memset(i, 0xaa, sizeof(*i));
	return feature(fd, VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_PCI_TPH_INFO,
		       i, sizeof(*i));
}

static int ctrl(int fd, __u32 op, __u32 mode)
{
	struct vfio_pci_tph_ctrl c = { .op = op, .mode = mode };

	return feature(fd, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_PCI_TPH_CTRL,
		       &c, sizeof(c));
}

struct st_req {
	struct vfio_pci_tph_st h;
	struct vfio_pci_tph_st_entry e[MAX_ENTS];
};

static int program(int fd, const struct vfio_pci_tph_st_entry *e, unsigned int n)
{
	struct st_req r = { .h.count = n };

	memcpy(r.e, e, n * sizeof(*e));
	return feature(fd, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_PCI_TPH_ST,
		       &r, sizeof(r.h) + n * sizeof(*e));
}

struct cpu_req {
	struct vfio_pci_tph_cpu_st h;
	struct vfio_pci_tph_cpu_st_entry e[MAX_ENTS];
};

FIXTURE(tph) {
	const struct endpoint *ep;
	char bdf[64];
	int iommufd, fd;
	struct vfio_pci_tph_info info;
};

FIXTURE_VARIANT(tph) {
	const char *name;
};

FIXTURE_VARIANT_ADD(tph, cap16) { .name = "cap16" };
FIXTURE_VARIANT_ADD(tph, ds_only) { .name = "ds_only" };
FIXTURE_VARIANT_ADD(tph, ext_limited) { .name = "ext_limited" };
FIXTURE_VARIANT_ADD(tph, no_tph) { .name = "no_tph" };
FIXTURE_VARIANT_ADD(tph, no_completer) { .name = "no_completer" };
FIXTURE_VARIANT_ADD(tph, msix) { .name = "msix" };
FIXTURE_VARIANT_ADD(tph, chained) { .name = "chained" };
FIXTURE_VARIANT_ADD(tph, chained_hidden) { .name = "chained_hidden" };

static void open_bound(struct __test_metadata *_metadata, struct _test_data_tph *self)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };

	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	self->fd = vfio_cdev_open(self->bdf);
	ASSERT_LE(0, self->fd) TH_LOG("no VFIO cdev for %s: %s", self->bdf, strerror(errno));
	bind.iommufd = self->iommufd;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
}

static void close_bound(struct _test_data_tph *self)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->iommufd >= 0)
		close(self->iommufd);
	self->fd = -1;
	self->iommufd = -1;
}

FIXTURE_SETUP(tph)
{
	self->fd = -1;
	self->iommufd = -1;
	self->ep = endpoint(variant->name);
	ASSERT_NE(NULL, self->ep);
	if (access(SIM, F_OK))
		SKIP(return, "tph_sim is not loaded");
	ASSERT_EQ(0, sim_bdf(variant->name, self->bdf));
	/* The table the driver finds at bind, and must put back. */
	if (self->ep->loc == VFIO_PCI_TPH_LOC_CAP)
		ASSERT_EQ(0, sim_preset(self->ep));
	ASSERT_EQ(0, bind_tph(self->bdf)) TH_LOG("binding %s", self->bdf);
	open_bound(_metadata, self);
	if (self->ep->has_tph)
		ASSERT_EQ(0, info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(tph)
{
	/* An attachment a failed test left (none: -ENOENT). */
	put(IMPORTER "detach", "1");
	close_bound(self);
	if (self->bdf[0])
		unbind_tph(self->bdf);
}

/* Whether this run has enable_unsafe_tph_ds_mode (INFO gives DS to the caller). */
static int unsafe_ds(struct _test_data_tph *self)
{
	return self->info.modes & (1 << VFIO_PCI_TPH_MODE_DS);
}

TEST_F(tph, info_describes_the_device)
{
	const struct endpoint *ep = self->ep;
	struct vfio_pci_tph_info i;

	if (!ep->has_tph) {
		/* Every TPH feature, and PROBE, is not there. */
		ASSERT_EQ(-ENOTTY, info(self->fd, &i));
		ASSERT_EQ(-ENOTTY, feature(self->fd, VFIO_DEVICE_FEATURE_PROBE |
					   VFIO_DEVICE_FEATURE_SET,
					   VFIO_DEVICE_FEATURE_PCI_TPH_CTRL, NULL, 0));
		return;
	}
	i = self->info;
	EXPECT_EQ(ep->flags, i.flags);
	EXPECT_EQ(ep->dev_modes, i.dev_modes);
	/* DS, and IV with the table in MSI-X, only with enable_unsafe_tph_ds_mode. */
	EXPECT_EQ(unsafe_ds(self) ? ep->unsafe_modes : ep->safe_modes, i.modes);
	EXPECT_EQ(ep->loc, i.st_table_loc);
	EXPECT_EQ(ep->req_type, i.req_type);
	EXPECT_EQ(ep->size, i.st_table_size);
	EXPECT_EQ(0, i.mode);
	EXPECT_EQ(0, i.cur_req_type);
	EXPECT_EQ(0, i.__reserved[0] | i.__reserved[1] | i.__reserved[2]);
	/* PROBE: GET only for INFO, SET only for CTRL. */
	EXPECT_EQ(0, feature(self->fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET,
			     VFIO_DEVICE_FEATURE_PCI_TPH_INFO, NULL, 0));
	EXPECT_EQ(-EINVAL, feature(self->fd, VFIO_DEVICE_FEATURE_PROBE |
				   VFIO_DEVICE_FEATURE_SET,
				   VFIO_DEVICE_FEATURE_PCI_TPH_INFO, NULL, 0));
	EXPECT_EQ(0, feature(self->fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET,
			     VFIO_DEVICE_FEATURE_PCI_TPH_CTRL, NULL, 0));
	/* A short buffer. */
	EXPECT_EQ(-EINVAL, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
				   VFIO_DEVICE_FEATURE_PCI_TPH_INFO, &i, 8));
}

TEST_F(tph, ctrl_refusals_leave_tph_off)
{
	const struct endpoint *ep = self->ep;

	if (!ep->has_tph)
		SKIP(return, "no TPH capability");
	EXPECT_EQ(-EINVAL, ctrl(self->fd, 2, 0));
	EXPECT_EQ(-EINVAL, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, 3));
	EXPECT_EQ(-EINVAL, ctrl(self->fd, VFIO_PCI_TPH_DISABLE, 1));
	if (!(ep->flags & VFIO_PCI_TPH_INFO_USABLE))
		EXPECT_EQ(-EOPNOTSUPP, ctrl(self->fd, VFIO_PCI_TPH_ENABLE,
					    VFIO_PCI_TPH_MODE_IV));
	if ((ep->dev_modes & 4) && !unsafe_ds(self) && (ep->flags & VFIO_PCI_TPH_INFO_USABLE))
		EXPECT_EQ(-EPERM, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_DS));
	if (!(ep->dev_modes & 2))
		EXPECT_EQ(-EOPNOTSUPP, ctrl(self->fd, VFIO_PCI_TPH_ENABLE,
					    VFIO_PCI_TPH_MODE_IV));
	if (ep->loc == VFIO_PCI_TPH_LOC_MSIX && !unsafe_ds(self))
		EXPECT_EQ(-EPERM, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	/* Nothing reached the device; disabling what is off is fine. */
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_DISABLE, 0));
}

/* The table as @ep holds it equals @want. */
static int table_is(const struct endpoint *ep, const __u16 *want)
{
	for (int i = 0; i < ep->size; i++)
		if (sim_config(ep->name, ep->pos + PCI_TPH_TABLE + 2 * i, 2) != want[i])
			return 0;
	return 1;
}

/* The table as the driver found it at bind. */
static int table_is_baseline(const struct endpoint *ep)
{
	__u16 want[MAX_ENTS];

	for (int i = 0; i < ep->size; i++)
		want[i] = baseline(i);
	return table_is(ep, want);
}

TEST_F(tph, iv_mode_programs_kernel_resolved_tags)
{
	const struct endpoint *ep = self->ep;
	__u16 want[MAX_ENTS];
	struct vfio_pci_tph_st_entry e[3] = {
		{ .index = 0, .mem_type = VFIO_PCI_TPH_MEM_VM, .value = 0 },
		{ .index = 5, .mem_type = VFIO_PCI_TPH_MEM_VM, .value = 1 },
		{ .index = 7, .flags = VFIO_PCI_TPH_ST_ENTRY_CLEAR },
	};
	struct vfio_pci_tph_info i;
	int ext = ep->req_type == VFIO_PCI_TPH_REQ_EXT;

	if (!ep->has_tph || !(ep->safe_modes & 2) || ep->loc != VFIO_PCI_TPH_LOC_CAP)
		SKIP(return, "no IV mode with a table in the capability");
	/* Processor UIDs 0 and 1 (CPUs 0 and 1). */
	ASSERT_EQ(0, sim_st_info(0, vm_tags(0x11, 0x1111)));
	ASSERT_EQ(0, sim_st_info(1, vm_tags(0x22, 0x2222)));

	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	/* Control: IV mode, requester type as INFO promised. */
	EXPECT_EQ(VFIO_PCI_TPH_MODE_IV | ep->req_type << 8,
		  sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	ASSERT_EQ(0, info(self->fd, &i));
	EXPECT_TRUE(!!(i.flags & VFIO_PCI_TPH_INFO_ENABLED));
	EXPECT_EQ(VFIO_PCI_TPH_MODE_IV, i.mode);
	EXPECT_EQ(ep->req_type, i.cur_req_type);
	EXPECT_EQ(-EBUSY, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_NS));

	/* Open (its reset) and enable left the table as found at bind. */
	EXPECT_TRUE(table_is_baseline(ep));
	ASSERT_EQ(0, program(self->fd, e, 3));
	/* The tag of the enabled namespace, nothing else. */
	for (int k = 0; k < ep->size; k++)
		want[k] = baseline(k);
	want[0] = ext ? 0x1111 : 0x11;
	want[5] = ext ? 0x2222 : 0x22;
	want[7] = 0;
	EXPECT_TRUE(table_is(ep, want));
	/* Requests stayed enabled around the writes. */
	EXPECT_EQ(VFIO_PCI_TPH_MODE_IV | ep->req_type << 8,
		  sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));

	/* Disable: off in the device, the table as found at bind. */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_DISABLE, 0));
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_TRUE(table_is_baseline(ep));
	ASSERT_EQ(0, info(self->fd, &i));
	EXPECT_FALSE(!!(i.flags & VFIO_PCI_TPH_INFO_ENABLED));
}

TEST_F(tph, st_refusals_change_nothing)
{
	const struct endpoint *ep = self->ep;
	__u16 want[MAX_ENTS];
	struct vfio_pci_tph_st_entry ok = { .index = 1, .value = 0 };
	struct vfio_pci_tph_st_entry e[2];
	struct st_req big = { .h.count = 2049 };
	cpu_set_t only0, saved;

	if (!ep->has_tph || !(ep->safe_modes & 2) || ep->loc != VFIO_PCI_TPH_LOC_CAP)
		SKIP(return, "no IV mode with a table in the capability");
	ASSERT_EQ(0, sim_st_info(0, vm_tags(0x33, 0x3333)));
	ASSERT_EQ(0, sim_st_info(1, 0));	/* no valid tag for CPU 1 */

	/* Off: no table to program. */
	EXPECT_EQ(-EBADFD, program(self->fd, &ok, 1));
	/* No ST mode uses no tag. */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_NS));
	EXPECT_EQ(-EBADFD, program(self->fd, &ok, 1));
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_DISABLE, 0));

	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	ASSERT_EQ(0, program(self->fd, &ok, 1));
	for (int k = 0; k < ep->size; k++)
		want[k] = baseline(k);
	want[1] = ep->req_type == VFIO_PCI_TPH_REQ_EXT ? 0x3333 : 0x33;
	ASSERT_TRUE(table_is(ep, want));

	/* Each refused batch has a good first entry: none of it is written. */
	e[0] = (struct vfio_pci_tph_st_entry){ .index = 2, .value = 0 };
	e[1] = (struct vfio_pci_tph_st_entry){ .index = ep->size, .value = 0 };
	EXPECT_EQ(-ENXIO, program(self->fd, e, 2));
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 2, .value = 0 };
	EXPECT_EQ(-EINVAL, program(self->fd, e, 2));		/* twice */
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .flags = VFIO_PCI_TPH_ST_ENTRY_RAW,
					       .value = 5 };
	EXPECT_EQ(-EPERM, program(self->fd, e, 2));		/* raw outside DS */
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .flags = 4 };
	EXPECT_EQ(-EINVAL, program(self->fd, e, 2));
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .mem_type = 2 };
	EXPECT_EQ(-EINVAL, program(self->fd, e, 2));
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .flags = VFIO_PCI_TPH_ST_ENTRY_CLEAR,
					       .value = 1 };
	EXPECT_EQ(-EINVAL, program(self->fd, e, 2));
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .value = 1 };
	EXPECT_EQ(-ENODATA, program(self->fd, e, 2));	/* invalid on the platform */
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .value = 100000 };
	EXPECT_EQ(-EINVAL, program(self->fd, e, 2));	/* no such CPU */
	/* A CPU the caller may not run on. */
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(saved), &saved));
	CPU_ZERO(&only0);
	CPU_SET(0, &only0);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(only0), &only0));
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 3, .value = 1 };
	EXPECT_EQ(-EPERM, program(self->fd, e, 2));
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(saved), &saved));
	/* Counts. */
	EXPECT_EQ(-EINVAL, program(self->fd, e, 0));
	EXPECT_EQ(-E2BIG, feature(self->fd, VFIO_DEVICE_FEATURE_SET,
				  VFIO_DEVICE_FEATURE_PCI_TPH_ST, &big, sizeof(big)));
	big.h.count = 3;	/* more entries than the data holds */
	EXPECT_EQ(-EINVAL, feature(self->fd, VFIO_DEVICE_FEATURE_SET,
				   VFIO_DEVICE_FEATURE_PCI_TPH_ST, &big, sizeof(big.h) + 16));
	big.h.count = 1;
	big.h.flags = 1;
	EXPECT_EQ(-EINVAL, feature(self->fd, VFIO_DEVICE_FEATURE_SET,
				   VFIO_DEVICE_FEATURE_PCI_TPH_ST, &big, sizeof(big.h) + 8));

	EXPECT_TRUE(table_is(ep, want));
	EXPECT_EQ(VFIO_PCI_TPH_MODE_IV | ep->req_type << 8,
		  sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
}

TEST_F(tph, cpu_st_answers_in_either_namespace)
{
	const struct endpoint *ep = self->ep;
	struct cpu_req r = { .h.count = 2 };
	cpu_set_t only0, saved;

	if (!ep->has_tph)
		SKIP(return, "no TPH capability");
	/* CPU 0: both tags valid, PH ignored; CPU 1: 16-bit tag only. */
	ASSERT_EQ(0, sim_st_info(0, vm_tags(0x44, 0x4444) | 4));
	ASSERT_EQ(0, sim_st_info(1, 2ULL | 0x5555ULL << 16));
	r.e[0] = (struct vfio_pci_tph_cpu_st_entry){ .cpu = 0 };
	r.e[1] = (struct vfio_pci_tph_cpu_st_entry){ .cpu = 1 };
	r.h.flags = VFIO_PCI_TPH_ST_EXT;
	ASSERT_EQ(0, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
			     VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 16));
	EXPECT_EQ(0x4444, r.e[0].st);
	EXPECT_EQ(1, r.e[0].ph_ignore);
	EXPECT_EQ(0x5555, r.e[1].st);
	EXPECT_EQ(0, r.e[1].ph_ignore);
	/* The 8-bit namespace: CPU 1 has no tag there, so nothing is answered. */
	r.h.flags = 0;
	r.e[0].st = 0xffff;
	r.e[1].st = 0xffff;
	EXPECT_EQ(-ENODATA, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
				    VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 16));
	r.h.count = 1;
	ASSERT_EQ(0, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
			     VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 8));
	EXPECT_EQ(0x44, r.e[0].st);
	/* Persistent memory: no valid tag. */
	r.e[0].mem_type = VFIO_PCI_TPH_MEM_PM;
	EXPECT_EQ(-ENODATA, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
				    VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 8));
	r.e[0].mem_type = 2;
	EXPECT_EQ(-EINVAL, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
				   VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 8));
	r.e[0].mem_type = 0;
	r.h.flags = 2;
	EXPECT_EQ(-EINVAL, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
				   VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 8));
	r.h.flags = 0;
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(saved), &saved));
	CPU_ZERO(&only0);
	CPU_SET(0, &only0);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(only0), &only0));
	r.e[0].cpu = 1;
	EXPECT_EQ(-EPERM, feature(self->fd, VFIO_DEVICE_FEATURE_GET,
				  VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST, &r, sizeof(r.h) + 8));
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(saved), &saved));
}

TEST_F(tph, close_and_reset_turn_tph_off)
{
	const struct endpoint *ep = self->ep;
	struct vfio_pci_tph_st_entry e = { .index = 3, .value = 0 };
	__u16 zero[MAX_ENTS] = { 0 };
	struct vfio_pci_tph_info i;
	long tag3;

	if (!ep->has_tph || !(ep->safe_modes & 2) || ep->loc != VFIO_PCI_TPH_LOC_CAP)
		SKIP(return, "no IV mode with a table in the capability");
	ASSERT_EQ(0, sim_st_info(0, vm_tags(0x66, 0x6666)));

	tag3 = ep->req_type == VFIO_PCI_TPH_REQ_EXT ? 0x6666 : 0x66;

	/*
	 * Closing the device: TPH off, then vfio-pci-core's reset (an FLR of
	 * the emulated device, which clears the table). Had TPH stayed enabled
	 * in the PCI core, the enable after the next open would fail (-EBUSY).
	 */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	ASSERT_EQ(0, program(self->fd, &e, 1));
	ASSERT_EQ(tag3, sim_config(ep->name, ep->pos + PCI_TPH_TABLE + 6, 2));
	close_bound(self);
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_TRUE(table_is(ep, zero));

	/* Open resets the device; the driver puts back what it found at bind. */
	open_bound(_metadata, self);
	EXPECT_TRUE(table_is_baseline(ep));
	ASSERT_EQ(0, info(self->fd, &i));
	EXPECT_FALSE(!!(i.flags & VFIO_PCI_TPH_INFO_ENABLED));
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	ASSERT_EQ(0, program(self->fd, &e, 1));
	/* A reset through VFIO (FLR): off, and the bind-time table back. */
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_TRUE(table_is_baseline(ep));
	ASSERT_EQ(0, info(self->fd, &i));
	EXPECT_FALSE(!!(i.flags & VFIO_PCI_TPH_INFO_ENABLED));
	/* And it can be enabled again. */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	ASSERT_EQ(0, program(self->fd, &e, 1));
	EXPECT_EQ(tag3, sim_config(ep->name, ep->pos + PCI_TPH_TABLE + 6, 2));
}

TEST_F(tph, ds_mode_only_when_unsafe)
{
	const struct endpoint *ep = self->ep;
	struct vfio_pci_tph_st_entry e[2] = {
		{ .index = 0, .flags = VFIO_PCI_TPH_ST_ENTRY_RAW, .value = 0xab },
		{ .index = 1, .value = 0 },
	};
	int ext = ep->req_type == VFIO_PCI_TPH_REQ_EXT;

	if (!ep->has_tph || !(ep->dev_modes & 4) || !(ep->flags & VFIO_PCI_TPH_INFO_USABLE))
		SKIP(return, "no usable DS mode");
	if (!unsafe_ds(self)) {
		EXPECT_EQ(-EPERM, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_DS));
		EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
		return;
	}
	ASSERT_EQ(0, sim_st_info(0, vm_tags(0x77, 0x7777)));
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_DS));
	EXPECT_EQ(VFIO_PCI_TPH_MODE_DS | ep->req_type << 8,
		  sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	if (ep->loc == VFIO_PCI_TPH_LOC_NONE) {
		/* DS without a table: nothing to program. */
		EXPECT_EQ(-EOPNOTSUPP, program(self->fd, e, 1));
		return;
	}
	if (ep->loc == VFIO_PCI_TPH_LOC_MSIX) {
		/* No vector set up: no entry to write; TPH stays on. */
		EXPECT_EQ(-ENXIO, program(self->fd, e, 2));
		EXPECT_EQ(VFIO_PCI_TPH_MODE_DS | ep->req_type << 8,
			  sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
		return;
	}
	/* Raw tags in DS mode, bounded by the enabled namespace. */
	ASSERT_EQ(0, program(self->fd, e, 2));
	EXPECT_EQ(0xab, sim_config(ep->name, ep->pos + PCI_TPH_TABLE, 2));
	EXPECT_EQ(ext ? 0x7777 : 0x77, sim_config(ep->name, ep->pos + PCI_TPH_TABLE + 2, 2));
	e[0].value = 0x1ab;
	EXPECT_EQ(ext ? 0 : -ERANGE, program(self->fd, e, 1));
}

/* Sets up MSI-X vectors 0..@n-1, each with an eventfd; @n 0 tears all down. */
static int msix_set(int fd, int n)
{
	char buf[sizeof(struct vfio_irq_set) + 16 * sizeof(__s32)];
	struct vfio_irq_set *s = (void *)buf;
	__s32 efd[16];
	int rc;

	if (n > 16)
		return -E2BIG;
	memset(buf, 0, sizeof(buf));
	s->argsz = sizeof(*s) + n * sizeof(__s32);
	s->flags = (n ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE) |
		   VFIO_IRQ_SET_ACTION_TRIGGER;
	s->index = VFIO_PCI_MSIX_IRQ_INDEX;
	s->count = n;
	for (int i = 0; i < n; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	memcpy(s->data, efd, n * sizeof(__s32));
	rc = ioctl(fd, VFIO_DEVICE_SET_IRQS, s) ? -errno : 0;
	/* VFIO holds its own references. */
	for (int i = 0; i < n; i++)
		close(efd[i]);
	return rc;
}

/* The tags of MSI-X entries 0..3 as the device holds them equal @want. */
static int msix_tags_are(const char *name, const long *want)
{
	for (int i = 0; i < 4; i++)
		if (sim_msix_ctrl(name, i) >> 16 != want[i])
			return 0;
	return 1;
}

TEST_F(tph, msix_table_steers_set_up_vectors)
{
	const struct endpoint *ep = self->ep;
	const struct vfio_pci_tph_st_entry two[2] = {
		{ .index = 1, .mem_type = VFIO_PCI_TPH_MEM_VM, .value = 0 },
		{ .index = 3, .mem_type = VFIO_PCI_TPH_MEM_VM, .value = 1 },
	};
	const long none[4] = { 0 }, tagged[4] = { 0, 0x1111, 0, 0x2222 };
	long on = VFIO_PCI_TPH_MODE_IV | ep->req_type << 8;
	struct vfio_pci_tph_st_entry e[2];

	if (ep->loc != VFIO_PCI_TPH_LOC_MSIX)
		SKIP(return, "the ST table is not in MSI-X");
	if (!unsafe_ds(self)) {
		/* User space can mmap the MSI-X table, tags included. */
		EXPECT_EQ(-EPERM, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
		EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
		return;
	}
	ASSERT_EQ(0, sim_st_info(0, vm_tags(0x11, 0x1111)));
	ASSERT_EQ(0, sim_st_info(1, vm_tags(0x22, 0x2222)));
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	EXPECT_EQ(on, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	/* No vector set up: no entry to write, and TPH stays on. */
	EXPECT_EQ(-ENXIO, program(self->fd, two, 2));
	EXPECT_EQ(on, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));

	/* Four vectors: pcie_tph_set_st_entry() writes their control words. */
	ASSERT_EQ(0, msix_set(self->fd, 4));
	ASSERT_TRUE(msix_tags_are(ep->name, none));
	ASSERT_EQ(0, program(self->fd, two, 2));
	EXPECT_TRUE(msix_tags_are(ep->name, tagged));
	/* Unmasked by VFIO, and still so: only the tag field was written. */
	EXPECT_EQ(0, sim_msix_ctrl(ep->name, 1) & 1);
	EXPECT_EQ(on, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	/* A vector not set up, an index past the table: the batch changes nothing. */
	e[0] = (struct vfio_pci_tph_st_entry){ .index = 2, .value = 0 };
	e[1] = (struct vfio_pci_tph_st_entry){ .index = 4, .value = 0 };
	EXPECT_EQ(-ENXIO, program(self->fd, e, 2));
	e[1].index = ep->size;
	EXPECT_EQ(-ENXIO, program(self->fd, e, 2));
	EXPECT_TRUE(msix_tags_are(ep->name, tagged));
	EXPECT_EQ(on, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));

	/* Disable: TPH off, every set-up vector's tag back to 0. */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_DISABLE, 0));
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_TRUE(msix_tags_are(ep->name, none));

	/*
	 * A reset with the vectors set up: pci_restore_state() writes the
	 * kernel's cached control words back, which must not carry the tags.
	 */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	ASSERT_EQ(0, program(self->fd, two, 2));
	ASSERT_TRUE(msix_tags_are(ep->name, tagged));
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_TRUE(msix_tags_are(ep->name, none));

	/*
	 * A vector torn down keeps its tag in the device, and the PCI core
	 * writes the control word it read back when the vector is set up
	 * again: disabling TPH without vectors leaves the tags...
	 */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	ASSERT_EQ(0, program(self->fd, two, 2));
	ASSERT_EQ(0, msix_set(self->fd, 0));
	EXPECT_EQ(-ENXIO, program(self->fd, two, 2));
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_DISABLE, 0));
	ASSERT_EQ(0, msix_set(self->fd, 4));
	EXPECT_TRUE(msix_tags_are(ep->name, tagged));
	/* ...and enabling clears those of the vectors set up. */
	ASSERT_EQ(0, ctrl(self->fd, VFIO_PCI_TPH_ENABLE, VFIO_PCI_TPH_MODE_IV));
	EXPECT_TRUE(msix_tags_are(ep->name, none));
	EXPECT_EQ(on, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));

	/* Close with tags set: TPH off, no tag left. */
	ASSERT_EQ(0, program(self->fd, two, 2));
	ASSERT_TRUE(msix_tags_are(ep->name, tagged));
	close_bound(self);
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_TRUE(msix_tags_are(ep->name, none));
}

/* Where the config-space region starts in the device fd. */
static off_t config_region(int fd)
{
	struct vfio_region_info ri = {
		.argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX,
	};

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -1;
	return ri.offset;
}

static long cfg_read(int fd, off_t region, int off, int len)
{
	unsigned char b[4] = { 0 };
	long v = 0;

	if (pread(fd, b, len, region + off) != len)
		return -errno;
	for (int i = len - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* 0, or -errno of a config write of @len bytes of @v at @off. */
static int cfg_write(int fd, off_t region, int off, int len, unsigned int v)
{
	unsigned char b[4] = { v, v >> 8, v >> 16, v >> 24 };

	return pwrite(fd, b, len, region + off) == len ? 0 : -errno;
}

/*
 * Walks the extended capabilities as user space sees them from 0x100: their
 * IDs in @ids and offsets in @at (at most 8, a placeholder with ID 0 is
 * followed but not listed); returns how many.
 */
static int ecap_chain(int fd, off_t region, int *ids, int *at)
{
	int n = 0, pos = 0x100;

	for (int loops = 0; pos >= 0x100 && loops < 64 && n < 8; loops++) {
		long h = cfg_read(fd, region, pos, 4);

		if (h <= 0)
			break;
		if (h & 0xffff) {
			ids[n] = h & 0xffff;
			at[n++] = pos;
		}
		pos = (h >> 20) & 0xffc;
	}
	return n;
}

TEST_F(tph, config_space_is_virtualized)
{
	const struct endpoint *ep = self->ep;
	off_t r = config_region(self->fd);
	long hw_cap, ctrl_on = VFIO_PCI_TPH_MODE_IV | ep->req_type << 8;
	unsigned char whole[0x200];
	struct vfio_pci_tph_info i;
	int ids[8], at[8], n, tph = -1;

	ASSERT_LE(0, r);
	/* TPH in the chain where the device has it when usable, else skipped. */
	n = ecap_chain(self->fd, r, ids, at);
	for (int k = 0; k < n; k++)
		if (ids[k] == PCI_EXT_CAP_ID_TPH)
			tph = k;
	if (ep->flags & VFIO_PCI_TPH_INFO_USABLE) {
		ASSERT_LE(0, tph);
		EXPECT_EQ(ep->pos, at[tph]);
	} else {
		EXPECT_EQ(-1, tph);
	}
	/* What follows it is still reached. */
	if (ep->next_id)
		EXPECT_EQ(ep->next_id, n ? ids[n - 1] : -1);
	if (!ep->has_tph) {
		EXPECT_EQ(0, cfg_read(self->fd, r, ep->pos, 4));
		return;
	}
	hw_cap = sim_config(ep->name, ep->pos + 4, 4);
	if (!(ep->flags & VFIO_PCI_TPH_INFO_USABLE)) {
		/* Hidden: the chain has no TPH capability, writes are dropped. */
		if (ep->pos == 0x100)
			EXPECT_EQ(0, cfg_read(self->fd, r, ep->pos, 2));
		EXPECT_EQ(0, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4,
				       VFIO_PCI_TPH_MODE_IV | VFIO_PCI_TPH_REQ_TPH << 8));
		EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
		return;
	}
	EXPECT_EQ(0x17, cfg_read(self->fd, r, ep->pos, 2));
	/* The modes this caller may enable. */
	EXPECT_EQ((hw_cap & ~7L) | self->info.modes, cfg_read(self->fd, r, ep->pos + 4, 4));
	EXPECT_EQ(0, cfg_read(self->fd, r, ep->pos + PCI_TPH_CTRL, 4));
	/* One read across everything: the same bytes. */
	ASSERT_EQ((ssize_t)sizeof(whole), pread(self->fd, whole, sizeof(whole), r));
	EXPECT_EQ(self->info.modes, whole[ep->pos + 4] & 7);

	if (!(self->info.modes & 2)) {
		EXPECT_EQ(unsafe_ds(self) ? 0 : -EPERM,
			  cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4,
				    VFIO_PCI_TPH_MODE_DS | ep->req_type << 8));
		return;
	}
	/* A control write is a CTRL call. */
	ASSERT_EQ(0, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4, ctrl_on));
	EXPECT_EQ(ctrl_on, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	EXPECT_EQ(ctrl_on, cfg_read(self->fd, r, ep->pos + PCI_TPH_CTRL, 4));
	ASSERT_EQ(0, info(self->fd, &i));
	EXPECT_EQ(VFIO_PCI_TPH_MODE_IV, i.mode);
	EXPECT_EQ(-EBUSY, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4,
				    VFIO_PCI_TPH_MODE_NS | ep->req_type << 8));
	EXPECT_EQ(-EINVAL, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4, ctrl_on | 0x10));
	/* A table write is a raw tag: IV mode takes none. */
	if (ep->loc == VFIO_PCI_TPH_LOC_CAP) {
		EXPECT_EQ(-EPERM, cfg_write(self->fd, r, ep->pos + PCI_TPH_TABLE + 2, 2, 0x12));
		EXPECT_EQ(baseline(1), sim_config(ep->name, ep->pos + PCI_TPH_TABLE + 2, 2));
	}
	/* Writing requester-enable 0 disables. */
	ASSERT_EQ(0, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL + 1, 1, 0));
	EXPECT_EQ(0, sim_config(ep->name, ep->pos + PCI_TPH_CTRL, 4));
	ASSERT_EQ(0, info(self->fd, &i));
	EXPECT_FALSE(!!(i.flags & VFIO_PCI_TPH_INFO_ENABLED));

	if (!unsafe_ds(self)) {
		EXPECT_EQ(-EPERM, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4,
					    VFIO_PCI_TPH_MODE_DS | ep->req_type << 8));
		return;
	}
	/* DS mode: table writes are the tags themselves. */
	ASSERT_EQ(0, cfg_write(self->fd, r, ep->pos + PCI_TPH_CTRL, 4,
			       VFIO_PCI_TPH_MODE_DS | ep->req_type << 8));
	if (ep->loc != VFIO_PCI_TPH_LOC_CAP)
		return;
	ASSERT_EQ(0, cfg_write(self->fd, r, ep->pos + PCI_TPH_TABLE + 2, 2, 0x12));
	EXPECT_EQ(0x12, sim_config(ep->name, ep->pos + PCI_TPH_TABLE + 2, 2));
	EXPECT_EQ(0x12, cfg_read(self->fd, r, ep->pos + PCI_TPH_TABLE + 2, 2));
}

/* A dma-buf of BAR 0 [0x2000, 0x4000) of the device @fd, or -errno. */
static int dma_buf_of(int fd)
{
	__u64 buf[(sizeof(struct vfio_device_feature) +
		   sizeof(struct vfio_device_feature_dma_buf) +
		   sizeof(struct vfio_region_dma_range)) / 8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;
	struct vfio_device_feature_dma_buf *d = (void *)f->data;
	int rc;

	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	d->region_index = VFIO_PCI_BAR0_REGION_INDEX;
	d->open_flags = O_RDWR | O_CLOEXEC;
	d->nr_ranges = 1;
	d->dma_ranges[0].offset = 0x2000;
	d->dma_ranges[0].length = 0x2000;
	rc = ioctl(fd, VFIO_DEVICE_FEATURE, f);
	return rc < 0 ? -errno : rc;
}

static int dma_buf_hint(int fd, int dmabuf, __u32 flags, __u16 st_ext, __u8 st, __u8 ph)
{
	struct vfio_pci_tph_dma_buf h = {
		.dmabuf_fd = dmabuf, .flags = flags,
		.steering_tag_ext = st_ext, .steering_tag = st, .ph = ph,
	};

	return feature(fd, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF,
		       &h, sizeof(h));
}

/* What dmabuf_tph_importer reads: per namespace 0 and the hint, or -errno. */
struct seen {
	int st_ret, ext_ret;
	unsigned int st, st_ph, ext, ext_ph, invalidated;
};

static int importer_reads(struct seen *s)
{
	char line[128];
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->st_ret = 1;
	s->ext_ret = 1;
	f = fopen(IMPORTER "hint", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "st_ext %d %x %u", &s->ext_ret, &s->ext, &s->ext_ph) >= 1)
			continue;
		if (sscanf(line, "st %d %x %u", &s->st_ret, &s->st, &s->st_ph) >= 1)
			continue;
		if (sscanf(line, "invalidated %u", &s->invalidated) != 1)
			break;
	}
	fclose(f);
	return 0;
}

/* Attaches the importer to the dma-buf @buf of this process. */
static int importer_attach(int buf)
{
	char n[16];

	snprintf(n, sizeof(n), "%d", buf);
	return put(IMPORTER "attach", n);
}

TEST_F(tph, dma_buf_hints_reach_the_importer)
{
	const struct endpoint *ep = self->ep, *other;
	int ext = ep->completer == VFIO_PCI_TPH_REQ_EXT;
	__u32 st = VFIO_PCI_TPH_DMA_BUF_ST, st_ext = VFIO_PCI_TPH_DMA_BUF_ST_EXT;
	off_t r = config_region(self->fd);
	int buf, obuf, ofd, efd;
	unsigned int inval;
	char obdf[64];
	struct seen s;
	long cmd;

	ASSERT_EQ(0, access(IMPORTER, F_OK)) TH_LOG("dmabuf_tph_importer is not loaded");
	ASSERT_LE(0, r);
	/* Offered when the device completes TPH: it is the writes' completer. */
	if (!ep->completer) {
		EXPECT_EQ(-EOPNOTSUPP, feature(self->fd, VFIO_DEVICE_FEATURE_PROBE |
					       VFIO_DEVICE_FEATURE_SET,
					       VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF, NULL, 0));
		EXPECT_EQ(-EOPNOTSUPP, dma_buf_hint(self->fd, 0, st, 0, 1, 0));
		return;
	}
	ASSERT_EQ(0, feature(self->fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET,
			     VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF, NULL, 0));
	buf = dma_buf_of(self->fd);
	ASSERT_LE(0, buf) TH_LOG("no dma-buf of BAR 0: %s", strerror(-buf));
	ASSERT_EQ(0, importer_attach(buf));
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_EQ(-EOPNOTSUPP, s.st_ret);
	EXPECT_EQ(-EOPNOTSUPP, s.ext_ret);

	/* What the importer reads, per namespace. */
	ASSERT_EQ(0, dma_buf_hint(self->fd, buf, st | (ext ? st_ext : 0), ext ? 0x1234 : 0,
				  0x56, 2));
	for (int round = 0; round < 2; round++) {
		ASSERT_EQ(0, importer_reads(&s));
		EXPECT_EQ(0, s.st_ret);
		EXPECT_EQ(0x56U, s.st);
		EXPECT_EQ(2U, s.st_ph);
		if (ext) {
			EXPECT_EQ(0, s.ext_ret);
			EXPECT_EQ(0x1234U, s.ext);
			EXPECT_EQ(2U, s.ext_ph);
		} else {
			EXPECT_EQ(-EOPNOTSUPP, s.ext_ret);
		}
		if (round)
			break;
		/* Refusals change none of it (checked in the second round). */
		EXPECT_EQ(-EINVAL, dma_buf_hint(self->fd, buf, 4, 0, 0, 0));
		EXPECT_EQ(-EINVAL, dma_buf_hint(self->fd, buf, st, 0, 1, 4));
		EXPECT_EQ(-EBADF, dma_buf_hint(self->fd, -1, st, 0, 1, 0));
		efd = eventfd(0, EFD_CLOEXEC);
		EXPECT_EQ(-EINVAL, dma_buf_hint(self->fd, efd, st, 0, 1, 0));	/* not a dma-buf */
		close(efd);
		if (!ext)
			EXPECT_EQ(-EOPNOTSUPP, dma_buf_hint(self->fd, buf, st_ext, 0x1234, 0, 0));
	}
	/* Each SET replaces the whole hint (a tag without its flag is ignored). */
	ASSERT_EQ(0, dma_buf_hint(self->fd, buf, st, 0x7777, 0x11, 1));
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_EQ(0x11U, s.st);
	EXPECT_EQ(1U, s.st_ph);
	EXPECT_EQ(-EOPNOTSUPP, s.ext_ret);
	/* Flags 0 clears it, whatever else comes along. */
	ASSERT_EQ(0, dma_buf_hint(self->fd, buf, 0, 0x7777, 0x11, 1));
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_EQ(-EOPNOTSUPP, s.st_ret);
	EXPECT_EQ(-EOPNOTSUPP, s.ext_ret);
	/* Setting is not an invalidation (iommufd would take it as a revocation). */
	EXPECT_EQ(0U, s.invalidated);

	/* A reset revokes the dma-buf and gives it back: the importer is told. */
	ASSERT_EQ(0, dma_buf_hint(self->fd, buf, st, 0, 0x22, 3));
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_LT(0U, s.invalidated);
	inval = s.invalidated;
	EXPECT_EQ(0, s.st_ret);
	EXPECT_EQ(0x22U, s.st);
	EXPECT_EQ(3U, s.st_ph);
	/* Memory decode off in the user's Command register: revoked, no hint. */
	cmd = cfg_read(self->fd, r, PCI_COMMAND, 2);
	ASSERT_LE(0, cmd);
	ASSERT_EQ(0, cfg_write(self->fd, r, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY));
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_EQ(-ENODEV, s.st_ret);
	EXPECT_LT(inval, s.invalidated);
	ASSERT_EQ(0, cfg_write(self->fd, r, PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY));
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_EQ(0, s.st_ret);
	EXPECT_EQ(0x22U, s.st);

	/* Another device's dma-buf is refused. */
	other = endpoint(strcmp(ep->name, "cap16") ? "cap16" : "msix");
	ASSERT_EQ(0, sim_bdf(other->name, obdf));
	ASSERT_EQ(0, bind_tph(obdf));
	ofd = vfio_cdev_open(obdf);
	if (ofd >= 0) {
		struct vfio_device_bind_iommufd bind = {
			.argsz = sizeof(bind), .iommufd = self->iommufd,
		};

		EXPECT_EQ(0, ioctl(ofd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		obuf = dma_buf_of(ofd);
		EXPECT_LE(0, obuf);
		EXPECT_EQ(-EINVAL, dma_buf_hint(self->fd, obuf, st, 0, 1, 0));
		close(obuf);
		close(ofd);
	}
	unbind_tph(obdf);
	ASSERT_LE(0, ofd);

	/* Closing the device revokes its dma-bufs for good... */
	close_bound(self);
	ASSERT_EQ(0, importer_reads(&s));
	EXPECT_EQ(-ENODEV, s.st_ret);
	/* ...and they are no longer the device's, when it is open again. */
	open_bound(_metadata, self);
	EXPECT_EQ(-EINVAL, dma_buf_hint(self->fd, buf, st, 0, 1, 0));
	EXPECT_EQ(0, put(IMPORTER "detach", "1"));
	close(buf);
}

TEST_HARNESS_MAIN
