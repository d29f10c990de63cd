/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hyperv_iommu_root's iommufd interface: a guest partition HWPT, through
 * which a device is attached directly to a Hyper-V guest partition (its
 * DMA translated by the guest's SLAT). Copy this header into a VMM.
 * Documentation/hyperv-iommu-root.rst, "Direct attach through iommufd".
 */
#ifndef _UAPI_LINUX_HYPERV_IOMMU_ROOT_H
#define _UAPI_LINUX_HYPERV_IOMMU_ROOT_H

#include <linux/types.h>

/*
 * IOMMU_HWPT_ALLOC's data_type for a guest partition HWPT: "MSHV" in ASCII.
 * Linux numbers its own types from 0 (enum iommu_hwpt_data_type: 0..3 in
 * 7.3); a value this far from that sequence cannot collide with one
 * upstream adds.
 */
#define IOMMU_HWPT_DATA_HYPERV_PARTITION	0x4d534856

/**
 * struct iommu_hwpt_hyperv_partition - IOMMU_HWPT_ALLOC data for a guest
 *                                      partition HWPT
 * @fd: the VFIO bridge device the VMM created on its partition fd
 *      (MSHV_CREATE_DEVICE of type MSHV_DEV_TYPE_VFIO); it names the
 *      partition, which the HWPT holds until it is destroyed
 * @__reserved: must be 0
 *
 * Allocate with IOMMU_HWPT_ALLOC, pt_id a paging HWPT of hyperv_iommu_root
 * allocated with IOMMU_HWPT_ALLOC_NEST_PARENT (the parent: it holds what the
 * VMM maps for the device), flags 0, data_len 8.
 */
struct iommu_hwpt_hyperv_partition {
	__s32 fd;
	__u32 __reserved;
};

#endif
