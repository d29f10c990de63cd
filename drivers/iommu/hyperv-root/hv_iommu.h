/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the C shim (hv_iommu_shim.c: the iommu_ops tables and
 * registration) and the Rust side (hv_iommu_main.rs: domains, map/unmap,
 * attach, all hypercalls). hv_iommu_main.rs declares the C functions and
 * defines the hvir_rs_* functions with the same signatures.
 */
#ifndef MSHV_PT_HV_IOMMU_H
#define MSHV_PT_HV_IOMMU_H

#include <linux/types.h>

/* Placement of a device: a domain id, or detached. */
#define HVIR_DETACHED	U64_MAX

/* ---- Implemented in Rust ---- */

/* Creates the hypervisor domain @id and its shadow; NULL and *err on failure. */
void *hvir_rs_domain_new(u32 id, int *err);
/* Unmaps everything, deletes the hypervisor domain, frees the shadow. */
void hvir_rs_domain_free(void *rs);
/* Maps @pages 4K pages; *mapped gets the bytes mapped (all or nothing). */
int hvir_rs_map(void *rs, u64 iova, u64 paddr, u64 pages, int prot,
		bool atomic, size_t *mapped);
/* Unmaps up to @pages pages from @iova; returns the pages unmapped. */
u64 hvir_rs_unmap(void *rs, u64 iova, u64 pages);
u64 hvir_rs_iova_to_phys(void *rs, u64 iova);
/*
 * Moves the device @devid from *@placement to domain @to; on return
 * *@placement is where the device is (HVIR_DETACHED or a domain id).
 */
int hvir_rs_attach(u64 devid, u64 *placement, u32 to);
/* The PCI-type device id from the DMA-alias walk's result. */
u64 hvir_rs_pci_devid(u16 segment, u16 rid, bool alias, u16 alias_rid,
		      bool pcix, u8 secondary, u8 subordinate);
/* The L1VH logical device id from the VMBus instance GUID bytes @guid. */
u64 hvir_rs_vmbus_devid(const u8 *guid, u8 devfn);
/* Whether segment:bus:devfn is in the list @list (NUL-terminated). */
bool hvir_rs_skip(const char *list, u16 segment, u8 bus, u8 devfn);

/* ---- Implemented in C ---- */

int hvir_register(void);
/* -EBUSY while a claimed device is in use; else unregisters (idempotent). */
int hvir_release(void);
void hvir_unregister(void);
const char *hvir_skip_list(void);
const char *hvir_dma_list(void);
unsigned int hvir_max_domains(void);

#endif
