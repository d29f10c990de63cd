// SPDX-License-Identifier: GPL-2.0

//! hyperv-iommu-root: the IOMMU driver for Linux as the MSHV root partition (or L1VH), whose
//! domains are Hyper-V device domains.
//!
//! - identity domain: the hypervisor's boot-time default domain 0 (the default domain type);
//! - blocked domain: the hypervisor's NULL domain `0xFFFFFFFF`;
//! - paging domains: an S2 device domain per iommu domain (ids from an IDA, never 0 or
//!   `0xFFFFFFFF`) and a shadow (the kernel's generic page table, x86-64 format, private to the
//!   driver) that records what is mapped for an exact, lockless `iova_to_phys`. While a device
//!   uses the domain in the hypervisor every map/unmap reaches the hypervisor before it
//!   returns; otherwise the hypervisor domain is empty and filled from the shadow when a
//!   device enters it.
//!
//! The iommu_ops tables and registration are C (`hv_iommu_shim.c`); the logic is the shared
//! `hvpt::iommu` code, called through the `hvir_rs_*` functions below. Every hypercall goes
//! through `mshv_hvcall.ko` (`boundary.rs`), so the driver runs unchanged on Hyper-V and on the
//! simulated hypervisor (`mshv_hvcall simulate=1`). See `Documentation/hyperv-iommu-root.rst`.

use core::ffi::{c_int, c_void, CStr};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use kernel::ffi::c_char;

use kernel::{
    prelude::*,
    sync::{new_spinlock_irq, SpinLockIrq},
};

/// The kernel-independent shared code.
#[path = "../../../rust/hvpt/src/lib.rs"]
pub mod hvpt;

/// Client side of the backend boundary (`mshv_hvcall.ko`).
#[path = "../../hv/hvcall/boundary.rs"]
pub mod boundary;

use boundary::HvBackend;
use hvpt::abi::PartitionId;
use hvpt::abi::{CreateDomainFlags, DeviceDomain};
use hvpt::calls::MapFlags;
use hvpt::direct::{Mismatch, Run};
use hvpt::iommu::{
    attach_device, attach_guest, devices_in_use, fence_domain, map_flags, DeviceEntry, DeviceTable,
    DomainState, PagingDomain, Placement, Presence, RequestCounts, Shadow, Stranded, IOMMU_WRITE,
};
use hvpt::layer::{Backend, Context, Hv};

module! {
    type: HvIommu,
    name: "hyperv_iommu_root",
    authors: ["mshv-passthru developers"],
    description: "IOMMU driver for the Hyper-V root partition (device domains)",
    license: "GPL",
}

/// C functions of `hv_iommu_shim.c` (declared in `hv_iommu.h`).
mod shim {
    use core::ffi::c_void;
    use kernel::ffi::{c_char, c_int};

    extern "C" {
        pub(super) fn hvir_register() -> c_int;
        pub(super) fn hvir_release() -> c_int;
        pub(super) fn hvir_unregister();
        pub(super) fn hvir_skip_list() -> *const c_char;
        pub(super) fn hvir_dma_list() -> *const c_char;
        pub(super) fn hvir_max_domains() -> core::ffi::c_uint;
        pub(super) fn hvir_id_alloc() -> c_int;
        pub(super) fn hvir_id_free(id: u32);
        pub(super) fn hvir_ids_destroy();
        pub(super) fn hvir_shadow_new(err: *mut c_int) -> *mut c_void;
        pub(super) fn hvir_shadow_free(shadow: *mut c_void);
        pub(super) fn hvir_shadow_map(
            shadow: *mut c_void,
            iova: u64,
            paddr: u64,
            len: u64,
            gfp: kernel::bindings::gfp_t,
        ) -> c_int;
        pub(super) fn hvir_shadow_unmap(shadow: *mut c_void, iova: u64, len: u64) -> u64;
        pub(super) fn hvir_shadow_iova_to_phys(shadow: *mut c_void, iova: u64) -> u64;
        pub(super) fn hvir_shadow_next(
            shadow: *mut c_void,
            iova: u64,
            end: u64,
            at: *mut u64,
            pa: *mut u64,
            len: *mut u64,
        ) -> c_int;
        #[cfg(CONFIG_KUNIT)]
        pub(super) fn hvir_kunit_check_device_info() -> c_int;
        pub(super) fn hvir_guest_page(
            partition: *mut c_void,
            ops: *const c_void,
            gfn: u64,
            pfn: *mut u64,
            writable: *mut bool,
        ) -> c_int;
        pub(super) fn hvir_guest_release(partition: *mut c_void, ops: *const c_void);
        pub(super) fn hvir_cond_resched();
    }
}

/// Map requests from the IOMMU core (all paging domains), for `hyperv_iommu_root/stats`.
static MAP_REQUESTS: RequestCounts = RequestCounts::new();
/// Unmap requests, likewise.
static UNMAP_REQUESTS: RequestCounts = RequestCounts::new();

/// Paging domains the IOMMU core holds (allocated and not freed). The release control refuses
/// while any exists: the core calls back into this module when it frees them.
static LIVE_DOMAINS: AtomicUsize = AtomicUsize::new(0);

kernel::sync::global_lock! {
    // SAFETY: initialized in `HvIommu::init` before the IOMMU registers, so before first use.
    unsafe(uninit) static DEVICES: SpinLockIrq<KVec<DeviceEntry>> = KVec::new();
}

kernel::sync::global_lock! {
    // SAFETY: initialized in `HvIommu::init` before the IOMMU registers, so before first use.
    unsafe(uninit) static QUARANTINE: Mutex<KVec<Pin<KBox<Domain>>>> = KVec::new();
}

kernel::sync::global_lock! {
    // SAFETY: initialized in `HvIommu::init` before the IOMMU registers, so before first use.
    unsafe(uninit) static HOLDS: Mutex<Guests> = Guests {
        holds: KVec::new(),
        domains: KVec::new(),
    };
}

/// What direct attach keeps under [`HOLDS`]' lock: the holds, and the live paging domains by
/// id, so that a device's home is found from the hypervisor's placement of the device (the
/// device table) rather than from the IOMMU core's domain pointer, which the core may free
/// meanwhile.
struct Guests {
    holds: KVec<Hold>,
    domains: KVec<LiveDomain>,
}

/// A paging domain between `hvir_rs_domain_new` and `hvir_rs_domain_free`.
///
/// # Invariants
///
/// `d` is live while this is in [`Guests::domains`]: the free removes it first.
struct LiveDomain {
    id: u32,
    d: NonNull<Domain>,
}

// SAFETY: only used under `HOLDS`' lock; a domain's state may be used from any thread.
unsafe impl Send for LiveDomain {}

/// A hypervisor device the driver attached directly to a guest partition (on request of the
/// mshv-vfio bridge, `hvir_attach_guest()`): the partition reference and the pin of its guest
/// RAM that the driver holds for as long as the device is there, and the paging domain the
/// IOMMU core has the device in (its *home*: where it goes back to).
///
/// [`HOLDS`]' lock serializes every move of a device into or out of a guest with the IOMMU
/// core's attaches, and with maps into a home domain (see [`Domain`]). Lock order: the IOMMU
/// group mutex or the bridge's lock, then [`HOLDS`], then the provider's partition lock.
///
/// # Invariants
///
/// A hold exists while the device table places `devid` in guest `partition_id`, and also
/// after the device's entry left the table while it was there (it may still be attached).
/// The provider's module (`owner`) and `partition` are referenced (`get`) and the guest pinned
/// (`pin_guest`), all dropped by `hvir_guest_release()` when the hold goes. `home` is a live
/// paging domain whose `guests` counts this hold: the core frees a domain after moving its
/// devices elsewhere, which drops their holds first, and a domain freed while a hold still
/// counts it (the hypervisor refused the move) is kept, never freed.
struct Hold {
    devid: u64,
    home: NonNull<Domain>,
    partition: NonNull<c_void>,
    ops: NonNull<c_void>,
    partition_id: u64,
}

// SAFETY: the pointers are only used under `HOLDS`' lock, and what they point to (a domain, a
// provider's partition and its static operations) may be used from any thread.
unsafe impl Send for Hold {}

impl Hold {
    fn home(&self) -> &Domain {
        // SAFETY: by the type invariant the domain is live.
        unsafe { self.home.as_ref() }
    }

