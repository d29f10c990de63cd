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
 * A new bridge on the partition with hypervisor id @partition_id, for the
 * device @mdev (a struct mshv_device, valid until the release). NULL and
 * *err (-ENOMEM) on failure.
 */
void *mshv_vfio_rs_create(u64 partition_id, void *mdev, int *err);
/* Drops every VFIO file reference the bridge holds and frees it. */
void mshv_vfio_rs_release(void *bridge);
/* MSHV_SET_DEVICE_ATTR with the fields of struct mshv_device_attr. */
long mshv_vfio_rs_set_attr(void *bridge, u32 flags, u32 group, u64 attr,
			   u64 addr);
/*
 * If @mdev is the struct mshv_device of a live bridge: a reference to its
 * partition (through mshv_vfio_device_partition()) and 0; else -EINVAL.
 * @mdev is only compared until it is found to be live.
 */
int mshv_vfio_rs_partition_of(void *mdev, void **partition, const void **ops);
/* The "has" attribute ioctls (nr 0x01 and 0x02). */
long mshv_vfio_rs_has_attr(void *bridge, u32 flags, u32 group, u64 attr,
			   u64 addr);

/* ---- Implemented in C ---- */

struct pci_dev;

/* Whether @file is a VFIO group or device (cdev) file. */
bool mshv_vfio_file_is_vfio(struct file *file);
/*
 * The PCI functions behind a VFIO file (its device, or its group's devices)
 * in @devs, each with a reference (mshv_vfio_pci_put()). Their number, or
 * -E2BIG (more than @max) with no reference kept.
 */
int mshv_vfio_file_pci_devs(struct file *file, struct pci_dev **devs, int max);
/*
 * Asks hyperv_iommu_root to attach @pdev directly to the partition of the
 * struct mshv_device @mdev (hvir_attach_guest()); logs the mode it got. 0:
 * moved; 1: in that guest already (moved by someone else); else why not
 * (-ENODEV also when hyperv_iommu_root is not loaded).
 */
int mshv_vfio_attach(void *mdev, struct pci_dev *pdev);
/* Moves @pdev back out of @mdev's partition (hvir_detach_guest()); logs a refusal. */
void mshv_vfio_detach(void *mdev, struct pci_dev *pdev);
void mshv_vfio_pci_put(struct pci_dev *pdev);
/* A reference to @mdev's partition and its provider's operations; -ENODEV. */
int mshv_vfio_device_partition(void *mdev, void **partition, const void **ops);
/* Whether hyperv_iommu_root has @pdev in a guest partition now. */
bool mshv_vfio_pci_direct(struct pci_dev *pdev);
const char *mshv_vfio_pci_name(struct pci_dev *pdev);

#endif
