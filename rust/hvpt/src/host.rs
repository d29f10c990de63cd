// SPDX-License-Identifier: GPL-2.0

//! Host build of the shared `hvpt` code.
//!
//! The kernel modules pull `lib.rs` in with `#[path = ".../lib.rs"] pub mod hvpt;`, so the same
//! source is compiled as a module of a kernel crate there and as this crate here. Nothing in
//! `lib.rs` or below may name `crate::`, `std` or `alloc`.
//!
//! This file adds what only the host needs: the simulator's storage on `alloc` ([`HostAlloc`])
//! and a backend that runs the simulator in-process ([`HostBackend`]), used by `cargo test` and
//! the figures example.

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[path = "lib.rs"]
mod hvpt;

pub use hvpt::*;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use hvpt::calls::InputPage;
use hvpt::errno::{self as e, Errno};
use hvpt::hypercall::{Control, HvResult};
use hvpt::layer::{Backend, Context, DepositPages};
use hvpt::sim::{Sim, SimAlloc, SimBackend, SimVec};

/// `Vec` with fallible push.
pub struct HostVec<T>(Vec<T>);

impl<T> core::ops::Deref for HostVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> core::ops::DerefMut for HostVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T> SimVec<T> for HostVec<T> {
    fn try_push(&mut self, v: T) -> Result<(), Errno> {
        self.0.try_reserve(1).map_err(|_| e::ENOMEM)?;
        self.0.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
}

/// The simulator's storage on the host.
pub struct HostAlloc;

impl SimAlloc for HostAlloc {
    type Vec<T> = HostVec<T>;
    type Table = Box<[u64; 512]>;

    fn new_vec<T>() -> HostVec<T> {
        HostVec(Vec::new())
    }

    fn new_table() -> Result<Box<[u64; 512]>, Errno> {
        Ok(Box::new([0; 512]))
    }
}

/// Pages of a host deposit: made-up page numbers.
pub struct HostPages(Vec<u64>);

impl DepositPages for HostPages {
    fn pfns(&self) -> &[u64] {
        &self.0
    }
}

/// The simulated hypervisor in-process, behind the layer's backend boundary.
///
/// The input page is poisoned before every call so that a field the layer forgets to write is
/// caught by the simulator's decoder. Deposit pages are numbered from `0x10_0000` up and counted
/// so that tests can check none leaks.
pub struct HostBackend {
    sim: RefCell<Sim<HostAlloc>>,
    page: RefCell<Box<InputPage>>,
    next_pfn: Cell<u64>,
    /// Pages allocated for deposits and neither given to the hypervisor nor freed.
    outstanding: Cell<u64>,
    /// Pages the hypervisor took.
    taken: Cell<u64>,
    /// Allocations left before `alloc_pages` fails with `ENOMEM` (`None`: never).
    alloc_budget: Cell<Option<u32>>,
}

impl HostBackend {
    /// A fresh simulator with only the root partition.
    pub fn new() -> Result<Self, Errno> {
        Ok(Self {
            sim: RefCell::new(Sim::new()?),
            page: RefCell::new(Box::new([0; 4096])),
            next_pfn: Cell::new(0x10_0000),
            outstanding: Cell::new(0),
            taken: Cell::new(0),
            alloc_budget: Cell::new(None),
        })
    }

    /// Pages allocated for deposits that were neither deposited nor freed (must be 0).
    pub fn outstanding_pages(&self) -> u64 {
        self.outstanding.get()
    }

    /// Pages the hypervisor took through deposits.
    pub fn deposited_pages(&self) -> u64 {
        self.taken.get()
    }

    /// Lets the next `n` deposit allocations succeed and fails the ones after.
    pub fn fail_allocations_after(&self, n: Option<u32>) {
        self.alloc_budget.set(n);
    }
}

impl Backend for HostBackend {
    type Pages = HostPages;

    fn hypercall(&self, control: Control, fill: &mut dyn FnMut(&mut InputPage)) -> HvResult {
        let mut page = self.page.borrow_mut();
        page.fill(0xa5);
        fill(&mut page);
        self.sim.borrow_mut().dispatch(control.encode(), &page)
    }

    fn alloc_pages(
        &self,
        count: usize,
        _contiguous: bool,
        _ctx: Context,
    ) -> Result<HostPages, Errno> {
        if let Some(n) = self.alloc_budget.get() {
            if n == 0 {
                return Err(e::ENOMEM);
            }
            self.alloc_budget.set(Some(n - 1));
        }
        let first = self.next_pfn.get();
        self.next_pfn.set(first + count as u64);
        self.outstanding.set(self.outstanding.get() + count as u64);
        Ok(HostPages((first..first + count as u64).collect()))
    }

    fn release_pages(&self, pages: HostPages, taken: usize) {
        self.outstanding
            .set(self.outstanding.get() - pages.0.len() as u64);
        self.taken.set(self.taken.get() + taken as u64);
    }
}

impl SimBackend for HostBackend {
    type Alloc = HostAlloc;

    fn with_sim<R>(&self, f: impl FnOnce(&mut Sim<HostAlloc>) -> R) -> R {
        f(&mut self.sim.borrow_mut())
    }
}
