// SPDX-License-Identifier: GPL-2.0
/*
 * The mshv-vfio bridge through the uAPI a VMM uses: /dev/mshv (the
 * simulated provider of mshv_hvcall), MSHV_CREATE_PARTITION,
 * MSHV_CREATE_DEVICE on the partition fd, and the device fd's attribute
 * ioctls with real VFIO group and device files.
 *
 * Every rule of Documentation/mshv-vfio-bridge.rst has a case here, each
 * V3 defect of the seed series among them (a case that fails if it came
 * back), and so do the close orderings, process exit and fd passing. After
 * each case the teardown checks that nothing leaked: the process has the
 * fds it had, the bridge holds no file (mshv_vfio/state), the simulated
 * hypervisor has the partitions it had (mshv_hvcall/dump), no page pinned
 * by the simulated provider is left (mshv_hvcall/stats), and the VFIO
 * group can be opened again (it is exclusive: a reference the bridge kept
 * would make that EBUSY).
 *
 * Needs: mshv_hvcall simulate=1, hyperv_iommu_root, mshv_vfio, and
 * VFIO_SELFTESTS_BDF bound to vfio-pci; root.
 */
#include <assert.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/mshv.h>

#include "kselftest_harness.h"
#include "hv_sim.h"
#include "../../../../include/uapi/linux/hyperv_iommu_root.h"

#define BRIDGE_STATE	DBG "mshv_vfio/state"
#define DRV_STATS	DBG "hyperv_iommu_root/stats"
#define DIRECT_PARAM	"/sys/module/hyperv_iommu_root/parameters/hv_iommu_direct_attach"

/* The numbers rust-vmm's mshv-ioctls and Cloud Hypervisor send. */
static_assert(MSHV_CREATE_PARTITION == 0x4010B800, "CREATE_PARTITION");
static_assert(MSHV_INITIALIZE_PARTITION == 0xB800, "INITIALIZE_PARTITION");
static_assert(MSHV_CREATE_DEVICE == 0xC00CB808, "CREATE_DEVICE");
static_assert(MSHV_SET_DEVICE_ATTR == 0x4018B800, "SET_DEVICE_ATTR");
/* rust-vmm's get_device_attr (0x01) and has_device_attr (0x02). */
#define RUST_VMM_GET_DEVICE_ATTR	0x4018B801u
#define RUST_VMM_HAS_DEVICE_ATTR	0x4018B802u
static_assert(MSHV_HAS_DEVICE_ATTR == RUST_VMM_GET_DEVICE_ATTR, "nr 0x01");
static_assert(MSHV_HAS_DEVICE_ATTR2 == RUST_VMM_HAS_DEVICE_ATTR, "nr 0x02");

/* rust-vmm's default partition: LAPIC, X2APIC, GPA_SUPER_PAGES, v2 struct. */
#define PT_FLAGS_V2	0xfull

