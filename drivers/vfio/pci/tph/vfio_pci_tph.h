/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio_pci_tph: the interface between the C part (vfio_pci_tph_shim.c: the
 * pci_driver and vfio_device_ops tables over vfio-pci-core, and the calls
 * into the PCI core's TPH helpers) and the Rust part (vfio_pci_tph_main.rs:
 * the feature calls and the TPH state). Every function here is defined on
 * one side and called from the other; the Rust declarations must match.
 */
#ifndef VFIO_PCI_TPH_H
#define VFIO_PCI_TPH_H

#include <linux/types.h>

struct pci_dev;

/* What the driver reads of a device and its platform when it binds. */
struct vpt_facts {
	u32 cap;		/* TPH Requester Capability register (0: none) */
	u32 rp_devcap2;		/* Device Capabilities 2 of the Root Port */
	u32 devcap2;		/* Device Capabilities 2 of the device */
	u16 msix_size;		/* MSI-X table entries (0: no MSI-X) */
	u16 pos;		/* where the TPH capability is */
	u8 rc_end;		/* a Root Complex integrated endpoint */
	u8 cpu_st;		/* the platform's steering-tag _DSM answers */
};

/* A dma-buf's TPH hint, as vfio_pci_core_dma_buf_set_tph() takes it. */
struct vpt_dma_buf_hint {
	u16 st_ext;
	u8 st;
	u8 ph;
	u8 st_valid;
	u8 st_ext_valid;
};

/* C, called from Rust. */
void vpt_facts(struct pci_dev *pdev, struct vpt_facts *f);
int vpt_enable(struct pci_dev *pdev, u8 mode, u8 *req_type);
void vpt_disable(struct pci_dev *pdev);
int vpt_set_st(struct pci_dev *pdev, u16 index, u16 tag);
int vpt_table_write(struct pci_dev *pdev, u16 index, u16 tag);
int vpt_table_read(struct pci_dev *pdev, u16 index, u16 *tag);
int vpt_cpu_st_info(struct pci_dev *pdev, u32 cpu, u64 *info);
bool vpt_vector(struct pci_dev *pdev, u16 index);

/* Rust, called from C. */
int vpt_rs_new(struct pci_dev *pdev, void **state);
void vpt_rs_free(void *state);
void vpt_rs_quiesce(void *state, struct pci_dev *pdev);
void vpt_rs_reset(void *state, struct pci_dev *pdev, bool done);
int vpt_rs_feature(void *state, struct pci_dev *pdev, u32 index,
		   void *data, size_t len);
int vpt_rs_cfg_read(void *state, u64 off, char __user *buf, size_t len);
ssize_t vpt_rs_cfg_write(void *state, struct pci_dev *pdev, u16 off,
			 const u8 *data, size_t len);
u16 vpt_rs_cfg_size(void *state);
bool vpt_rs_usable(void *state);
int vpt_rs_dma_buf(u32 devcap2, const u8 *req, struct vpt_dma_buf_hint *hint);
int vpt_register(void);
void vpt_unregister(void);

#endif
