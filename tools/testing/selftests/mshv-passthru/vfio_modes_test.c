// SPDX-License-Identifier: GPL-2.0
/*
 * In every IOMMU mode a VMM can use (VFIO type1 and type1v2 containers, the
 * same through iommufd's compat container /dev/iommu, and iommufd with the
 * device cdev), the simulated hypervisor holds exactly the pages user space
 * mapped, page by page against /proc/self/pagemap with the protection asked
 * for, after map, after a partial unmap and after the full unmap; closing
 * the files leaves no domain and puts the device back in the default domain.
 *
 * The upstream vfio_dma_mapping_test checks mappings only through
 * intel-iommu's debugfs, so on this driver it verifies no PFN in the type1
 * modes; this test is that check for hyperv-iommu-root.
 *
 * Booted without interrupt remapping, VFIO and iommufd refuse to work unless
 * allow_unsafe_interrupts is set (the VM runs with it). With both parameters
 * N, the mode tests skip and interrupt_remapping_is_required shows what a
 * root administrator sees until the project maps device interrupts (Part
 * II): every mode is refused with EPERM and nothing is left behind.
 *
 * Needs: mshv_hvcall simulate=1, hyperv_iommu_root, VFIO_SELFTESTS_BDF bound
 * to vfio-pci (with every function of its IOMMU group), root.
 */

#include "kselftest_harness.h"
#include "hv_sim.h"

#define UNSAFE_TYPE1	"/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"
#define UNSAFE_IOMMUFD	"/sys/module/iommufd/parameters/allow_unsafe_interrupts"

/* Whether both VFIO type1 and iommufd accept devices without MSI isolation. */
static int unsafe_interrupts_allowed(void)
{
	char *a = slurp(UNSAFE_TYPE1), *b = slurp(UNSAFE_IOMMUFD);
	int yes = a && b && a[0] == 'Y' && b[0] == 'Y';

	free(a);
	free(b);
	return yes;
}

FIXTURE(modes) {
	int container, group, iommufd, dev;
	uint32_t ioas;
	long domain;
	char devid[24];
};

FIXTURE_VARIANT(modes) {
	/* Container device (NULL: iommufd with the device cdev). */
	const char *container;
	int type;
};

FIXTURE_VARIANT_ADD(modes, type1) {
	.container = "/dev/vfio/vfio",
	.type = VFIO_TYPE1_IOMMU,
};

FIXTURE_VARIANT_ADD(modes, type1v2) {
	.container = "/dev/vfio/vfio",
	.type = VFIO_TYPE1v2_IOMMU,
};

FIXTURE_VARIANT_ADD(modes, iommufd_compat_type1) {
	.container = "/dev/iommu",
	.type = VFIO_TYPE1_IOMMU,
};

FIXTURE_VARIANT_ADD(modes, iommufd_compat_type1v2) {
	.container = "/dev/iommu",
	.type = VFIO_TYPE1v2_IOMMU,
};

FIXTURE_VARIANT_ADD(modes, iommufd) {
	.container = NULL,
};

/* /dev/vfio/N of @bdf's IOMMU group; -1 on error. */
FIXTURE_SETUP(modes)
{
	const char *bdf = getenv("VFIO_SELFTESTS_BDF");
	unsigned int seg, bus, dev, fn;
	uint32_t dev_id;

	self->container = -1;
	self->group = -1;
	self->iommufd = -1;
	self->dev = -1;
	if (!bdf || sscanf(bdf, "%x:%x:%x.%x", &seg, &bus, &dev, &fn) != 4)
		SKIP(return, "VFIO_SELFTESTS_BDF (a function bound to vfio-pci) not set");
	if (access(CONTROL, W_OK))
		SKIP(return, "needs mshv_hvcall simulate=1 and hyperv_iommu_root");
	if (!unsafe_interrupts_allowed())
		SKIP(return, "allow_unsafe_interrupts=N (see interrupt_remapping_is_required)");
	ASSERT_EQ(0, ctl("fault-clear"));
	ASSERT_EQ(0, pci_devid(seg, bus, dev, fn, self->devid, sizeof(self->devid)));
	ASSERT_EQ(-1, where(self->devid));
	if (!variant->container) {
		ASSERT_EQ(0, open_attached(bdf, &self->iommufd, &self->dev, &dev_id,
					   &self->ioas));
	} else {
		self->group = vfio_group_open(bdf);
		ASSERT_LE(0, self->group);
		self->container = open(variant->container, O_RDWR);
		ASSERT_LE(0, self->container);
		ASSERT_EQ(0, ioctl(self->group, VFIO_GROUP_SET_CONTAINER, &self->container));
		ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, variant->type));
		/* As a VMM does; iommufd's compat container binds the device here. */
		self->dev = ioctl(self->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
		ASSERT_LE(0, self->dev);
	}
	self->domain = where(self->devid);
	ASSERT_LT(0, self->domain);
}

FIXTURE_TEARDOWN(modes)
{
	if (self->dev >= 0)
		close(self->dev);
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);
	if (self->iommufd >= 0)
		close(self->iommufd);
}

static int map(struct _test_data_modes *self, const struct range *r)
{
	if (self->container < 0) {
		struct iommu_ioas_map m = {
			.size = sizeof(m),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				 (r->writable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
			.ioas_id = self->ioas,
			.user_va = (uintptr_t)r->va,
			.length = r->pages * PG,
			.iova = r->iova,
		};

		return ioctl(self->iommufd, IOMMU_IOAS_MAP, &m) ? -errno : 0;
	}
	{
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m),
			.flags = VFIO_DMA_MAP_FLAG_READ |
				 (r->writable ? VFIO_DMA_MAP_FLAG_WRITE : 0),
			.vaddr = (uintptr_t)r->va,
			.iova = r->iova,
			.size = r->pages * PG,
		};

		return ioctl(self->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
	}
}