static int fd_count(void)
{
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Guest partitions the simulated hypervisor holds. */
static int sim_partitions(void)
{
	char *dump = slurp(DUMP), *p;
	int n = 0;

	if (!dump)
		return -1;
	for (p = dump; (p = strstr(p, "partition ")); p++)
		if ((p == dump || p[-1] == '\n') && p[10] >= '0' && p[10] <= '9')
			n++;
	free(dump);
	return n;
}

/* Whether the simulated hypervisor holds guest partition @id. */
static int sim_has_partition(unsigned long long id)
{
	char *dump = slurp(DUMP), want[48], *p;
	int found = 0;

	if (!dump)
		return -1;
	snprintf(want, sizeof(want), "partition %llu", id);
	for (p = dump; !found && (p = strstr(p, want)); p++) {
		char next = p[strlen(want)];

		found = (p == dump || p[-1] == '\n') && (next == '\n' || next == ' ' || !next);
	}
	free(dump);
	return found;
}

/* The highest guest partition id the simulator lists: the newest one. */
static long long sim_newest_partition(void)
{
	char *dump = slurp(DUMP), *p;
	long long max = -1;

	if (!dump)
		return -1;
	for (p = dump; (p = strstr(p, "partition ")); p++)
		if ((p == dump || p[-1] == '\n') && p[10] >= '0' && p[10] <= '9') {
			long long v = strtoll(p + 10, NULL, 10);

			if (v > max)
				max = v;
		}
	free(dump);
	return max;
}

/* mshv_vfio/state's first line: "bridges B files F". */
static int bridge_state(int *bridges, int *files)
{
	char *s = slurp(BRIDGE_STATE);
	int ok;

	if (!s)
		return -1;
	ok = sscanf(s, "bridges %d files %d", bridges, files) == 2;
	free(s);
	return ok ? 0 : -1;
}

/* Whether mshv_vfio/state lists a bridge on partition @id with @files files. */
static int bridge_on(unsigned long long id, int files)
{
	char *s = slurp(BRIDGE_STATE), want[80];
	int found;

	if (!s)
		return -1;
	snprintf(want, sizeof(want), "bridge partition %llu files %d\n", id, files);
	found = !!strstr(s, want);
	free(s);
	return found;
}

/* Guest memory pages the simulated /dev/mshv holds pinned (mshv_hvcall/stats). */
static long long pins_outstanding(void)
{
	char *v = slurp(HV_STATS), *p;
	long long n = -1;

	if (!v)
		return -1;
	p = strstr(v, "mshv_pinned_pages=");
	if (p)
		n = strtoll(p + 18, NULL, 10);
	free(v);
	return n;
}

static const char *bdf(void)
{
	return getenv("VFIO_SELFTESTS_BDF");
}

/* The device's group; -1 with errno (EBUSY while open, by us or a bridge). */
static int group_open(void)
{
	return vfio_group_open(bdf());
}

static int create_partition_v2(int mshv)
{
	struct mshv_create_partition_v2 a = {
		.pt_flags = PT_FLAGS_V2,
		.pt_num_cpu_fbanks = MSHV_NUM_CPU_FEATURES_BANKS,
	};

	return ioctl(mshv, MSHV_CREATE_PARTITION, &a);
}

/* MSHV_CREATE_DEVICE of type VFIO; the device fd, or -1 with errno. */
static int create_bridge(int pt)
{
	struct mshv_create_device cd = { .type = MSHV_DEV_TYPE_VFIO };

	if (ioctl(pt, MSHV_CREATE_DEVICE, &cd))
		return -1;
	return cd.fd;
}

/* A device attribute ioctl with the int32 @fd as value; 0 or -errno. */
static int attr(int dev, unsigned long nr, __u32 flags, __u32 group, __u64 at, int fd)
{
	struct mshv_device_attr a = {
		.flags = flags, .group = group, .attr = at,
		.addr = (__u64)(uintptr_t)&fd,
	};

	return ioctl(dev, nr, &a) ? -errno : 0;
}

static int file_add(int dev, int fd)
{
	return attr(dev, MSHV_SET_DEVICE_ATTR, 0, MSHV_DEV_VFIO_FILE,
		    MSHV_DEV_VFIO_FILE_ADD, fd);
}

static int file_del(int dev, int fd)
{
	return attr(dev, MSHV_SET_DEVICE_ATTR, 0, MSHV_DEV_VFIO_FILE,
		    MSHV_DEV_VFIO_FILE_DEL, fd);
}

/* What a VMM holds after handing its device to the bridge. */
struct vmm {
	long long id;	/* the partition's id in the simulated hypervisor */
	int pt, dev, group;
};

/* Partition, bridge, group added: 0, or -1 with what exists closed. */
static int vmm_start(int mshv, struct vmm *v)
{
	v->dev = -1;
	v->group = -1;
	v->pt = create_partition_v2(mshv);
	if (v->pt < 0)
		return -1;
	v->id = sim_newest_partition();
	v->dev = create_bridge(v->pt);
	v->group = group_open();
	if (v->id >= 0 && v->dev >= 0 && v->group >= 0 && !file_add(v->dev, v->group))
		return 0;
	if (v->group >= 0)
		close(v->group);
	if (v->dev >= 0)
		close(v->dev);
	close(v->pt);
	return -1;
}

/* Sends @fds over the socket @s (SCM_RIGHTS). */
static int send_fds(int s, const int *fds, int n)
{
	char buf[CMSG_SPACE(4 * sizeof(int))] = { 0 }, byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	return sendmsg(s, &m, 0) == 1 ? 0 : -1;
}

static int recv_fds(int s, int *fds, int n)
{
	char buf[CMSG_SPACE(4 * sizeof(int))], byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct cmsghdr *c;

	if (recvmsg(s, &m, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(c), n * sizeof(int));
	return 0;
}

/* hyperv_iommu_root/stats: devices it holds in guest partitions. */
static int direct_devices(void)
{
	char *s = slurp(DRV_STATS), *p;
	int n = -1;

	if (!s)
		return -1;
	p = strstr(s, "direct devices=");
	if (p)
		n = strtol(p + 15, NULL, 10);
	free(s);
	return n;
}

/* The test device's hypervisor id, as the simulator's dump spells it. */
static int test_devid(char *out, size_t len)
{
	unsigned int seg, bus, dev, fn;

	if (!bdf() || sscanf(bdf(), "%x:%x:%x.%x", &seg, &bus, &dev, &fn) != 4)
		return -1;
	return pci_devid(seg, bus, dev, fn, out, len);
}

/* The guest partition the simulator has device @devid attached to, or -1. */
static long long dev_partition(const char *devid)
{
	char *d = slurp(DUMP), key[64], *l;
	long long id = -1;

	if (!d)
		return -1;
	snprintf(key, sizeof(key), "device %s partition ", devid);
	l = strstr(d, key);
	if (l)
		id = strtoll(l + strlen(key), NULL, 10);
	free(d);
	return id;
}

/* mshv_vfio/state's mode for the test device: 1 direct, 0 domain, -1 not listed. */
static int bridge_mode(void)
{
	char *s = slurp(BRIDGE_STATE), key[64], *l;
	int mode = -1;

	if (!s)
		return -1;
	snprintf(key, sizeof(key), "  device %s ", bdf());
	l = strstr(s, key);
	if (l)
		mode = !strncmp(l + strlen(key), "direct\n", 7);
	free(s);
	return mode;
}

FIXTURE(bridge) {
	int mshv;
	int fds, partitions;
	long long pins;
	char devid[32];
	long where;
};

FIXTURE_SETUP(bridge)
{
	int b, f;

	if (!bdf())
		SKIP(return, "VFIO_SELFTESTS_BDF not set");
	self->mshv = open("/dev/mshv", O_RDWR);
	ASSERT_LE(0, self->mshv) TH_LOG("/dev/mshv: %s", strerror(errno));
	ASSERT_EQ(0, bridge_state(&b, &f)) TH_LOG("mshv_vfio not loaded");
	ASSERT_EQ(0, b);
	ASSERT_EQ(0, f);
	self->fds = fd_count();
	self->partitions = sim_partitions();
	ASSERT_LE(0, self->partitions);
	self->pins = pins_outstanding();
	ASSERT_LE(0, self->pins);
	ASSERT_EQ(0, test_devid(self->devid, sizeof(self->devid)));
	self->where = where(self->devid);
	ASSERT_NE(-4, self->where);
	ASSERT_EQ(0, direct_devices());
}

/*
 * Nothing leaked: fds, bridges, file references, partitions, pinned pages,
 * the group.
 */
FIXTURE_TEARDOWN(bridge)
{
	int b = -1, f = -1, g;

	if (!bdf())
		return;
	EXPECT_EQ(self->fds, fd_count());
	EXPECT_EQ(0, bridge_state(&b, &f));
	EXPECT_EQ(0, b);
	EXPECT_EQ(0, f);
	EXPECT_EQ(self->partitions, sim_partitions());
	EXPECT_EQ(self->pins, pins_outstanding());
	/* Out of every guest, where it was, and no partition held by the IOMMU driver. */
	EXPECT_EQ(0, direct_devices());
	EXPECT_EQ(self->where, where(self->devid));
	g = group_open();
	EXPECT_LE(0, g) TH_LOG("VFIO group still held: %s", strerror(errno));
	if (g >= 0)
		close(g);
	close(self->mshv);
}

TEST_F(bridge, create_partition_both_struct_sizes)
{
	struct mshv_create_partition v1 = { .pt_flags = 0x3 };
	int pt1, pt2;

	pt1 = ioctl(self->mshv, MSHV_CREATE_PARTITION, &v1);
	ASSERT_LE(0, pt1) TH_LOG("v1: %s", strerror(errno));
	pt2 = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt2) TH_LOG("v2: %s", strerror(errno));
	EXPECT_EQ(self->partitions + 2, sim_partitions());
	/* As mshv_root: initializing twice is not an error. */
	EXPECT_EQ(0, ioctl(pt2, MSHV_INITIALIZE_PARTITION));
	EXPECT_EQ(0, ioctl(pt2, MSHV_INITIALIZE_PARTITION));
	close(pt1);
	close(pt2);
	EXPECT_EQ(self->partitions, sim_partitions());
}

TEST_F(bridge, create_partition_refuses_what_the_kernel_refuses)
{
	struct mshv_create_partition_v2 a;
	long pg = sysconf(_SC_PAGESIZE);
	char *m;
	int pt;

#define REFUSED(field, value)						\
	do {								\
		memset(&a, 0, sizeof(a));				\
		a.pt_flags = PT_FLAGS_V2;				\
		a.pt_num_cpu_fbanks = MSHV_NUM_CPU_FEATURES_BANKS;	\
		a.field = value;					\
		EXPECT_EQ(-1, ioctl(self->mshv, MSHV_CREATE_PARTITION, &a)); \
		EXPECT_EQ(EINVAL, errno) TH_LOG(#field);		\
	} while (0)
	REFUSED(pt_flags, 1ull << MSHV_PT_BIT_COUNT | PT_FLAGS_V2);
	REFUSED(pt_isolation, 1);
	REFUSED(pt_num_cpu_fbanks, 3);
	REFUSED(pt_rsvd[5], 1);
	REFUSED(pt_rsvd1[1], 1);
#undef REFUSED
	EXPECT_EQ(-1, ioctl(self->mshv, MSHV_CREATE_PARTITION, NULL));
	EXPECT_EQ(EFAULT, errno);
	/*
	 * The v2 bit with only the 16 bytes of v1 readable: the kernel reads 64
	 * bytes only when the bit says so, and that read faults.
	 */
	m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, mprotect(m + pg, pg, PROT_NONE));
	memset(m + pg - 16, 0, 16);
	((struct mshv_create_partition *)(m + pg - 16))->pt_flags = PT_FLAGS_V2;
	EXPECT_EQ(-1, ioctl(self->mshv, MSHV_CREATE_PARTITION, m + pg - 16));
	EXPECT_EQ(EFAULT, errno);
	/* The same 16 bytes without the bit: a v1 partition. */
	((struct mshv_create_partition *)(m + pg - 16))->pt_flags = 0x3;
	pt = ioctl(self->mshv, MSHV_CREATE_PARTITION, m + pg - 16);
	EXPECT_LE(0, pt);
	if (pt >= 0)
		close(pt);
	munmap(m, 2 * pg);
}

TEST_F(bridge, other_ioctls_are_enotty)
{
	struct mshv_device_attr a = { 0 };
	int pt, dev;

	EXPECT_EQ(-1, ioctl(self->mshv, MSHV_ROOT_HVCALL, &a));
	EXPECT_EQ(ENOTTY, errno);
	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	/* Simulated: create, initialize, devices and guest memory, nothing else. */
	EXPECT_EQ(-1, ioctl(pt, MSHV_IRQFD, &a));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(pt, MSHV_CREATE_VP, &a));
	EXPECT_EQ(ENOTTY, errno);
	dev = create_bridge(pt);
	ASSERT_LE(0, dev);
	EXPECT_EQ(-1, ioctl(dev, _IOW(MSHV_IOCTL, 0x03, struct mshv_device_attr), &a));
	EXPECT_EQ(ENOTTY, errno);
	/* Same nr, another size: not an attribute ioctl. */
	EXPECT_EQ(-1, ioctl(dev, _IOW(MSHV_IOCTL, 0x00, __u64), &a));
	EXPECT_EQ(ENOTTY, errno);
	close(dev);
	close(pt);
}

