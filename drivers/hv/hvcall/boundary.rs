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
use super::hvpt::errno::Errno;
use super::hvpt::hypercall::{Control, HvResult};
use super::hvpt::layer::{Backend, Context, DepositPages};

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
/// Every entry was allocated by `mshv_hvcall_alloc_pfns()` and is freed exactly once: by
/// [`HvBackend::release_pages`] or, if it was never handed out, by `Drop`.
pub struct PfnList(KVec<u64>);

impl DepositPages for PfnList {
    fn pfns(&self) -> &[u64] {
        &self.0
    }
}

impl Drop for PfnList {
    fn drop(&mut self) {
        free_pfns(&self.0);
    }
}

fn free_pfns(pfns: &[u64]) {
    if pfns.is_empty() {
        return;
    }
    // SAFETY: by the type invariant of `PfnList` these pages came from
    // `mshv_hvcall_alloc_pfns()`, and the caller gives up every other claim on them.
    unsafe { ffi::mshv_hvcall_free_pfns(pfns.as_ptr(), pfns.len() as u32) };
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
        let flags = match ctx {
            Context::Sleepable => GFP_KERNEL,
            Context::Atomic => GFP_ATOMIC,
        };
        let n = u32::try_from(count).map_err(|_| super::hvpt::errno::EINVAL)?;
        let mut v = KVec::from_elem(0u64, count, flags).map_err(|_| super::hvpt::errno::ENOMEM)?;
        // SAFETY: `v` holds `count` writable entries.
        let ret = unsafe {
            ffi::mshv_hvcall_alloc_pfns(v.as_mut_ptr(), n, contiguous, ctx == Context::Atomic)
        };
        if ret != 0 {
            return Err(Errno(-ret));
        }
        // INVARIANT: every entry was just allocated by `mshv_hvcall_alloc_pfns()`.
        Ok(PfnList(v))
    }

    fn release_pages(&self, mut pages: PfnList, taken: usize) {
        // The hypervisor owns the first `taken` pages now: drop them from the list; dropping
        // the list frees the rest.
        let mut i = 0usize;
        pages.0.retain(|_| {
            i += 1;
            i > taken
        });
    }
}
