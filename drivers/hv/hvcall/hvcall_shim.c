// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C shim of the mshv_hvcall module: the Hyper-V helpers that the kernel
 * offers only as static inlines or macros. This is the only code that talks
 * to the real hypervisor; see Documentation/hv-backend.rst.
 */

#include <linux/errno.h>
#include <linux/types.h>
#include <linux/bits.h>
#include <linux/printk.h>
#if IS_ENABLED(CONFIG_HYPERV)
#include <asm/mshyperv.h>
#endif

#include "hvcall_shim.h"

/* CPUID 0x40000003 EDX bit 24; not in the 7.3 headers yet. */
#define MSHV_PT_HV_DEVICE_DOMAIN_AVAILABLE	BIT(24)

int mshv_hvcall_native_probe(void)
{
#if IS_ENABLED(CONFIG_HYPERV)
	if (!hv_is_hyperv_initialized())
		return -ENODEV;
	if (hv_l1vh_partition())
		return 0;
	if (!hv_root_partition())
		return -ENODEV;
	if (!(ms_hyperv.misc_features & MSHV_PT_HV_DEVICE_DOMAIN_AVAILABLE))
		return -EOPNOTSUPP;
	return 0;
#else
	return -ENODEV;
#endif
}
