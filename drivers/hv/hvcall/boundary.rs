// SPDX-License-Identifier: GPL-2.0

//! Client side of the backend boundary (`mshv_hvcall.h`), shared by every module.
//!
//! A module includes this file next to the shared `hvpt` code:
//!
//! ```ignore
//! #[path = "../../../rust/hvpt/src/lib.rs"]
//! pub mod hvpt;
//! #[path = "../../hv/hvcall/boundary.rs"]
//! mod boundary;
//! ```
//!
//! and gets [`HvBackend`], the [`Backend`] that every hypercall of the layer goes through:
//! `mshv_hvcall_call()` of `mshv_hvcall.ko`, which fills the per-CPU input page with interrupts
//! off and hands it to Hyper-V or to the simulated hypervisor. The unsafe code of this file is
//! the trampoline that lets C call the layer's fill closure, and the declarations of the C
//! functions (signatures as in `mshv_hvcall.h`).

use core::ffi::c_void;

use kernel::prelude::*;

use super::hvpt::calls::InputPage;
use super::hvpt::errno::{self, Errno};
use super::hvpt::hypercall::{Control, HvResult};
use super::hvpt::layer::{Backend, Context, DepositPages};
use super::hvpt::reserve::{PageReserve, RESERVE_PAGES};

/// The C functions of the boundary (`mshv_hvcall.h`).
mod ffi {
    use core::ffi::c_void;

    /// `mshv_hvcall_fill_t`.
    pub(super) type Fill = unsafe extern "C" fn(page: *mut c_void, arg: *mut c_void);

    extern "C" {
        pub(super) fn mshv_hvcall_call(control: u64, fill: Fill, arg: *mut c_void) -> u64;
        pub(super) fn mshv_hvcall_alloc_pfns(
            pfns: *mut u64,
            count: u32,
            contiguous: bool,
            atomic: bool,
        ) -> i32;
        pub(super) fn mshv_hvcall_free_pfns(pfns: *const u64, count: u32);
        pub(super) fn mshv_hvcall_pages_out() -> i64;
        pub(super) fn mshv_hvcall_sim_ctx() -> *mut c_void;
        pub(super) fn mshv_hvcall_l1vh() -> bool;
        pub(super) fn mshv_hvcall_kunit_skip(reason: *const kernel::ffi::c_char);
    }
}

/// Converts a shared-code errno into a kernel error.
pub fn kerr(e: Errno) -> Error {
    Error::from_errno(-e.0)
}

/// Page frame numbers of pages allocated for a deposit.
///
/// # Invariants
///
/// Every entry was allocated by `mshv_hvcall_alloc_pfns()` and is owned by this list until
/// [`HvBackend::release_pages`] hands it on: to the hypervisor, back to [`RESERVE`] (the
/// entries that came from there), or to `Drop`, which frees it.
// The reserve variant is an inline array on purpose: taking pages from the reserve must not
// allocate (it runs in IOMMU unmap). 528 bytes on the stack of a deposit.
#[allow(clippy::large_enum_variant)]
pub enum PfnList {
    /// Freshly allocated.
    Heap(KVec<u64>),
    /// Taken from [`RESERVE`]: a fixed array (the first `.1` entries), so that taking them
    /// allocates nothing.
    Reserve([u64; RESERVE_PAGES], usize),
}

impl DepositPages for PfnList {
    fn pfns(&self) -> &[u64] {
        match self {
            Self::Heap(v) => v,
            Self::Reserve(a, n) => a.get(..*n).unwrap_or(&[]),
        }
    }
}

impl Drop for PfnList {
    fn drop(&mut self) {
        free_pfns(self.pfns());
    }
}

/// This module's reserve of deposit pages for [`Context::Reserve`] (an IOMMU unmap, a fence):
/// filled by [`HvBackend::refill_reserve`] in process context, emptied by [`drain_reserve`]
/// when the module goes away.
static RESERVE: PageReserve<RESERVE_PAGES> = PageReserve::new();

/// Frees the reserve's pages (module exit: no hypercall can run any more).
pub fn drain_reserve() {
    let mut a = [0u64; RESERVE_PAGES];
    let n = RESERVE.take(&mut a);
    free_pfns(a.get(..n).unwrap_or(&[]));
}

/// Pages in this module's reserve.
pub fn reserve_pages() -> usize {
    RESERVE.len()
}

fn free_pfns(pfns: &[u64]) {
    if pfns.is_empty() {
        return;
    }
    // SAFETY: by the type invariant of `PfnList` (and of `RESERVE`, whose pages came from a
    // `PfnList`) these pages came from `mshv_hvcall_alloc_pfns()`, and the caller gives up
    // every other claim on them. The count is at most one input page's worth.
    unsafe { ffi::mshv_hvcall_free_pfns(pfns.as_ptr(), pfns.len() as u32) };
}

fn alloc_pfns(count: usize, contiguous: bool, ctx: Context) -> Result<KVec<u64>, Errno> {
    let (flags, atomic) = match ctx {
        Context::Sleepable => (GFP_KERNEL, false),
        Context::Atomic => (GFP_ATOMIC, true),
        Context::Reserve => return Err(errno::ENOMEM),
    };
    let n = u32::try_from(count).map_err(|_| errno::EINVAL)?;
    let mut v = KVec::from_elem(0u64, count, flags).map_err(|_| errno::ENOMEM)?;
    // SAFETY: `v` holds `count` writable entries.
    let ret = unsafe { ffi::mshv_hvcall_alloc_pfns(v.as_mut_ptr(), n, contiguous, atomic) };
    if ret != 0 {
        return Err(Errno(-ret));
    }
    Ok(v)
}