TEST_F(bridge, create_device_rules)
{
	struct mshv_create_device cd = { .type = MSHV_DEV_TYPE_VFIO };
	int pt, dev, b, f;

	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	cd.type = MSHV_DEV_TYPE_MAX;
	EXPECT_EQ(-1, ioctl(pt, MSHV_CREATE_DEVICE, &cd));
	EXPECT_EQ(ENODEV, errno);
	/* Unknown flags are refused (the seed accepted any). */
	cd.type = MSHV_DEV_TYPE_VFIO;
	cd.flags = 2;
	EXPECT_EQ(-1, ioctl(pt, MSHV_CREATE_DEVICE, &cd));
	EXPECT_EQ(EINVAL, errno);
	/* TEST creates nothing: no fd, no bridge, fd field untouched. */
	cd.flags = MSHV_CREATE_DEVICE_TEST;
	cd.fd = 12345;
	EXPECT_EQ(0, ioctl(pt, MSHV_CREATE_DEVICE, &cd));
	EXPECT_EQ(12345u, cd.fd);
	EXPECT_EQ(self->fds + 1, fd_count());
	ASSERT_EQ(0, bridge_state(&b, &f));
	EXPECT_EQ(0, b);
	/* One bridge per partition. */
	dev = create_bridge(pt);
	ASSERT_LE(0, dev) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(self->fds + 2, fd_count());
	EXPECT_EQ(-1, create_bridge(pt));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(self->fds + 2, fd_count());
	/* The fd is close-on-exec, as mshv_root's fds. */
	EXPECT_EQ(FD_CLOEXEC, fcntl(dev, F_GETFD) & FD_CLOEXEC);
	close(dev);
	/* Gone with its fd: the partition can have a bridge again. */
	dev = create_bridge(pt);
	EXPECT_LE(0, dev);
	close(dev);
	close(pt);
}

/*
 * V3 defect: the seed installed the fd before copying the result out, so a
 * bad pointer leaked an fd and a device the caller could not name (and the
 * next create was EBUSY). Now the result is copied first.
 */
TEST_F(bridge, create_device_bad_pointer_leaves_nothing)
{
	struct mshv_create_device cd = { .type = MSHV_DEV_TYPE_VFIO };
	long pg = sysconf(_SC_PAGESIZE);
	int pt, dev, b, f;
	void *ro;

	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	EXPECT_EQ(-1, ioctl(pt, MSHV_CREATE_DEVICE, (void *)16));
	EXPECT_EQ(EFAULT, errno);
	/* Readable, not writable: the copy in works, the copy out faults. */
	ro = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	memcpy(ro, &cd, sizeof(cd));
	ASSERT_EQ(0, mprotect(ro, pg, PROT_READ));
	EXPECT_EQ(-1, ioctl(pt, MSHV_CREATE_DEVICE, ro));
	EXPECT_EQ(EFAULT, errno);
	munmap(ro, pg);
	EXPECT_EQ(self->fds + 1, fd_count());
	ASSERT_EQ(0, bridge_state(&b, &f));
	EXPECT_EQ(0, b);
	dev = create_bridge(pt);
	EXPECT_LE(0, dev) TH_LOG("after a failed create: %s", strerror(errno));
	if (dev >= 0)
		close(dev);
	close(pt);
}

TEST_F(bridge, attribute_rules)
{
	int pt, dev, g, g2, null, b, f;
	struct mshv_device_attr a = { .group = MSHV_DEV_VFIO_FILE, .attr = 1 };

	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	dev = create_bridge(pt);
	ASSERT_LE(0, dev);
	g = group_open();
	ASSERT_LE(0, g) TH_LOG("group: %s", strerror(errno));
	null = open("/dev/null", O_RDWR);
	ASSERT_LE(0, null);

	/* Nonzero flags are refused (the seed did not look). */
	EXPECT_EQ(-EINVAL, attr(dev, MSHV_SET_DEVICE_ATTR, 1, 1, 1, g));
	EXPECT_EQ(-ENXIO, attr(dev, MSHV_SET_DEVICE_ATTR, 0, 2, 1, g));
	EXPECT_EQ(-ENXIO, attr(dev, MSHV_SET_DEVICE_ATTR, 0, 1, 3, g));
	/* "has" under both numbers: the seed's 0x01 and rust-vmm's 0x02. */
	EXPECT_EQ(0, attr(dev, RUST_VMM_GET_DEVICE_ATTR, 0, 1, 1, -1));
	EXPECT_EQ(0, attr(dev, RUST_VMM_HAS_DEVICE_ATTR, 0, 1, 1, -1));
	EXPECT_EQ(0, attr(dev, RUST_VMM_HAS_DEVICE_ATTR, 0, 1, 2, -1));
	EXPECT_EQ(-ENXIO, attr(dev, RUST_VMM_HAS_DEVICE_ATTR, 0, 1, 3, -1));
	EXPECT_EQ(-ENXIO, attr(dev, RUST_VMM_GET_DEVICE_ATTR, 0, 2, 1, -1));
	EXPECT_EQ(-EINVAL, attr(dev, RUST_VMM_HAS_DEVICE_ATTR, 1, 1, 1, -1));
	/* "has" reads nothing at addr. */
	a.addr = 16;
	EXPECT_EQ(0, ioctl(dev, RUST_VMM_HAS_DEVICE_ATTR, &a));
	/* Bad values. */
	EXPECT_EQ(-1, ioctl(dev, MSHV_SET_DEVICE_ATTR, &a));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(dev, MSHV_SET_DEVICE_ATTR, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-EBADF, file_add(dev, -1));
	EXPECT_EQ(-EBADF, file_add(dev, 1000));
	/* Not a VFIO file: the seed took any file. */
	EXPECT_EQ(-EINVAL, file_add(dev, null));
	EXPECT_EQ(-EINVAL, file_add(dev, pt));
	EXPECT_EQ(-EINVAL, file_add(dev, dev));
	ASSERT_EQ(0, bridge_state(&b, &f));
	EXPECT_EQ(0, f);

	/* The group file, once. */
	EXPECT_EQ(-ENOENT, file_del(dev, g));
	EXPECT_EQ(0, file_add(dev, g));
	EXPECT_EQ(-EEXIST, file_add(dev, g));
	ASSERT_EQ(0, bridge_state(&b, &f));
	EXPECT_EQ(1, f);
	/* Another fd of the same file is the same file. */
	g2 = dup(g);
	ASSERT_LE(0, g2);
	EXPECT_EQ(-EEXIST, file_add(dev, g2));
	EXPECT_EQ(0, file_del(dev, g2));
	close(g2);
	EXPECT_EQ(-ENOENT, file_del(dev, g));
	EXPECT_EQ(-EINVAL, file_del(dev, null));
	ASSERT_EQ(0, bridge_state(&b, &f));
	EXPECT_EQ(0, f);
	close(null);
	close(g);
	close(dev);
	close(pt);
}

TEST_F(bridge, device_cdev_file)
{
	int pt, dev, c;

	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	dev = create_bridge(pt);
	ASSERT_LE(0, dev);
	c = vfio_cdev_open(bdf());
	if (c < 0) {
		close(dev);
		close(pt);
		SKIP(return, "no VFIO device cdev: %s", strerror(errno));
	}
	EXPECT_EQ(0, file_add(dev, c));
	EXPECT_EQ(-EEXIST, file_add(dev, c));
	EXPECT_EQ(0, file_del(dev, c));
	EXPECT_EQ(0, file_add(dev, c));
	/* Closed while held: the bridge's reference goes with the bridge. */
	close(c);
	close(dev);
	close(pt);
}

