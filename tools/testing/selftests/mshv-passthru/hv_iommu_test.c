// SPDX-License-Identifier: GPL-2.0
/*
 * hyperv-iommu-root on the simulated hypervisor, through the uAPI a VMM uses
 * (the VFIO device cdev bound to iommufd). Every test compares what user space
 * did with what the hypervisor holds (mshv_hvcall's debugfs dump and stats),
 * and ends by checking that closing the files left no domain and no
 * page-table page behind.
 *
 * Needs: mshv_hvcall loaded with simulate=1, hyperv_iommu_root loaded, the
 * PCI function VFIO_SELFTESTS_BDF bound to vfio-pci, root (pagemap PFNs).
 * domain_id_exhaustion runs only with hv_iommu_max_domains <= 64, and
 * unmap_more_than_4095_pages only with 2M hugetlb pages reserved.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "hv_sim.h"

#define DRV_STATS	DBG "hyperv_iommu_root/stats"
#define MAX_DOMAINS	"/sys/module/hyperv_iommu_root/parameters/hv_iommu_max_domains"

#define CODE_DEPOSIT	0x0048
#define CODE_ATTACH	0x00b2
#define CODE_MAP	0x00b3
#define CODE_UNMAP	0x00b4
#define CODE_DETACH	0x00c4
#define CODE_DELETE	0x00c5
#define RELEASE		DBG "hyperv_iommu_root/release"
/* HV_STATUS_ACCESS_DENIED: the layer returns -EACCES for it. */
#define ST_DENIED	0x6

struct drv_stat {
	unsigned long requests, pages, min;
};

/* hyperv_iommu_root/stats line @op ("map" or "unmap"). */
static int drv_stat(const char *op, struct drv_stat *s)
{
	char *d = slurp(DRV_STATS), key[16], *l;
	int rc = -1;

	if (!d)
		return -1;
	snprintf(key, sizeof(key), "%s requests=", op);
	for (l = d; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, key, strlen(key)) &&
		    sscanf(l + strlen(key), "%lu pages=%lu min_hypercalls=%lu",
			   &s->requests, &s->pages, &s->min) == 3)
			rc = 0;
	free(d);
	return rc;
}

static int ioas_map(int fd, uint32_t ioas, void *va, size_t len, uint64_t iova,
		    int writable)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 (writable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &m) ? -errno : 0;
}

static int ioas_unmap(int fd, uint32_t ioas, uint64_t iova, size_t len)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	return ioctl(fd, IOMMU_IOAS_UNMAP, &u) ? -errno : 0;
}

static int hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t *out)
{
	struct iommu_hwpt_alloc a = {
		.size = sizeof(a),
		.dev_id = dev_id,
		.pt_id = pt_id,
	};

	if (ioctl(fd, IOMMU_HWPT_ALLOC, &a))
		return -errno;
	*out = a.out_hwpt_id;
	return 0;
}

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &d) ? -errno : 0;
}

static int attach_pt(int dev, uint32_t pt)
{
	struct vfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a),
		.pt_id = pt,
	};

	return ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a) ? -errno : 0;
}

FIXTURE(hviommu) {
	int iommufd, dev;
	uint32_t dev_id, ioas;
	long domain;
	/* Root pool pages in use before the test, and those it may consume. */
	long used0, consumed;
	char devid[24];
};

FIXTURE_SETUP(hviommu)
{
	const char *bdf = getenv("VFIO_SELFTESTS_BDF");
	unsigned int seg, bus, dev, fn;

	self->iommufd = -1;
	self->dev = -1;
	if (!bdf || sscanf(bdf, "%x:%x:%x.%x", &seg, &bus, &dev, &fn) != 4)
		SKIP(return, "VFIO_SELFTESTS_BDF (a function bound to vfio-pci) not set");
	if (access(CONTROL, W_OK) || access(DRV_STATS, R_OK))
		SKIP(return, "needs mshv_hvcall simulate=1 and hyperv_iommu_root");
	ASSERT_EQ(0, ctl("fault-clear"));
	self->used0 = pool_used();
	self->consumed = 0;
	ASSERT_LE(0, self->used0);
	/* The hypervisor's id of the function, as the driver computes it. */
	ASSERT_EQ(0, pci_devid(seg, bus, dev, fn, self->devid, sizeof(self->devid)));
	ASSERT_EQ(0, open_attached(bdf, &self->iommufd, &self->dev, &self->dev_id,
				   &self->ioas));
	self->domain = where(self->devid);
}

