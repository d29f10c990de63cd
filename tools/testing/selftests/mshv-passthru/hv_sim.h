/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the project's VFIO test clients read from the simulated hypervisor
 * (mshv_hvcall's debugfs) and how they compare it with user space: device
 * ids, where a device is, the domains, the root pool, and the mappings of a
 * domain page by page against /proc/self/pagemap. Used by hv_iommu_test and
 * vfio_modes_test.
 */
#ifndef MSHV_PT_HV_SIM_H
#define MSHV_PT_HV_SIM_H

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

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define DBG		"/sys/kernel/debug/"
#define DUMP		DBG "mshv_hvcall/dump"
#define CONTROL		DBG "mshv_hvcall/control"
#define HV_STATS	DBG "mshv_hvcall/stats"
#define PCI_IDS		DBG "mshv_hvcall/pci_ids"
#define FAIL_PAGE	DBG "fail_page_alloc/"
#define FAIL_SLAB	DBG "failslab/"
#define PG		4096UL

/* Writes one command to the simulator's control file; 0 or -errno. */
static inline int ctl(const char *cmd)
{
	int fd = open(CONTROL, O_WRONLY), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, cmd, strlen(cmd)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Makes every allocation that cannot sleep (GFP_ATOMIC, GFP_NOWAIT) fail in
 * this task while @on, through the kernel's fault injection (failslab and
 * fail_page_alloc, task-filtered, quiet). 0 or -errno.
 */
static inline int fail_atomic_allocations(int on)
{
	static const char *const dirs[] = { FAIL_PAGE, FAIL_SLAB };
	char path[128];
	unsigned int i;
	int rc = 0;

	for (i = 0; i < 2 && on; i++) {
		static const char *const set[][2] = {
			{ "task-filter", "Y" }, { "ignore-gfp-wait", "Y" },
			{ "verbose", "0" }, { "interval", "1" },
			{ "times", "-1" }, { "probability", "100" },
		};
		unsigned int k;

		for (k = 0; k < ARRAY_SIZE(set) && !rc; k++) {
			snprintf(path, sizeof(path), "%s%s", dirs[i], set[k][0]);
			rc = put(path, set[k][1]);
		}
		if (!rc && i == 0)
			rc = put(FAIL_PAGE "min-order", "0");
	}
	if (!rc)
		rc = put("/proc/thread-self/make-it-fail", on ? "1" : "0");
	return rc;
}

/* The whole of a debugfs file, NUL-terminated; NULL on error. */
static inline char *slurp(const char *path)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	if (!buf)
		return NULL;
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *b = realloc(buf, cap * 2);

			if (!b) {
				n = -1;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[len] = 0;
	return buf;
}

/*
 * The hypervisor device id of function seg:bus:dev.fn from mshv_hvcall's
 * pci_ids (the one definition, DMA aliases included), as "0x%016llx".
 */
static inline int pci_devid(unsigned int seg, unsigned int bus, unsigned int dev,
			    unsigned int fn, char *out, size_t len)
{
	char *d = slurp(PCI_IDS), key[32], *l;
	int rc = -1;

	if (!d)
		return -1;
	snprintf(key, sizeof(key), "%04x:%02x:%02x.%x ", seg, bus, dev, fn);
	l = strstr(d, key);
	if (l && sscanf(l + strlen(key), "%23s", out) == 1 && strlen(out) < len)
		rc = 0;
	free(d);
	return rc;
}

/*
 * Where the hypervisor has device @devid: a domain id, or -1 default,
 * -2 null, -3 detached, -4 a partition, -5 unknown device.
 */
static inline long where(const char *devid)
{
	char *d = slurp(DUMP), *l, key[64];
	long r = -5;

	if (!d)
		return -5;
	snprintf(key, sizeof(key), "device %s ", devid);
	l = strstr(d, key);
	if (l) {
		l += strlen(key);
		if (!strncmp(l, "domain default", 14))
			r = -1;
		else if (!strncmp(l, "domain null", 11))
			r = -2;
		else if (!strncmp(l, "detached", 8))
			r = -3;
		else if (!strncmp(l, "partition", 9))
			r = -4;
		else
			r = strtol(l + 7, NULL, 10);
	}
	free(d);
	return r;
}

/* Number of "domain N" lines and, in @ids (up to @max), their ids. */
static inline int domains(long *ids, int max)
{
	char *d = slurp(DUMP), *l;
	int n = 0;

	if (!d)
		return -1;
	for (l = d; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (!strncmp(l, "domain ", 7)) {
			if (n < max)
				ids[n] = strtol(l + 7, NULL, 10);
			n++;
		}
	}
	free(d);
	return n;
}

/* A field (" used=", " deposited=") of the root partition's pool line. */
static inline long pool_field(const char *field)
{
	char *d = slurp(DUMP), *l;
	long v = -1;

	if (!d)
		return -1;
	l = strstr(d, "partition self pool");
	if (l)
		l = strstr(l, field);
	if (l)
		v = strtol(l + strlen(field), NULL, 10);
	free(d);
	return v;
}

/* Root pool pages in use (page tables, and what the hypervisor consumed). */
static inline long pool_used(void)
{
	return pool_field(" used=");
}

static inline long pool_deposited(void)
{
	return pool_field(" deposited=");
}

/*
 * Checks the simulator's mappings of @domain against user space: @n ranges
 * (iova, va, pages, writable) must be exactly what it holds, each page at the
 * PFN the kernel has for the user page (/proc/self/pagemap), readable, and
 * writable iff the range is. Returns the number of mismatches (0 = equal).
 */
struct range {
	uint64_t iova;
	void *va;
	unsigned long pages;
	int writable;
};

static inline uint64_t user_pfn(int pm, void *va)
{
	uint64_t e;

	if (pread(pm, &e, 8, ((uintptr_t)va / PG) * 8) != 8)
		return 0;
	return (e >> 63) ? (e & ((1ULL << 55) - 1)) : 0;
}

/* The simulator's statistics of hypercall @code. */
struct hv_stat {
	unsigned long calls, reps, failed;
};

/* Reads the statistics of @code into @s: 0, or -1. */
static inline int hv_stat(int code, struct hv_stat *s)
{
	char *d = slurp(HV_STATS), key[16], *l;
	int rc = -1;

	if (!d)
		return -1;
	snprintf(key, sizeof(key), "%#06x ", code);
	l = strstr(d, key);
	if (l && sscanf(l + strlen(key), "calls=%lu reps=%lu failed=%lu",
			&s->calls, &s->reps, &s->failed) == 3)
		rc = 0;
	free(d);
	return rc;
}

/*
 * The table on the dump line that starts with @line and whose page count
 * follows @count (its extent lines are "  @label=..."), against @n user
 * ranges as compare() says.
 */
static inline int compare_table(const char *line, const char *count,
				const char *label, const struct range *r, int n)
{
	char *d = slurp(DUMP), *l, *c, ext[32];
	unsigned long held = 0, want = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY), bad = 0, i;

	if (!d || pm < 0) {
		free(d);
		if (pm >= 0)
			close(pm);
		return -1;
	}
	for (i = 0; i < n; i++)
		want += r[i].pages;
	/* The line that starts with @line. */
	l = d;
	while (l && strncmp(l, line, strlen(line))) {
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	c = l ? strstr(l, count) : NULL;
	if (!c || (strchr(l, '\n') && c > strchr(l, '\n'))) {
		printf("# no \"%s\" with \"%s\" in the simulator's dump\n", line, count);
		bad++;
		goto out;
	}
	held = strtoul(c + strlen(count), NULL, 10);
	if (held != want) {
		printf("# %s: holds %lu pages, user space mapped %lu\n", line, held, want);
		bad++;
	}
	/* Each extent line: every page must lie in a user range, at its PFN. */
	snprintf(ext, sizeof(ext), "  %s=", label);
	for (l = strchr(l, '\n'); l && !strncmp(l + 1, ext, strlen(ext));
	     l = strchr(l + 1, '\n')) {
		unsigned long long iova, pfn, pages, flags, k;

		if (sscanf(l + 1 + strlen(ext), "%llx pfn=%llx pages=%llu flags=%llx",
			   &iova, &pfn, &pages, &flags) != 4) {
			bad++;
			break;
		}
		for (k = 0; k < pages; k++) {
			uint64_t a = iova + k * PG;

			for (i = 0; i < n; i++)
				if (a >= r[i].iova && a < r[i].iova + r[i].pages * PG)
					break;
			if (i == n) {
				printf("# %s %#llx mapped, not by user space\n", label,
				       (unsigned long long)a);
				bad++;
				continue;
			}
			if (user_pfn(pm, (char *)r[i].va + (a - r[i].iova)) != pfn + k ||
			    flags != (r[i].writable ? 0x3ULL : 0x1ULL)) {
				printf("# %s %#llx: pfn %#llx flags %#llx, not user space's\n",
				       label, (unsigned long long)a, pfn + k, flags);
				bad++;
			}
		}
	}
out:
	free(d);
	close(pm);
	return bad;
}

static inline int compare(long domain, const struct range *r, int n)
{
	char line[64];

	snprintf(line, sizeof(line), "domain %ld owner=self ", domain);
	return compare_table(line, "mapped=", "iova", r, n);
}

/*
 * The SLAT of guest partition @partition against user space: what the
 * simulated /dev/mshv's MSHV_SET_GUEST_MEMORY mapped, guest address (in
 * r->iova) to the user page's PFN.
 */
static inline int compare_guest(long long partition, const struct range *r, int n)
{
	char line[64];

	snprintf(line, sizeof(line), "partition %lld pool ", partition);
	return compare_table(line, " slat=", "gpa", r, n);
}

/*
 * Opens /dev/iommu and the device's cdev, binds them, and attaches the
 * device to a new IOAS (iommufd allocates a paging domain for it). 0 or
 * -errno; on error nothing stays open.
 */
static inline int open_attached(const char *bdf, int *iommufd, int *dev,
				uint32_t *dev_id, uint32_t *ioas_id)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	int rc = 0;

	*iommufd = open("/dev/iommu", O_RDWR);
	if (*iommufd < 0)
		return -errno;
	*dev = vfio_cdev_open(bdf);
	if (*dev < 0) {
		rc = -ENODEV;
		goto close_iommufd;
	}
	bind.iommufd = *iommufd;
	if (ioctl(*dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(*iommufd, IOMMU_IOAS_ALLOC, &ioas)) {
		rc = -errno;
		goto close_dev;
	}
	*dev_id = bind.out_devid;
	*ioas_id = ioas.out_ioas_id;
	at.pt_id = *ioas_id;
	if (ioctl(*dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		rc = -errno;
		goto close_dev;
	}
	return 0;
close_dev:
	close(*dev);
close_iommufd:
	close(*iommufd);
	*dev = -1;
	*iommufd = -1;
	return rc;
}

/* @len bytes of private anonymous memory (@flags: e.g. MAP_HUGETLB), touched. */
static inline void *buffer(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0xa5, len);
	return p;
}

#endif