/// Whether the partition is an L1VH (no device domains): Hyper-V's answer, or the simulated
/// partition's kind.
pub fn l1vh() -> bool {
    // SAFETY: no preconditions.
    unsafe { ffi::mshv_hvcall_l1vh() }
}

/// Whether the backend is the simulated hypervisor.
pub fn simulated() -> bool {
    // SAFETY: no preconditions.
    !unsafe { ffi::mshv_hvcall_sim_ctx() }.is_null()
}

const SKIP_REASON: &core::ffi::CStr = c"needs the simulated hypervisor (mshv_hvcall simulate=1)";

/// In a KUnit case that must only run on the simulated hypervisor: marks the case skipped and
/// returns `true` when the backend is Hyper-V itself.
pub fn kunit_skip_unless_simulated() -> bool {
    if simulated() {
        return false;
    }
    kunit_skip(SKIP_REASON);
    true
}

/// Marks the running KUnit case skipped with `reason` (nothing outside a KUnit case).
pub fn kunit_skip(reason: &core::ffi::CStr) {
    // SAFETY: a NUL-terminated string that outlives the call.
    unsafe { ffi::mshv_hvcall_kunit_skip(reason.as_char_ptr()) };
}

/// Pages allocated for deposits and not freed: the ones the hypervisor owns.
pub fn pages_out() -> i64 {
    // SAFETY: no preconditions.
    unsafe { ffi::mshv_hvcall_pages_out() }
}

/// The backend of `mshv_hvcall.ko`.
pub struct HvBackend;

/// The fill closure as the C side passes it back to us.
type FillRef<'a> = &'a mut dyn FnMut(&mut InputPage);

/// Calls the layer's fill closure on the input page.
///
/// # Safety
///
/// `page` must point to a writable, exclusively owned 4K input page, and `arg` to a live
/// `FillRef` (what [`HvBackend::hypercall`] passes).
unsafe extern "C" fn fill_trampoline(page: *mut c_void, arg: *mut c_void) {
    // SAFETY: by the function's safety requirements `arg` points to a live `FillRef`.
    let fill = unsafe { &mut *arg.cast::<FillRef<'_>>() };
    // SAFETY: by the function's safety requirements `page` is an exclusively owned 4K page;
    // `InputPage` is `[u8; 4096]` (alignment 1).
    let page = unsafe { &mut *page.cast::<InputPage>() };
    fill(page);
}

impl Backend for HvBackend {
    type Pages = PfnList;

    fn hypercall(&self, control: Control, fill: &mut dyn FnMut(&mut InputPage)) -> HvResult {
        let mut fill: FillRef<'_> = fill;
        let arg = core::ptr::from_mut(&mut fill).cast::<c_void>();
        // SAFETY: `fill_trampoline` matches `mshv_hvcall_fill_t`; `arg` points to `fill`, which
        // outlives the call; `mshv_hvcall_call()` passes it back with this CPU's input page,
        // which it owns with interrupts off until the dispatch returns.
        let raw = unsafe { ffi::mshv_hvcall_call(control.encode(), fill_trampoline, arg) };
        HvResult::from_raw(raw)
    }

    fn alloc_pages(&self, count: usize, contiguous: bool, ctx: Context) -> Result<PfnList, Errno> {
        if ctx == Context::Reserve {
            if contiguous {
                return Err(errno::ENOMEM);
            }
            let mut a = [0u64; RESERVE_PAGES];
            let n = RESERVE.take(a.get_mut(..count.min(RESERVE_PAGES)).unwrap_or(&mut []));
            if n == 0 {
                return Err(errno::ENOMEM);
            }
            // INVARIANT: the reserve holds only pages from `mshv_hvcall_alloc_pfns()`.
            return Ok(PfnList::Reserve(a, n));
        }
        // INVARIANT: every entry was just allocated by `mshv_hvcall_alloc_pfns()`.
        Ok(PfnList::Heap(alloc_pfns(count, contiguous, ctx)?))
    }

    fn release_pages(&self, mut pages: PfnList, taken: usize) {
        // The hypervisor owns the first `taken` pages now: drop them from the list. Of the rest,
        // reserve pages go back to the reserve; whatever is left in the list is freed when it
        // is dropped.
        match &mut pages {
            PfnList::Heap(v) => {
                let mut i = 0usize;
                v.retain(|_| {
                    i += 1;
                    i > taken
                });
            }
            PfnList::Reserve(a, n) => {
                let mut keep = 0usize;
                for i in taken.min(*n)..*n {
                    let pfn = a.get(i).copied().unwrap_or(0);
                    if !RESERVE.put(pfn) {
                        // The reserve was refilled meanwhile: this one is freed below.
                        if let Some(slot) = a.get_mut(keep) {
                            *slot = pfn;
                        }
                        keep += 1;
                    }
                }
                *n = keep;
            }
        }
    }

    fn refill_reserve(&self, ctx: Context) -> usize {
        let missing = RESERVE_PAGES.saturating_sub(RESERVE.len());
        if missing == 0 || ctx == Context::Reserve {
            return RESERVE.len();
        }
        if let Ok(v) = alloc_pfns(missing, false, ctx) {
            // These pages came from `mshv_hvcall_alloc_pfns()` and are owned here: each goes to
            // the reserve, or is freed if a concurrent refill filled it first.
            for &pfn in v.iter() {
                if !RESERVE.put(pfn) {
                    free_pfns(&[pfn]);
                }
            }
        }
        RESERVE.len()
    }
}
