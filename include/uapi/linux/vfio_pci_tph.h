/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * PCIe TLP Processing Hints (TPH) for devices owned through VFIO: the
 * VFIO_DEVICE_FEATURE indexes and structures of the vfio_pci_tph variant
 * driver. Copy this header into user space. Every field, errno and limit:
 * Documentation/vfio-pci-tph.rst.
 *
 * All calls are VFIO_DEVICE_FEATURE on the device fd (group or cdev), with
 * struct vfio_device_feature's flags set to GET or SET and the index below;
 * PROBE reports whether the device supports the feature. A device without a
 * TPH Requester capability answers -ENOTTY to every index here but
 * VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF, which is about the device as the
 * completer of other devices' writes (and exists when the kernel exports
 * VFIO dma-bufs with TPH hints).
 */
#ifndef _UAPI_LINUX_VFIO_PCI_TPH_H
#define _UAPI_LINUX_VFIO_PCI_TPH_H

#include <linux/types.h>

/*
 * Feature indexes. Linux 7.3 numbers its features from 0 (0..13 taken, 13
 * contested by two series); indexes this far from that sequence cannot
 * collide with one upstream assigns.
 */
#define VFIO_DEVICE_FEATURE_PCI_TPH_INFO	0x7400	/* GET */
#define VFIO_DEVICE_FEATURE_PCI_TPH_CTRL	0x7401	/* SET */
#define VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST	0x7402	/* GET */
#define VFIO_DEVICE_FEATURE_PCI_TPH_ST		0x7403	/* SET */
#define VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF	0x7404	/* SET */

/* ST modes, as in the TPH Control register's ST Mode Select field. */
#define VFIO_PCI_TPH_MODE_NS		0	/* No ST: hints without tags */
#define VFIO_PCI_TPH_MODE_IV		1	/* Interrupt Vector: tag of the vector */
#define VFIO_PCI_TPH_MODE_DS		2	/* Device Specific: the device picks */

/* Requester and completer types, as in the registers (2 is reserved). */
#define VFIO_PCI_TPH_REQ_NONE		0
#define VFIO_PCI_TPH_REQ_TPH		1	/* 8-bit steering tags */
#define VFIO_PCI_TPH_REQ_EXT		3	/* 16-bit (extended) steering tags */

/* Where the ST table is. */
#define VFIO_PCI_TPH_LOC_NONE		0	/* no table (DS mode only) */
#define VFIO_PCI_TPH_LOC_CAP		1	/* in the TPH capability */
#define VFIO_PCI_TPH_LOC_MSIX		2	/* in the MSI-X table */

/* Memory types the platform resolves steering tags for. */
#define VFIO_PCI_TPH_MEM_VM		0	/* volatile memory */
#define VFIO_PCI_TPH_MEM_PM		1	/* persistent memory */

/* Most entries one CPU_ST or ST call takes: the largest ST table. */
#define VFIO_PCI_TPH_MAX_ENTRIES	2048

/**
 * struct vfio_pci_tph_info - VFIO_DEVICE_FEATURE_PCI_TPH_INFO (GET)
 * @flags: VFIO_PCI_TPH_INFO_*
 * @dev_modes: ST modes the device advertises (bit n for mode n)
 * @modes: ST modes CTRL enables for this caller now: @dev_modes, less the
 *	modes whose tags the user could set unchecked (DS; IV with the table
 *	in MSI-X, which VFIO lets user space mmap) unless the
 *	enable_unsafe_tph_ds_mode parameter is set; none when the platform
 *	cannot take TPH requests (see VFIO_PCI_TPH_INFO_USABLE)
 * @st_table_loc: VFIO_PCI_TPH_LOC_*
 * @req_type: the requester type an enable would choose: the device's own
 *	(extended if it can), limited by its Root Port's completer type
 * @st_table_size: ST table entries: the capability's table, or the MSI-X
 *	table's size; 0 with VFIO_PCI_TPH_LOC_NONE
 * @mode: the enabled mode (with VFIO_PCI_TPH_INFO_ENABLED)
 * @cur_req_type: the enabled requester type (with VFIO_PCI_TPH_INFO_ENABLED)
 * @completer: the device's own completer type (Device Capabilities 2), which
 *	is what a peer's hints on this device's memory need
 * @__reserved: 0
 */
struct vfio_pci_tph_info {
	__u32 flags;
#define VFIO_PCI_TPH_INFO_ENABLED	(1 << 0)
#define VFIO_PCI_TPH_INFO_USABLE	(1 << 1)	/* a mode can be enabled */
#define VFIO_PCI_TPH_INFO_EXT		(1 << 2)	/* device can do 16-bit tags */
#define VFIO_PCI_TPH_INFO_CPU_ST	(1 << 3)	/* platform resolves CPU tags */
	__u8 dev_modes;
	__u8 modes;
	__u8 st_table_loc;
	__u8 req_type;
	__u16 st_table_size;
	__u8 mode;
	__u8 cur_req_type;
	__u8 completer;
	__u8 __reserved[3];
};