    /// The host page behind guest page `gfn`, and whether the guest may write it.
    fn guest_page(&self, gfn: u64) -> Option<(u64, bool)> {
        let (mut pfn, mut w) = (0u64, false);
        // SAFETY: by the type invariant the partition is referenced and `ops` are its
        // provider's operations; the out-pointers are valid locals.
        let r = unsafe {
            shim::hvir_guest_page(
                self.partition.as_ptr(),
                self.ops.as_ptr(),
                gfn,
                &mut pfn,
                &mut w,
            )
        };
        (r == 0).then_some((pfn, w))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.home().guests.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: by the type invariant the hold owns one reference and one pin of the
        // partition; this gives them back, once.
        unsafe { shim::hvir_guest_release(self.partition.as_ptr(), self.ops.as_ptr()) };
    }
}

/// Why direct attach is refused, for the log.
fn explain(m: Mismatch) -> (u64, &'static str) {
    match m {
        Mismatch::NotGuestMemory { iova_page } => (iova_page, "is not guest memory"),
        Mismatch::OtherPage { iova_page, .. } => (iova_page, "is another host page in the guest"),
        Mismatch::Access { iova_page } => (iova_page, "has other access in the guest"),
        Mismatch::Overflow => (0, "wraps"),
    }
}

/// Drops the holds of devices the table places outside their guest (a move took them out, or a
/// failed rollback detached them). A hold whose device left the table (its last function was
/// removed while it was in a guest) stays: the device may still be attached, and the partition
/// must not go under it; the module then stays in use ([`hvir_rs_in_use`]).
fn drop_stale_holds(holds: &mut KVec<Hold>) {
    let mut i = 0;
    while let Some(h) = holds.get(i) {
        let (devid, pid) = (h.devid, h.partition_id);
        let still = Devices.with(|devs| {
            devs.iter().find(|e| e.id == devid).is_none_or(
                |e| matches!(e.placement, Placement::Guest { partition, .. } if partition.0 == pid),
            )
        });
        if still {
            i += 1;
        } else {
            // Removing an existing index cannot fail; the hold's drop releases the guest.
            drop(holds.remove(i));
        }
    }
}

/// Moves the device of `holds[i]` back to its home domain and drops its hold if it left the
/// guest. Returns the move's result.
fn return_home(holds: &mut KVec<Hold>, i: usize) -> Result<(), hvpt::errno::Errno> {
    let Some(h) = holds.get(i) else {
        return Ok(());
    };
    // SAFETY: a live domain (the hold's invariant); it stays live after the hold goes below,
    // since freeing it takes `HOLDS`' lock, which the caller holds.
    let d = unsafe { h.home.as_ref() };
    let devid = h.devid;
    // Back to device-domain translation: the domain holds the mappings first.
    d.fill()?;
    let home_broken = d.broken.load(Ordering::Acquire);
    let r = attach_device(&Hv::new(&HvBackend), &Devices, devid, d.id, &|_| {
        home_broken
    });
    drop_stale_holds(holds);
    if r.is_err() {
        d.settle();
    }
    r
}

/// The hypervisor devices of the claimed PCI functions, one entry per device id (functions that
/// alias to one requester id share it). Behind an IRQ-safe spinlock: a fence runs from unmap,
/// in any context.
struct Devices;

impl DeviceTable for Devices {
    fn with<R>(&self, f: impl FnOnce(&mut [DeviceEntry]) -> R) -> R {
        f(DEVICES.lock().as_mut_slice())
    }
}

/// The caller's allocation flags, and whether they allow sleeping.
#[derive(Clone, Copy)]
struct Gfp {
    raw: kernel::bindings::gfp_t,
    blocking: bool,
}

impl Gfp {
    fn new(raw: kernel::bindings::gfp_t) -> Self {
        Self {
            raw,
            blocking: raw & (1 << kernel::bindings::___GFP_DIRECT_RECLAIM_BIT) != 0,
        }
    }
}

/// A paging domain's shadow: the kernel's generic page table (generic_pt, x86-64 format) that
/// the C shim allocates, plus the count and the window of what is recorded.
///
/// # Invariants
///
/// `pt` came from `hvir_shadow_new()` and is freed only by `Drop`.
struct GenericShadow {
    pt: NonNull<c_void>,
    recorded: AtomicU64,
    /// Lowest first page and highest end page ever recorded.
    lo: AtomicU64,
    hi: AtomicU64,
}

// SAFETY: generic_pt tables may be used from any thread; callers serialize operations on
// overlapping ranges (the IOMMU core's rule, which every caller of `PagingDomain` follows).
unsafe impl Send for GenericShadow {}
// SAFETY: as for `Send`; lookups are lockless by design.
unsafe impl Sync for GenericShadow {}

impl GenericShadow {
    fn new() -> Result<Self> {
        let mut err: c_int = 0;
        // SAFETY: `err` is valid for writes; process context.
        let pt = NonNull::new(unsafe { shim::hvir_shadow_new(&mut err) })
            .ok_or_else(|| Error::from_errno(err))?;
        // INVARIANT: `pt` came from `hvir_shadow_new()`.
        Ok(Self {
            pt,
            recorded: AtomicU64::new(0),
            lo: AtomicU64::new(u64::MAX),
            hi: AtomicU64::new(0),
        })
    }
}

impl Drop for GenericShadow {
    fn drop(&mut self) {
        // SAFETY: by the type invariant; nothing uses the table after this.
        unsafe { shim::hvir_shadow_free(self.pt.as_ptr()) };
    }
}

const PAGE: u64 = 4096;

impl Shadow for GenericShadow {
    type Gfp = Gfp;

    fn context(gfp: Gfp) -> Context {
        if gfp.blocking {
            Context::Sleepable
        } else {
            Context::Atomic
        }
    }

    fn record(&self, first: u64, pfn: u64, pages: u64, gfp: Gfp) -> Result<(), hvpt::errno::Errno> {
        let (Some(iova), Some(pa), Some(len)) = (
            first.checked_mul(PAGE),
            pfn.checked_mul(PAGE),
            pages.checked_mul(PAGE),
        ) else {
            return Err(hvpt::errno::EOVERFLOW);
        };
        // SAFETY: by the type invariant `pt` is a live table.
        let ret = unsafe { shim::hvir_shadow_map(self.pt.as_ptr(), iova, pa, len, gfp.raw) };
        if ret != 0 {
            return Err(hvpt::errno::Errno(-ret));
        }
        self.recorded.fetch_add(pages, Ordering::Relaxed);
        self.lo.fetch_min(first, Ordering::Relaxed);
        self.hi
            .fetch_max(first.saturating_add(pages), Ordering::Relaxed);
        Ok(())
    }

    fn forget(&self, first: u64, max: u64) -> u64 {
        let Some(iova) = first.checked_mul(PAGE) else {
            return 0;
        };
        let len = max.saturating_mul(PAGE);
        // SAFETY: by the type invariant `pt` is a live table.
        let run = unsafe { shim::hvir_shadow_unmap(self.pt.as_ptr(), iova, len) } / PAGE;
        self.recorded.fetch_sub(run, Ordering::Relaxed);
        run
    }

    fn frame(&self, page: u64) -> Option<u64> {
        let iova = page.checked_mul(PAGE)?;
        // SAFETY: by the type invariant `pt` is a live table.
        let pa = unsafe { shim::hvir_shadow_iova_to_phys(self.pt.as_ptr(), iova) };
        (pa != 0).then_some(pa / PAGE)
    }

    fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    fn span(&self) -> (u64, u64) {
        let (lo, hi) = (
            self.lo.load(Ordering::Relaxed),
            self.hi.load(Ordering::Relaxed),
        );
        if hi <= lo {
            (0, 0)
        } else {
            (lo, hi)
        }
    }

    fn extent(&self, from: u64, end: u64) -> Option<(u64, u64, u64)> {
        if self.recorded() == 0 {
            return None;
        }
        let (iova, end) = (from.checked_mul(PAGE)?, end.saturating_mul(PAGE));
        let (mut at, mut pa, mut len) = (0u64, 0u64, 0u64);
        // SAFETY: by the type invariant `pt` is a live table; the out-pointers are valid
        // locals; the caller keeps unmaps of the range out (the trait's contract).
        let r = unsafe {
            shim::hvir_shadow_next(self.pt.as_ptr(), iova, end, &mut at, &mut pa, &mut len)
        };
        (r == 0 && len >= PAGE).then(|| {
            let pages = (len / PAGE).min(end.saturating_sub(at) / PAGE);
            (at / PAGE, pa / PAGE, pages)
        })
    }
}

