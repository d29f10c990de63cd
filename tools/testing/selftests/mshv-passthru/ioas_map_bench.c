// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark: IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP throughput of a large
 * buffer into an IOAS that has iommufd's in-kernel mock domain attached
 * (CONFIG_IOMMUFD_TEST), the reference, and with -d into an IOAS that a PCI
 * function owned by hyperv-iommu-root is attached to (bound to vfio-pci; the
 * VFIO device cdev, as a VMM does), so through our paging domain and the
 * hypercalls. It prints figures, it does not judge them.
 *
 *   ioas_map_bench [-s MiB] [-i ITERATIONS] [-d BDF]
 *
 * For 4K pages (THP disabled on the buffer) and, when hugetlb 2M pages are
 * reserved, for 2M pages, it prints one line per domain and operation:
 *
 *   bench mock-domain 4K map: 1024 MiB in 123.4 ms = 8.10 GiB/s (best of 3)
 *
 * and for our domain, from the best iteration, the hypercalls the hypervisor
 * received (mshv_hvcall/stats) against two minimums: what the IOMMU core's
 * requests allow (hyperv_iommu_root/stats: one request per physically
 * contiguous chunk, each complete before it returns) and ceil(pages / 507)
 * for MAP, ceil(pages / 4095) for UNMAP over the whole buffer; and how much
 * of that iteration's ioctl was spent inside the simulated hypervisor
 * (mshv_hvcall/stats ns=), the rest being iommufd's and the driver's own:
 *
 *   bench hv-domain 4K map hypercalls: 262144 (retried 0), request minimum 262144, ceil 518
 *   bench hv-domain 4K map time: ioctl 900.1 ms, simulated hypervisor 300.3 ms
 */
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
#include <linux/vfio.h>

#include "iommufd_test.h"
#include "vfio_cdev.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int ioas_alloc(int fd, uint32_t *ioas_id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	if (ioctl(fd, IOMMU_IOAS_ALLOC, &cmd))
		return -errno;
	*ioas_id = cmd.out_ioas_id;
	return 0;
}

#define HV_STATS "/sys/kernel/debug/mshv_hvcall/stats"
#define DRV_STATS "/sys/kernel/debug/hyperv_iommu_root/stats"

struct calls {
	/* mshv_hvcall/stats of one code: calls, failed calls, ns in the simulator. */
	unsigned long calls, failed, sim_ns;
	/* hyperv_iommu_root/stats of one op: minimum hypercalls. */
	unsigned long min;
};

/* One hypercall code's line of mshv_hvcall/stats. */
static void hv_calls(int code, struct calls *c)
{
	char line[128], key[16];
	FILE *f = fopen(HV_STATS, "r");

	c->calls = 0;
	c->failed = 0;
	c->sim_ns = 0;
	snprintf(key, sizeof(key), "%#06x ", code);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			sscanf(line + strlen(key), "calls=%lu %*s failed=%lu ns=%lu",
			       &c->calls, &c->failed, &c->sim_ns);
	if (f)
		fclose(f);
}

/* hyperv_iommu_root/stats: the requests of @op. */
static void req_stats(const char *op, struct calls *c)
{
	char line[128], key[32];
	FILE *f = fopen(DRV_STATS, "r");

	c->min = 0;
	snprintf(key, sizeof(key), "%s requests=", op);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			sscanf(line, "%*s %*s %*s min_hypercalls=%lu", &c->min);
	if (f)
		fclose(f);
}

static void snap(int code, const char *op, struct calls *c)
{
	hv_calls(code, c);
	req_stats(op, c);
}

/* b - a, field by field. */
static struct calls delta(const struct calls *a, const struct calls *b)
{
	return (struct calls){
		.calls = b->calls - a->calls,
		.failed = b->failed - a->failed,
		.sim_ns = b->sim_ns - a->sim_ns,
		.min = b->min - a->min,
	};
}

static void report_calls(const char *pg, const char *op, const struct calls *d,
			 unsigned long ceil_min, double ioctl_ms)
{
	printf("bench hv-domain %s %s hypercalls: %lu (retried %lu), ", pg, op,
	       d->calls, d->failed);
	printf("request minimum %lu, ceil %lu\n", d->min, ceil_min);
	printf("bench hv-domain %s %s time: ioctl %.1f ms, simulated hypervisor %.1f ms\n",
	       pg, op, ioctl_ms, d->sim_ns / 1e6);
}

