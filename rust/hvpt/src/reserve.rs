// SPDX-License-Identifier: GPL-2.0

//! A fixed reserve of deposit pages, for hypercalls that must not allocate.
//!
//! An IOMMU unmap must neither fail nor allocate (iommufd unpins every page after an unmap,
//! whatever the driver returned), yet the hypervisor may answer UNMAP with an
//! `INSUFFICIENT_MEMORY` status. The backend keeps a few pages aside, allocated in process
//! context ([`Backend::refill_reserve`]), and deposits from them in
//! [`Context::Reserve`](super::layer::Context::Reserve).
//!
//! The reserve is `N` slots, each holding a page frame number or 0, changed only with atomic
//! swaps and compare-exchanges: it can be used from any context, never sleeps and never
//! allocates. Taking and putting race only for slots, never for a page: a page is in at most
//! one slot, and a taker owns what its swap returned.
//!
//! [`Backend::refill_reserve`]: super::layer::Backend::refill_reserve

use core::sync::atomic::{AtomicU64, Ordering};

/// Pages a backend keeps in its reserve: the layer's first two deposits of a shortage without
/// progress (16 + 32) and part of a third. Beyond that the unmap is refused and the domain
/// fenced, rather than allocating.
pub const RESERVE_PAGES: usize = 64;

/// `N` slots of page frame numbers (0 is an empty slot; page frame 0 is never deposited).
pub struct PageReserve<const N: usize> {
    slots: [AtomicU64; N],
}

impl<const N: usize> Default for PageReserve<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PageReserve<N> {
    /// An empty reserve.
    pub const fn new() -> Self {
        Self {
            slots: [const { AtomicU64::new(0) }; N],
        }
    }

    /// Slots in the reserve.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Pages in the reserve now (a snapshot).
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Whether the reserve holds no page (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves up to `out.len()` pages into `out`; returns how many. The caller owns them.
    pub fn take(&self, out: &mut [u64]) -> usize {
        let mut n = 0;
        for s in &self.slots {
            let Some(o) = out.get_mut(n) else {
                break;
            };
            let pfn = s.swap(0, Ordering::AcqRel);
            if pfn != 0 {
                *o = pfn;
                n += 1;
            }
        }
        n
    }

    /// Puts `pfn` back. Returns `false` if every slot is full (or `pfn` is 0); the caller still
    /// owns the page then.
    pub fn put(&self, pfn: u64) -> bool {
        if pfn == 0 {
            return false;
        }
        self.slots.iter().any(|s| {
            s.compare_exchange(0, pfn, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_and_put_move_pages_exactly_once() {
        let r: PageReserve<4> = PageReserve::new();
        assert!(r.is_empty());
        for pfn in 1..=4 {
            assert!(r.put(pfn));
        }
        assert!(!r.put(5), "a full reserve refuses");
        assert!(!r.put(0), "page 0 is the empty mark");
        let mut out = [0u64; 3];
        assert_eq!(r.take(&mut out), 3);
        assert_eq!(r.len(), 1);
        let mut rest = [0u64; 8];
        assert_eq!(r.take(&mut rest), 1);
        let mut all: [u64; 4] = [out[0], out[1], out[2], rest[0]];
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4]);
        assert_eq!(r.take(&mut rest), 0);
    }
}