/// A paging domain's state: its shadow, the ranges a refusal stranded in the hypervisor
/// (behind an IRQ-safe spinlock: unmap runs in any context), and whether it is broken.
///
/// The hypervisor domain is filled lazily: it holds the shadow's pages only while a device of
/// ours is attached to it in the hypervisor (`presence`, see [`Presence`]); [`Domain::fill`]
/// builds it before a device enters, [`Domain::settle`] empties it after the last one left.
/// Until then maps and unmaps change the shadow only. `eager` is set by the first map that is
/// not read/write cacheable memory (a fill maps every page alike) and keeps the domain filled
/// from then on.
///
/// Direct attach and the lazy fill share three counters and a lock. `guests` counts the
/// domain's devices that are attached to a guest partition instead (see [`Hold`]); `transit`
/// counts fills and drains running; `in_flight` counts maps and unmaps that run without
/// [`HOLDS`]' lock or the walk lock, which they may only do while both are 0
/// ([`Domain::lock_free`]); `read_only` is set by the first read-only map and never cleared
/// (the shadow does not keep the access per page), and keeps the domain's devices out of
/// guests, where a device could write every guest page.
#[pin_data]
struct Domain {
    shadow: GenericShadow,
    #[pin]
    stranded: SpinLockIrq<Stranded>,
    broken: AtomicBool,
    id: u32,
    presence: Presence,
    eager: AtomicBool,
    guests: AtomicU32,
    transit: AtomicU32,
    in_flight: AtomicU32,
    read_only: AtomicBool,
    /// Held, while `guests` or `transit` is set, by unmaps (which free shadow tables and must
    /// see a stable window), by each step of a fill or drain and, page by page, by a
    /// direct-attach check that walks the whole shadow; not by `iova_to_phys`, whose callers
    /// never race with an unmap of the same range.
    #[pin]
    walk: SpinLockIrq<()>,
}

impl Domain {
    fn new(id: u32) -> Result<Pin<KBox<Self>>> {
        let shadow = GenericShadow::new()?;
        KBox::pin_init(
            pin_init!(Domain {
                shadow,
                stranded <- new_spinlock_irq!(Stranded::new()),
                broken: AtomicBool::new(false),
                id,
                presence: Presence::empty(),
                eager: AtomicBool::new(false),
                guests: AtomicU32::new(0),
                transit: AtomicU32::new(0),
                in_flight: AtomicU32::new(0),
                read_only: AtomicBool::new(false),
                walk <- new_spinlock_irq!(()),
            }),
            GFP_KERNEL,
        )
    }

    /// Runs `f` (a map or an unmap) without a lock if no device of the domain is in a guest and
    /// no fill or drain runs; `None` (and `f` not run) otherwise: then the caller takes the
    /// lock the operation needs. Pairs with [`Domain::quiesce`]: either `f` sees the counter
    /// set, or the side that set it sees `f` in flight and waits for it.
    fn lock_free<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let r = (self.guests.load(Ordering::SeqCst) == 0
            && self.transit.load(Ordering::SeqCst) == 0)
            .then(f);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Raises `counter` (`guests` or `transit`) and waits until no map or unmap runs lock-free
    /// (those that start from now on see the counter). Process context.
    fn quiesce(&self, counter: &AtomicU32) {
        counter.fetch_add(1, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) != 0 {
            kernel::time::delay::fsleep(kernel::time::Delta::from_micros(100));
        }
    }

    /// Devices of ours the hypervisor has in this domain.
    fn users(&self) -> usize {
        Devices.with(|devs| {
            devs.iter()
                .filter(|e| e.placement == Placement::Domain(self.id))
                .count()
        })
    }

    /// Fills the hypervisor domain from the shadow before a device enters it (no-op if it is
    /// filled). Under [`HOLDS`]' lock (so no map runs: maps wait for it while `transit` is set),
    /// process context. If the hypervisor refuses, the domain is empty again and the device
    /// must not enter.
    fn fill(&self) -> Result<(), hvpt::errno::Errno> {
        if self.presence.is_filled() {
            return Ok(());
        }
        self.quiesce(&self.transit);
        HvBackend.refill_reserve(Context::Sleepable);
        let r = PagingDomain::new(self.id, self).fill(
            &Hv::new(&HvBackend),
            MapFlags::dma(true),
            &resched,
        );
        self.transit.fetch_sub(1, Ordering::SeqCst);
        if let Err(e) = r {
            pr_err!("domain {}: fill refused: {}\n", self.id, -e.0);
        }
        r
    }

    /// Empties the hypervisor domain after a device left it, if no device of ours is in it any
    /// more and its mappings are all alike (not `eager`). Under [`HOLDS`]' lock, process
    /// context. A refused drain breaks the domain (logged).
    fn settle(&self) {
        if self.presence.is_empty()
            || self.eager.load(Ordering::SeqCst)
            || self.broken.load(Ordering::Acquire)
            || self.users() != 0
        {
            return;
        }
        self.quiesce(&self.transit);
        // A map that made the domain eager before the counter was up has finished by now.
        let r = if self.eager.load(Ordering::SeqCst) {
            Ok(())
        } else {
            HvBackend.refill_reserve(Context::Sleepable);
            PagingDomain::new(self.id, self).drain(&Hv::new(&HvBackend), &resched)
        };
        self.transit.fetch_sub(1, Ordering::SeqCst);
        if let Err(e) = r {
            pr_err!("domain {}: drain refused: {}\n", self.id, -e.0);
        }
    }
}

/// Between the steps of a fill or a drain (which deposit from the reserve under the walk
/// lock): tops the reserve up, sleeping, and reschedules.
fn resched() {
    HvBackend.refill_reserve(Context::Sleepable);
    // SAFETY: no preconditions; process context (fills and drains run under a mutex).
    unsafe { shim::hvir_cond_resched() };
}

impl DomainState for Domain {
    type Shadow = GenericShadow;

    fn shadow(&self) -> &GenericShadow {
        &self.shadow
    }

    fn with_stranded<R>(&self, f: impl FnOnce(&mut Stranded) -> R) -> R {
        f(&mut self.stranded.lock())
    }

    fn broken(&self) -> &AtomicBool {
        &self.broken
    }

    fn presence(&self) -> &Presence {
        &self.presence
    }

    fn with_walk<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.walk.lock();
        f()
    }

    fn fence(&self) {
        let f = fence_domain(&Hv::new(&HvBackend), &Devices, self.id);
        pr_err!(
            "domain {}: the hypervisor keeps pages the IOMMU core no longer maps; fenced: {} device(s) detached (DMA blocked), {} refused; the domain refuses further use\n",
            self.id,
            f.detached,
            f.refused
        );
    }
}

fn neg(e: hvpt::errno::Errno) -> c_int {
    -e.0
}

/// Unmaps everything and deletes the hypervisor domain; `false` if the hypervisor keeps it.
fn teardown(d: &Domain) -> bool {
    let hv = Hv::new(&HvBackend);
    let pd = PagingDomain::new(d.id, d);
    let stuck = pd.unmap_all(&hv);
    if stuck != 0 {
        pr_err!("domain {}: {} pages could not be unmapped\n", d.id, stuck);
        return false;
    }
    match hv.delete_domain(pd.domain) {
        Ok(()) => true,
        Err(e) => {
            pr_err!("DELETE_DEVICE_DOMAIN {} failed: {}\n", d.id, -e.0);
            false
        }
    }
}

/// Retries the teardown of quarantined domains; a domain that goes gives its id back.
fn retry_quarantine() {
    let mut q = QUARANTINE.lock();
    let mut i = 0;
    while let Some(d) = q.get(i) {
        if !teardown(d) {
            i += 1;
            continue;
        }
        let id = d.id;
        // `i` is in bounds (just read).
        drop(q.remove(i));
        id_free(id);
        pr_info!("domain {}: deleted on retry, id released\n", id);
    }
}

/// Domain ids tried when CREATE_DEVICE_DOMAIN says the id is taken.
const CREATE_TRIES: u32 = 8;

