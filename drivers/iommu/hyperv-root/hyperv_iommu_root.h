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
enum hyperv_iommu_root_placement {
	/* In the device domain @domain (0: default, U32_MAX: NULL, else paging). */
	HYPERV_IOMMU_ROOT_IN_DOMAIN,
	/* Detached: DMA blocked (a fence, or a failed attach and rollback). */
	HYPERV_IOMMU_ROOT_DETACHED,
	/* Being moved by an attach right now. */
	HYPERV_IOMMU_ROOT_MOVING,
};

struct hyperv_iommu_root_device {
	/* The hypervisor device id (mshv_hvcall_pci_devid()). */
	u64 devid;
	/* Claimed functions that share this id (aliases). */
	u32 users;
	enum hyperv_iommu_root_placement placement;
	/* With HYPERV_IOMMU_ROOT_IN_DOMAIN. */
	u32 domain;
};

/*
 * Fills @info for @pdev. -ENODEV if hyperv_iommu_root did not claim @pdev.
 * A snapshot: the placement changes with every attach (which the caller
 * makes through the IOMMU core, e.g. VFIO or iommufd). Process context.
 */
int hyperv_iommu_root_device_info(struct pci_dev *pdev,
				  struct hyperv_iommu_root_device *info);

#endif
