// SPDX-License-Identifier: GPL-2.0
/*
 * Load policy of mshv_hvcall.ko, the project's hypercall backend.
 *
 * Outside an MSHV root or L1VH partition the module must refuse to load
 * unless simulate=1 is given, must reject a malformed parameter, and with
 * simulate=1 must load and unload cleanly. The module is found through
 * MSHV_PT_TOP (the repository top, set by the VM runner).
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

TEST_HARNESS_MAIN
