/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the C part of the mshv-vfio bridge (mshv_vfio_shim.c:
 * the device type table providers find with symbol_get(), the partition
 * reference, the VFIO file check) and its Rust part (mshv_vfio_main.rs: the
 * bridge state and every rule of the attribute ioctls). mshv_vfio_main.rs
 * declares the C functions and defines the mshv_vfio_rs_* functions with
 * the same signatures.
 */
#ifndef MSHV_PT_MSHV_VFIO_H
#define MSHV_PT_MSHV_VFIO_H

#include <linux/types.h>

struct file;

/* ---- Implemented in Rust ---- */

/*
 * A new bridge on the partition with hypervisor id @partition_id. NULL and
 * *err (-ENOMEM) on failure.
 */
void *mshv_vfio_rs_create(u64 partition_id, int *err);
/* Drops every VFIO file reference the bridge holds and frees it. */
void mshv_vfio_rs_release(void *bridge);
/* MSHV_SET_DEVICE_ATTR with the fields of struct mshv_device_attr. */
long mshv_vfio_rs_set_attr(void *bridge, u32 flags, u32 group, u64 attr,
			   u64 addr);
/* The "has" attribute ioctls (nr 0x01 and 0x02). */
long mshv_vfio_rs_has_attr(void *bridge, u32 flags, u32 group, u64 attr,
			   u64 addr);

/* ---- Implemented in C ---- */

/* Whether @file is a VFIO group or device (cdev) file. */
bool mshv_vfio_file_is_vfio(struct file *file);

#endif
