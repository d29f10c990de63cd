/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VFIO device cdev and group of a PCI function bound to vfio-pci (or a
 * variant), and sysfs writes, for the project's VFIO clients (vfio_map_demo,
 * ioas_map_bench, hv_iommu_test, vfio_modes_test, mshv_vfio_test,
 * vfio_tph_test).
 */
#ifndef MSHV_PT_VFIO_CDEV_H
#define MSHV_PT_VFIO_CDEV_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Writes @val to the file @path; 0 or -errno. */
static inline int put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Opens /dev/vfio/devices/vfioN (noiommu-vfioN without an IOMMU) of @bdf; -1
 * with errno on failure.
 */
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
		if (!strncmp(e->d_name, "vfio", 4) ||
		    !strncmp(e->d_name, "noiommu-vfio", 12))
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

/*
 * Opens /dev/vfio/N, the group of @bdf; -1 with errno on failure (EBUSY
 * while another file of the group is open: a group is exclusive).
 */
static inline int vfio_group_open(const char *bdf)
{
	char link[PATH_MAX], target[PATH_MAX], path[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = 0;
	snprintf(path, sizeof(path), "/dev/vfio/%s", basename(target));
	return open(path, O_RDWR);
}

#endif