/*
 * Closing the files must leave no domain and no page-table page behind: the
 * root pool's used pages are back where they were (plus what the test made
 * the hypervisor consume for itself), and the device is in the default domain.
 */
static int closed_clean(struct _test_data_hviommu *self)
{
	long ids[4];
	int n;

	ctl("fault-clear");
	if (self->dev >= 0)
		close(self->dev);
	if (self->iommufd >= 0)
		close(self->iommufd);
	self->dev = -1;
	self->iommufd = -1;
	n = domains(ids, 4);
	if (n != 0)
		printf("# %d domain(s) left, first %ld\n", n, ids[0]);
	if (pool_used() != self->used0 + self->consumed)
		printf("# %ld pool pages used, %ld before the test (+%ld consumed)\n",
		       pool_used(), self->used0, self->consumed);
	return n == 0 && pool_used() == self->used0 + self->consumed &&
	       where(self->devid) == -1;
}

FIXTURE_TEARDOWN(hviommu)
{
	if (self->dev >= 0 || self->iommufd >= 0)
		closed_clean(self);
}

/* The device sits in a fresh paging domain whose id is neither 0 nor ~0. */
TEST_F(hviommu, attach_uses_a_paging_domain)
{
	long ids[8];
	int n = domains(ids, 8);

	ASSERT_GT(self->domain, 0);
	ASSERT_NE(0xffffffffL, self->domain);
	ASSERT_EQ(1, n);
	ASSERT_EQ(self->domain, ids[0]);
	ASSERT_TRUE(closed_clean(self));
}

/*
 * The hypervisor holds exactly what user space mapped, page by page, with
 * the protection asked for, through map, partial teardown and unmap.
 */
TEST_F(hviommu, mappings_equal_user_space)
{
	struct range r[3];
	void *a = buffer(64 << 10, 0), *b = buffer(2 << 20, 0);
	void *c = buffer(4 * PG, 0);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	r[0] = (struct range){ 0x100000, a, 16, 1 };
	r[1] = (struct range){ 0x40000000, b, 512, 1 };
	r[2] = (struct range){ 0x7fff0000000, c, 4, 0 };
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, 64 << 10, r[0].iova, 1));
	ASSERT_EQ(0, compare(self->domain, r, 1));
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, b, 2 << 20, r[1].iova, 1));
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, c, 4 * PG, r[2].iova, 0));
	ASSERT_EQ(0, compare(self->domain, r, 3));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, r[1].iova, 2 << 20));
	r[1] = r[2];
	ASSERT_EQ(0, compare(self->domain, r, 2));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, 0, UINT64_MAX));
	ASSERT_EQ(0, compare(self->domain, r, 0));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * The x86 MSI window 0xfee00000-0xfeefffff is a reserved region: iommufd
 * refuses to map into it (EINVAL), while the pages on either side map.
 */
TEST_F(hviommu, msi_window_is_reserved)
{
	struct range r[2];
	void *a = buffer(2 * PG, 0);

	ASSERT_NE(NULL, a);
	ASSERT_EQ(-EINVAL, ioas_map(self->iommufd, self->ioas, a, PG, 0xfee00000, 1));
	ASSERT_EQ(-EINVAL, ioas_map(self->iommufd, self->ioas, a, PG, 0xfeeff000, 1));
	ASSERT_EQ(-EINVAL, ioas_map(self->iommufd, self->ioas, a, 2 * PG, 0xfedff000, 1));
	ASSERT_EQ(0, compare(self->domain, NULL, 0));
	r[0] = (struct range){ 0xfedff000, a, 1, 1 };
	r[1] = (struct range){ 0xfef00000, (char *)a + PG, 1, 1 };
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, PG, r[0].iova, 1));
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, r[1].va, PG, r[1].iova, 1));
	ASSERT_EQ(0, compare(self->domain, r, 2));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, 0, UINT64_MAX));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * 32 MiB of 2M pages unmapped in one IOMMU_IOAS_UNMAP: 8192 pages, more
 * than one UNMAP rep count (4095) can say. The hypervisor must see every
 * page unmapped in the fewest calls, none refused (V3 did not chunk UNMAP).
 */