/* Attaches the VFIO device @bdf (bound to vfio-pci) to the IOAS. */
static int hv_domain(int fd, uint32_t ioas_id, const char *bdf, int *devfd)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };

	*devfd = vfio_cdev_open(bdf);
	if (*devfd < 0)
		return -errno;
	bind.iommufd = fd;
	if (ioctl(*devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	at.pt_id = ioas_id;
	return ioctl(*devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) ? -errno : 0;
}

static int mock_domain(int fd, uint32_t ioas_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = ioas_id,
	};

	if (ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return -errno;
	return 0;
}

/* The kernel picks the IOVA (inside the domain's aperture). */
static int ioas_map(int fd, uint32_t ioas_id, void *buf, size_t len, uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)buf,
		.length = len,
	};

	if (ioctl(fd, IOMMU_IOAS_MAP, &cmd))
		return -errno;
	*iova = cmd.iova;
	return 0;
}

static int ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova, size_t len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = len,
	};

	return ioctl(fd, IOMMU_IOAS_UNMAP, &cmd) ? -errno : 0;
}

static void report(const char *dom, const char *pg, const char *op, size_t len,
		   double ms, int iters)
{
	printf("bench %s %s %s: %zu MiB in %.1f ms = %.2f GiB/s (best of %d)\n",
	       dom, pg, op, len >> 20, ms, (len / (double)(1 << 30)) / (ms / 1e3), iters);
}

/* Maps and unmaps @buf @iters times into an IOAS with @bdf's or a mock domain. */
static int run_domain(const char *pg, void *buf, size_t len, int iters, const char *bdf)
{
	const char *dom = bdf ? "hv-domain" : "mock-domain";
	double best_map = 1e12, best_unmap = 1e12, t;
	struct calls m0, m1, u0, u1, dm = {}, du = {};
	uint32_t ioas_id = 0;
	uint64_t iova = 0;
	int fd, devfd = -1, rc, i;

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0) {
		printf("# /dev/iommu: %s\n", strerror(errno));
		return 1;
	}
	rc = ioas_alloc(fd, &ioas_id);
	if (!rc)
		rc = bdf ? hv_domain(fd, ioas_id, bdf, &devfd) : mock_domain(fd, ioas_id);
	if (rc) {
		printf("# %s: %s\n", dom, strerror(-rc));
		return 1;
	}
	for (i = 0; i < iters; i++) {
		snap(0xb3, "map", &m0);
		t = now_ms();
		rc = ioas_map(fd, ioas_id, buf, len, &iova);
		if (rc) {
			printf("# IOMMU_IOAS_MAP: %s\n", strerror(-rc));
			return 1;
		}
		t = now_ms() - t;
		snap(0xb3, "map", &m1);
		if (t < best_map) {
			best_map = t;
			dm = delta(&m0, &m1);
		}
		snap(0xb4, "unmap", &u0);
		t = now_ms();
		rc = ioas_unmap(fd, ioas_id, iova, len);
		if (rc) {
			printf("# IOMMU_IOAS_UNMAP: %s\n", strerror(-rc));
			return 1;
		}
		t = now_ms() - t;
		snap(0xb4, "unmap", &u1);
		if (t < best_unmap) {
			best_unmap = t;
			du = delta(&u0, &u1);
		}
	}
	report(dom, pg, "map", len, best_map, iters);
	report(dom, pg, "unmap", len, best_unmap, iters);
	if (bdf) {
		report_calls(pg, "map", &dm, (len / 4096 + 506) / 507, best_map);
		report_calls(pg, "unmap", &du, (len / 4096 + 4094) / 4095, best_unmap);
	}
	if (devfd >= 0)
		close(devfd);
	close(fd);
	return 0;
}

static int run(const char *pg, size_t len, int mmap_flags, int iters, const char *bdf)
{
	void *buf;
	int rc;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | mmap_flags, -1, 0);
	if (buf == MAP_FAILED) {
		printf("# %s: no buffer (%s), skipped\n", pg, strerror(errno));
		return 0;
	}
	/* Without this THP would back the "4K" buffer with 2M folios. */
	if (!(mmap_flags & MAP_HUGETLB) && madvise(buf, len, MADV_NOHUGEPAGE))
		printf("# MADV_NOHUGEPAGE: %s\n", strerror(errno));
	memset(buf, 1, len);
	/* The same pinned-once buffer for both, reference first. */
	rc = run_domain(pg, buf, len, iters, NULL);
	if (!rc && bdf)
		rc = run_domain(pg, buf, len, iters, bdf);
	munmap(buf, len);
	return rc;
}

int main(int argc, char **argv)
{
	size_t mib = 1024;
	const char *bdf = NULL;
	int iters = 3, opt, rc;

	while ((opt = getopt(argc, argv, "s:i:d:")) != -1) {
		switch (opt) {
		case 's':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 'i':
			iters = atoi(optarg);
			break;
		case 'd':
			bdf = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-s MiB] [-i iterations] [-d BDF]\n", argv[0]);
			return 2;
		}
	}
	if (!mib || iters < 1)
		return 2;
	rc = run("4K", mib << 20, 0, iters, bdf);
	rc |= run("2M", mib << 20, MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), iters, bdf);
	return rc;
}