/*
 * Close orderings. The bridge holds the partition and the VFIO files; the
 * partition goes only when the last of its fd and the bridge goes; the
 * files go with the bridge fd, synchronously.
 */
TEST_F(bridge, close_partition_first)
{
	struct vmm v;

	ASSERT_EQ(0, vmm_start(self->mshv, &v));
	EXPECT_EQ(1, bridge_on(v.id, 1));
	close(v.group);
	/* The bridge holds the group: it cannot be opened again. */
	EXPECT_EQ(-1, group_open());
	EXPECT_EQ(EBUSY, errno);
	close(v.pt);
	/* The bridge holds the partition. */
	EXPECT_EQ(1, sim_has_partition(v.id));
	EXPECT_EQ(1, bridge_on(v.id, 1));
	close(v.dev);
	EXPECT_EQ(0, sim_has_partition(v.id));
}

TEST_F(bridge, close_bridge_first)
{
	struct vmm v;
	int g;

	ASSERT_EQ(0, vmm_start(self->mshv, &v));
	close(v.dev);
	/* The reference went with the bridge fd: closing ours frees the group. */
	close(v.group);
	g = group_open();
	EXPECT_LE(0, g);
	if (g >= 0)
		close(g);
	EXPECT_EQ(1, sim_has_partition(v.id));
	close(v.pt);
	EXPECT_EQ(0, sim_has_partition(v.id));
}

TEST_F(bridge, close_vfio_file_first)
{
	struct vmm v;

	ASSERT_EQ(0, vmm_start(self->mshv, &v));
	close(v.group);
	close(v.pt);
	EXPECT_EQ(1, sim_has_partition(v.id));
	close(v.dev);
}

/* A VMM that exits without closing anything leaves nothing behind. */
TEST_F(bridge, process_exit)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmm v;

		_exit(vmm_start(self->mshv, &v) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * fd passing: the partition comes from the fd, not from the task. The
 * parent creates the partition and passes its fd; another process creates
 * the bridge on it, adds its own VFIO group and passes the bridge back; the
 * bridge is on the parent's partition and outlives the child.
 */
TEST_F(bridge, fds_passed_to_another_process)
{
	int sv[2], pt, dev, status;
	long long id;
	pid_t pid;

	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	id = sim_newest_partition();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int got, d, g;

		close(pt);
		if (recv_fds(sv[1], &got, 1))
			_exit(1);
		d = create_bridge(got);
		g = group_open();
		if (d < 0 || g < 0 || file_add(d, g))
			_exit(2);
		if (send_fds(sv[1], &d, 1))
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(0, send_fds(sv[0], &pt, 1));
	ASSERT_EQ(0, recv_fds(sv[0], &dev, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(sv[0]);
	close(sv[1]);
	/* The child is gone; its bridge and group file live on in our fd. */
	EXPECT_EQ(1, bridge_on(id, 1));
	EXPECT_EQ(-1, group_open());
	close(pt);
	EXPECT_EQ(1, sim_has_partition(id));
	close(dev);
	EXPECT_EQ(0, sim_has_partition(id));
}

/* Two partitions, a bridge on each: each bridge names its own partition. */
TEST_F(bridge, one_bridge_per_partition_each_its_own)
{
	int pt1, pt2, d1, d2;
	long long id1, id2;

	pt1 = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt1);
	id1 = sim_newest_partition();
	pt2 = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt2);
	id2 = sim_newest_partition();
	ASSERT_NE(id1, id2);
	d2 = create_bridge(pt2);
	d1 = create_bridge(pt1);
	ASSERT_LE(0, d1);
	ASSERT_LE(0, d2);
	EXPECT_EQ(1, bridge_on(id1, 0));
	EXPECT_EQ(1, bridge_on(id2, 0));
	close(d1);
	EXPECT_EQ(0, bridge_on(id1, 0));
	EXPECT_EQ(1, bridge_on(id2, 0));
	close(d2);
	close(pt1);
	close(pt2);
}

/*
 * No module unload while a bridge is alive: it holds mshv_vfio (the
 * provider took it with symbol_get()).
 */
TEST_F(bridge, modules_stay_while_objects_live)
{
	int pt, dev;

	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	dev = create_bridge(pt);
	ASSERT_LE(0, dev);
	EXPECT_EQ(-1, syscall(SYS_delete_module, "mshv_vfio", O_NONBLOCK));
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY) TH_LOG("%s", strerror(errno));
	close(dev);
	close(pt);
}

static int set_memory(int pt, __u64 gfn, void *va, __u64 size, __u8 flags)
{
	struct mshv_user_mem_region m = {
		.size = size, .guest_pfn = gfn,
		.userspace_addr = (__u64)(uintptr_t)va, .flags = flags,
	};

	return ioctl(pt, MSHV_SET_GUEST_MEMORY, &m) ? -errno : 0;
}

#ifndef BIT
#define BIT(n)	(1UL << (n))
#endif
#define WR	BIT(MSHV_SET_MEM_BIT_WRITABLE)
#define UNMAP	BIT(MSHV_SET_MEM_BIT_UNMAP)

/*
 * MSHV_SET_GUEST_MEMORY of the simulated provider: each region is pinned
 * and mapped in the partition's SLAT, page by page at the PFN user space
 * has (/proc/self/pagemap), writable iff asked; 7.3's refusals change
 * nothing; an unmap names a region exactly; closing the partition unpins
 * everything (the teardown counts the pins).
 */
TEST_F(bridge, guest_memory_pinned_and_mapped)
{
	char *ram = buffer(48 * PG, MAP_POPULATE);
	struct range r[2] = {
		{ .iova = 0x100 * PG, .va = ram, .pages = 16, .writable = 1 },
		{ .iova = 0x200 * PG, .va = ram + 16 * PG, .pages = 8, .writable = 0 },
	};
	struct mshv_user_mem_region bad = { .size = PG, .userspace_addr = 0 };
	long long id;
	char *hole;
	int pt;

	ASSERT_NE(NULL, ram);
	pt = create_partition_v2(self->mshv);
	ASSERT_LE(0, pt);
	id = sim_newest_partition();
	EXPECT_EQ(0, compare_guest(id, r, 0));
	EXPECT_EQ(0, set_memory(pt, 0x100, ram, 16 * PG, WR));
	EXPECT_EQ(0, set_memory(pt, 0x200, ram + 16 * PG, 8 * PG, 0));
	EXPECT_EQ(0, compare_guest(id, r, 2));
	EXPECT_EQ(self->pins + 24, pins_outstanding());

	/* Refused, and nothing changes. */
	EXPECT_EQ(-EEXIST, set_memory(pt, 0x10f, ram + 32 * PG, 2 * PG, WR));
	EXPECT_EQ(-EEXIST, set_memory(pt, 0x1ff, ram + 32 * PG, 2 * PG, WR));
	EXPECT_EQ(-EINVAL, set_memory(pt, 0x300, ram + 32 * PG, 0, WR));
	EXPECT_EQ(-EINVAL, set_memory(pt, 0x300, ram + 32 * PG, PG / 2, WR));
	EXPECT_EQ(-EINVAL, set_memory(pt, 0x300, ram + 32 * PG + 8, PG, WR));
	EXPECT_EQ(-EINVAL, set_memory(pt, 0x300, ram + 32 * PG, PG, 1 << 3));
	EXPECT_EQ(-EINVAL, set_memory(pt, ~0ull, ram + 32 * PG, 2 * PG, WR));
	/* More than the simulated provider's limit of 2^22 pages (16 GiB). */
	EXPECT_EQ(-E2BIG, set_memory(pt, 0x100000, ram, ((1ULL << 22) + 1) * PG, WR));
	bad.rsvd[3] = 1;
	bad.userspace_addr = (__u64)(uintptr_t)(ram + 32 * PG);
	EXPECT_EQ(-1, ioctl(pt, MSHV_SET_GUEST_MEMORY, &bad));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(pt, MSHV_SET_GUEST_MEMORY, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* Memory that is not there cannot be pinned. */
	hole = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	EXPECT_EQ(-EFAULT, set_memory(pt, 0x300, hole, 4 * PG, WR));
	munmap(hole, 4 * PG);
	EXPECT_EQ(0, compare_guest(id, r, 2));
	EXPECT_EQ(self->pins + 24, pins_outstanding());

	/* Unmap: the region exactly. */
	EXPECT_EQ(-ENOENT, set_memory(pt, 0x300, ram, 16 * PG, UNMAP));
	EXPECT_EQ(-EINVAL, set_memory(pt, 0x100, ram, 8 * PG, UNMAP));
	EXPECT_EQ(-EINVAL, set_memory(pt, 0x100, ram + PG, 16 * PG, UNMAP));
	EXPECT_EQ(0, set_memory(pt, 0x200, ram + 16 * PG, 8 * PG, UNMAP));
	EXPECT_EQ(0, compare_guest(id, r, 1));
	EXPECT_EQ(self->pins + 16, pins_outstanding());
	/* The guest range is free again. */
	EXPECT_EQ(0, set_memory(pt, 0x1ff, ram + 32 * PG, 2 * PG, WR));

	close(pt);
	EXPECT_EQ(0, sim_has_partition(id));
	munmap(ram, 48 * PG);
}

/*
 * Direct attach through VFIO type1 and the bridge, as Cloud Hypervisor does
 * it: guest RAM given to the partition, the group in a type1 container that
 * maps the same pages at IOVA = GPA, the group handed to the bridge.
 */
struct guest {
	int pt, bridge, group, container;
	long long id;
	char *ram;
	struct range r;
};

#define RAM_PAGES	64
#define RAM_GFN		0x100

static int dma_map(int c, __u64 iova, void *va, __u64 size, int writable)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | (writable ? VFIO_DMA_MAP_FLAG_WRITE : 0),
		.vaddr = (__u64)(uintptr_t)va, .iova = iova, .size = size,
	};

	return ioctl(c, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

static int dma_unmap(int c, __u64 iova, __u64 size)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .iova = iova, .size = size,
	};

	return ioctl(c, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
}