TEST_F(hviommu, unmap_more_than_4095_pages)
{
	size_t len = 32 << 20;
	struct hv_stat m0, m1, u0, u1;
	struct drv_stat dm0, dm1, du0, du1;
	struct range r;
	void *a = buffer(len, MAP_HUGETLB | (21 << MAP_HUGE_SHIFT));

	if (!a)
		SKIP(return, "no 2M hugetlb pages reserved");
	r = (struct range){ 0x80000000, a, len / PG, 1 };
	ASSERT_EQ(0, hv_stat(CODE_MAP, &m0));
	ASSERT_EQ(0, drv_stat("map", &dm0));
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, len, r.iova, 1));
	ASSERT_EQ(0, hv_stat(CODE_MAP, &m1));
	ASSERT_EQ(0, drv_stat("map", &dm1));
	ASSERT_EQ(0, compare(self->domain, &r, 1));
	ASSERT_EQ(0, hv_stat(CODE_UNMAP, &u0));
	ASSERT_EQ(0, drv_stat("unmap", &du0));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, r.iova, len));
	ASSERT_EQ(0, hv_stat(CODE_UNMAP, &u1));
	ASSERT_EQ(0, drv_stat("unmap", &du1));
	/* Calls answered INSUFFICIENT_MEMORY are retried after a deposit. */
	printf("# map: %lu requests, %lu pages, %lu hypercalls (%lu retried), minimum %lu\n",
	       dm1.requests - dm0.requests, dm1.pages - dm0.pages,
	       m1.calls - m0.calls, m1.failed - m0.failed, dm1.min - dm0.min);
	printf("# unmap: %lu requests, %lu pages, %lu hypercalls, minimum %lu\n",
	       du1.requests - du0.requests, du1.pages - du0.pages,
	       u1.calls - u0.calls, du1.min - du0.min);
	ASSERT_EQ(len / PG, m1.reps - m0.reps);
	ASSERT_EQ(dm1.min - dm0.min, (m1.calls - m0.calls) - (m1.failed - m0.failed));
	ASSERT_EQ(len / PG, u1.reps - u0.reps);
	ASSERT_EQ(0UL, u1.failed - u0.failed);
	ASSERT_EQ(du1.min - du0.min, u1.calls - u0.calls);
	ASSERT_LE(3UL, u1.calls - u0.calls);
	/* At least one request was longer than one UNMAP call can carry. */
	ASSERT_LT(4095UL * (du1.requests - du0.requests), du1.pages - du0.pages);
	ASSERT_EQ(0, compare(self->domain, &r, 0));
	munmap(a, len);
	ASSERT_TRUE(closed_clean(self));
}

