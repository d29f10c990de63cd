// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark: IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP throughput of a large
 * buffer into an IOAS that has iommufd's in-kernel mock domain attached
 * (CONFIG_IOMMUFD_TEST). This is the reference the project's own paging
 * domain is compared with; it prints figures, it does not judge them.
 *
 *   ioas_map_bench [-s MiB] [-i ITERATIONS]
 *
 * For 4K pages (THP disabled on the buffer) and, when hugetlb 2M pages are
 * reserved, for 2M pages, it
 * prints one line per operation:
 *
 *   bench mock-domain 4K map: 1024 MiB in 123.4 ms = 8.10 GiB/s (best of 3)
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

#include "iommufd_test.h"

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

static void report(const char *pg, const char *op, size_t len, double ms, int iters)
{
	printf("bench mock-domain %s %s: %zu MiB in %.1f ms = %.2f GiB/s (best of %d)\n",
	       pg, op, len >> 20, ms, (len / (double)(1 << 30)) / (ms / 1e3), iters);
}

static int run(const char *pg, size_t len, int mmap_flags, int iters)
{
	double best_map = 1e12, best_unmap = 1e12, t;
	uint32_t ioas_id = 0;
	uint64_t iova = 0;
	void *buf;
	int fd, rc, i;

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
	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0) {
		printf("# /dev/iommu: %s\n", strerror(errno));
		return 1;
	}
	rc = ioas_alloc(fd, &ioas_id);
	if (!rc)
		rc = mock_domain(fd, ioas_id);
	if (rc) {
		printf("# mock domain: %s (CONFIG_IOMMUFD_TEST?)\n", strerror(-rc));
		return 1;
	}
	for (i = 0; i < iters; i++) {
		t = now_ms();
		rc = ioas_map(fd, ioas_id, buf, len, &iova);
		if (rc) {
			printf("# IOMMU_IOAS_MAP: %s\n", strerror(-rc));
			return 1;
		}
		t = now_ms() - t;
		best_map = t < best_map ? t : best_map;
		t = now_ms();
		rc = ioas_unmap(fd, ioas_id, iova, len);
		if (rc) {
			printf("# IOMMU_IOAS_UNMAP: %s\n", strerror(-rc));
			return 1;
		}
		t = now_ms() - t;
		best_unmap = t < best_unmap ? t : best_unmap;
	}
	report(pg, "map", len, best_map, iters);
	report(pg, "unmap", len, best_unmap, iters);
	close(fd);
	munmap(buf, len);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib = 1024;
	int iters = 3, opt, rc;

	while ((opt = getopt(argc, argv, "s:i:")) != -1) {
		switch (opt) {
		case 's':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 'i':
			iters = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-s MiB] [-i iterations]\n", argv[0]);
			return 2;
		}
	}
	if (!mib || iters < 1)
		return 2;
	rc = run("4K", mib << 20, 0, iters);
	rc |= run("2M", mib << 20, MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), iters);
	return rc;
}