/* No fd open yet, RAM_PAGES of RAM for RAM_GFN: 0, or -1. */
static int guest_ram(struct guest *g)
{
	memset(g, 0, sizeof(*g));
	g->pt = -1;
	g->bridge = -1;
	g->group = -1;
	g->container = -1;
	g->ram = buffer(RAM_PAGES * PG, MAP_POPULATE);
	g->r = (struct range){ .iova = RAM_GFN * PG, .va = g->ram, .pages = RAM_PAGES,
			       .writable = 1 };
	return g->ram ? 0 : -1;
}

/* Closes one of guest_start()'s fds: 'p'artition, 'b'ridge, 'g'roup, 'c'ontainer. */
static void guest_close(struct guest *g, char which)
{
	int *fd = which == 'p' ? &g->pt : which == 'b' ? &g->bridge :
		  which == 'g' ? &g->group : &g->container;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Closes what guest_start() opened, in the order @order names ("pbgc"). */
static void guest_stop(struct guest *g, const char *order)
{
	for (; *order; order++)
		guest_close(g, *order);
	if (g->ram)
		munmap(g->ram, RAM_PAGES * PG);
}

/*
 * RAM, a partition that has it at RAM_GFN, a bridge on the partition: 0,
 * or -1 with what exists closed.
 */
static int guest_partition(int mshv, struct guest *g)
{
	if (guest_ram(g))
		return -1;
	g->pt = create_partition_v2(mshv);
	if (g->pt >= 0) {
		g->id = sim_newest_partition();
		if (!set_memory(g->pt, RAM_GFN, g->ram, RAM_PAGES * PG, WR))
			g->bridge = create_bridge(g->pt);
	}
	if (g->bridge >= 0)
		return 0;
	guest_stop(g, "pb");
	return -1;
}

/*
 * guest_partition(), and the group in a type1 container; @map: the
 * container maps the RAM at IOVA = GPA. The group is not handed to the
 * bridge yet. 0, or -1 with what exists closed.
 */
static int guest_start(int mshv, struct guest *g, int map)
{
	int type = VFIO_TYPE1v2_IOMMU;

	if (guest_partition(mshv, g))
		return -1;
	g->group = group_open();
	g->container = open("/dev/vfio/vfio", O_RDWR);
	if (g->group < 0 || g->container < 0 ||
	    ioctl(g->group, VFIO_GROUP_SET_CONTAINER, &g->container) ||
	    ioctl(g->container, VFIO_SET_IOMMU, type) ||
	    (map && dma_map(g->container, RAM_GFN * PG, g->ram, RAM_PAGES * PG, 1))) {
		guest_stop(g, "pbgc");
		return -1;
	}
	return 0;
}

/*
 * The device is in guest @g's partition: the simulator says so, the bridge
 * and the IOMMU driver agree, and what it reaches (the guest's SLAT) is the
 * VMM's mapping page by page. The paging domain, which no device uses now,
 * holds nothing in the hypervisor (the driver keeps the mapping in its
 * shadow and fills the domain again on the way back).
 */
#define ASSERT_DIRECT(gp, domain) do {						\
	const struct guest *_g = (gp);						\
										\
	ASSERT_EQ(-4, where(self->devid));					\
	ASSERT_EQ(_g->id, dev_partition(self->devid));				\
	EXPECT_EQ(1, bridge_mode());						\
	EXPECT_EQ(1, direct_devices());						\
	EXPECT_EQ(0, compare_guest(_g->id, &_g->r, 1));				\
	EXPECT_EQ(0, compare((domain), NULL, 0));				\
} while (0)

#define ASSERT_DOMAIN(domain) do {						\
	ASSERT_EQ((domain), where(self->devid));				\
	EXPECT_EQ(0, bridge_mode());						\
	EXPECT_EQ(0, direct_devices());						\
} while (0)

/*
 * The way Cloud Hypervisor runs: attach on FILE_ADD, back to the
 * container's domain on FILE_DEL; guest RAM cannot be unmapped meanwhile;
 * again after DEL; and after the RAM is gone, ADD keeps the device in its
 * domain (the mapping is no longer guest memory).
 */
TEST_F(bridge, direct_attach_and_back)
{
	struct guest g;
	long domain;

	ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
	domain = where(self->devid);
	ASSERT_LT(0, domain);
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DIRECT(&g, domain);
	/* Guest RAM stays while a device is attached directly. */
	EXPECT_EQ(-EBUSY, set_memory(g.pt, RAM_GFN, g.ram, RAM_PAGES * PG, UNMAP));
	EXPECT_EQ(0, compare_guest(g.id, &g.r, 1));

	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(domain, where(self->devid));
	EXPECT_EQ(-1, bridge_mode());
	EXPECT_EQ(0, direct_devices());
	EXPECT_EQ(0, compare(domain, &g.r, 1));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DIRECT(&g, domain);
	ASSERT_EQ(0, file_del(g.bridge, g.group));

	/* Without guest RAM behind the mapping: device-domain translation. */
	EXPECT_EQ(0, set_memory(g.pt, RAM_GFN, g.ram, RAM_PAGES * PG, UNMAP));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DOMAIN(domain);
	EXPECT_EQ(0, compare(domain, &g.r, 1));
	guest_stop(&g, "bgcp");
	EXPECT_EQ(0, sim_has_partition(g.id));
}

/*
 * What the VMM mapped must be the guest's memory: another host page at a
 * guest address, an address that is no guest memory, or a read-only
 * mapping each keep the device in its domain, with nothing changed.
 */