/* Devices in the IOMMU group of @bdf; 0 on error. */
static int group_size(const char *bdf)
{
	char path[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group/devices", bdf);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * A failed attach leaves the device where it was, in the hypervisor and in
 * the driver: moving from one paging domain to another is DETACH + ATTACH,
 * and a refused ATTACH is rolled back by attaching the old domain again.
 */
TEST_F(hviommu, attach_failure_rolls_back)
{
	struct range r;
	uint32_t hwpt2 = 0;
	long d2;
	void *a = buffer(8 * PG, 0);

	ASSERT_NE(NULL, a);
	r = (struct range){ 0x200000, a, 8, 1 };
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, 8 * PG, r.iova, 1));
	ASSERT_EQ(0, hwpt_alloc(self->iommufd, self->dev_id, self->ioas, &hwpt2));

	/* ATTACH to the new domain refused once: rolled back. */
	ASSERT_EQ(0, ctl("fault 0xb2 0 1 fail 0x6 0"));
	ASSERT_EQ(-EACCES, attach_pt(self->dev, hwpt2));
	ASSERT_EQ(self->domain, where(self->devid));
	ASSERT_EQ(0, compare(self->domain, &r, 1));

	/* DETACH refused: nothing moved at all. */
	ASSERT_EQ(0, ctl("fault 0xc4 0 1 fail 0x6 0"));
	ASSERT_EQ(-EACCES, attach_pt(self->dev, hwpt2));
	ASSERT_EQ(self->domain, where(self->devid));

	/*
	 * ATTACH and the driver's rollback refused: the device cannot be
	 * where it was, so it is detached (DMA blocked, logged) and the
	 * driver says so; the IOMMU core does not revert the failing device.
	 */
	ASSERT_EQ(0, ctl("fault 0xb2 0 2 fail 0x6 0"));
	ASSERT_EQ(-EACCES, attach_pt(self->dev, hwpt2));
	if (group_size(getenv("VFIO_SELFTESTS_BDF")) == 1) {
		ASSERT_EQ(-3, where(self->devid));
	} else {
		/*
		 * In a group of several hypervisor devices (a PCIe-to-PCI
		 * bridge and the functions behind it) the refusals may hit
		 * another member; the core then reverts the members it moved,
		 * so this device is detached or back where it was.
		 */
		d2 = where(self->devid);
		ASSERT_TRUE(d2 == -3 || d2 == self->domain);
	}
	ASSERT_EQ(0, ctl("fault-clear"));

	/*
	 * From detached the driver attaches directly. Back to the IOAS then
	 * (iommufd freed the automatic domain when the device left it, so it
	 * makes a new one).
	 */
	ASSERT_EQ(0, attach_pt(self->dev, hwpt2));
	d2 = where(self->devid);
	ASSERT_GT(d2, 0);
	ASSERT_NE(self->domain, d2);
	ASSERT_EQ(0, compare(d2, &r, 1));
	ASSERT_EQ(0, attach_pt(self->dev, self->ioas));
	ASSERT_GT(where(self->devid), 0);
	ASSERT_NE(d2, where(self->devid));
	ASSERT_EQ(0, compare(where(self->devid), &r, 1));
	ASSERT_EQ(0, destroy(self->iommufd, hwpt2));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, 0, UINT64_MAX));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * The hypervisor wants memory first (HV_STATUS_INSUFFICIENT_MEMORY): the
 * driver deposits pages into the root partition and the map succeeds.
 */
TEST_F(hviommu, insufficient_memory_is_deposited)
{
	struct hv_stat d0, d1;
	struct range r;
	long dep0 = pool_deposited();
	void *a = buffer(2 << 20, 0);

	ASSERT_NE(NULL, a);
	r = (struct range){ 0x10000000, a, 512, 1 };
	ASSERT_EQ(0, hv_stat(CODE_DEPOSIT, &d0));
	ASSERT_EQ(0, ctl("require-deposit self 64"));
	/* The hypervisor keeps the 64 pages it asked for. */
	self->consumed = 64;
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, 2 << 20, r.iova, 1));
	ASSERT_EQ(0, hv_stat(CODE_DEPOSIT, &d1));
	printf("# %lu DEPOSIT_MEMORY calls, pool %ld -> %ld pages\n",
	       d1.calls - d0.calls, dep0, pool_deposited());
	ASSERT_LT(0UL, d1.calls - d0.calls);
	ASSERT_LE(dep0 + 64, pool_deposited());
	ASSERT_EQ(0, compare(self->domain, &r, 1));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, 0, UINT64_MAX));
	ASSERT_TRUE(closed_clean(self));
}

struct churn {
	int iommufd;
	uint32_t dev_id, ioas;
	int rounds, held, ok, failed;
	long ids[8];
	pthread_barrier_t *start;
};

/*
 * One thread: on its own IOAS (iommufd serializes work on one IOAS, which
 * would hide a race in the driver), allocate and free domains @rounds times,
 * then allocate @held and keep them. Every allocation must succeed.
 */
static void *churn_thread(void *p)
{
	struct churn *c = p;
	uint32_t id = 0, keep[8];
	int i;

	pthread_barrier_wait(c->start);
	for (i = 0; i < c->rounds; i++) {
		if (hwpt_alloc(c->iommufd, c->dev_id, c->ioas, &id)) {
			c->failed++;
			continue;
		}
		c->ok++;
		if (destroy(c->iommufd, id))
			c->failed++;
	}
	for (i = 0; i < c->held; i++)
		if (hwpt_alloc(c->iommufd, c->dev_id, c->ioas, &keep[i]))
			c->failed++;
	return NULL;
}

