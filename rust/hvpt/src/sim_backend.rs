// SPDX-License-Identifier: GPL-2.0

//! The host's backend: the simulated hypervisor in-process (feature `sim`).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::hvpt::calls::InputPage;
use super::hvpt::errno::{self as e, Errno};
use super::hvpt::hypercall::{Control, HvResult};
use super::hvpt::layer::{Backend, Context, DepositPages};
use super::hvpt::reserve::{PageReserve, RESERVE_PAGES};
use super::hvpt::sim::{Sim, SimBackend};
use super::HostAlloc;

/// Pages of a host deposit: made-up page numbers.
pub struct HostPages {
    pfns: Vec<u64>,
    /// Taken from the reserve: what the hypervisor does not take goes back there.
    from_reserve: bool,
}

impl DepositPages for HostPages {
    fn pfns(&self) -> &[u64] {
        &self.pfns
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
    /// Calls that allocated pages, per context (Sleepable, Atomic, Reserve): the last must
    /// stay 0.
    allocations: [Cell<u64>; 3],
    /// The reserve for [`Context::Reserve`], filled by `refill_reserve`.
    reserve: PageReserve<RESERVE_PAGES>,
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
            allocations: [Cell::new(0), Cell::new(0), Cell::new(0)],
            reserve: PageReserve::new(),
        })
    }

    /// Calls of `alloc_pages` (and `refill_reserve`) that allocated in context `ctx`.
    pub fn allocations(&self, ctx: Context) -> u64 {
        self.allocations[ctx_index(ctx)].get()
    }

    /// Pages in the reserve.
    pub fn reserve_pages(&self) -> usize {
        self.reserve.len()
    }

    fn allocate(&self, count: usize, ctx: Context) -> Result<Vec<u64>, Errno> {
        if let Some(n) = self.alloc_budget.get() {
            if n == 0 {
                return Err(e::ENOMEM);
            }
            self.alloc_budget.set(Some(n - 1));
        }
        let c = &self.allocations[ctx_index(ctx)];
        c.set(c.get() + 1);
        let first = self.next_pfn.get();
        self.next_pfn.set(first + count as u64);
        Ok((first..first + count as u64).collect())
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
        contiguous: bool,
        ctx: Context,
    ) -> Result<HostPages, Errno> {
        let (pfns, from_reserve) = if ctx == Context::Reserve {
            if contiguous {
                return Err(e::ENOMEM);
            }
            let mut v = alloc::vec![0u64; count.min(RESERVE_PAGES)];
            let n = self.reserve.take(&mut v);
            if n == 0 {
                return Err(e::ENOMEM);
            }
            v.truncate(n);
            (v, true)
        } else {
            (self.allocate(count, ctx)?, false)
        };
        self.outstanding
            .set(self.outstanding.get() + pfns.len() as u64);
        Ok(HostPages { pfns, from_reserve })
    }

    fn release_pages(&self, pages: HostPages, taken: usize) {
        self.outstanding
            .set(self.outstanding.get() - pages.pfns.len() as u64);
        self.taken.set(self.taken.get() + taken as u64);
        if pages.from_reserve {
            for &pfn in pages.pfns.iter().skip(taken) {
                // It came from the reserve, so there is a free slot for it.
                let _ = self.reserve.put(pfn);
            }
        }
    }

    fn refill_reserve(&self, ctx: Context) -> usize {
        if ctx == Context::Reserve {
            return self.reserve.len();
        }
        let missing = RESERVE_PAGES - self.reserve.len();
        if missing > 0 {
            if let Ok(v) = self.allocate(missing, ctx) {
                for pfn in v {
                    let _ = self.reserve.put(pfn);
                }
            }
        }
        self.reserve.len()
    }
}

fn ctx_index(ctx: Context) -> usize {
    match ctx {
        Context::Sleepable => 0,
        Context::Atomic => 1,
        Context::Reserve => 2,
    }
}

impl SimBackend for HostBackend {
    type Alloc = HostAlloc;

    fn with_sim<R>(&self, f: impl FnOnce(&mut Sim<HostAlloc>) -> R) -> R {
        f(&mut self.sim.borrow_mut())
    }
}
