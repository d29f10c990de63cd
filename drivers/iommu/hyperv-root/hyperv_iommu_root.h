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

#endif