/*
 * Domains allocated and freed from 4 threads at once, each on its own IOAS:
 * every allocation succeeds (two domains with one id would make the
 * hypervisor refuse the second CREATE, as with V3's unlocked counter), and
 * the 4 x 4 domains held at the end have distinct hypervisor ids.
 */
TEST_F(hviommu, concurrent_domain_ids_are_unique)
{
	struct iommu_ioas_alloc ia = { .size = sizeof(ia) };
	struct churn c[4];
	pthread_barrier_t start;
	pthread_t t[4];
	unsigned long max = 0;
	char *p = slurp(MAX_DOMAINS);
	long ids[32];
	int i, j, n, ok = 0;

	if (p)
		max = strtoul(p, NULL, 10);
	free(p);
	if (max < 32)
		SKIP(return, "needs hv_iommu_max_domains >= 32");
	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, 4));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_ALLOC, &ia));
		c[i] = (struct churn){ self->iommufd, self->dev_id, ia.out_ioas_id,
				       100, 4, 0, 0, { 0 }, &start };
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, churn_thread, &c[i]));
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, c[i].failed);
		ok += c[i].ok;
	}
	printf("# %d domains created and freed by 4 threads on 4 IOASes\n", ok);
	ASSERT_EQ(400, ok);
	n = domains(ids, 32);
	ASSERT_EQ(1 + 4 * 4, n);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			ASSERT_NE(ids[i], ids[j]);
	pthread_barrier_destroy(&start);
	ASSERT_TRUE(closed_clean(self));
}

struct mapper {
	int iommufd;
	uint32_t ioas;
	uint64_t iova;
	void *va;
	int rounds, failed;
	pthread_barrier_t *start;
};

/* Maps and unmaps 16 pages at its own IOVA, @rounds times; leaves them mapped. */
static void *map_thread(void *p)
{
	struct mapper *m = p;
	int i;

	pthread_barrier_wait(m->start);
	for (i = 0; i < m->rounds; i++) {
		if (ioas_map(m->iommufd, m->ioas, m->va, 16 * PG, m->iova, 1) ||
		    ioas_unmap(m->iommufd, m->ioas, m->iova, 16 * PG))
			m->failed++;
	}
	if (ioas_map(m->iommufd, m->ioas, m->va, 16 * PG, m->iova, 1))
		m->failed++;
	return NULL;
}

/*
 * 4 threads map and unmap at once in the one domain of the device (the
 * shadow under its lock, the hypervisor's table): afterwards the hypervisor
 * holds exactly the 4 ranges left mapped, page by page.
 */
TEST_F(hviommu, concurrent_map_unmap_on_one_domain)
{
	struct mapper m[4];
	struct range r[4];
	pthread_barrier_t start;
	pthread_t t[4];
	int i;

	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, 4));
	for (i = 0; i < 4; i++) {
		void *va = buffer(16 * PG, 0);

		ASSERT_NE(NULL, va);
		m[i] = (struct mapper){ self->iommufd, self->ioas, 0x10000000UL * (i + 1), va,
					200, 0, &start };
		r[i] = (struct range){ m[i].iova, va, 16, 1 };
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, map_thread, &m[i]));
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, m[i].failed);
	}
	ASSERT_EQ(0, compare(self->domain, r, 4));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, 0, UINT64_MAX));
	ASSERT_EQ(0, compare(self->domain, r, 0));
	pthread_barrier_destroy(&start);
	ASSERT_TRUE(closed_clean(self));
}

/*
 * With hv_iommu_max_domains=N, N domains exist at most (ids 1..N); the next
 * allocation fails with ENOSPC and changes nothing; a freed id is reused.
 */