/// Gives domain id `id` back to the IDA.
fn id_free(id: u32) {
    // SAFETY: `id` came from `hvir_id_alloc()` and no domain of ours uses it any more.
    unsafe { shim::hvir_id_free(id) };
}

/// Allocates a domain id and creates the hypervisor domain and its state. Returns the state
/// with `*id` set, or NULL with `*err` (`-ENOSPC`: no free id). Process context.
///
/// If the hypervisor answers that the id exists (`-EACCES`: a domain left by an earlier load,
/// or not ours), that id stays allocated so that it is never tried again, and the next one is
/// tried, [`CREATE_TRIES`] times at most. Quarantined domains are retried after the new domain
/// exists (so a quarantined id is never handed out in the same call), or before another id
/// allocation when none is free.
///
/// # Safety
///
/// `id` and `err` must be valid for writes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_domain_new(id: *mut u32, err: *mut c_int) -> *mut c_void {
    let hv = Hv::new(&HvBackend);
    let flags = CreateDomainFlags {
        forward_progress_required: true,
        inherit_owning_vtl: false,
    };
    let fail = |e: c_int| {
        // SAFETY: by the function's safety requirements.
        unsafe { *err = e };
        core::ptr::null_mut()
    };
    // The reserve that lets unmap deposit without allocating.
    HvBackend.refill_reserve(Context::Sleepable);
    let mut tries = 0;
    let mut retried = false;
    let domain = loop {
        // SAFETY: no preconditions; process context.
        let raw = unsafe { shim::hvir_id_alloc() };
        let Ok(new) = u32::try_from(raw) else {
            if raw == ENOSPC.to_errno() && !retried {
                // Quarantined domains may hold the ids: try to delete them first.
                retried = true;
                retry_quarantine();
                continue;
            }
            return fail(raw);
        };
        let domain = match Domain::new(new) {
            Ok(d) => d,
            Err(e) => {
                id_free(new);
                return fail(e.to_errno());
            }
        };
        match hv.create_domain(DeviceDomain::own_s2(new), flags) {
            Ok(()) => break domain,
            Err(e) if e == hvpt::errno::EACCES && tries < CREATE_TRIES => {
                pr_warn!("domain id {} is taken in the hypervisor; skipped\n", new);
                tries += 1;
            }
            Err(e) => {
                pr_err!("CREATE_DEVICE_DOMAIN {} failed: {}\n", new, -e.0);
                id_free(new);
                return fail(neg(e));
            }
        }
    };
    let new_id = domain.id;
    // SAFETY: the state is never moved out of the box; `hvir_rs_domain_free` turns the pointer
    // back into the pinned box.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(domain) });
    // INVARIANT: listed until `hvir_rs_domain_free` removes it, before it frees the state.
    let live = LiveDomain {
        id: new_id,
        // SAFETY: `KBox::into_raw` never returns NULL.
        d: unsafe { NonNull::new_unchecked(raw) },
    };
    if HOLDS.lock().domains.push(live, GFP_KERNEL).is_err() {
        // SAFETY: `raw` came from `KBox::into_raw` above and is used no more.
        unsafe { hvir_rs_domain_free(raw.cast()) };
        return fail(ENOMEM.to_errno());
    }
    LIVE_DOMAINS.fetch_add(1, Ordering::Relaxed);
    // Quarantined domains get another chance; their ids were kept out of this allocation.
    retry_quarantine();
    // SAFETY: by the function's safety requirements.
    unsafe { *id = new_id };
    raw.cast::<c_void>()
}

/// The state behind a pointer from `hvir_rs_domain_new`.
///
/// # Safety
///
/// `rs` must come from `hvir_rs_domain_new` and not be freed yet.
unsafe fn domain<'a>(rs: *mut c_void) -> &'a Domain {
    // SAFETY: by the function's safety requirements.
    unsafe { &*rs.cast::<Domain>() }
}

/// Unmaps everything, deletes the hypervisor domain and frees the state and the id. If the
/// hypervisor keeps the domain, the state is quarantined and its id stays allocated until a
/// retry deletes the domain ([`retry_quarantine`]).
///
/// # Safety
///
/// `rs` must come from `hvir_rs_domain_new`; it is not used again. No device is attached.
#[no_mangle]
unsafe extern "C" fn hvir_rs_domain_free(rs: *mut c_void) {
    {
        let mut g = HOLDS.lock();
        if let Some(i) = g.domains.iter().position(|l| l.d.as_ptr() == rs.cast()) {
            // An existing index: cannot fail.
            let _ = g.domains.remove(i);
        }
    }
    // SAFETY: `rs` came from `KBox::into_raw` in `hvir_rs_domain_new` and is taken back once;
    // the state was pinned there and stays pinned.
    let d = unsafe { Pin::new_unchecked(KBox::from_raw(rs.cast::<Domain>())) };
    if d.guests.load(Ordering::SeqCst) != 0 {
        // A device is still in a guest with this as its home: the hypervisor refused to detach
        // it when the core moved it away, and the core freed the domain anyway. Its hold points
        // here, so the state, the hypervisor domain and the id stay (leaked) for the device to
        // come back to.
        pr_err!(
            "domain {}: freed while a device is still in a guest; kept\n",
            d.id
        );
        // SAFETY: the state stays pinned: it is leaked, never moved or freed.
        let _ = KBox::into_raw(unsafe { Pin::into_inner_unchecked(d) });
        return;
    }
    if teardown(&d) {
        id_free(d.id);
        return;
    }
    let id = d.id;
    if QUARANTINE.lock().push(d, GFP_KERNEL).is_err() {
        pr_err!(
            "domain {}: no memory to quarantine it; its id stays allocated\n",
            id
        );
    } else {
        pr_warn!(
            "domain {}: quarantined; its id stays allocated until a retry deletes it\n",
            id
        );
    }
}

/// Maps `pages` pages, allocating as the caller's `gfp` allows; `*mapped` gets the bytes mapped.
///
/// # Safety
///
/// `rs` as for [`domain`]; `mapped` valid for writes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_map(
    rs: *mut c_void,
    iova: u64,
    paddr: u64,
    pages: u64,
    prot: c_int,
    gfp: kernel::bindings::gfp_t,
    mapped: *mut usize,
) -> c_int {
    // SAFETY: by the function's safety requirements.
    let d = unsafe { domain(rs) };
    let gfp = Gfp::new(gfp);
    let Some(bytes) = pages
        .checked_mul(4096)
        .and_then(|b| usize::try_from(b).ok())
    else {
        return EOVERFLOW.to_errno();
    };
    if prot & IOMMU_WRITE == 0 {
        d.read_only.store(true, Ordering::SeqCst);
    }
    // A fill maps every page read/write cacheable: a domain with any other mapping stays
    // filled (`eager`), and such a map into an empty domain fills it first, under the lock.
    let alike = map_flags(prot) == MapFlags::dma(true);
    if !alike {
        d.eager.store(true, Ordering::SeqCst);
    }
    let map =
        || PagingDomain::new(d.id, d).map(&Hv::new(&HvBackend), iova, paddr, pages, prot, gfp);
    // Lock-free unless a device of the domain is in a guest (the map is checked against it
    // under the lock) or a fill or drain runs (they wait for this map, or it for them).
    let fast = d.lock_free(|| (alike || d.presence.is_filled()).then(map));
    let r = if let Some(Some(r)) = fast {
        r
    } else {
        if !gfp.blocking {
            // Checking a device in a guest or filling needs the lock; VFIO and iommufd map
            // with GFP_KERNEL.
            return EAGAIN.to_errno();
        }
        let mut g = HOLDS.lock();
        if !alike {
            if let Err(e) = d.fill() {
                return neg(e);
            }
        }
        let r = map();
        let run = Run {
            iova_page: iova / PAGE,
            pfn: paddr / PAGE,
            pages,
            writable: prot & IOMMU_WRITE != 0,
        };
        match r {
            Ok(()) => recheck(&mut g.holds, d, run).inspect_err(|_| {
                // A device in a guest would not reach what was mapped: undo the map.
                let _g = d.walk.lock();
                PagingDomain::new(d.id, d).unmap(&Hv::new(&HvBackend), iova, pages);
            }),
            Err(e) => Err(e),
        }
    };
    if gfp.blocking {
        // Top the unmap reserve up while we may sleep.
        HvBackend.refill_reserve(Context::Sleepable);
    }
    match r {
        Ok(()) => {
            // Counted only where maps reach the hypervisor.
            if d.presence.is_filled() {
                MAP_REQUESTS.record_map(pages);
            }
            // SAFETY: by the function's safety requirements.
            unsafe { *mapped = (*mapped).saturating_add(bytes) };
            0
        }
        Err(e) => neg(e),
    }
}

