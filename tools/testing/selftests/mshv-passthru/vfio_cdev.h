/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VFIO device cdev of a PCI function bound to vfio-pci, for the
 * project's VFIO clients (vfio_map_demo, ioas_map_bench, hv_iommu_test).
 */
#ifndef MSHV_PT_VFIO_CDEV_H
#define MSHV_PT_VFIO_CDEV_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* Opens /dev/vfio/devices/vfioN of @bdf; -1 with errno on failure. */
static inline int vfio_cdev_open(const char *bdf)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4))
			break;
	if (!e) {
		closedir(d);
		errno = ENOENT;
		return -1;
	}
	snprintf(path, sizeof(path), "/dev/vfio/devices/%.64s", e->d_name);
	closedir(d);
	return open(path, O_RDWR);
}

#endif