TEST_F(hviommu, domain_id_exhaustion)
{
	uint32_t hwpt[64] = { 0 }, extra = 0;
	long ids[70];
	unsigned long max = 0;
	char *p = slurp(MAX_DOMAINS);
	int n = 0, i;

	if (p)
		max = strtoul(p, NULL, 10);
	free(p);
	if (!max || max > 64)
		SKIP(return, "load hyperv_iommu_root with hv_iommu_max_domains <= 64");
	while (n < 64 && !hwpt_alloc(self->iommufd, self->dev_id, self->ioas, &hwpt[n]))
		n++;
	ASSERT_EQ((int)max - 1, n);
	ASSERT_EQ(-ENOSPC, hwpt_alloc(self->iommufd, self->dev_id, self->ioas, &extra));
	ASSERT_EQ((int)max, domains(ids, 70));
	for (i = 0; i < (int)max; i++) {
		ASSERT_LE(1, ids[i]);
		ASSERT_GE((long)max, ids[i]);
	}
	ASSERT_EQ(0, destroy(self->iommufd, hwpt[0]));
	ASSERT_EQ(0, hwpt_alloc(self->iommufd, self->dev_id, self->ioas, &hwpt[0]));
	ASSERT_EQ((int)max, domains(ids, 70));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, destroy(self->iommufd, hwpt[i]));
	ASSERT_EQ(1, domains(NULL, 0));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * The hypervisor refuses UNMAP (any status, every time): the IOMMU core
 * unpins the pages whatever the driver says, so the driver must block the
 * device before unmap returns. The unmap succeeds for user space, the device
 * is detached in the hypervisor, the pages the hypervisor kept stay in the
 * domain, and the domain refuses further maps (EIO). Once the hypervisor
 * lets go, closing the files removes everything. (The old driver returned a
 * short unmap and left the device attached to pages about to be freed.)
 */
TEST_F(hviommu, refused_unmap_fences_the_device)
{
	struct range r;
	void *a = buffer(16 * PG, 0);

	ASSERT_NE(NULL, a);
	r = (struct range){ 0x100000, a, 16, 1 };
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, 16 * PG, r.iova, 1));
	ASSERT_EQ(0, ctl("fault 0xb4 0 1000 fail 0x71 0"));
	ASSERT_EQ(0, ioas_unmap(self->iommufd, self->ioas, r.iova, 16 * PG));
	ASSERT_EQ(-3, where(self->devid));
	/* The hypervisor kept the 16 pages, the driver knows it. */
	ASSERT_EQ(0, compare(self->domain, &r, 1));
	ASSERT_EQ(-EIO, ioas_map(self->iommufd, self->ioas, a, PG, 0x900000, 1));
	ASSERT_EQ(-3, where(self->devid));
	ASSERT_EQ(0, ctl("fault-clear"));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * A memory shortage on UNMAP is answered from the driver's reserve: with
 * every non-sleeping allocation of this task failing (kernel fault
 * injection), the unmap still completes and the device stays attached.
 * (The old driver allocated deposit pages with GFP_ATOMIC here, failed, and
 * returned a short unmap.)
 */