/// After a map into `home`, whose devices may be in guests: each such device whose guest
/// disagrees with the new run goes back to `home` (device-domain translation), with the reason
/// in the log. `EIO` if one could not leave its guest (it would reach the guest's page, not the
/// one mapped): the caller then undoes the map.
fn recheck(holds: &mut KVec<Hold>, home: &Domain, run: Run) -> Result<(), hvpt::errno::Errno> {
    let mut ret = Ok(());
    let mut i = 0;
    while let Some(h) = holds.get(i) {
        if !core::ptr::eq(h.home.as_ptr(), home) {
            i += 1;
            continue;
        }
        let Err(m) = hvpt::direct::check([run], &mut |gfn| h.guest_page(gfn)) else {
            i += 1;
            continue;
        };
        let (page, why) = explain(m);
        let (devid, pid) = (h.devid, h.partition_id);
        let r = return_home(holds, i);
        pr_info!(
            "device {:#x}: back from partition {} to domain {}: IOVA {:#x} {} ({})\n",
            devid,
            pid,
            home.id,
            page.saturating_mul(PAGE),
            why,
            match r {
                Ok(()) => 0,
                Err(e) => -e.0,
            }
        );
        // If the device is still in its guest its hold is still at `i`: skip it. Otherwise the
        // hold is gone and `i` is the next one.
        if holds.get(i).is_some_and(|h| h.devid == devid) {
            ret = Err(hvpt::errno::EIO);
            i += 1;
        }
    }
    ret
}

/// Unmaps the mapped run of up to `pages` pages from `iova`; returns its length. Never fails
/// and never allocates (see [`PagingDomain::unmap`]).
///
/// # Safety
///
/// `rs` as for [`domain`].
#[no_mangle]
unsafe extern "C" fn hvir_rs_unmap(rs: *mut c_void, iova: u64, pages: u64) -> u64 {
    // SAFETY: by the function's safety requirements.
    let d = unsafe { domain(rs) };
    let unmap = || PagingDomain::new(d.id, d).unmap(&Hv::new(&HvBackend), iova, pages);
    // As for maps: a direct-attach check, a fill or a drain reads the shadow only after the
    // unmaps in flight are done; from then on unmaps take the walk lock, so that the tables
    // they free are not read meanwhile and the window they unmap against holds still.
    let n = d.lock_free(unmap).unwrap_or_else(|| {
        let _g = d.walk.lock();
        unmap()
    });
    if d.presence.is_filled() {
        UNMAP_REQUESTS.record_unmap(n);
    }
    n
}

/// # Safety
///
/// `rs` as for [`domain`].
#[no_mangle]
unsafe extern "C" fn hvir_rs_iova_to_phys(rs: *mut c_void, iova: u64) -> u64 {
    // SAFETY: by the function's safety requirements.
    let d = unsafe { domain(rs) };
    PagingDomain::new(d.id, d).iova_to_phys(iova)
}

/// Keeps the paging domain behind `rs` filled for good (`eager`): the C side calls this before
/// it attaches a device to a DMA API domain, whose atomic maps must never wait for a fill.
///
/// # Safety
///
/// `rs` as for [`domain`].
#[no_mangle]
unsafe extern "C" fn hvir_rs_keep_filled(rs: *mut c_void) {
    // SAFETY: by the function's safety requirements.
    unsafe { domain(rs) }.eager.store(true, Ordering::SeqCst);
}

/// The state behind `rs`, `None` for NULL (identity and blocked).
///
/// # Safety
///
/// `rs` NULL, or as for [`domain`].
unsafe fn live<'a>(rs: *mut c_void) -> Option<&'a Domain> {
    // SAFETY: by the function's safety requirements.
    (!rs.is_null()).then(|| unsafe { domain(rs) })
}

/// Whether the state behind `rs` (NULL for identity and blocked) is domain `id` and broken.
///
/// # Safety
///
/// `rs` NULL, or as for [`domain`].
unsafe fn is_broken(rs: *mut c_void, id: u32) -> bool {
    if rs.is_null() {
        return false;
    }
    // SAFETY: `rs` is not NULL, so by the function's safety requirements it is a live state.
    let d = unsafe { domain(rs) };
    d.id == id && d.broken.load(Ordering::Acquire)
}

/// Moves hypervisor device `devid` to domain `to` (state `to_rs`, NULL for identity and
/// blocked) from the domain the core had it in (state `old_rs`, likewise). Process context,
/// under the device's group mutex.
///
/// # Safety
///
/// `to_rs` and `old_rs` NULL, or as for [`domain`].
#[no_mangle]
unsafe extern "C" fn hvir_rs_attach(
    devid: u64,
    to: u32,
    to_rs: *mut c_void,
    old_rs: *mut c_void,
) -> c_int {
    // SAFETY: by the function's safety requirements.
    let broken = |d: u32| unsafe { is_broken(to_rs, d) || is_broken(old_rs, d) };
    // SAFETY: by the function's safety requirements (the core keeps both domains alive).
    let (to_d, old_d) = unsafe { (live(to_rs), live(old_rs)) };
    let mut g = HOLDS.lock();
    // The hypervisor domain holds the mappings before the device enters it.
    if let Some(Err(e)) = to_d.map(|t| t.fill()) {
        return neg(e);
    }
    let r = attach_device(&Hv::new(&HvBackend), &Devices, devid, to, &broken);
    // A device that was in a guest left it (or was detached by a failed rollback).
    drop_stale_holds(&mut g.holds);
    // Empty the domain the device left, or the one a refused move filled for nothing.
    if let Some(d) = if r.is_ok() { old_d } else { to_d } {
        d.settle();
    }
    drop(g);
    match r {
        Ok(()) => 0,
        Err(e) => {
            pr_err!(
                "device {:#x}: attach to domain {} failed: {}\n",
                devid,
                to,
                -e.0
            );
            neg(e)
        }
    }
}

/// The most pages a direct-attach check looks at between two reschedules.
const CHECK_CHUNK_PAGES: u64 = 4096;

/// Checks every page `d` maps against the guest behind `hold` ([`hvpt::direct::check`]): the
/// pages checked, or why not. Walks the shadow's present leaves ([`Shadow::extent`]), each
/// step under the domain's `walk` lock (an unmap may free tables meanwhile; what it unmaps
/// needs no check), and checks each run outside it, rescheduling between chunks. Maps are held
/// off by the caller (`guests` set, `in_flight` 0, [`HOLDS`] held), so nothing is mapped behind
/// the walk; unmaps take the walk lock.
fn guest_check(d: &Domain, hold: &Hold) -> Result<u64, (u64, &'static str)> {
    if d.read_only.load(Ordering::SeqCst) {
        return Err((0, "it has read-only mappings"));
    }
    let sh = &d.shadow;
    let (lo, hi) = sh.span();
    let (mut at, mut checked) = (lo, 0u64);
    loop {
        let extent = {
            let _g = d.walk.lock();
            sh.extent(at, hi)
        };
        let Some((page, pfn, n)) = extent else { break };
        let run = Run {
            iova_page: page,
            pfn,
            pages: n.min(CHECK_CHUNK_PAGES),
            writable: true,
        };
        checked += hvpt::direct::check([run], &mut |gfn| hold.guest_page(gfn)).map_err(explain)?;
        at = page + run.pages;
        // SAFETY: no preconditions; process context (the caller holds a mutex).
        unsafe { shim::hvir_cond_resched() };
    }
    // Unmaps during the walk lower the count; nothing raises it.
    if checked < sh.recorded() {
        return Err((lo, "starts a mapping the walk did not see whole"));
    }
    Ok(checked)
}

