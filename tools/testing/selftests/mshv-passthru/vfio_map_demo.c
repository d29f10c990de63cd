// SPDX-License-Identifier: GPL-2.0
/*
 * The main job's VFIO client: maps and unmaps memory for a PCI function owned
 * by hyperv-iommu-root through iommufd (the VFIO device cdev, as Cloud
 * Hypervisor and QEMU do), and shows what the hypervisor holds at each step
 * (the simulated hypervisor's debugfs dump).
 *
 *   vfio_map_demo BDF
 *
 * The function must be bound to vfio-pci. Exits 0 when every step worked and
 * the hypervisor held exactly the mapping while it existed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "vfio_cdev.h"

#define DUMP "/sys/kernel/debug/mshv_hvcall/dump"
#define IOVA 0x40000000ULL
#define SIZE (2UL << 20)

static int die(const char *what)
{
	fprintf(stderr, "vfio_map_demo: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Prints the simulator's domains and mappings; returns the mapped pages. */
static long show(const char *when)
{
	char line[256];
	long pages = 0, n;
	FILE *f = fopen(DUMP, "r");

	printf("--- hypervisor (simulator) %s:\n", when);
	if (!f) {
		printf("    (no simulator: %s)\n", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "domain ", 7) || !strncmp(line, "  iova=", 7)) {
			printf("    %s", line);
			if (sscanf(line, "domain %*u owner=self mapped=%ld", &n) == 1)
				pages += n;
		}
	}
	fclose(f);
	if (!pages)
		printf("    no pages mapped in any device domain\n");
	return pages;
}

int main(int argc, char **argv)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map map = { .size = sizeof(map) };
	struct iommu_ioas_unmap unmap = { .size = sizeof(unmap) };
	int iommufd, dev, ok = 1;
	long before, during, after;
	void *buf;

	if (argc != 2) {
		fprintf(stderr, "usage: %s BDF (bound to vfio-pci)\n", argv[0]);
		return 4;
	}
	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		return die("open /dev/iommu");
	dev = vfio_cdev_open(argv[1]);
	if (dev < 0)
		return die("open the VFIO device cdev");
	bind.iommufd = iommufd;
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return die("VFIO_DEVICE_BIND_IOMMUFD");
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return die("IOMMU_IOAS_ALLOC");
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	printf("%s: bound to iommufd, attached to IOAS %u\n", argv[1], alloc.out_ioas_id);
	printf("HWPT %u: a paging domain of hyperv-iommu-root\n", attach.pt_id);
	before = show("after attach, before IOMMU_IOAS_MAP");

	buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return die("mmap");
	memset(buf, 0x5a, SIZE);
	map.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
		    IOMMU_IOAS_MAP_WRITEABLE;
	map.ioas_id = alloc.out_ioas_id;
	map.user_va = (uintptr_t)buf;
	map.length = SIZE;
	map.iova = IOVA;
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map))
		return die("IOMMU_IOAS_MAP");
	printf("IOMMU_IOAS_MAP: %lu KiB of user memory at IOVA %#llx\n", SIZE >> 10,
	       (unsigned long long)map.iova);
	during = show("after IOMMU_IOAS_MAP");

	unmap.ioas_id = alloc.out_ioas_id;
	unmap.iova = IOVA;
	unmap.length = SIZE;
	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap))
		return die("IOMMU_IOAS_UNMAP");
	printf("IOMMU_IOAS_UNMAP: %llu KiB\n", (unsigned long long)unmap.length >> 10);
	after = show("after IOMMU_IOAS_UNMAP");

	close(dev);
	close(iommufd);
	munmap(buf, SIZE);
	if (before != 0 || during != (long)(SIZE >> 12) || after != 0) {
		printf("FAIL: the hypervisor held %ld / %ld / %ld pages",
		       before, during, after);
		printf(", expected 0 / %lu / 0\n", SIZE >> 12);
		ok = 0;
	} else {
		printf("ok: the hypervisor held exactly the %lu mapped pages\n", SIZE >> 12);
		printf("ok: and nothing after the unmap\n");
	}
	return ok ? 0 : 1;
}