TEST_F(bridge, direct_attach_refused_when_mapping_disagrees)
{
	char *other = buffer(4 * PG, MAP_POPULATE);
	struct guest g;
	long domain;

	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, guest_start(self->mshv, &g, 0));
	domain = where(self->devid);
	ASSERT_LT(0, domain);
	/* An empty mapping agrees (nothing to disagree with); maps later are checked. */

	/* Another host page behind a guest address. */
	ASSERT_EQ(0, dma_map(g.container, RAM_GFN * PG, other, 4 * PG, 1));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DOMAIN(domain);
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(0, dma_unmap(g.container, RAM_GFN * PG, 4 * PG));

	/* An address that is not guest memory, backed by guest RAM's page. */
	ASSERT_EQ(0, dma_map(g.container, 0x10000 * PG, g.ram, 4 * PG, 1));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DOMAIN(domain);
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(0, dma_unmap(g.container, 0x10000 * PG, 4 * PG));

	/* Read-only: the guest's SLAT would let the device write. */
	ASSERT_EQ(0, dma_map(g.container, RAM_GFN * PG, g.ram, 4 * PG, 0));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DOMAIN(domain);
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	guest_stop(&g, "bgcp");
	munmap(other, 4 * PG);
}

/*
 * A map into the domain after the attach is checked as well: one that
 * disagrees returns the device to device-domain translation at once (the
 * map itself succeeds and is recorded exactly); once it is unmapped, the
 * VMM can have the device attached directly again (DEL, ADD).
 */
TEST_F(bridge, later_disagreeing_map_returns_the_device)
{
	char *other = buffer(4 * PG, MAP_POPULATE);
	struct range both[2];
	struct guest g;
	long domain;

	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, guest_start(self->mshv, &g, 0));
	domain = where(self->devid);
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	/* Mapped after the attach, as Cloud Hypervisor does: it agrees. */
	ASSERT_EQ(0, dma_map(g.container, RAM_GFN * PG, g.ram, RAM_PAGES * PG, 1));
	ASSERT_DIRECT(&g, domain);

	ASSERT_EQ(0, dma_map(g.container, 0x10000 * PG, other, 4 * PG, 1));
	ASSERT_DOMAIN(domain);
	both[0] = g.r;
	both[1] = (struct range){ .iova = 0x10000 * PG, .va = other, .pages = 4, .writable = 1 };
	EXPECT_EQ(0, compare(domain, both, 2));
	/* Still refused while the disagreeing map is there. */
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DOMAIN(domain);
	ASSERT_EQ(0, dma_unmap(g.container, 0x10000 * PG, 4 * PG));
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DIRECT(&g, domain);
	guest_stop(&g, "bgcp");
	munmap(other, 4 * PG);
}

/*
 * Runs of consecutive frames behind @pages pages at @va, 507 pages at most
 * each: the MAP calls a fill of them takes.
 */
static unsigned long frame_runs(void *va, unsigned long pages)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);
	unsigned long runs = 0, n = 0, i;
	uint64_t prev = 0;

	if (pm < 0)
		return 0;
	for (i = 0; i < pages; i++) {
		uint64_t pfn = user_pfn(pm, (char *)va + i * PG);

		if (!i || pfn != prev + 1 || n == 507) {
			runs++;
			n = 0;
		}
		n++;
		prev = pfn;
	}
	close(pm);
	return runs;
}

/* Calls of @code that succeeded. */
static long ok_calls(int code)
{
	struct hv_stat s;

	return hv_stat(code, &s) ? -1 : (long)(s.calls - s.failed);
}

/*
 * The paging domain holds the mapping in the hypervisor only while the
 * device uses it: Cloud Hypervisor's order (FILE_ADD, then all guest RAM
 * mapped) issues no MAP at all while the device is in the guest, and
 * unmaps there issue no UNMAP; the way back fills the domain with one MAP
 * per run of consecutive frames, exactly; the next ADD empties it with one
 * UNMAP (one run of IOVA).
 */
TEST_F(bridge, domain_filled_only_while_the_device_uses_it)
{
	long domain, m0, u0;
	struct guest g;

	ASSERT_EQ(0, guest_start(self->mshv, &g, 0));
	domain = where(self->devid);
	ASSERT_LT(0, domain);
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	m0 = ok_calls(0xb3);
	u0 = ok_calls(0xb4);
	ASSERT_LE(0, m0);
	ASSERT_LE(0, u0);
	ASSERT_EQ(0, dma_map(g.container, RAM_GFN * PG, g.ram, RAM_PAGES * PG, 1));
	ASSERT_EQ(0, dma_unmap(g.container, RAM_GFN * PG, RAM_PAGES * PG));
	ASSERT_EQ(0, dma_map(g.container, RAM_GFN * PG, g.ram, RAM_PAGES * PG, 1));
	EXPECT_EQ(m0, ok_calls(0xb3));
	EXPECT_EQ(u0, ok_calls(0xb4));
	ASSERT_DIRECT(&g, domain);

	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, compare(domain, &g.r, 1));
	EXPECT_EQ(m0 + (long)frame_runs(g.ram, RAM_PAGES), ok_calls(0xb3));

	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DIRECT(&g, domain);
	EXPECT_EQ(u0 + 1, ok_calls(0xb4));
	guest_stop(&g, "bgcp");
	EXPECT_EQ(0, sim_has_partition(g.id));
}

/*
 * A read-only map into the empty domain of a device in a guest: the domain
 * is filled first (the read/write pages as mapped), the read-only pages go
 * in read-only, and the device goes back to it (the guest would let it
 * write). Page by page, flags included.
 */
TEST_F(bridge, read_only_map_fills_the_domain_and_returns_the_device)
{
	char *other = buffer(4 * PG, MAP_POPULATE);
	struct range both[2];
	struct guest g;
	long domain;

	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, guest_start(self->mshv, &g, 0));
	domain = where(self->devid);
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_EQ(0, dma_map(g.container, RAM_GFN * PG, g.ram, RAM_PAGES * PG, 1));
	ASSERT_DIRECT(&g, domain);

	ASSERT_EQ(0, dma_map(g.container, 0x10000 * PG, other, 4 * PG, 0));
	ASSERT_DOMAIN(domain);
	both[0] = g.r;
	both[1] = (struct range){ .iova = 0x10000 * PG, .va = other, .pages = 4, .writable = 0 };
	EXPECT_EQ(0, compare(domain, both, 2));
	/* Refused from now on (the domain had read-only mappings). */
	ASSERT_EQ(0, dma_unmap(g.container, 0x10000 * PG, 4 * PG));
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DOMAIN(domain);
	EXPECT_EQ(0, compare(domain, &g.r, 1));
	guest_stop(&g, "bgcp");
	munmap(other, 4 * PG);
}

/*
 * Mappings far apart (guest RAM low, and four guest pages 2 TiB up, both
 * mapped at IOVA = GPA): the agreement check walks what is mapped, not the
 * span, and the device is attached directly; the way back fills both.
 */
TEST_F(bridge, direct_attach_with_mappings_far_apart)
{
	const __u64 far_gfn = 1ULL << 29;
	char *far = buffer(4 * PG, MAP_POPULATE);
	struct range both[2];
	struct guest g;
	long domain;

	ASSERT_NE(NULL, far);
	ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
	domain = where(self->devid);
	ASSERT_EQ(0, set_memory(g.pt, far_gfn, far, 4 * PG, WR));
	ASSERT_EQ(0, dma_map(g.container, far_gfn * PG, far, 4 * PG, 1));
	both[0] = g.r;
	both[1] = (struct range){ .iova = far_gfn * PG, .va = far, .pages = 4, .writable = 1 };
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_EQ(-4, where(self->devid));
	EXPECT_EQ(g.id, dev_partition(self->devid));
	EXPECT_EQ(0, compare_guest(g.id, both, 2));
	EXPECT_EQ(0, compare(domain, NULL, 0));
	ASSERT_EQ(0, file_del(g.bridge, g.group));
	ASSERT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, compare(domain, both, 2));
	guest_stop(&g, "bgcp");
	munmap(far, 4 * PG);
}

