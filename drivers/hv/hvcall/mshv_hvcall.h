/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The backend boundary of mshv-passthru (Documentation/hv-backend.rst).
 *
 * Every hypercall of the project's modules goes through mshv_hvcall_call():
 * on an MSHV root or L1VH partition it reaches Hyper-V through
 * hv_do_hypercall(); with mshv_hvcall.simulate=1 it reaches the simulated
 * hypervisor, which receives the same control word and input page. The
 * Rust side of every module declares these functions in
 * drivers/hv/hvcall/boundary.rs with the same signatures.
 */
#ifndef MSHV_PT_HVCALL_H
#define MSHV_PT_HVCALL_H

#include <linux/types.h>

/* Fills the hypercall input page; runs with interrupts disabled. */
typedef void (*mshv_hvcall_fill_t)(void *page, void *arg);

/* The simulated hypervisor's entry point (registered by mshv_hvcall). */
typedef u64 (*mshv_hvcall_sim_t)(void *ctx, u64 control, const void *page);

/*
 * Issues one hypercall: disables interrupts, calls @fill on this CPU's
 * input page, dispatches @control with that page as input (no output page)
 * and restores interrupts. Returns the raw 64-bit hypercall result, or
 * U64_MAX if no backend is set up. Any context.
 */
u64 mshv_hvcall_call(u64 control, mshv_hvcall_fill_t fill, void *arg);

/*
 * Allocates @count pages for a deposit and writes their page frame numbers
 * (4K) to @pfns. With @contiguous, @count must be a multiple of 8 and the
 * pages come in physically contiguous, naturally aligned blocks of 8.
 * GFP_ATOMIC if @atomic, else GFP_KERNEL. 0 or -ENOMEM/-EINVAL; on error
 * nothing stays allocated.
 */
int mshv_hvcall_alloc_pfns(u64 *pfns, u32 count, bool contiguous, bool atomic);

/* Frees pages from mshv_hvcall_alloc_pfns() that no hypervisor owns. */
void mshv_hvcall_free_pfns(const u64 *pfns, u32 count);

/* Pages allocated for deposits and not freed (owned by the hypervisor). */
s64 mshv_hvcall_pages_out(void);

/*
 * Whether the partition is an L1VH (Hyper-V's, or the simulated one with
 * mshv_hvcall.l1vh=1): then there are no device domains, and device-domain
 * calls are refused.
 */
bool mshv_hvcall_l1vh(void);

/* The simulator context, or NULL when the backend is native (tests only). */
void *mshv_hvcall_sim_ctx(void);

struct pci_dev;

/*
 * The hypervisor's PCI-type device id of @pdev (hv_build_devid_type_pci()
 * of the seed series): segment and requester id, where the requester id is
 * the last DMA alias on another bus (functions behind a PCIe-to-PCI bridge
 * share the bridge's), with the shadow bus range of a PCI-X bridge. The one
 * definition of device ids: the IOMMU driver and the simulated hypervisor
 * both use it.
 */
u64 mshv_hvcall_pci_devid(struct pci_dev *pdev);

/*
 * Marks the running KUnit case skipped with @reason (no-op outside a KUnit
 * case): for cases that need the simulated hypervisor and must not touch a
 * real one.
 */
void mshv_hvcall_kunit_skip(const char *reason);

/* ---- Internal to mshv_hvcall.ko ---- */

/*
 * 0 on an MSHV root partition with device domains or on L1VH; -ENODEV when
 * not running as such a partition; -EOPNOTSUPP when the hypervisor lacks
 * device domains.
 */
int mshv_hvcall_native_probe(void);

/*
 * Sets up the backend: native (@sim NULL) uses the kernel's per-CPU
 * hypercall input pages; simulated allocates its own per-CPU pages and
 * dispatches to @sim(@sim_ctx, ...), a root partition or, with @l1vh, an
 * L1VH. 0 or -ENOMEM.
 */
int mshv_hvcall_setup(mshv_hvcall_sim_t sim, void *sim_ctx, bool l1vh);

/*
 * Calls @cb with the segment and requester id (@bdf: segment << 16 | rid) and
 * the PCI-type device id (mshv_hvcall_pci_devid()) of every PCI function: the
 * devices the simulated hypervisor knows; aliasing functions give the same
 * id. Sleeps.
 */
typedef void (*mshv_hvcall_id_cb_t)(void *ctx, u32 bdf, u64 id);
void mshv_hvcall_list_pci_ids(mshv_hvcall_id_cb_t cb, void *ctx);

/* Implemented in Rust (hvcall_main.rs): encodes a PCI-type device id. */
u64 mshv_hvcall_rs_pci_devid(u16 segment, u16 rid, bool alias, u16 alias_rid,
			     bool pcix, u8 secondary, u8 subordinate);

/*
 * The simulated /dev/mshv (sim_mshv.c; only with the simulated hypervisor):
 * registers and unregisters the misc device; mshv_hvcall_mshv_live() is the
 * number of partitions alive, mshv_hvcall_mshv_pinned() the guest memory
 * pages they hold pinned.
 */
int mshv_hvcall_mshv_register(void);
void mshv_hvcall_mshv_unregister(void);
int mshv_hvcall_mshv_live(void);
s64 mshv_hvcall_mshv_pinned(void);

/*
 * Implemented in Rust (hvcall_main.rs): validates MSHV_CREATE_PARTITION's
 * argument at @uarg and creates a guest partition of the simulated
 * hypervisor, whose id goes to *@id; 0 or -errno. _destroy() destroys it.
 */
int mshv_hvcall_rs_mshv_create(void __user *uarg, u64 *id);
int mshv_hvcall_rs_mshv_destroy(u64 id);
/*
 * MSHV_SET_GUEST_MEMORY: _memory_check() validates the region at @region
 * (a kernel copy of struct mshv_user_mem_region); _map_guest() maps @count
 * guest pages from @gfn to the host pages @pfns in the partition's SLAT, all
 * or nothing (-EEXIST where one is mapped); _unmap_guest() unmaps them.
 */
int mshv_hvcall_rs_mshv_memory_check(const void *region, u64 *gfn, u64 *pages,
				     bool *unmap, bool *writable);
int mshv_hvcall_rs_mshv_map_guest(u64 id, u64 gfn, const u64 *pfns, u64 count,
				  bool writable);
void mshv_hvcall_rs_mshv_unmap_guest(u64 id, u64 gfn, u64 count);

/* Undoes mshv_hvcall_setup(); no call may be in flight. */
void mshv_hvcall_teardown(void);

#endif