/// Attaches hypervisor device `devid` directly to the guest partition `partition` (provider
/// operations `ops`, hypervisor id `partition_id`), out of the paging domain the hypervisor has
/// it in (its home), if every page that domain maps agrees with the guest's memory
/// (`hvir_attach_guest()` in `hyperv_iommu_root.h`).
///
/// Returns 0 when the device moved and the driver now holds the caller's partition reference
/// and pin; 1 when it was in that guest already (another function with its id moved it; the
/// caller keeps both); otherwise a negative errno and nothing changed: `EXDEV` (the mapping
/// disagrees, logged with the first page), `EACCES` (read-only mappings), `EINVAL` (in no
/// paging domain), `EBUSY` (being moved, or in another guest).
///
/// # Safety
///
/// `partition` referenced and pinned by the caller through `ops`, its provider's operations.
#[no_mangle]
unsafe extern "C" fn hvir_rs_attach_guest(
    devid: u64,
    partition: *mut c_void,
    ops: *const c_void,
    partition_id: u64,
) -> c_int {
    let (Some(partition), Some(ops)) = (NonNull::new(partition), NonNull::new(ops.cast_mut()))
    else {
        return EINVAL.to_errno();
    };
    let mut g = HOLDS.lock();
    if let Some(h) = g.holds.iter().find(|h| h.devid == devid) {
        return if h.partition_id == partition_id {
            1
        } else {
            EBUSY.to_errno()
        };
    }
    let placed = Devices.with(|devs| devs.iter().find(|e| e.id == devid).map(|e| e.placement));
    let Some(home) = (match placed {
        Some(Placement::Domain(id)) => g.domains.iter().find(|l| l.id == id).map(|l| l.d),
        _ => None,
    }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `home` is in the live domains under the lock we hold (type invariant).
    let d = unsafe { home.as_ref() };
    if g.holds.reserve(1, GFP_KERNEL).is_err() {
        return ENOMEM.to_errno();
    }
    // INVARIANT: counted now, so that maps from here on take the lock; the hold made below
    // (or the error path) takes the count back.
    d.quiesce(&d.guests);
    let hold = Hold {
        devid,
        home,
        partition,
        ops,
        partition_id,
    };
    let mut agrees = || match guest_check(d, &hold) {
        Ok(_) => Ok(()),
        Err((page, why)) => {
            pr_info!(
                "device {:#x}: stays in domain {}: IOVA {:#x} {} of partition {}\n",
                devid,
                d.id,
                page.saturating_mul(PAGE),
                why,
                partition_id
            );
            Err(if d.read_only.load(Ordering::SeqCst) {
                hvpt::errno::EACCES
            } else {
                hvpt::errno::EXDEV
            })
        }
    };
    let broken = |id: u32| id == d.id && d.broken.load(Ordering::Acquire);
    let r = attach_guest(
        &Hv::new(&HvBackend),
        &Devices,
        devid,
        d.id,
        PartitionId(partition_id),
        &broken,
        &mut agrees,
    );
    match r {
        Ok(true) => {
            // Within the capacity reserved above.
            if let Err(e) = g.holds.push_within_capacity(hold) {
                // Unreachable; keep the invariant anyway: the device must not stay unheld.
                core::mem::forget(e);
            }
            // Translated by the guest now: the home domain need not hold the mappings.
            d.settle();
            0
        }
        Ok(false) | Err(_) => {
            // Not moved (a placement in that guest without a hold cannot exist: both change
            // together under the lock). The caller keeps its reference and pin.
            core::mem::forget(hold);
            d.guests.fetch_sub(1, Ordering::SeqCst);
            match r {
                Err(e) => neg(e),
                _ => 1,
            }
        }
    }
}

/// Moves hypervisor device `devid` out of the guest partition `partition` (the provider's
/// pointer) back to its home domain, and drops the driver's partition reference. `ENOENT` if it
/// is not in that guest. If the hypervisor refuses, the device stays in the guest (and the
/// partition referenced): a partition is never destroyed under an attached device.
#[no_mangle]
extern "C" fn hvir_rs_detach_guest(devid: u64, partition: *mut c_void) -> c_int {
    let mut g = HOLDS.lock();
    let Some(i) = g
        .holds
        .iter()
        .position(|h| h.devid == devid && h.partition.as_ptr() == partition)
    else {
        return ENOENT.to_errno();
    };
    match return_home(&mut g.holds, i) {
        Ok(()) => 0,
        Err(e) => {
            pr_err!(
                "device {:#x}: detach from its partition failed: {}\n",
                devid,
                -e.0
            );
            neg(e)
        }
    }
}

/// Adds a claimed function's hypervisor device (or one more user of it). Process context.
#[no_mangle]
extern "C" fn hvir_rs_device_add(devid: u64) -> c_int {
    loop {
        let cap = {
            let mut g = DEVICES.lock();
            if let Some(e) = g.iter_mut().find(|e| e.id == devid) {
                e.users = e.users.saturating_add(1);
                return 0;
            }
            match g.push_within_capacity(DeviceEntry::new(devid)) {
                Ok(()) => return 0,
                Err(_) => g.capacity(),
            }
        };
        // Grow outside the IRQ-off lock, with GFP_KERNEL.
        let Some(want) = cap.checked_mul(2).and_then(|c| c.checked_add(8)) else {
            return ENOMEM.to_errno();
        };
        let Ok(mut bigger) = KVec::with_capacity(want, GFP_KERNEL) else {
            return ENOMEM.to_errno();
        };
        let mut g = DEVICES.lock();
        if g.capacity() < want {
            for e in g.iter() {
                // Within the capacity just allocated: cannot fail.
                let _ = bigger.push_within_capacity(*e);
            }
            core::mem::swap(&mut *g, &mut bigger);
        }
    }
}

/// Drops one user of a hypervisor device; the entry goes with its last user.
#[no_mangle]
extern "C" fn hvir_rs_device_remove(devid: u64) {
    let mut g = DEVICES.lock();
    if let Some(i) = g.iter().position(|e| e.id == devid) {
        let last = g.get_mut(i).is_some_and(|e| {
            e.users = e.users.saturating_sub(1);
            e.users == 0
        });
        if last {
            let _ = g.remove(i);
        }
    }
}

/// `hvir_device_info()`: users and placement of hypervisor device `devid`
/// (`enum hvir_placement` in `hyperv_iommu_root.h`).
///
/// # Safety
///
/// `users`, `placement`, `domain` and `partition` must be valid for writes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_device_info(
    devid: u64,
    users: *mut u32,
    placement: *mut u32,
    domain: *mut u32,
    partition: *mut u64,
) -> c_int {
    let Some(e) = Devices.with(|devs| devs.iter().find(|e| e.id == devid).copied()) else {
        return ENODEV.to_errno();
    };
    // `enum hvir_placement`.
    let (p, d, pt) = match e.placement {
        _ if e.busy => (2, 0, 0),
        Placement::Domain(d) => (0, d, 0),
        Placement::Detached => (1, 0, 0),
        Placement::Guest { partition, .. } => (3, 0, partition.0),
    };
    // SAFETY: by the function's safety requirements.
    unsafe {
        *users = e.users;
        *placement = p;
        *domain = d;
        *partition = pt;
    }
    0
}

/// The last step of freeing a paging domain (after `hvir_rs_domain_free` and the C side's own
/// cleanup): from here on the release control may let the module go.
#[no_mangle]
extern "C" fn hvir_rs_domain_gone() {
    LIVE_DOMAINS.fetch_sub(1, Ordering::Release);
}

/// Whether the module is in use: a paging domain exists, or a device is not in the default
/// domain.
#[no_mangle]
extern "C" fn hvir_rs_in_use() -> bool {
    LIVE_DOMAINS.load(Ordering::Acquire) != 0
        || devices_in_use(&Devices)
        || !HOLDS.lock().holds.is_empty()
}

/// # Safety
///
/// `list` must be a NUL-terminated string.
#[no_mangle]
unsafe extern "C" fn hvir_rs_skip(list: *const c_char, segment: u16, bus: u8, devfn: u8) -> bool {
    // SAFETY: by the function's safety requirements.
    let l = unsafe { CStr::from_char_ptr(list) };
    hvpt::iommu::skip_matches(l.to_bytes(), segment, bus, devfn)
}

/// The registered IOMMU; dropping it unregisters it (if the release control has not already).
struct Registration;

