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

/* ---- Implemented in Rust ---- */

/*
 * Allocates a domain id, creates the hypervisor domain and its shadow; *id
 * gets the id. NULL and *err on failure (-ENOSPC: no free id).
 */
void *hvir_rs_domain_new(u32 *id, int *err);
/*
 * Unmaps everything, deletes the hypervisor domain, frees the state and the
 * id. If the hypervisor keeps the domain, it is quarantined with its id
 * until a retry deletes it.
 */
void hvir_rs_domain_free(void *rs);
/* Called last when a paging domain is freed (after hvir_rs_domain_free()). */
void hvir_rs_domain_gone(void);
/*
 * Maps @pages 4K pages, allocating with @gfp (the caller's); *mapped gets the
 * bytes mapped (all or nothing).
 */
int hvir_rs_map(void *rs, u64 iova, u64 paddr, u64 pages, int prot, gfp_t gfp,
		size_t *mapped);
/*
 * Unmaps the mapped run of up to @pages pages from @iova; returns its length.
 * Never fails and never allocates; if the hypervisor refuses, the domain's
 * devices are fenced (detached) before it returns.
 */
u64 hvir_rs_unmap(void *rs, u64 iova, u64 pages);
u64 hvir_rs_iova_to_phys(void *rs, u64 iova);
/*
 * Moves the hypervisor device @devid to domain @to (state @to_rs; NULL for
 * identity and blocked) from the core's old domain (state @old_rs, likewise).
 */
int hvir_rs_attach(u64 devid, u32 to, void *to_rs, void *old_rs);
/* Keeps the paging domain @rs filled in the hypervisor for good (DMA API). */
void hvir_rs_keep_filled(void *rs);
/*
 * Direct attach (hvir_attach_guest()): moves hypervisor device @devid from
 * the paging domain it is in into the guest @partition (@ops: the provider's
 * struct mshv_partition_ops, hypervisor id @partition_id) if every page the
 * domain maps agrees with guest memory. 0: moved, the driver keeps the
 * caller's partition reference and pin; 1: in that guest already, the caller
 * keeps them; -errno: nothing changed (-EINVAL: in no paging domain).
 */
int hvir_rs_attach_guest(u64 devid, void *partition, const void *ops,
			 u64 partition_id);
/* Moves @devid from guest @partition back to its home domain; -ENOENT: not there. */
int hvir_rs_detach_guest(u64 devid, void *partition);
/* Adds a claimed function's hypervisor device (or a user of it). */
int hvir_rs_device_add(u64 devid);
/* Drops a user of a hypervisor device. */
void hvir_rs_device_remove(u64 devid);
/* A paging domain exists, or a device is outside the default domain. */
bool hvir_rs_in_use(void);
/*
 * Users and placement (enum hvir_placement, and the domain) of
 * hypervisor device @devid; -ENODEV if the table has no such device.
 */
int hvir_rs_device_info(u64 devid, u32 *users, u32 *placement, u32 *domain,
			u64 *partition);
/* Whether segment:bus:devfn is in the list @list (NUL-terminated). */
bool hvir_rs_skip(const char *list, u16 segment, u8 bus, u8 devfn);

/* ---- Implemented in C ---- */

/*
 * Frees a list of generic_pt table pages. Exported by the kernel, declared
 * only in drivers/iommu/iommu-pages.h, which an out-of-tree module cannot
 * include.
 */
struct iommu_pages_list;
void iommu_put_pages_list(struct iommu_pages_list *list);

/*
 * struct mshv_partition_ops' guest_page(), and unpin_guest(), put() and the
 * provider module's reference, for the Rust side (which cannot name the
 * provider's types).
 */
int hvir_guest_page(void *partition, const void *ops, u64 gfn, u64 *pfn,
		    bool *writable);
void hvir_guest_release(void *partition, const void *ops);
/* cond_resched(), for long walks. */
void hvir_cond_resched(void);

int hvir_register(void);
/* -EBUSY while a claimed device is in use; else unregisters (idempotent). */
int hvir_release(void);
void hvir_unregister(void);
const char *hvir_skip_list(void);
/* KUnit only: checks hvir_device_info() against the claims. */
int hvir_kunit_check_device_info(void);
const char *hvir_dma_list(void);
unsigned int hvir_max_domains(void);
/*
 * The shadow page table of a paging domain (generic_pt, x86-64 format).
 * new: NULL and *err on failure. map: all or nothing; -EEXIST if any page
 * of the range is mapped, -ENOMEM. unmap: the mapped run from @iova (at most
 * @len bytes, never splitting a map); never allocates. iova_to_phys: lockless.
 */
void *hvir_shadow_new(int *err);
void hvir_shadow_free(void *shadow);
int hvir_shadow_map(void *shadow, u64 iova, u64 paddr, u64 len, gfp_t gfp);
u64 hvir_shadow_unmap(void *shadow, u64 iova, u64 len);
u64 hvir_shadow_iova_to_phys(void *shadow, u64 iova);
int hvir_shadow_next(void *shadow, u64 iova, u64 end, u64 *at, u64 *pa, u64 *len);
/* Paging-domain ids: 1..hv_iommu_max_domains, or -errno (-ENOSPC). */
int hvir_id_alloc(void);
void hvir_id_free(u32 id);
/* At unload, after the last domain. */
void hvir_ids_destroy(void);

#endif