/* hv_iommu_direct_attach=N: always device-domain translation. */
TEST_F(bridge, policy_never)
{
	struct guest g;
	long domain;

	ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
	domain = where(self->devid);
	ASSERT_EQ(0, put(DIRECT_PARAM, "N"));
	EXPECT_EQ(0, file_add(g.bridge, g.group));
	put(DIRECT_PARAM, "Y");
	ASSERT_DOMAIN(domain);
	EXPECT_EQ(0, compare(domain, &g.r, 1));
	guest_stop(&g, "bgcp");
}

/*
 * Every close order: the partition is destroyed only after the device left
 * it, whatever goes first; the device ends where it was before.
 */
TEST_F(bridge, direct_attach_close_orders)
{
	static const char *const orders[] = {
		"pbgc", "pgcb", "bpgc", "gcbp", "cgpb", "gpcb",
	};
	struct guest g;

	for (unsigned int i = 0; i < ARRAY_SIZE(orders); i++) {
		const char *o = orders[i];

		ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
		ASSERT_EQ(0, file_add(g.bridge, g.group));
		ASSERT_EQ(-4, where(self->devid)) TH_LOG("order %s", o);
		for (; *o; o++) {
			guest_close(&g, *o);
			if (where(self->devid) == -4)
				EXPECT_EQ(1, sim_has_partition(g.id)) TH_LOG("order %s", orders[i]);
		}
		munmap(g.ram, RAM_PAGES * PG);
		EXPECT_NE(-4, where(self->devid)) TH_LOG("order %s", orders[i]);
		EXPECT_EQ(0, sim_has_partition(g.id)) TH_LOG("order %s", orders[i]);
		EXPECT_EQ(0, direct_devices());
	}
}

/* The VMM dies with its device attached directly: everything is undone. */
TEST_F(bridge, direct_attach_process_exit)
{
	long long id = -1;
	int st, p[2];
	pid_t pid;

	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct guest g;

		close(p[0]);
		if (guest_start(self->mshv, &g, 1) || file_add(g.bridge, g.group) ||
		    where(self->devid) != -4)
			_exit(1);
		_exit(write(p[1], &g.id, sizeof(g.id)) == sizeof(g.id) ? 0 : 1);
	}
	close(p[1]);
	EXPECT_EQ((ssize_t)sizeof(id), read(p[0], &id, sizeof(id)));
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EXPECT_EQ(0, sim_has_partition(id));
}

/*
 * Injected hypercall failures at each step leave the driver and the
 * hypervisor agreeing: ATTACH_DEVICE refused (still in the domain, ADD
 * still succeeds: the device just is not attached directly); DETACH_DEVICE
 * refused at DEL (still in the guest, which stays; the IOMMU core's move at
 * VFIO's release detaches it later); the domain attach refused on the way
 * back (the device re-enters the guest).
 */
TEST_F(bridge, direct_attach_hypercall_failures)
{
	struct guest g;
	long domain;

	ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
	domain = where(self->devid);

	ASSERT_EQ(0, ctl("fault 0x82 0 1 fail 0x6 0"));
	EXPECT_EQ(0, file_add(g.bridge, g.group));
	ctl("fault-clear");
	ASSERT_DOMAIN(domain);
	ASSERT_EQ(0, file_del(g.bridge, g.group));

	/* ATTACH_DEVICE_DOMAIN refused on the way back: back in the guest. */
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DIRECT(&g, domain);
	ASSERT_EQ(0, ctl("fault 0xb2 0 1 fail 0x6 0"));
	EXPECT_EQ(0, file_del(g.bridge, g.group));
	ctl("fault-clear");
	ASSERT_EQ(-4, where(self->devid));
	EXPECT_EQ(1, direct_devices());

	/* The file is gone from the bridge; VFIO's release moves the device. */
	guest_stop(&g, "pbgc");
	EXPECT_EQ(0, sim_has_partition(g.id));

	/*
	 * MAP refused while the home domain is filled again on the way back:
	 * the device stays in the guest and the domain stays empty (nothing
	 * half-filled is left in the hypervisor).
	 */
	ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
	domain = where(self->devid);
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_DIRECT(&g, domain);
	ASSERT_EQ(0, ctl("fault 0xb3 0 1 fail 0x6 0"));
	EXPECT_EQ(0, file_del(g.bridge, g.group));
	ctl("fault-clear");
	ASSERT_EQ(-4, where(self->devid));
	EXPECT_EQ(1, direct_devices());
	EXPECT_EQ(0, compare(domain, NULL, 0));
	guest_stop(&g, "pbgc");
	EXPECT_EQ(0, sim_has_partition(g.id));

	/* DETACH_DEVICE refused at DEL: the device and the guest stay. */
	ASSERT_EQ(0, guest_start(self->mshv, &g, 1));
	ASSERT_EQ(0, file_add(g.bridge, g.group));
	ASSERT_EQ(0, ctl("fault 0x83 0 1 fail 0x6 0"));
	EXPECT_EQ(0, file_del(g.bridge, g.group));
	ctl("fault-clear");
	ASSERT_EQ(-4, where(self->devid));
	guest_stop(&g, "pbgc");
	EXPECT_EQ(0, sim_has_partition(g.id));
}

/*
 * Direct attach through iommufd: a guest partition HWPT
 * (IOMMU_HWPT_DATA_HYPERV_PARTITION, naming the partition by the bridge
 * device fd) nested on a NEST_PARENT paging HWPT that holds the VMM's
 * mapping. Attaching the device to it attaches it to the partition.
 */
struct ifd {
	struct guest g;
	int iommufd, dev;
	__u32 dev_id, ioas, parent;
};

static int hwpt_alloc(int iommufd, __u32 dev_id, __u32 pt, __u32 flags,
		      __u32 type, const void *data, __u32 len, __u32 *out)
{
	struct iommu_hwpt_alloc a = {
		.size = sizeof(a), .flags = flags, .dev_id = dev_id, .pt_id = pt,
		.data_type = type, .data_len = len,
		.data_uptr = (__u64)(uintptr_t)data,
	};

	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &a))
		return -errno;
	*out = a.out_hwpt_id;
	return 0;
}

/* A guest partition HWPT on @parent for the bridge @fd; its id or -errno. */
static long partition_hwpt(struct ifd *f, __u32 parent, int fd)
{
	struct iommu_hwpt_hyperv_partition d = { .fd = fd };
	__u32 id = 0;
	int rc;

	rc = hwpt_alloc(f->iommufd, f->dev_id, parent, 0,
			IOMMU_HWPT_DATA_HYPERV_PARTITION, &d, sizeof(d), &id);
	return rc ? rc : (long)id;
}

static int attach_pt(int dev, __u32 pt)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = pt };

	return ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) ? -errno : 0;
}

static int ioas_map(struct ifd *f, __u64 iova, void *va, __u64 len, int writable)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 (writable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = f->ioas, .user_va = (__u64)(uintptr_t)va,
		.length = len, .iova = iova,
	};

	return ioctl(f->iommufd, IOMMU_IOAS_MAP, &m) ? -errno : 0;
}

static int ioas_unmap(struct ifd *f, __u64 iova, __u64 len)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = f->ioas, .iova = iova, .length = len,
	};

	return ioctl(f->iommufd, IOMMU_IOAS_UNMAP, &u) ? -errno : 0;
}

/*
 * Partition with RAM and a bridge (guest_start() without VFIO type1), the
 * device's cdev bound to a new iommufd, an IOAS, a NEST_PARENT paging HWPT
 * on it with the device attached; @map: the IOAS maps the RAM at IOVA =
 * GPA. 0, or -1 with what exists closed.
 */