impl Registration {
    fn new() -> Result<Self> {
        // SAFETY: the shim returns its module parameter buffer, NUL-terminated.
        let skip = unsafe { CStr::from_char_ptr(shim::hvir_skip_list()) };
        // SAFETY: as for the skip list.
        let dma = unsafe { CStr::from_char_ptr(shim::hvir_dma_list()) };
        for (name, list) in [("hv_iommu_skip", skip), ("hv_iommu_dma", dma)] {
            if hvpt::iommu::parse_skip_list(list.to_bytes(), &mut |_| {}).is_err() {
                pr_err!("{name}: malformed, expected (SSSS:BB:DD.F)(SSSS:BB:DD.F)...\n");
                return Err(EINVAL);
            }
        }
        if boundary::l1vh() {
            // No device domains exist on an L1VH (no S2 default domain, spec §1(b) 7): its
            // devices go to guests by direct attach, which this driver does not do yet.
            pr_err!("L1VH partition: no device domains; not registering (direct attach is not supported yet)\n");
            return Err(EOPNOTSUPP);
        }
        // SAFETY: no preconditions.
        let max = unsafe { shim::hvir_max_domains() };
        if max == 0 || max > i32::MAX as u32 {
            pr_err!("hv_iommu_max_domains={max}: must be 1..{}\n", i32::MAX);
            return Err(EINVAL);
        }
        // SAFETY: called once, at module load, before anything can use them.
        unsafe {
            DEVICES.init();
            QUARANTINE.init();
            HOLDS.init();
        }
        // SAFETY: no preconditions; undone in `drop`.
        let ret = unsafe { shim::hvir_register() };
        if ret != 0 {
            pr_err!("IOMMU registration failed: {}\n", ret);
            return Err(Error::from_errno(ret));
        }
        pr_info!("registered: domains are Hyper-V device domains\n");
        Ok(Self)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; unregistering twice is a no-op in the shim.
        unsafe { shim::hvir_unregister() };
        // No domain of the IOMMU core is left (the module could not be unloaded otherwise):
        // a last try for the quarantined ones, then their state goes; the hypervisor keeps
        // what it refused to delete.
        retry_quarantine();
        // No hold is left either (a device in a guest keeps the module in use); free the
        // list's buffer, which the static would otherwise keep past unload.
        let g = &mut *HOLDS.lock();
        drop((
            core::mem::take(&mut g.holds),
            core::mem::take(&mut g.domains),
        ));
        let q = core::mem::take(&mut *QUARANTINE.lock());
        for d in q.iter() {
            pr_err!("domain {}: still held by the hypervisor at unload\n", d.id);
        }
        drop(q);
        // Every claimed function was released by the unregistration; the table's storage goes.
        drop(core::mem::take(&mut *DEVICES.lock()));
        boundary::drain_reserve();
        // SAFETY: nothing allocates or frees ids any more.
        unsafe { shim::hvir_ids_destroy() };
    }
}

/// `hyperv_iommu_root/release` in debugfs: writing `1` unregisters the IOMMU when no claimed
/// device is in use, so that the module can be unloaded.
fn write_release(_: &(), r: &mut kernel::uaccess::UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let n = r.len();
    let line = buf.get_mut(..n).ok_or(EINVAL)?;
    r.read_slice(line)?;
    if line.trim_ascii() != b"1" {
        return Err(EINVAL);
    }
    // SAFETY: no preconditions.
    let ret = unsafe { shim::hvir_release() };
    if ret != 0 {
        return Err(Error::from_errno(ret));
    }
    pr_info!("released: the IOMMU is unregistered, the module can be unloaded\n");
    Ok(())
}

/// `hyperv_iommu_root/stats`: the map/unmap requests of the IOMMU core and the fewest
/// hypercalls that could carry them (compare with `mshv_hvcall/stats`).
fn show_stats(_: &(), f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    for (name, c) in [("map", &MAP_REQUESTS), ("unmap", &UNMAP_REQUESTS)] {
        let x = c.figures();
        writeln!(
            f,
            "{name} requests={} pages={} min_hypercalls={}",
            x.requests, x.pages, x.min_hypercalls
        )?;
    }
    let g = HOLDS.lock();
    writeln!(f, "direct devices={}", g.holds.len())?;
    for h in g.holds.iter() {
        writeln!(
            f,
            "direct device={:#x} partition={} home={}",
            h.devid,
            h.partition_id,
            h.home().id
        )?;
    }
    Ok(())
}

/// Module state. The debugfs files go before the registration is dropped.
#[pin_data]
struct HvIommu {
    #[pin]
    release: kernel::debugfs::File<()>,
    #[pin]
    stats: kernel::debugfs::File<()>,
    _debugfs: kernel::debugfs::Dir,
    _reg: Registration,
}

impl kernel::InPlaceModule for HvIommu {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let debugfs = kernel::debugfs::Dir::new(c"hyperv_iommu_root");
        let reg = Registration::new();
        try_pin_init!(Self {
            release <- debugfs.write_callback_file(c"release", (), &write_release),
            stats <- debugfs.read_callback_file(c"stats", (), &show_stats),
            _debugfs: debugfs,
            _reg: reg?,
        })
    }
}

#[kunit_tests(hyperv_iommu_root)]
mod tests {
    use super::hvpt::errno;
    use super::hvpt::iommu::{IOMMU_READ, IOMMU_WRITE};
    use super::*;

    /// A domain id the driver's IDA never hands out (its ids stop at `INT_MAX`).
    const TEST_DOMAIN: u32 = 0x8000_0001;
    const PAGE: u64 = 4096;

    /// A test domain in the hypervisor; dropping it unmaps everything and deletes it, so that a
    /// failed assertion (which returns from the case) leaves nothing behind.
    struct TestDomain(Pin<KBox<Domain>>);

    impl TestDomain {
        /// Filled, as if a device used it: every map reaches the hypervisor.
        fn new() -> Option<Self> {
            let t = Self::empty()?;
            PagingDomain::new(TEST_DOMAIN, &*t.0)
                .fill(&Hv::new(&HvBackend), MapFlags::dma(true), &|| {})
                .ok()?;
            Some(t)
        }

        /// Empty, as a paging domain no device uses.
        fn empty() -> Option<Self> {
            let d = Domain::new(TEST_DOMAIN).ok()?;
            let flags = CreateDomainFlags {
                forward_progress_required: true,
                inherit_owning_vtl: false,
            };
            Hv::new(&HvBackend)
                .create_domain(DeviceDomain::own_s2(TEST_DOMAIN), flags)
                .ok()?;
            Some(Self(d))
        }
    }

    impl Drop for TestDomain {
        fn drop(&mut self) {
            if !teardown(&self.0) {
                pr_err!("test domain {} left in the hypervisor\n", TEST_DOMAIN);
            }
        }
    }

    /// The driver's paging-domain code in the kernel (the generic_pt shadow, kernel
    /// allocations, the hypercall backend): maps, exact translation through small and large
    /// leaves, overlap refused, an unmap stopping at a hole, and teardown with pages left in
    /// the domain. Only on the simulated hypervisor: on a real host this suite, which runs at
    /// every load, must not create hypervisor domains.
    #[test]
    fn map_translate_and_unmap() {
        if boundary::kunit_skip_unless_simulated() {
            return;
        }
        let hv = Hv::new(&HvBackend);
        let t = TestDomain::new();
        assert!(t.is_some());
        let Some(t) = t else {
            return;
        };
        let d = PagingDomain::new(TEST_DOMAIN, &*t.0);
        let (iova, pa, rw) = (0x1_0000_0000u64, 0x4000_0000u64, IOMMU_READ | IOMMU_WRITE);
        let kernel = Gfp::new(kernel::bindings::GFP_KERNEL);

        // 600 pages in two maps; 2M-aligned, so the first is one large leaf.
        assert_eq!(d.map(&hv, iova, pa, 512, rw, kernel), Ok(()));
        assert_eq!(
            d.map(&hv, iova + 512 * PAGE, pa + 512 * PAGE, 88, rw, kernel),
            Ok(())
        );
        assert_eq!(d.mapped(), 600);
        for p in [0, 1, 123, 511, 512, 599] {
            assert_eq!(d.iova_to_phys(iova + p * PAGE + 5), pa + p * PAGE + 5);
        }
        assert_eq!(d.iova_to_phys(iova + 600 * PAGE), 0);
        assert_eq!(d.iova_to_phys(iova - PAGE), 0);
        // Overlapping the last page: refused, nothing changes.
        let over = d.map(
            &hv,
            iova + 599 * PAGE,
            pa,
            2,
            rw,
            Gfp::new(kernel::bindings::GFP_ATOMIC),
        );
        assert_eq!(over, Err(errno::EEXIST));
        assert_eq!(d.mapped(), 600);
        assert_eq!(d.iova_to_phys(iova + 599 * PAGE), pa + 599 * PAGE);
        // The second map goes; an unmap of everything stops at the hole after the first.
        assert_eq!(d.unmap(&hv, iova + 512 * PAGE, 88), 88);
        assert_eq!(d.iova_to_phys(iova + 512 * PAGE), 0);
        assert_eq!(d.unmap(&hv, iova, 600), 512);
        assert_eq!(d.mapped(), 0);
        // Teardown finds what the core left behind.
        assert_eq!(d.map(&hv, iova + 7 * PAGE, pa, 3, rw, kernel), Ok(()));
        assert_eq!(d.unmap_all(&hv), 0);
        assert_eq!(d.iova_to_phys(iova + 7 * PAGE), 0);
        assert!(!d.is_broken());
    }