TEST_F(hviommu, unmap_shortage_is_met_from_the_reserve)
{
	struct hv_stat d0, d1;
	struct range r;
	void *a = buffer(64 * PG, 0);
	int rc;

	ASSERT_NE(NULL, a);
	if (access(FAIL_PAGE "probability", W_OK) || access(FAIL_SLAB "probability", W_OK))
		SKIP(return, "needs CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAILSLAB and their debugfs");
	r = (struct range){ 0x100000, a, 64, 1 };
	ASSERT_EQ(0, ioas_map(self->iommufd, self->ioas, a, 64 * PG, r.iova, 1));
	ASSERT_EQ(0, hv_stat(CODE_DEPOSIT, &d0));
	/* Two shortages: the reserve's pages are what the hypervisor keeps. */
	ASSERT_EQ(0, ctl("fault 0xb4 0 2 fail 0xb 0"));
	ASSERT_EQ(0, fail_atomic_allocations(1));
	rc = ioas_unmap(self->iommufd, self->ioas, r.iova, 64 * PG);
	ASSERT_EQ(0, fail_atomic_allocations(0));
	ASSERT_EQ(0, rc);
	ASSERT_EQ(0, hv_stat(CODE_DEPOSIT, &d1));
	printf("# %lu DEPOSIT_MEMORY calls from the reserve during the unmap\n",
	       d1.calls - d0.calls);
	ASSERT_EQ(2UL, d1.calls - d0.calls);
	ASSERT_EQ(self->domain, where(self->devid));
	ASSERT_EQ(0, compare(self->domain, NULL, 0));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * DELETE_DEVICE_DOMAIN refused when the last user goes: the hypervisor
 * keeps the domain, so its id stays reserved (quarantined) and the next
 * allocation takes another id and works; that allocation retries the
 * deletion, which now succeeds. (The old driver freed the id and every
 * later CREATE with it failed.)
 */
TEST_F(hviommu, refused_delete_quarantines_the_id)
{
	const char *bdf = getenv("VFIO_SELFTESTS_BDF");
	long ids[4], first = self->domain;
	uint32_t dev_id, ioas;

	ASSERT_EQ(0, ctl("fault 0xc5 0 1 fail 0x71 0"));
	close(self->dev);
	close(self->iommufd);
	self->dev = -1;
	self->iommufd = -1;
	ASSERT_EQ(1, domains(ids, 4));
	ASSERT_EQ(first, ids[0]);
	ASSERT_EQ(-1, where(self->devid));
	ASSERT_EQ(0, open_attached(bdf, &self->iommufd, &self->dev, &dev_id, &ioas));
	self->dev_id = dev_id;
	self->ioas = ioas;
	self->domain = where(self->devid);
	ASSERT_LT(0, self->domain);
	ASSERT_NE(first, self->domain);
	/* The quarantined domain went on the retry. */
	ASSERT_EQ(1, domains(ids, 4));
	ASSERT_EQ(self->domain, ids[0]);
	ASSERT_TRUE(closed_clean(self));
}

/*
 * The release control refuses while a paging domain lives, even with no
 * device bound: an HWPT outlives the device fd and the unbind, and freeing
 * it later calls into the module. (The old driver unregistered, and closing
 * /dev/iommu after rmmod ran freed module text.)
 */
TEST_F(hviommu, release_refused_while_a_domain_lives)
{
	const char *bdf = getenv("VFIO_SELFTESTS_BDF");
	char path[128];
	uint32_t hwpt = 0;

	if (access(RELEASE, W_OK))
		SKIP(return, "no release control");
	ASSERT_EQ(0, hwpt_alloc(self->iommufd, self->dev_id, self->ioas, &hwpt));
	close(self->dev);
	self->dev = -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/vfio-pci/unbind");
	ASSERT_EQ(0, put(path, bdf));
	ASSERT_EQ(-EBUSY, put(RELEASE, "1"));
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/vfio-pci/bind");
	ASSERT_EQ(0, put(path, bdf));
	ASSERT_LE(1, domains(NULL, 0));
	ASSERT_EQ(0, destroy(self->iommufd, hwpt));
	ASSERT_TRUE(closed_clean(self));
}

/*
 * CREATE_DEVICE_DOMAIN says the id is taken (a domain the driver does not
 * know, e.g. left by an earlier load): the driver keeps that id reserved
 * and takes the next. Runs only with the default hv_iommu_max_domains (the
 * reserved id stays reserved until the module is reloaded).
 */
TEST_F(hviommu, create_skips_a_taken_id)
{
	uint32_t hwpt = 0;
	unsigned long max = 0;
	char *p = slurp(MAX_DOMAINS), cmd[64];
	long ids[4], taken = self->domain + 1, got;

	if (p)
		max = strtoul(p, NULL, 10);
	free(p);
	if (max <= 64)
		SKIP(return, "with hv_iommu_max_domains <= 64 the reserved id would be missed");
	snprintf(cmd, sizeof(cmd), "domain-create %ld", taken);
	ASSERT_EQ(0, ctl(cmd));
	ASSERT_EQ(0, hwpt_alloc(self->iommufd, self->dev_id, self->ioas, &hwpt));
	ASSERT_EQ(0, attach_pt(self->dev, hwpt));
	got = where(self->devid);
	ASSERT_LT(0, got);
	ASSERT_NE(taken, got);
	ASSERT_NE(self->domain, got);
	ASSERT_EQ(0, attach_pt(self->dev, self->ioas));
	ASSERT_EQ(0, destroy(self->iommufd, hwpt));
	snprintf(cmd, sizeof(cmd), "domain-delete %ld", taken);
	ASSERT_EQ(0, ctl(cmd));
	ASSERT_EQ(1, domains(ids, 4));
	ASSERT_TRUE(closed_clean(self));
}

TEST_HARNESS_MAIN
