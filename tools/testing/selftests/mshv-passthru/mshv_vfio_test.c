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

#define BRIDGE_STATE	DBG "mshv_vfio/state"

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

FIXTURE(bridge) {
	int mshv;
	int fds, partitions;
	long long pins;
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

/* The simulator cannot be reset under live partitions' fds. */
TEST_F(bridge, simulator_reset_refused_while_partitions_live)
{
	int pt = create_partition_v2(self->mshv);

	ASSERT_LE(0, pt);
	EXPECT_EQ(-EBUSY, ctl("reset"));
	close(pt);
}

TEST_HARNESS_MAIN
