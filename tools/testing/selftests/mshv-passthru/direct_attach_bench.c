// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark: what it costs to make a guest's RAM reachable by a device,
 * direct attach against device-domain translation, for 1, 4 and 16 GiB of
 * guest RAM, in one run. It prints figures, it does not judge them.
 *
 * For each size the guest partition (simulated /dev/mshv) gets its RAM with
 * MSHV_SET_GUEST_MEMORY, not measured: the guest needs it either way. Then,
 * with the device's cdev on iommufd (as a VMM does):
 *
 *   device-domain  a paging HWPT with the device attached, and the VMM maps
 *                  guest RAM into the IOAS at IOVA = GPA (IOMMU_IOAS_MAP):
 *                  every page reaches the hypervisor's device domain;
 *   direct         a guest partition HWPT (IOMMU_HWPT_DATA_HYPERV_PARTITION)
 *                  on an empty NEST_PARENT paging HWPT, and the device
 *                  attached to it: the guest's SLAT translates, nothing is
 *                  mapped. Allocation and attach are measured.
 *   direct-then-mapped
 *                  direct, and then the VMM maps all guest RAM into the
 *                  parent (Cloud Hypervisor's order): the parent, which no
 *                  device uses in the hypervisor, records the maps in its
 *                  shadow only (the lazy fill).
 *
 * Hypercalls are those the simulated hypervisor received during the
 * measured step (mshv_hvcall/stats, every code). The VM has 4 GiB, so the
 * guest's RAM is one 1 GiB memfd (2M pages when hugetlb has them) mapped
 * once per GiB: the same host pages at each GiB of guest address space.
 * As in a real guest, the GiB below 4 GiB is left out (MMIO, and the MSI
 * window the IOMMU reserves): RAM continues at 4 GiB.
 *
 *   direct_attach_bench BDF [GIB...]       (default 1 4 16)
 *
 *   bench direct-attach 4 GiB device-domain: hypercalls 2069, 812.3 ms
 *   bench direct-attach 4 GiB direct: hypercalls 2, 0.4 ms
 *   bench direct-attach 4 GiB ratio: time 2030.7x, hypercalls 1034.5x
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/mshv.h>
#include <linux/vfio.h>

#include "vfio_cdev.h"
#include "../../../../include/uapi/linux/hyperv_iommu_root.h"

#define HV_STATS	"/sys/kernel/debug/mshv_hvcall/stats"
#define GIB		(1024ULL * 1024 * 1024)
#define PT_FLAGS_V2	0xfull

#ifndef MFD_HUGE_2MB
/* include/uapi/linux/memfd.h: log2(2M) << MFD_HUGE_SHIFT. */
#define MFD_HUGE_2MB	(21U << 26)
#endif

/* Guest address of GiB @i of RAM: 0-3 GiB, then from 4 GiB on. */
static __u64 gib_gpa(unsigned int i)
{
	return (i < 3 ? i : i + 1) * GIB;
}

/* Hypercalls the simulated hypervisor has received, every code. */
static unsigned long hypercalls(void)
{
	unsigned long n = 0, c;
	char line[160];
	FILE *f = fopen(HV_STATS, "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s calls=%lu", &c) == 1)
			n += c;
	if (f)
		fclose(f);
	return n;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int die(const char *what)
{
	fprintf(stderr, "direct_attach_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct vmm {
	int mshv, pt, bridge, iommufd, dev;
	__u32 dev_id, ioas;
	void **gib;	/* the memfd mapped once per GiB of guest RAM */
	unsigned int gibs;
};

static __u32 hwpt(struct vmm *v, __u32 pt, __u32 flags, __u32 type,
		  const void *data, __u32 len)
{
	struct iommu_hwpt_alloc a = {
		.size = sizeof(a), .flags = flags, .dev_id = v->dev_id, .pt_id = pt,
		.data_type = type, .data_len = len, .data_uptr = (__u64)(uintptr_t)data,
	};

	if (ioctl(v->iommufd, IOMMU_HWPT_ALLOC, &a))
		die("IOMMU_HWPT_ALLOC");
	return a.out_hwpt_id;
}

static void attach(struct vmm *v, __u32 pt)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = pt };

	if (ioctl(v->dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
}

/* Partition with @gibs GiB of RAM from @memfd, a bridge, the device on a new iommufd. */
static void vmm_start(struct vmm *v, const char *bdf, int memfd, unsigned int gibs)
{
	struct mshv_create_partition_v2 cp = {
		.pt_flags = PT_FLAGS_V2, .pt_num_cpu_fbanks = MSHV_NUM_CPU_FEATURES_BANKS,
	};
	struct mshv_create_device cd = { .type = MSHV_DEV_TYPE_VFIO };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	unsigned int i;

	v->gibs = gibs;
	v->mshv = open("/dev/mshv", O_RDWR);
	if (v->mshv < 0)
		die("/dev/mshv");
	v->pt = ioctl(v->mshv, MSHV_CREATE_PARTITION, &cp);
	if (v->pt < 0)
		die("MSHV_CREATE_PARTITION");
	v->gib = calloc(gibs, sizeof(*v->gib));
	if (!v->gib)
		die("calloc");
	for (i = 0; i < gibs; i++) {
		struct mshv_user_mem_region m = {
			.size = GIB, .guest_pfn = gib_gpa(i) >> 12,
			.flags = 1 << MSHV_SET_MEM_BIT_WRITABLE,
		};

		v->gib[i] = mmap(NULL, GIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
				 memfd, 0);
		if (v->gib[i] == MAP_FAILED)
			die("mmap of guest RAM");
		m.userspace_addr = (__u64)(uintptr_t)v->gib[i];
		if (ioctl(v->pt, MSHV_SET_GUEST_MEMORY, &m))
			die("MSHV_SET_GUEST_MEMORY");
	}
	if (ioctl(v->pt, MSHV_CREATE_DEVICE, &cd))
		die("MSHV_CREATE_DEVICE");
	v->bridge = cd.fd;
	v->iommufd = open("/dev/iommu", O_RDWR);
	v->dev = vfio_cdev_open(bdf);
	if (v->iommufd < 0 || v->dev < 0)
		die("/dev/iommu or the device's cdev");
	bind.iommufd = v->iommufd;
	if (ioctl(v->dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(v->iommufd, IOMMU_IOAS_ALLOC, &ioas))
		die("bind or IOAS");
	v->dev_id = bind.out_devid;
	v->ioas = ioas.out_ioas_id;
}

static void vmm_stop(struct vmm *v)
{
	unsigned int i;

	close(v->dev);
	close(v->iommufd);
	close(v->bridge);
	close(v->pt);
	close(v->mshv);
	for (i = 0; i < v->gibs; i++)
		munmap(v->gib[i], GIB);
	free(v->gib);
}

/* The VMM maps all guest RAM into its IOAS at IOVA = GPA. */
static void map_all(struct vmm *v, unsigned int gibs)
{
	unsigned int i;

	for (i = 0; i < gibs; i++) {
		struct iommu_ioas_map m = {
			.size = sizeof(m),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				 IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = v->ioas, .user_va = (__u64)(uintptr_t)v->gib[i],
			.length = GIB, .iova = gib_gpa(i),
		};

		if (ioctl(v->iommufd, IOMMU_IOAS_MAP, &m))
			die("IOMMU_IOAS_MAP");
	}
}

/* Device-domain translation: the VMM maps all guest RAM into the device's IOAS. */
static void device_domain(const char *bdf, int memfd, unsigned int gibs,
			  unsigned long *calls, double *ms)
{
	struct vmm v;
	unsigned long c0;
	double t0;

	vmm_start(&v, bdf, memfd, gibs);
	attach(&v, hwpt(&v, v.ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0));
	c0 = hypercalls();
	t0 = now_ms();
	map_all(&v, gibs);
	*ms = now_ms() - t0;
	*calls = hypercalls() - c0;
	vmm_stop(&v);
}

/*
 * Direct attach: a guest partition HWPT on an empty parent, the device
 * attached to it; with @map, the VMM then maps all guest RAM into the
 * parent (measured too), as Cloud Hypervisor does after handing the device
 * to the bridge.
 */
static void direct(const char *bdf, int memfd, unsigned int gibs, int map,
		   unsigned long *calls, double *ms)
{
	struct iommu_hwpt_hyperv_partition d = { 0 };
	__u32 parent, n;
	struct vmm v;
	unsigned long c0;
	double t0;

	vmm_start(&v, bdf, memfd, gibs);
	parent = hwpt(&v, v.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_NONE, NULL, 0);
	attach(&v, parent);
	d.fd = v.bridge;
	c0 = hypercalls();
	t0 = now_ms();
	n = hwpt(&v, parent, 0, IOMMU_HWPT_DATA_HYPERV_PARTITION, &d, sizeof(d));
	attach(&v, n);
	if (map)
		map_all(&v, gibs);
	*ms = now_ms() - t0;
	*calls = hypercalls() - c0;
	vmm_stop(&v);
}

int main(int argc, char **argv)
{
	static const unsigned int sizes[] = { 1, 4, 16 };
	unsigned int n = argc > 2 ? argc - 2 : 3, i;
	const char *bdf = argc > 1 ? argv[1] : NULL;
	int memfd;

	if (!bdf) {
		fprintf(stderr, "usage: direct_attach_bench BDF [GIB...]\n");
		return 2;
	}
	memfd = memfd_create("guest-ram", MFD_HUGETLB | MFD_HUGE_2MB);
	if (memfd < 0 || ftruncate(memfd, GIB)) {
		if (memfd >= 0)
			close(memfd);
		memfd = memfd_create("guest-ram", 0);
		if (memfd < 0 || ftruncate(memfd, GIB))
			die("memfd of 1 GiB");
		printf("bench direct-attach: guest RAM in 4K pages\n");
	} else {
		printf("bench direct-attach: guest RAM in 2M pages\n");
	}
	for (i = 0; i < n; i++) {
		unsigned int gibs = argc > 2 ? strtoul(argv[i + 2], NULL, 10) : sizes[i];
		unsigned long dc, xc, mc;
		double dt, xt, mt;

		device_domain(bdf, memfd, gibs, &dc, &dt);
		direct(bdf, memfd, gibs, 0, &xc, &xt);
		direct(bdf, memfd, gibs, 1, &mc, &mt);
		printf("bench direct-attach %u GiB device-domain: hypercalls %lu, %.1f ms\n",
		       gibs, dc, dt);
		printf("bench direct-attach %u GiB direct: hypercalls %lu, %.1f ms\n",
		       gibs, xc, xt);
		printf("bench direct-attach %u GiB ratio: time %.1fx, hypercalls %.1fx\n",
		       gibs, xt > 0 ? dt / xt : 0, xc ? (double)dc / xc : 0);
		printf("bench direct-attach %u GiB direct-then-mapped: hypercalls %lu, %.1f ms\n",
		       gibs, mc, mt);
		printf("bench direct-attach %u GiB ratio mapped: time %.1fx, hypercalls %.1fx\n",
		       gibs, mt > 0 ? dt / mt : 0, mc ? (double)dc / mc : 0);
		fflush(stdout);
	}
	close(memfd);
	return 0;
}