static int unmap(struct _test_data_modes *self, const struct range *r)
{
	if (self->container < 0) {
		struct iommu_ioas_unmap u = {
			.size = sizeof(u),
			.ioas_id = self->ioas,
			.iova = r->iova,
			.length = r->pages * PG,
		};

		return ioctl(self->iommufd, IOMMU_IOAS_UNMAP, &u) ? -errno : 0;
	}
	{
		struct vfio_iommu_type1_dma_unmap u = {
			.argsz = sizeof(u),
			.iova = r->iova,
			.size = r->pages * PG,
		};

		return ioctl(self->container, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
	}
}

/*
 * Three mappings (64 KiB and 2 MiB writable, 4 pages read-only, one near
 * the top of the 48-bit aperture); the middle one unmapped; then the rest.
 * After each step the hypervisor's pages equal user space's.
 */
TEST_F(modes, hypervisor_holds_exactly_what_user_space_mapped)
{
	void *a = buffer(64 << 10, 0), *b = buffer(2 << 20, 0), *c = buffer(4 * PG, 0);
	struct range r[3];

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	r[0] = (struct range){ 0x100000, a, 16, 1 };
	r[1] = (struct range){ 0x40000000, b, 512, 1 };
	r[2] = (struct range){ 0x7fff0000000, c, 4, 0 };
	ASSERT_EQ(0, compare(self->domain, r, 0));
	ASSERT_EQ(0, map(self, &r[0]));
	ASSERT_EQ(0, compare(self->domain, r, 1));
	ASSERT_EQ(0, map(self, &r[1]));
	ASSERT_EQ(0, map(self, &r[2]));
	ASSERT_EQ(0, compare(self->domain, r, 3));
	ASSERT_EQ(0, unmap(self, &r[1]));
	r[1] = r[2];
	ASSERT_EQ(0, compare(self->domain, r, 2));
	ASSERT_EQ(0, unmap(self, &r[0]));
	ASSERT_EQ(0, unmap(self, &r[1]));
	ASSERT_EQ(0, compare(self->domain, r, 0));
	/* Closing everything: no domain left, the device in the default domain. */
	if (self->dev >= 0)
		close(self->dev);
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);
	if (self->iommufd >= 0)
		close(self->iommufd);
	self->container = -1;
	self->group = -1;
	self->iommufd = -1;
	self->dev = -1;
	ASSERT_EQ(0, domains(NULL, 0));
	ASSERT_EQ(-1, where(self->devid));
}

/*
 * Without interrupt remapping (the simulator, like Part I of the seed, maps
 * no device interrupt) and with allow_unsafe_interrupts=N, as on a root
 * partition configured safely: VFIO type1 refuses VFIO_SET_IOMMU and
 * iommufd refuses to bind the device, both with EPERM, in every mode; type1
 * attached the group to a fresh domain before it checked, and that domain is
 * gone again.
 */
TEST(interrupt_remapping_is_required)
{
	static const char *const containers[] = { "/dev/vfio/vfio", "/dev/iommu" };
	static const int types[] = { VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	const char *bdf = getenv("VFIO_SELFTESTS_BDF");
	unsigned int seg, bus, dev, fn, i, k;
	char devid[24];
	int group, c, iommufd, cdev, err;

	if (!bdf || sscanf(bdf, "%x:%x:%x.%x", &seg, &bus, &dev, &fn) != 4)
		SKIP(return, "VFIO_SELFTESTS_BDF (a function bound to vfio-pci) not set");
	if (access(CONTROL, W_OK))
		SKIP(return, "needs mshv_hvcall simulate=1 and hyperv_iommu_root");
	if (unsafe_interrupts_allowed())
		SKIP(return, "allow_unsafe_interrupts=Y: the modes run instead");
	ASSERT_EQ(0, pci_devid(seg, bus, dev, fn, devid, sizeof(devid)));
	for (i = 0; i < 2; i++) {
		for (k = 0; k < ARRAY_SIZE(types); k++) {
			const char *what = "VFIO_SET_IOMMU";
			int t = types[k];

			group = vfio_group_open(bdf);
			ASSERT_LE(0, group);
			c = open(containers[i], O_RDWR);
			ASSERT_LE(0, c);
			ASSERT_EQ(0, ioctl(group, VFIO_GROUP_SET_CONTAINER, &c));
			/* type1 refuses VFIO_SET_IOMMU, iommufd the device open. */
			if (ioctl(c, VFIO_SET_IOMMU, t)) {
				err = errno;
			} else {
				what = "VFIO_GROUP_GET_DEVICE_FD";
				cdev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
				err = cdev < 0 ? errno : 0;
				if (cdev >= 0)
					close(cdev);
			}
			printf("# %s, type %d: %s: %s\n", containers[i], t, what, strerror(err));
			ASSERT_EQ(EPERM, err);
			close(group);
			close(c);
			ASSERT_EQ(0, domains(NULL, 0));
			ASSERT_EQ(-1, where(devid));
		}
	}
	iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, iommufd);
	cdev = vfio_cdev_open(bdf);
	ASSERT_LE(0, cdev);
	bind.iommufd = iommufd;
	err = ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, &bind) ? errno : 0;
	printf("# iommufd cdev: VFIO_DEVICE_BIND_IOMMUFD: %s\n", strerror(err));
	ASSERT_EQ(EPERM, err);
	close(cdev);
	close(iommufd);
	ASSERT_EQ(0, domains(NULL, 0));
	ASSERT_EQ(-1, where(devid));
}

TEST_HARNESS_MAIN