/**
 * struct vfio_pci_tph_ctrl - VFIO_DEVICE_FEATURE_PCI_TPH_CTRL (SET)
 * @op: VFIO_PCI_TPH_DISABLE or VFIO_PCI_TPH_ENABLE
 * @mode: VFIO_PCI_TPH_MODE_* to enable; 0 with VFIO_PCI_TPH_DISABLE
 *
 * Enabling clears the ST table; disabling stops hints and clears it too.
 */
struct vfio_pci_tph_ctrl {
	__u32 op;
#define VFIO_PCI_TPH_DISABLE		0
#define VFIO_PCI_TPH_ENABLE		1
	__u32 mode;
};

/**
 * struct vfio_pci_tph_cpu_st_entry - one CPU of a CPU_ST query
 * @cpu: in: a CPU the calling thread may run on
 * @mem_type: in: VFIO_PCI_TPH_MEM_*
 * @ph_ignore: out: 1 if the platform ignores Processing Hints there
 * @st: out: the steering tag, in the namespace the query asked for
 */
struct vfio_pci_tph_cpu_st_entry {
	__u32 cpu;
	__u8 mem_type;
	__u8 ph_ignore;
	__u16 st;
};

/**
 * struct vfio_pci_tph_cpu_st - VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST (GET)
 * @count: in: entries, 1..VFIO_PCI_TPH_MAX_ENTRIES
 * @flags: in: VFIO_PCI_TPH_ST_EXT asks for 16-bit tags, else 8-bit ones
 *	(two namespaces: the same number names different targets)
 * @ents: in/out: @count entries
 *
 * The kernel resolves each tag with the platform's ACPI _DSM. All entries
 * are answered or the call fails and none is.
 */
struct vfio_pci_tph_cpu_st {
	__u32 count;
	__u32 flags;
#define VFIO_PCI_TPH_ST_EXT		(1 << 0)
	struct vfio_pci_tph_cpu_st_entry ents[];
};

/**
 * struct vfio_pci_tph_st_entry - one ST table entry to program
 * @index: the entry (in IV mode, the MSI-X vector it steers)
 * @mem_type: VFIO_PCI_TPH_MEM_* of the CPU's memory (not with RAW)
 * @flags: VFIO_PCI_TPH_ST_ENTRY_*
 * @value: the CPU whose tag the kernel writes (a CPU the caller may run
 *	on); with VFIO_PCI_TPH_ST_ENTRY_RAW the tag itself; with
 *	VFIO_PCI_TPH_ST_ENTRY_CLEAR 0
 */
struct vfio_pci_tph_st_entry {
	__u16 index;
	__u8 mem_type;
	__u8 flags;
#define VFIO_PCI_TPH_ST_ENTRY_RAW	(1 << 0)	/* DS mode, unsafe only */
#define VFIO_PCI_TPH_ST_ENTRY_CLEAR	(1 << 1)	/* write tag 0 */
	__u32 value;
};

/**
 * struct vfio_pci_tph_st - VFIO_DEVICE_FEATURE_PCI_TPH_ST (SET)
 * @count: entries, 1..VFIO_PCI_TPH_MAX_ENTRIES, each index at most once
 * @flags: 0
 * @ents: @count entries
 *
 * Tags are in the namespace of the enabled requester type. Every check is
 * made before the first write: a refused call changes nothing. A write the
 * device then fails turns TPH off and puts the table back as at open.
 */
struct vfio_pci_tph_st {
	__u32 count;
	__u32 flags;
	struct vfio_pci_tph_st_entry ents[];
};

/**
 * struct vfio_pci_tph_dma_buf - VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF (SET)
 * @dmabuf_fd: a dma-buf of this device (VFIO_DEVICE_FEATURE_DMA_BUF)
 * @flags: VFIO_PCI_TPH_DMA_BUF_*: which tags are given; 0 clears the hint
 * @steering_tag_ext: the tag in the 16-bit namespace (ignored without ST_EXT)
 * @steering_tag: the tag in the 8-bit namespace (ignored without ST)
 * @ph: the Processing Hint, 0..3 (ignored without a tag)
 *
 * The hint another device's writes into this dma-buf should carry: an
 * importer reads it (dma_buf_get_pci_tph()) when it maps the dma-buf and
 * may use it until its mapping is invalidated. Each SET replaces the whole
 * hint. The layout and semantics of the upstream proposal for
 * VFIO_DEVICE_FEATURE_DMA_BUF_TPH.
 */
struct vfio_pci_tph_dma_buf {
	__s32 dmabuf_fd;
	__u32 flags;
#define VFIO_PCI_TPH_DMA_BUF_ST		(1 << 0)
#define VFIO_PCI_TPH_DMA_BUF_ST_EXT	(1 << 1)
	__u16 steering_tag_ext;
	__u8 steering_tag;
	__u8 ph;
};

#endif
