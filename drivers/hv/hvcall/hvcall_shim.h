/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Functions of hvcall_shim.c, called from Rust (hvcall_main.rs declares
 * them in an extern "C" block with the same signatures).
 */
#ifndef MSHV_PT_HVCALL_SHIM_H
#define MSHV_PT_HVCALL_SHIM_H

/*
 * 0 on an MSHV root partition with device domains or on L1VH; -ENODEV when
 * not running as such a partition; -EOPNOTSUPP when the hypervisor lacks
 * device domains.
 */
int mshv_hvcall_native_probe(void);

#endif