    /// The shadow's extent walk (`hvir_shadow_next()`, which reads generic_pt's x86-64
    /// entries itself) against its lookups: a 2M leaf, 4K leaves after a gap, one far away;
    /// walked from the start, from inside the large leaf and with an end inside a run, every
    /// extent's pages translate as the walk says and the extents cover exactly what is recorded.
    #[test]
    fn shadow_extents_match_lookups() {
        let sh = GenericShadow::new();
        assert!(sh.is_ok());
        let Ok(sh) = sh else {
            return;
        };
        let kernel = Gfp::new(kernel::bindings::GFP_KERNEL);
        let big = (0x4000_0000u64 / PAGE, 0x8020_0000u64 / PAGE);
        assert_eq!(sh.record(big.0, big.1, 512, kernel), Ok(()));
        assert_eq!(sh.record(big.0 + 600, 0x9000, 3, kernel), Ok(()));
        assert_eq!(sh.record(1 << 34, 0x7777, 1, kernel), Ok(()));
        assert_eq!(sh.extent(0, u64::MAX), Some((big.0, big.1, 512)));
        assert_eq!(
            sh.extent(big.0 + 100, u64::MAX),
            Some((big.0 + 100, big.1 + 100, 412))
        );
        assert_eq!(
            sh.extent(big.0 + 100, big.0 + 110),
            Some((big.0 + 100, big.1 + 100, 10))
        );
        assert_eq!(
            sh.extent(big.0 + 512, u64::MAX),
            Some((big.0 + 600, 0x9000, 1))
        );
        assert_eq!(sh.extent(big.0 + 603, (1 << 34) - 1), None);
        assert_eq!(sh.extent(big.0 + 603, u64::MAX), Some((1 << 34, 0x7777, 1)));
        let (mut at, mut pages) = (0u64, 0u64);
        while let Some((p, pfn, n)) = sh.extent(at, u64::MAX) {
            for i in 0..n {
                assert_eq!(sh.frame(p + i), Some(pfn + i));
            }
            pages += n;
            at = p + n;
        }
        assert_eq!(pages, sh.recorded());
        assert_eq!(sh.forget(big.0, 512), 512);
        assert_eq!(sh.extent(0, big.0 + 600), None);
        assert_eq!(sh.forget(big.0 + 600, 3), 3);
        assert_eq!(sh.forget(1 << 34, 1), 1);
        assert_eq!(sh.extent(0, u64::MAX), None);
    }

    /// The map entry point's rules for a map that cannot sleep (`GFP_ATOMIC`, as the DMA API
    /// maps): into an empty domain, one of read/write memory is recorded in the shadow only;
    /// one of another kind (read-only) needs the domain filled first, under the move lock, so
    /// it is refused with `EAGAIN` and nothing changes; with a device of the domain in a guest
    /// every such map is refused (its check needs the lock). With `GFP_KERNEL` the read-only map
    /// fills the domain and keeps it filled. (A failed assertion ends the case without dropping
    /// the test domain; the suite's later cases then fail too.)
    #[test]
    fn atomic_maps_that_need_the_lock_are_refused() {
        if boundary::kunit_skip_unless_simulated() {
            return;
        }
        let t = TestDomain::empty();
        assert!(t.is_some());
        let Some(t) = t else {
            return;
        };
        let d = &*t.0;
        let rs = core::ptr::from_ref::<Domain>(d).cast_mut().cast::<c_void>();
        let (iova, pa) = (0x3_0000_0000u64, 0x4000_0000u64);
        let map = |at: u64, prot: i32, gfp: kernel::bindings::gfp_t| {
            let mut mapped = 0usize;
            // SAFETY: `rs` points to a live domain state; `mapped` is a valid local.
            let r = unsafe { hvir_rs_map(rs, at, pa, 4, prot, gfp, &mut mapped) };
            (r, mapped)
        };
        let rw = IOMMU_READ | IOMMU_WRITE;
        assert_eq!(map(iova, rw, kernel::bindings::GFP_ATOMIC), (0, 4 * 4096));
        assert!(d.presence.is_empty());
        assert_eq!(
            map(iova + 0x10000, IOMMU_READ, kernel::bindings::GFP_ATOMIC),
            (EAGAIN.to_errno(), 0)
        );
        assert_eq!(d.shadow.frame((iova + 0x10000) / PAGE), None);
        assert!(d.presence.is_empty());

        d.guests.store(1, Ordering::SeqCst);
        assert_eq!(
            map(iova + 0x20000, rw, kernel::bindings::GFP_ATOMIC),
            (EAGAIN.to_errno(), 0)
        );
        d.guests.store(0, Ordering::SeqCst);
        assert_eq!(d.shadow.frame((iova + 0x20000) / PAGE), None);

        // Sleepable: the read-only map fills the domain (the read/write pages first) and keeps
        // it filled.
        assert_eq!(
            map(iova + 0x10000, IOMMU_READ, kernel::bindings::GFP_KERNEL),
            (0, 4 * 4096)
        );
        assert!(d.presence.is_filled() && d.eager.load(Ordering::SeqCst));
        assert_eq!(PagingDomain::new(TEST_DOMAIN, d).mapped(), 8);
        // SAFETY: `rs` points to a live domain state.
        assert_eq!(unsafe { hvir_rs_unmap(rs, iova, 4) }, 4);
        assert_eq!(PagingDomain::new(TEST_DOMAIN, d).mapped(), 4);
    }

    /// `hvir_device_info()`, the interface for the project's other drivers,
    /// answers for every claimed PCI function with the id `mshv_hvcall_pci_devid()` gives and a
    /// placement, and `-ENODEV` for every other one. Read-only: runs on Hyper-V too.
    #[test]
    fn device_info_interface() {
        // SAFETY: no preconditions; process context.
        let checked = unsafe { shim::hvir_kunit_check_device_info() };
        assert!(checked >= 0);
        // The VM always has unbound functions, which the driver claims.
        assert!(checked > 0 || !boundary::simulated());
    }

    /// A map and an unmap from a truly atomic context (interrupts off, under a spinlock), as
    /// the DMA API may issue them: with `CONFIG_DEBUG_ATOMIC_SLEEP` any sleeping allocation
    /// or lock on the way would splat. The shadow's tables and the deposits the map needs use
    /// `GFP_ATOMIC` pages, those of the unmap come from the reserve.
    #[test]
    fn map_and_unmap_with_interrupts_off() {
        if boundary::kunit_skip_unless_simulated() {
            return;
        }
        let hv = Hv::new(&HvBackend);
        let t = TestDomain::new();
        assert!(t.is_some());
        let Some(t) = t else {
            return;
        };
        let irq_off = KBox::pin_init(new_spinlock_irq!(()), GFP_KERNEL);
        assert!(irq_off.is_ok());
        let Ok(irq_off) = irq_off else {
            return;
        };
        let d = PagingDomain::new(TEST_DOMAIN, &*t.0);
        let (iova, pa, rw) = (0x2_0000_0000u64, 0x4000_0000u64, IOMMU_READ | IOMMU_WRITE);
        let (mapped, unmapped) = {
            let _g = irq_off.lock();
            let m = d.map(
                &hv,
                iova,
                pa,
                1024,
                rw,
                Gfp::new(kernel::bindings::GFP_ATOMIC),
            );
            (m, d.unmap(&hv, iova, 1024))
        };
        assert_eq!(mapped, Ok(()));
        assert_eq!(unmapped, 1024);
        assert_eq!(d.mapped(), 0);
        assert!(!d.is_broken());
    }
}
