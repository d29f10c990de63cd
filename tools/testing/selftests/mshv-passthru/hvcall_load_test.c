// SPDX-License-Identifier: GPL-2.0
/*
 * Load policy of mshv_hvcall.ko, the project's hypercall backend.
 *
 * Outside an MSHV root or L1VH partition the module must refuse to load
 * unless simulate=1 is given, must reject a malformed parameter, and with
 * simulate=1 must load and unload cleanly. The simulator's debugfs control
 * file must apply good commands and reject bad ones with a specific errno and
 * no change. The module is found through MSHV_PT_TOP (the repository top, set
 * by the VM runner).
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define MOD_NAME "mshv_hvcall"
#define MOD_SYSFS "/sys/module/" MOD_NAME

static int finit_module(int fd, const char *params)
{
	return syscall(SYS_finit_module, fd, params, 0);
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK);
}

static bool module_loaded(void)
{
	struct stat st;

	return stat(MOD_SYSFS, &st) == 0;
}

/* Running on Hyper-V (CPUID leaf 0x40000000 vendor "Microsoft Hv")? */
static bool on_hyperv(void)
{
	unsigned int eax, regs[3];
	char vendor[13] = {};

	__cpuid(0x40000000, eax, regs[0], regs[1], regs[2]);
	memcpy(vendor, regs, 12);
	return !strcmp(vendor, "Microsoft Hv");
}

FIXTURE(hvcall) {
	int fd;
};

FIXTURE_SETUP(hvcall)
{
	const char *top = getenv("MSHV_PT_TOP");
	char path[PATH_MAX];

	self->fd = -1;
	if (!top)
		SKIP(return, "MSHV_PT_TOP is not set");
	if (module_loaded())
		SKIP(return, MOD_NAME " is already loaded");
	snprintf(path, sizeof(path), "%s/drivers/hv/hvcall/" MOD_NAME ".ko", top);
	self->fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", path, strerror(errno));
}

FIXTURE_TEARDOWN(hvcall)
{
	if (self->fd >= 0)
		close(self->fd);
	if (module_loaded())
		delete_module(MOD_NAME);
}

TEST_F(hvcall, refuses_without_simulate)
{
	if (on_hyperv())
		SKIP(return, "running on Hyper-V: the native backend may load");
	ASSERT_EQ(-1, finit_module(self->fd, ""));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_FALSE(module_loaded());
}

TEST_F(hvcall, rejects_malformed_parameter)
{
	ASSERT_EQ(-1, finit_module(self->fd, "simulate=banana"));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_FALSE(module_loaded());
}

TEST_F(hvcall, loads_and_unloads_with_simulate)
{
	char buf[16] = {};
	int fd;

	ASSERT_EQ(0, finit_module(self->fd, "simulate=1"))
		TH_LOG("finit_module: %s", strerror(errno));
	ASSERT_TRUE(module_loaded());
	fd = open("/sys/kernel/debug/mshv_hvcall/backend", O_RDONLY);
	ASSERT_LE(0, fd) TH_LOG("debugfs backend file: %s", strerror(errno));
	ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
	close(fd);
	EXPECT_STREQ("simulated\n", buf);
	ASSERT_EQ(0, delete_module(MOD_NAME)) TH_LOG("delete_module: %s", strerror(errno));
	EXPECT_FALSE(module_loaded());
}

#define DBG "/sys/kernel/debug/mshv_hvcall/"

/* Writes @cmd to the control file; 0 or the errno of the write. */
static int control(const char *cmd)
{
	int fd = open(DBG "control", O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return errno;
	n = write(fd, cmd, strlen(cmd));
	err = n < 0 ? errno : 0;
	close(fd);
	return err;
}

/* Reads the simulator dump into @buf (NUL-terminated). */
static int dump(char *buf, size_t len)
{
	int fd = open(DBG "dump", O_RDONLY);
	ssize_t n, off = 0;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf + off, len - 1 - off)) > 0)
		off += n;
	close(fd);
	buf[off] = 0;
	return n < 0 ? -1 : 0;
}

TEST_F(hvcall, simulator_control)
{
	static const char * const bad[] = {
		"resett", "reset now", "fault 0xb3 1 0 partial 3",
		"fault 0xb3 1 1 explode", "device-add 0x8000000000000000",
		"device-add 12z", NULL,
	};
	static const char * const out_of_range[] = {
		"fault 0x1ffff 0 1 partial 1",
		"require-deposit self 99999999999999999999999", NULL,
	};
	char boot[4096], before[4096], after[4096], big[200];
	const char * const *cmd;

	if (on_hyperv())
		SKIP(return, "running on Hyper-V: no simulator");
	ASSERT_EQ(0, finit_module(self->fd, "simulate=1"))
		TH_LOG("finit_module: %s", strerror(errno));
	/* The boot state: the VM's PCI functions in the default domain. */
	ASSERT_EQ(0, dump(boot, sizeof(boot)));
	EXPECT_NE(NULL, strstr(boot, "device 0x4000000000000000 domain default"))
		TH_LOG("dump:\n%s", boot);
	ASSERT_EQ(0, control("device-add 0x4000000000000300\n"));
	ASSERT_EQ(0, dump(before, sizeof(before)));
	EXPECT_NE(NULL, strstr(before, "device 0x4000000000000300 domain default"))
		TH_LOG("dump:\n%s", before);

	/* Bad input: a specific errno and nothing changes. */
	for (cmd = bad; *cmd; cmd++) {
		int err = control(*cmd);

		if (err != EINVAL)
			printf("# command '%s': errno %d\n", *cmd, err);
		EXPECT_EQ(EINVAL, err);
	}
	for (cmd = out_of_range; *cmd; cmd++) {
		int err = control(*cmd);

		if (err != ERANGE)
			printf("# command '%s': errno %d\n", *cmd, err);
		EXPECT_EQ(ERANGE, err);
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	EXPECT_EQ(EINVAL, control(big));
	EXPECT_EQ(EEXIST, control("device-add 0x4000000000000300"));
	EXPECT_EQ(ENOENT, control("device-remove 0x4000000000000400"));
	EXPECT_EQ(ENOENT, control("require-deposit 77 1"));
	EXPECT_EQ(ENOENT, control("partition-destroy 77"));
	ASSERT_EQ(0, dump(after, sizeof(after)));
	EXPECT_STREQ(before, after);

	/* Good input takes effect. */
	EXPECT_EQ(0, control("partition-create"));
	EXPECT_EQ(0, control("require-deposit 2 3"));
	EXPECT_EQ(0, control("fault 0xb3 0 1 partial 3"));
	EXPECT_EQ(0, control("fault-clear"));
	ASSERT_EQ(0, dump(after, sizeof(after)));
	EXPECT_NE(NULL, strstr(after, "partition 2 pool deposited=0 free=0 used=0 debt=3"))
		TH_LOG("dump:\n%s", after);
	EXPECT_EQ(0, control("partition-destroy 2"));
	EXPECT_EQ(0, control("device-remove 0x4000000000000300"));
	EXPECT_EQ(0, control("reset"));
	ASSERT_EQ(0, dump(after, sizeof(after)));
	EXPECT_STREQ(boot, after);
	ASSERT_EQ(0, delete_module(MOD_NAME)) TH_LOG("delete_module: %s", strerror(errno));
}

TEST_HARNESS_MAIN