static int ifd_start(int mshv, struct ifd *f, int map)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct guest *g = &f->g;

	f->iommufd = -1;
	f->dev = -1;
	if (guest_partition(mshv, g))
		return -1;
	f->iommufd = open("/dev/iommu", O_RDWR);
	f->dev = vfio_cdev_open(bdf());
	if (f->iommufd < 0 || f->dev < 0)
		goto fail;
	bind.iommufd = f->iommufd;
	if (ioctl(f->dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(f->iommufd, IOMMU_IOAS_ALLOC, &ioas))
		goto fail;
	f->dev_id = bind.out_devid;
	f->ioas = ioas.out_ioas_id;
	if (hwpt_alloc(f->iommufd, f->dev_id, f->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT,
		       IOMMU_HWPT_DATA_NONE, NULL, 0, &f->parent) ||
	    attach_pt(f->dev, f->parent))
		goto fail;
	if (map && ioas_map(f, RAM_GFN * PG, g->ram, RAM_PAGES * PG, 1))
		goto fail;
	return 0;
fail:
	if (f->dev >= 0)
		close(f->dev);
	if (f->iommufd >= 0)
		close(f->iommufd);
	guest_stop(g, "pb");
	return -1;
}

/*
 * Attach to the partition HWPT and back to the parent, again, a later map
 * that disagrees (back to device-domain translation at once, though
 * iommufd still has the device on the partition HWPT), and the lifetime:
 * the HWPT holds the partition after the VMM closed the partition and
 * bridge fds, until the HWPT is destroyed.
 */
TEST_F(bridge, iommufd_partition_hwpt)
{
	char *other = buffer(4 * PG, MAP_POPULATE);
	struct ifd f;
	long domain, n;

	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, ifd_start(self->mshv, &f, 1));
	domain = where(self->devid);
	ASSERT_LT(0, domain);
	n = partition_hwpt(&f, f.parent, f.g.bridge);
	ASSERT_LT(0, n) TH_LOG("partition HWPT: %s", strerror(-n));
	/* Allocating it moves nothing. */
	ASSERT_EQ(domain, where(self->devid));
	ASSERT_EQ(0, attach_pt(f.dev, n));
	ASSERT_EQ(-4, where(self->devid));
	ASSERT_EQ(f.g.id, dev_partition(self->devid));
	EXPECT_EQ(1, direct_devices());
	EXPECT_EQ(0, compare_guest(f.g.id, &f.g.r, 1));
	/* The parent, which no device uses now, is emptied in the hypervisor. */
	EXPECT_EQ(0, compare(domain, NULL, 0));
	EXPECT_EQ(-EBUSY, set_memory(f.g.pt, RAM_GFN, f.g.ram, RAM_PAGES * PG, UNMAP));

	/* Back in the parent: filled again, exactly. */
	ASSERT_EQ(0, attach_pt(f.dev, f.parent));
	ASSERT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, direct_devices());
	EXPECT_EQ(0, compare(domain, &f.g.r, 1));
	ASSERT_EQ(0, attach_pt(f.dev, n));
	ASSERT_EQ(-4, where(self->devid));

	/* A map that is not guest memory: back to the parent's domain. */
	ASSERT_EQ(0, ioas_map(&f, 0x10000 * PG, other, 4 * PG, 1));
	ASSERT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, direct_devices());
	/*
	 * Attaching again leaves it in the parent's domain while the map is
	 * there (the attach itself succeeds: a re-attach after a reset must),
	 * and attaches it directly after.
	 */
	ASSERT_EQ(0, attach_pt(f.dev, f.parent));
	EXPECT_EQ(0, attach_pt(f.dev, n));
	ASSERT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, direct_devices());
	ASSERT_EQ(0, ioas_unmap(&f, 0x10000 * PG, 4 * PG));
	/* Attached to n already in iommufd's view: that would change nothing. */
	ASSERT_EQ(0, attach_pt(f.dev, f.parent));
	ASSERT_EQ(0, attach_pt(f.dev, n));
	ASSERT_EQ(-4, where(self->devid));

	/* The VMM closes the partition and the bridge: the HWPT holds the partition. */
	guest_close(&f.g, 'b');
	guest_close(&f.g, 'p');
	EXPECT_EQ(1, sim_has_partition(f.g.id));
	ASSERT_EQ(-4, where(self->devid));
	/* Closing the device detaches it; destroying the HWPT lets the partition go. */
	close(f.dev);
	EXPECT_NE(-4, where(self->devid));
	EXPECT_EQ(0, direct_devices());
	EXPECT_EQ(1, sim_has_partition(f.g.id));
	close(f.iommufd);
	EXPECT_EQ(0, sim_has_partition(f.g.id));
	munmap(f.g.ram, RAM_PAGES * PG);
	munmap(other, 4 * PG);
}

/*
 * Every refusal leaves nothing: another data type, reserved bits, a short
 * struct, an fd that is not a bridge (the partition fd itself, /dev/null),
 * a bad fd, a parent without NEST_PARENT, the policy. A mapping that is
 * not the guest's memory, or the policy set after the HWPT was made, keep
 * the device in the parent's domain on attach.
 */
TEST_F(bridge, iommufd_partition_hwpt_refusals)
{
	struct iommu_hwpt_hyperv_partition d = { 0 };
	char *other = buffer(4 * PG, MAP_POPULATE);
	__u32 id, plain = 0;
	struct ifd f;
	long domain, n;
	int null;

	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, ifd_start(self->mshv, &f, 0));
	domain = where(self->devid);
	d.fd = f.g.bridge;
	EXPECT_EQ(-EOPNOTSUPP, hwpt_alloc(f.iommufd, f.dev_id, f.parent, 0,
					  IOMMU_HWPT_DATA_HYPERV_PARTITION + 1,
					  &d, sizeof(d), &id));
	d.__reserved = 1;
	EXPECT_EQ(-EINVAL, hwpt_alloc(f.iommufd, f.dev_id, f.parent, 0,
				      IOMMU_HWPT_DATA_HYPERV_PARTITION, &d, sizeof(d), &id));
	d.__reserved = 0;
	EXPECT_EQ(-EINVAL, hwpt_alloc(f.iommufd, f.dev_id, f.parent, 0,
				      IOMMU_HWPT_DATA_HYPERV_PARTITION, &d, 4, &id));
	EXPECT_EQ(-EINVAL, partition_hwpt(&f, f.parent, f.g.pt));
	null = open("/dev/null", O_RDWR);
	ASSERT_LE(0, null);
	EXPECT_EQ(-EINVAL, partition_hwpt(&f, f.parent, null));
	close(null);
	EXPECT_EQ(-EBADF, partition_hwpt(&f, f.parent, -1));
	ASSERT_EQ(0, hwpt_alloc(f.iommufd, f.dev_id, f.ioas, 0, IOMMU_HWPT_DATA_NONE,
				NULL, 0, &plain));
	EXPECT_EQ(-EINVAL, partition_hwpt(&f, plain, f.g.bridge));
	ASSERT_EQ(0, put(DIRECT_PARAM, "N"));
	EXPECT_EQ(-EPERM, partition_hwpt(&f, f.parent, f.g.bridge));
	put(DIRECT_PARAM, "Y");
	EXPECT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, direct_devices());

	/* The policy turned off after the HWPT was made: device-domain translation. */
	n = partition_hwpt(&f, f.parent, f.g.bridge);
	ASSERT_LT(0, n);
	ASSERT_EQ(0, put(DIRECT_PARAM, "N"));
	EXPECT_EQ(0, attach_pt(f.dev, n));
	put(DIRECT_PARAM, "Y");
	EXPECT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, direct_devices());
	ASSERT_EQ(0, attach_pt(f.dev, f.parent));

	/* Another host page behind a guest address: likewise. */
	ASSERT_EQ(0, ioas_map(&f, RAM_GFN * PG, other, 4 * PG, 1));
	EXPECT_EQ(0, attach_pt(f.dev, n));
	EXPECT_EQ(domain, where(self->devid));
	EXPECT_EQ(0, direct_devices());
	close(f.dev);
	close(f.iommufd);
	guest_stop(&f.g, "bp");
	munmap(other, 4 * PG);
}

/* The simulator cannot be reset under live partitions' fds. */
TEST_F(bridge, simulator_reset_refused_while_partitions_live)
{
	int pt = create_partition_v2(self->mshv);

	ASSERT_LE(0, pt);
	EXPECT_EQ(-EBUSY, ctl("reset"));
	close(pt);
}

TEST_HARNESS_MAIN
