/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface of hyperv_iommu_root for the project's other drivers (the
 * mshv-vfio bridge first): what the IOMMU driver knows of a PCI function it
 * claimed. This is the only way another module learns a device's hypervisor
 * identity and placement; it never reads the driver's private state.
 * Documentation/hyperv-iommu-root.rst, "Interface for other drivers".
 */
#ifndef HYPERV_IOMMU_ROOT_H
#define HYPERV_IOMMU_ROOT_H

#include <linux/types.h>

struct pci_dev;

/* Where the hypervisor has a device. */
enum hvir_placement {
	/* In the device domain @domain (0: default, U32_MAX: NULL, else paging). */
	HVIR_IN_DOMAIN,
	/* Detached: DMA blocked (a fence, or a failed attach and rollback). */
	HVIR_DETACHED,
	/* Being moved by an attach right now. */
	HVIR_MOVING,
	/* Attached directly to the guest partition @partition (its SLAT). */
	HVIR_IN_PARTITION,
};

struct hvir_device_info {
	/* The hypervisor device id (mshv_hvcall_pci_devid()). */
	u64 devid;
	/* Claimed functions that share this id (aliases). */
	u32 users;
	enum hvir_placement placement;
	/* With HVIR_IN_DOMAIN. */
	u32 domain;
	/* With HVIR_IN_PARTITION: the hypervisor's partition id. */
	u64 partition;
};

/*
 * Fills @info for @pdev. -ENODEV if hyperv_iommu_root did not claim @pdev.
 * A snapshot: the placement changes with every attach (which the caller
 * makes through the IOMMU core, e.g. VFIO or iommufd). Process context.
 */
int hvir_device_info(struct pci_dev *pdev, struct hvir_device_info *info);

struct mshv_partition_ops;

/*
 * Direct attach: moves @pdev's hypervisor device out of the paging domain
 * the IOMMU core has it in (the VMM's, e.g. a VFIO type1 container's) into
 * the guest partition @partition of the provider with operations @ops,
 * where the guest's SLAT translates its DMA. Only if every page the domain
 * maps is guest memory at the same address, backed by the same host page
 * with the same access; maps into the domain afterwards are checked the
 * same way, and one that disagrees moves the device back.
 *
 * The driver takes its own reference to the provider's module (@ops->owner)
 * and the partition, and pins its guest RAM (@ops->get, @ops->pin_guest),
 * for as long as the device is there. The device leaves the guest with
 * hvir_detach_guest(), or when the IOMMU core attaches it to another domain
 * (e.g. VFIO releasing it).
 *
 * 0: moved. 1: it was in that guest already (a function aliasing to the
 * same hypervisor device moved it, or an iommufd guest partition HWPT);
 * whoever moved it moves it out. Errors, with nothing changed:
 *   -EPERM    hv_iommu_direct_attach=N
 *   -ENODEV   not claimed by this driver, or the partition is going away
 *   -EINVAL   the device is not in a paging domain of this driver
 *   -EXDEV    a mapped page disagrees with guest memory (logged)
 *   -EACCES   the domain has read-only mappings
 *   -EBUSY    being moved, or in another guest
 *   -EOPNOTSUPP and others from @ops->pin_guest; hypercall errors
 * Process context; takes the partition's lock (pin_guest).
 */
int hvir_attach_guest(struct pci_dev *pdev, void *partition,
		      const struct mshv_partition_ops *ops);

/*
 * Moves @pdev's hypervisor device out of guest @partition back to the
 * domain the IOMMU core has it in, and drops the driver's references and
 * pin. -ENOENT if it is not in that guest (the IOMMU core moved it out
 * already). If the hypervisor refuses, the device stays in the guest with
 * the partition referenced (it is never destroyed under an attached
 * device); the error is returned and logged.
 */
int hvir_detach_guest(struct pci_dev *pdev, void *partition);

struct file;

/*
 * Implemented by mshv_vfio, the other way round: the partition of a bridge
 * device file (@file is the fd a VMM got from MSHV_CREATE_DEVICE), with a
 * reference taken through its provider's operations. For the iommufd guest
 * partition HWPT, which names the partition by that fd. This driver finds it
 * with symbol_get(), and the bridge finds the functions above the same way,
 * so neither module needs the other loaded. 0, or
 * -EINVAL if @file is not a bridge device file (-ENODEV: its partition is
 * going away).
 */
int mshv_vfio_partition_of_file(struct file *file, void **partition,
				const struct mshv_partition_ops **ops);

#endif
