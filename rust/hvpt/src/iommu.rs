// SPDX-License-Identifier: GPL-2.0

//! The kernel-independent part of the hyperv-iommu-root driver: paging-domain map/unmap with an
//! exact shadow, transactional attach, and the `hv_iommu_skip` list.
//!
//! A paging domain is a hypervisor S2 device domain plus a [`Shadow`] that records what the
//! driver mapped (in the kernel, the kernel's generic page table). The shadow answers
//! `iova_to_phys` without a lock and tells unmap which run is mapped. The hypervisor domain
//! holds the shadow's pages inside the domain's [`Presence`] window: all of them while a device
//! uses the domain in the hypervisor, none while none does (the domain is *filled* lazily, see
//! [`PagingDomain::fill`] and [`PagingDomain::drain`]). After every operation, failed or not,
//! the shadow's pages inside the window plus the domain's [`Stranded`] ranges equal what the
//! hypervisor holds: a map is recorded before MAP and forgotten whole if MAP fails; an unmap
//! forgets the run, then UNMAPs it; what a refused call leaves in the hypervisor is stranded.
//!
//! Where the hypervisor keeps pages that the IOMMU core will free (an UNMAP refused, a MAP
//! whose rollback failed), the domain is *broken*: its devices are detached in the hypervisor
//! (DMA blocked) before the call returns, and it refuses maps and attaches afterwards.
//!
//! Devices are tracked per hypervisor device id ([`DeviceEntry`]): PCI functions that alias to
//! one requester id (behind a PCIe-to-PCI bridge) are one device to the hypervisor.

use super::abi::{DeviceDomain, DeviceDomainId, PartitionId, HV_PAGE_SIZE};
use super::calls::{AttachDevice, MapFlags};
use super::device_id::{DeviceId, LogicalId};
use super::errno::{self, Errno};
use super::layer::{Backend, Context, Hv};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::abi::MAP_PAGES_PER_CALL;
use super::hypercall::MAX_REPS;

/// `IOMMU_READ`.
pub const IOMMU_READ: i32 = 1 << 0;
/// `IOMMU_WRITE`.
pub const IOMMU_WRITE: i32 = 1 << 1;
/// `IOMMU_MMIO`.
pub const IOMMU_MMIO: i32 = 1 << 4;

/// Hypervisor flags for an IOMMU protection value: always readable (the interface has no
/// write-only mapping), writable with `IOMMU_WRITE`, uncached with `IOMMU_MMIO`.
pub const fn map_flags(prot: i32) -> MapFlags {
    let f = MapFlags::dma(prot & IOMMU_WRITE != 0);
    if prot & IOMMU_MMIO != 0 {
        f.with(MapFlags::NOT_CACHED)
    } else {
        f
    }
}

/// What a paging domain records of its mappings: IOVA page number to frame number.
///
/// In the kernel this is the kernel's generic page table (generic_pt, x86-64 format: large
/// leaves, lockless lookups, tables allocated with the caller's gfp); on the host a model of it.
/// Its rules are the IOMMU API's: callers serialize operations on overlapping ranges (the IOMMU
/// core's range-lock contract), and a [`Shadow::forget`] never splits a [`Shadow::record`]: it
/// starts where a record starts and ends where one ends (or aggregates whole records).
pub trait Shadow {
    /// How the caller lets the shadow allocate (the kernel's `gfp_t`).
    type Gfp: Copy;

    /// How hypercall deposits may allocate under the same caller (atomic unless `gfp` may
    /// block).
    fn context(gfp: Self::Gfp) -> Context;

    /// Records `pages` pages from IOVA page `first` to frames from `pfn`, all or nothing:
    /// `EEXIST` if any page is recorded already, `ENOMEM`, `EINVAL` outside the shadow's range.
    fn record(&self, first: u64, pfn: u64, pages: u64, gfp: Self::Gfp) -> Result<(), Errno>;

    /// Forgets the recorded run from page `first`, at most `max` pages, up to the first page not
    /// recorded; returns its length. Never allocates and never fails.
    fn forget(&self, first: u64, max: u64) -> u64;

    /// The frame page `page` is recorded to. Lockless.
    fn frame(&self, page: u64) -> Option<u64>;

    /// Pages recorded.
    fn recorded(&self) -> u64;

    /// A window of pages `(lo, hi)` that holds every recorded page (`lo == hi` when nothing
    /// was ever recorded); it may be wider than what is recorded now.
    fn span(&self) -> (u64, u64);

    /// The first recorded extent at or after page `from` and below page `end`, as
    /// `(first page, its frame, pages)`: pages recorded to consecutive frames from `first`
    /// (at least one; at most to `end`). Skips what is not recorded without looking at it page by
    /// page. The caller keeps unmaps of that range from running meanwhile.
    fn extent(&self, from: u64, end: u64) -> Option<(u64, u64, u64)>;

    /// The first recorded page at or after `from` (teardown of a domain the core left pages
    /// in). `None` if there is none.
    fn next_recorded(&self, from: u64) -> Option<u64> {
        self.extent(from, u64::MAX).map(|(p, _, _)| p)
    }
}

/// Ranges the hypervisor still maps that the shadow's pages inside the [`Presence`] window do
/// not account for: what a refused UNMAP kept, or a MAP whose rollback failed. Only a broken
/// domain has any. Fixed capacity so that recording one never allocates (this runs on the
/// unmap path); beyond it the pages are only counted, and the domain can never be deleted (its
/// id stays quarantined).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stranded {
    ranges: [(u64, u64); Stranded::CAPACITY],
    len: usize,
    /// Pages stranded beyond the capacity: known to exist, not where.
    pub untracked: u64,
}

impl Stranded {
    /// Ranges kept.
    pub const CAPACITY: usize = 8;

    /// An empty record.
    pub const fn new() -> Self {
        Self {
            ranges: [(0, 0); Self::CAPACITY],
            len: 0,
            untracked: 0,
        }
    }

    /// The ranges, as `(first page, pages)`.
    pub fn ranges(&self) -> &[(u64, u64)] {
        self.ranges.get(..self.len).unwrap_or(&[])
    }

    /// Pages stranded in all.
    pub fn pages(&self) -> u64 {
        self.ranges()
            .iter()
            .fold(self.untracked, |n, r| n.saturating_add(r.1))
    }

    /// Whether page `page` is in a stranded range.
    pub fn contains(&self, page: u64) -> bool {
        self.ranges()
            .iter()
            .any(|&(f, n)| page >= f && page - f < n)
    }

    /// Adds `count` pages from `first`, merged with a range it extends.
    pub fn add(&mut self, first: u64, count: u64) {
        if count == 0 {
            return;
        }
        let len = self.len;
        for r in self.ranges.iter_mut().take(len) {
            if r.0.checked_add(r.1) == Some(first) {
                r.1 += count;
                return;
            }
            if first.checked_add(count) == Some(r.0) {
                *r = (first, r.1 + count);
                return;
            }
        }
        match self.ranges.get_mut(len) {
            Some(r) => {
                *r = (first, count);
                self.len += 1;
            }
            None => self.untracked = self.untracked.saturating_add(count),
        }
    }

    /// Replaces range `i` by what is left of it: `left` pages from `first`.
    fn set(&mut self, i: usize, first: u64, left: u64) {
        if left != 0 {
            if let Some(r) = self.ranges.get_mut(i) {
                *r = (first, left);
            }
            return;
        }
        if i < self.len {
            self.ranges.copy_within(i + 1..self.len, i);
            self.len -= 1;
        }
    }
}

/// Which of the shadow's pages the hypervisor domain holds: those in the page window
/// `[start, end)`. `[0, u64::MAX)` when the domain is *filled* (a device uses it in the
/// hypervisor), an empty window when it is *empty* (the shadow alone records the mappings, and
/// maps and unmaps issue no hypercall). Other windows exist only while
/// [`PagingDomain::fill`] or [`PagingDomain::drain`] runs, or on a domain whose drain the
/// hypervisor refused (then broken, see [`DomainState::broken`]).
///
/// Changed only under the domain's walk lock ([`DomainState::with_walk`]) by a fill or a drain,
/// which the caller keeps from running alongside a map; read without it by maps and unmaps that
/// the caller lets run lock-free only while no fill or drain runs.
#[derive(Debug)]
pub struct Presence {
    start: AtomicU64,
    end: AtomicU64,
}

impl Presence {
    /// A filled domain's window.
    pub const fn filled() -> Self {
        Self {
            start: AtomicU64::new(0),
            end: AtomicU64::new(u64::MAX),
        }
    }

    /// An empty domain's window.
    pub const fn empty() -> Self {
        Self {
            start: AtomicU64::new(0),
            end: AtomicU64::new(0),
        }
    }

    /// The window, `(start, end)`.
    pub fn window(&self) -> (u64, u64) {
        (
            self.start.load(Ordering::Acquire),
            self.end.load(Ordering::Acquire),
        )
    }

    /// Whether the hypervisor holds every recorded page.
    pub fn is_filled(&self) -> bool {
        self.window() == (0, u64::MAX)
    }

    /// Whether the hypervisor holds no recorded page.
    pub fn is_empty(&self) -> bool {
        let (s, e) = self.window();
        s >= e
    }

    /// Whether page `page` is inside the window.
    pub fn window_holds(&self, page: u64) -> bool {
        let (s, e) = self.window();
        s <= page && page < e
    }

    fn set(&self, start: u64, end: u64) {
        self.start.store(start, Ordering::Release);
        self.end.store(end, Ordering::Release);
    }

    /// The part of `pages` pages from `first` inside the window, as `(offset, pages)`.
    fn clip(&self, first: u64, pages: u64) -> Option<(u64, u64)> {
        let (s, e) = self.window();
        let end = first.saturating_add(pages);
        let (a, b) = (first.max(s), end.min(e));
        (a < b).then(|| (a - first, b - a))
    }
}

/// A paging domain's state as the driver keeps it: the shadow, the stranded ranges (under a
/// lock: an IRQ-safe spinlock in the kernel), whether the domain is broken, and how to fence it.
pub trait DomainState {
    /// The shadow.
    type Shadow: Shadow;

    /// The shadow.
    fn shadow(&self) -> &Self::Shadow;

    /// Runs `f` on the stranded ranges, locked. `f` does not sleep or allocate.
    fn with_stranded<R>(&self, f: impl FnOnce(&mut Stranded) -> R) -> R;

    /// Set once the hypervisor kept pages that the IOMMU core believes unmapped: the domain's
    /// devices are fenced and the domain refuses maps and attaches from then on.
    fn broken(&self) -> &AtomicBool;

    /// Blocks DMA of every device attached to this domain (detaches them in the hypervisor).
    /// Called after [`DomainState::broken`] is set; must not sleep or allocate.
    fn fence(&self);

    /// Which recorded pages the hypervisor domain holds.
    fn presence(&self) -> &Presence;

    /// Runs `f` under the domain's walk lock (in the kernel an IRQ-safe spinlock, which unmaps
    /// take while a fill or drain runs). `f` does not sleep; it may issue hypercalls that
    /// allocate atomically.
    fn with_walk<R>(&self, f: impl FnOnce() -> R) -> R;
}

/// A paging domain: the hypervisor domain and its state.
pub struct PagingDomain<'a, L: DomainState> {
    /// The hypervisor domain.
    pub domain: DeviceDomain,
    /// The shadow and health.
    pub state: &'a L,
}

const PAGE: u64 = HV_PAGE_SIZE as u64;

impl<'a, L: DomainState> PagingDomain<'a, L> {
    /// The paging domain with hypervisor id `id` (owned by the caller's partition).
    pub fn new(id: u32, state: &'a L) -> Self {
        Self {
            domain: DeviceDomain::own_s2(id),
            state,
        }
    }

    /// Whether the domain is broken (see [`DomainState::broken`]).
    pub fn is_broken(&self) -> bool {
        self.state.broken().load(Ordering::Acquire)
    }

    /// Notes pages the hypervisor keeps and the shadow does not, breaks the domain and fences
    /// its devices.
    fn strand(&self, first: u64, count: u64) {
        self.state.with_stranded(|s| s.add(first, count));
        self.state.broken().store(true, Ordering::Release);
        self.state.fence();
    }

    /// Maps `pages` 4K pages of physically contiguous memory from `paddr` at `iova`.
    ///
    /// The shadow records the pages first (allocating as `gfp` allows, never under a lock of
    /// ours), then the hypervisor maps them (deposits as [`Shadow::context`] of `gfp` allows).
    ///
    /// `EINVAL` for unaligned addresses, `EEXIST` if any page is mapped already, `ENOMEM` if the
    /// shadow cannot grow (nothing is changed in these cases), `EIO` on a broken domain;
    /// otherwise the hypervisor's verdict. On failure nothing of the call stays mapped, unless
    /// even the hypervisor's rollback failed: what it kept is stranded, and the domain broken
    /// and fenced, since the caller will free those pages.
    pub fn map<B: Backend>(
        &self,
        hv: &Hv<'_, B>,
        iova: u64,
        paddr: u64,
        pages: u64,
        prot: i32,
        gfp: <L::Shadow as Shadow>::Gfp,
    ) -> Result<(), Errno> {
        if iova % PAGE != 0 || paddr % PAGE != 0 || pages == 0 {
            return Err(errno::EINVAL);
        }
        if self.is_broken() {
            return Err(errno::EIO);
        }
        let (first, pfn) = (iova / PAGE, paddr / PAGE);
        if first.checked_add(pages).is_none() || pfn.checked_add(pages).is_none() {
            return Err(errno::EOVERFLOW);
        }
        let shadow = self.state.shadow();
        shadow.record(first, pfn, pages, gfp)?;
        // Only the part inside the window goes to the hypervisor: none of it while the domain is
        // empty.
        let Some((off, n)) = self.state.presence().clip(first, pages) else {
            return Ok(());
        };
        let ctx = L::Shadow::context(gfp);
        let at = iova + off * PAGE;
        if let Err(e) = hv.map(self.domain, at, pfn + off, n, map_flags(prot), ctx) {
            // The whole record goes (the shadow cannot split it); what the failed rollback
            // left mapped is stranded.
            shadow.forget(first, pages);
            let kept = e.mapped.start.min(n)..e.mapped.end.min(n);
            if !kept.is_empty() {
                self.strand(first + off + kept.start, kept.end - kept.start);
            }
            return Err(e.errno);
        }
        Ok(())
    }

    /// Unmaps up to `pages` pages from `iova`: the mapped run starting at `iova`, up to the
    /// first page that is not mapped. Returns the length of that run.
    ///
    /// Never fails and never allocates: the shadow forgets the run (freeing tables), and
    /// deposits the hypervisor asks for come from the backend's reserve ([`Context::Reserve`]).
    /// If the hypervisor still refuses, what it kept is stranded and the domain broken and its
    /// devices fenced before this returns, so no device can reach the pages the caller is about
    /// to free; the run is reported unmapped all the same.
    pub fn unmap<B: Backend>(&self, hv: &Hv<'_, B>, iova: u64, pages: u64) -> u64 {
        if iova % PAGE != 0 {
            return 0;
        }
        let first = iova / PAGE;
        let run = self.state.shadow().forget(first, pages);
        let Some((off, n)) = self.state.presence().clip(first, run) else {
            return run;
        };
        if let Err(e) = hv.unmap(self.domain, iova + off * PAGE, n, Context::Reserve) {
            let kept = e.mapped.start.min(n)..e.mapped.end.min(n);
            self.strand(first + off + kept.start, kept.end - kept.start);
        }
        run
    }

    /// The physical address `iova` translates to, or 0. Lockless.
    pub fn iova_to_phys(&self, iova: u64) -> u64 {
        self.state
            .shadow()
            .frame(iova / PAGE)
            .and_then(|f| f.checked_mul(PAGE))
            .map_or(0, |p| p | (iova % PAGE))
    }

    /// Whether page `page` is stranded (mapped in the hypervisor, not in the shadow).
    pub fn is_stranded(&self, page: u64) -> bool {
        self.state.with_stranded(|s| s.contains(page))
    }

    /// Unmaps everything (before the domain is deleted; no device is attached), stranded
    /// ranges too. Returns the pages the hypervisor still holds as far as the driver knows: 0
    /// normally; otherwise the domain cannot be deleted and its id must stay reserved.
    pub fn unmap_all<B: Backend>(&self, hv: &Hv<'_, B>) -> u64 {
        let shadow = self.state.shadow();
        let mut from = 0;
        while let Some(p) = shadow.next_recorded(from) {
            let n = self.unmap(hv, p * PAGE, u64::MAX);
            from = p + n.max(1);
        }
        // Stranded ranges: one UNMAP attempt each (in the hypervisor order, without a lock:
        // nothing else touches a domain being torn down).
        let mut i = 0;
        while let Some((f, n)) = self.state.with_stranded(|s| s.ranges().get(i).copied()) {
            let left = match hv.unmap(self.domain, f * PAGE, n, Context::Reserve) {
                Ok(()) => 0..0,
                Err(e) => e.mapped.start.min(n)..e.mapped.end.min(n),
            };
            // A refusal keeps one run (the pages from the failing rep on).
            self.state
                .with_stranded(|s| s.set(i, f + left.start, left.end - left.start));
            if !left.is_empty() {
                i += 1;
            }
        }
        self.mapped()
    }

    /// Pages the hypervisor maps in this domain, as the driver knows it: the shadow's and the
    /// stranded ones.
    pub fn mapped(&self) -> u64 {
        let stranded = self.state.with_stranded(|s| s.pages());
        let shadow = self.state.shadow();
        let presence = self.state.presence();
        let held = if presence.is_filled() {
            shadow.recorded()
        } else if presence.is_empty() {
            0
        } else {
            // A partial window (a broken domain's, or a fill's or drain's): count extent by
            // extent.
            let (mut at, end) = presence.window();
            let mut n = 0u64;
            while let Some((p, _, len)) = shadow.extent(at, end) {
                n = n.saturating_add(len);
                at = p + len;
            }
            n
        };
        held.saturating_add(stranded)
    }

    /// The recorded run at or after page `from` and below `end`: `Ok((first, frame of first,
    /// pages))` for at most `max` consecutive recorded pages (recorded to consecutive frames
    /// too if `frames`), or `Err(end)` if nothing is recorded there.
    fn next_run(
        &self,
        from: u64,
        end: u64,
        max: u64,
        frames: bool,
    ) -> Result<(u64, u64, u64), u64> {
        let shadow = self.state.shadow();
        let Some((first, pfn, len)) = shadow.extent(from, end) else {
            return Err(end);
        };
        let mut n = len.min(max);
        while n < max {
            match shadow.extent(first + n, end) {
                Some((p, f, len))
                    if p == first + n && (!frames || pfn.checked_add(n) == Some(f)) =>
                {
                    n = n.saturating_add(len).min(max);
                }
                _ => break,
            }
        }
        Ok((first, pfn, n))
    }

    /// Fills an empty domain: the hypervisor maps every page the shadow records, with `flags`
    /// (the domain's only access: the caller fills only a domain whose mappings are all alike),
    /// in IOVA order, one MAP of a run of contiguous frames at a time (found extent by extent,
    /// never page by page), each under the walk lock with deposits from the backend's reserve.
    /// `resched` runs between them: the kernel refills the reserve there, sleeping, and
    /// reschedules.
    ///
    /// The caller keeps maps from running meanwhile; unmaps may run, under the walk lock: they
    /// unmap in the hypervisor what the fill already mapped (the window grows with the fill).
    ///
    /// On success the domain is filled. If the hypervisor refuses, what was filled is drained
    /// again ([`PagingDomain::drain`]) and the error returned; `EIO` for a broken domain, or one
    /// that is neither empty nor filled.
    pub fn fill<B: Backend>(
        &self,
        hv: &Hv<'_, B>,
        flags: MapFlags,
        resched: &dyn Fn(),
    ) -> Result<(), Errno> {
        let presence = self.state.presence();
        if self.is_broken() {
            return Err(errno::EIO);
        }
        if presence.is_filled() {
            return Ok(());
        }
        if !presence.is_empty() {
            return Err(errno::EIO);
        }
        let (lo, hi) = self.state.shadow().span();
        // Nothing is recorded below `lo`: the window starts there, empty, and grows.
        self.state.with_walk(|| presence.set(lo, lo));
        let mut at = lo;
        while at < hi {
            let step = self.state.with_walk(|| {
                let (first, pfn, n) = match self.next_run(at, hi, MAP_PAGES_PER_CALL as u64, true) {
                    Ok(run) => run,
                    Err(stop) => {
                        presence.set(lo, stop);
                        return Ok(stop);
                    }
                };
                if let Err(e) = hv.map(self.domain, first * PAGE, pfn, n, flags, Context::Reserve) {
                    // The window ends before this run: what a failed rollback kept is stranded.
                    presence.set(lo, first);
                    let kept = e.mapped.start.min(n)..e.mapped.end.min(n);
                    if !kept.is_empty() {
                        self.strand(first + kept.start, kept.end - kept.start);
                    }
                    return Err(e.errno);
                }
                presence.set(lo, first + n);
                Ok(first + n)
            });
            match step {
                Ok(next) => at = next,
                Err(e) => {
                    // Undo; a refused drain breaks the domain and keeps its window.
                    let _ = self.drain(hv, resched);
                    return Err(e);
                }
            }
            resched();
        }
        self.state.with_walk(|| presence.set(0, u64::MAX));
        Ok(())
    }

    /// Empties the domain: the hypervisor unmaps every page of the window that the shadow
    /// records, in IOVA order, one UNMAP of a recorded run at a time under the walk lock,
    /// depositing only from the reserve. The shadow keeps them all. `resched` runs between
    /// calls.
    ///
    /// As for [`PagingDomain::fill`], the caller keeps maps from running meanwhile, and unmaps
    /// take the walk lock (the window shrinks from its start). If the hypervisor refuses, the
    /// window keeps the pages it still maps, and the domain is broken and its devices fenced
    /// (there should be none: the caller drains a domain no device uses); `EIO` then.
    pub fn drain<B: Backend>(&self, hv: &Hv<'_, B>, resched: &dyn Fn()) -> Result<(), Errno> {
        let presence = self.state.presence();
        if presence.is_empty() {
            return Ok(());
        }
        let (lo, hi) = self.state.shadow().span();
        let (start, end) = presence.window();
        let end = end.min(hi);
        let mut at = start.max(lo);
        while at < end {
            let step = self.state.with_walk(|| {
                let (first, _, n) = match self.next_run(at, end, u64::from(MAX_REPS), false) {
                    Ok(run) => run,
                    Err(stop) => {
                        presence.set(stop, presence.window().1);
                        return Ok(stop);
                    }
                };
                if let Err(e) = hv.unmap(self.domain, first * PAGE, n, Context::Reserve) {
                    // Pages from the refused rep on are still mapped: the window starts there.
                    presence.set(first + e.mapped.start.min(n), presence.window().1);
                    return Err(e.errno);
                }
                presence.set(first + n, presence.window().1);
                Ok(first + n)
            });
            match step {
                Ok(next) => at = next,
                Err(_) => {
                    self.state.broken().store(true, Ordering::Release);
                    self.state.fence();
                    return Err(errno::EIO);
                }
            }
            resched();
        }
        self.state.with_walk(|| presence.set(0, 0));
        Ok(())
    }
}

/// What the IOMMU core asked a driver to map or unmap, and the fewest hypercalls that could have
/// carried it: each request of `n` pages needs at least [`layer::map_calls`] (or
/// [`layer::unmap_calls`]) of `n`, since a request is issued before the next one is known.
/// Compared with the hypervisor's own call count this shows whether the layer issues the
/// minimum. Updated without a lock (relaxed atomics); a reader may see a request half counted.
///
/// [`layer::map_calls`]: super::layer::map_calls
/// [`layer::unmap_calls`]: super::layer::unmap_calls
#[derive(Default)]
pub struct RequestCounts {
    requests: AtomicU64,
    pages: AtomicU64,
    min_hypercalls: AtomicU64,
}

/// A snapshot of [`RequestCounts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestFigures {
    /// `map_pages`/`unmap_pages` calls (that did something).
    pub requests: u64,
    /// Pages in them.
    pub pages: u64,
    /// The fewest hypercalls that could carry them.
    pub min_hypercalls: u64,
}

impl RequestCounts {
    /// Zero counts.
    pub const fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            min_hypercalls: AtomicU64::new(0),
        }
    }

    fn record(&self, pages: u64, min: u64) {
        if pages == 0 {
            return;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.pages.fetch_add(pages, Ordering::Relaxed);
        self.min_hypercalls.fetch_add(min, Ordering::Relaxed);
    }

    /// Counts a map request of `pages` pages.
    pub fn record_map(&self, pages: u64) {
        self.record(pages, super::layer::map_calls(pages));
    }

    /// Counts an unmap request that unmapped `pages` pages.
    pub fn record_unmap(&self, pages: u64) {
        self.record(pages, super::layer::unmap_calls(pages));
    }

    /// The counts now.
    pub fn figures(&self) -> RequestFigures {
        RequestFigures {
            requests: self.requests.load(Ordering::Relaxed),
            pages: self.pages.load(Ordering::Relaxed),
            min_hypercalls: self.min_hypercalls.load(Ordering::Relaxed),
        }
    }
}

/// Where the hypervisor has a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A root-owned domain (0 identity, `0xFFFFFFFF` blocked, or a paging domain).
    Domain(u32),
    /// Detached (DMA blocked), e.g. after a failed rollback.
    Detached,
    /// Attached directly to a guest partition under a logical id: translated by the guest's
    /// SLAT, so the device uses guest physical addresses.
    Guest {
        /// The guest partition.
        partition: PartitionId,
        /// The device's logical id in that partition.
        logical: LogicalId,
    },
}

/// Takes `device` out of `from` so that it can be attached elsewhere. The hypervisor accepts
/// an attach of a device in its default domain or detached, so those stay as they are; a
/// device in another domain is detached from it, one in a guest is detached from the guest.
fn leave<B: Backend>(hv: &Hv<'_, B>, device: DeviceId, from: Placement) -> Result<(), Errno> {
    match from {
        Placement::Detached | Placement::Domain(DeviceDomainId::S2_DEFAULT) => Ok(()),
        Placement::Domain(_) => hv.detach_domain(PartitionId::SELF, device),
        Placement::Guest { partition, logical } => hv.detach_device(partition, logical),
    }
}

/// Puts `device`, which [`leave`] took out of wherever it was, into `to`.
fn enter<B: Backend>(hv: &Hv<'_, B>, device: DeviceId, to: Placement) -> Result<(), Errno> {
    match to {
        Placement::Domain(d) => hv.attach_domain(DeviceDomain::own_s2(d), device),
        // Only reached from a device that left a domain or a guest: it is detached already.
        Placement::Detached => Ok(()),
        Placement::Guest { partition, logical } => {
            hv.attach_device(AttachDevice::logical(partition, device, logical))
        }
    }
}

/// Moves `device` from `from` to `to`, transactionally: between root domains, a guest
/// partition (direct attach) and detached, in any direction.
///
/// The device leaves `from` first (see [`leave`]) and then enters `to`. If entering fails, it
/// is put back into `from`. Returns where the device is afterwards: `to` on success; on failure
/// the error and `from`, or [`Placement::Detached`] if even the rollback failed.
pub fn move_device<B: Backend>(
    hv: &Hv<'_, B>,
    device: DeviceId,
    from: Placement,
    to: Placement,
) -> Result<(), (Errno, Placement)> {
    if from == to {
        return Ok(());
    }
    if to == Placement::Detached {
        // Really detached, from the default domain too.
        let r = match from {
            Placement::Domain(_) => hv.detach_domain(PartitionId::SELF, device),
            _ => leave(hv, device, from),
        };
        return r.map_err(|e| (e, from));
    }
    leave(hv, device, from).map_err(|e| (e, from))?;
    if let Err(e) = enter(hv, device, to) {
        let back = match from {
            // Leaving these did nothing: the device is still there.
            Placement::Detached | Placement::Domain(DeviceDomainId::S2_DEFAULT) => from,
            _ => match enter(hv, device, from) {
                Ok(()) => from,
                Err(_) => Placement::Detached,
            },
        };
        return Err((e, back));
    }
    Ok(())
}

/// Moves `device` from `from` to domain `to`, transactionally ([`move_device`]).
///
/// The hypervisor accepts ATTACH_DEVICE_DOMAIN only for a device in the default domain or
/// detached; from any other domain the device is detached first. If the attach then fails, the
/// device is attached back to `from`. Returns where the device is afterwards: `to` on success;
/// on failure the error and `from`, or [`Placement::Detached`] if even the rollback failed.
pub fn attach<B: Backend>(
    hv: &Hv<'_, B>,
    device: DeviceId,
    from: Placement,
    to: u32,
) -> Result<(), (Errno, Placement)> {
    move_device(hv, device, from, Placement::Domain(to))
}

/// A hypervisor device as the driver tracks it: one entry per hypervisor device id, shared by
/// every PCI function that aliases to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The hypervisor device id (encoded).
    pub id: u64,
    /// Functions (`struct device`s) probed with this id.
    pub users: u32,
    /// Where the hypervisor has it.
    pub placement: Placement,
    /// An attach is moving it (between its two critical sections).
    pub busy: bool,
}

impl DeviceEntry {
    /// A device at boot: in the hypervisor's default domain.
    pub const fn new(id: u64) -> Self {
        Self {
            id,
            users: 1,
            placement: Placement::Domain(DeviceDomainId::S2_DEFAULT),
            busy: false,
        }
    }
}

/// The driver's table of hypervisor devices behind its lock (an IRQ-safe spinlock in the
/// kernel, since a fence runs from unmap in any context). `f` must not sleep; it may issue a
/// hypercall that does not allocate ([`Context::Reserve`]).
pub trait DeviceTable {
    /// Runs `f` on the entries with the table locked.
    fn with<R>(&self, f: impl FnOnce(&mut [DeviceEntry]) -> R) -> R;
}

fn entry(devs: &mut [DeviceEntry], id: u64) -> Option<&mut DeviceEntry> {
    devs.iter_mut().find(|d| d.id == id)
}

/// Detaches `e` in the hypervisor without allocating; on success it is [`Placement::Detached`].
fn fence_entry<B: Backend>(hv: &Hv<'_, B>, e: &mut DeviceEntry) -> Result<(), Errno> {
    let dev = DeviceId::decode(e.id).map_err(|_| errno::EINVAL)?;
    hv.detach_domain_in(PartitionId::SELF, dev, Context::Reserve)?;
    e.placement = Placement::Detached;
    Ok(())
}

/// Moves hypervisor device `id` to domain `to`, transactionally (see [`attach`]).
///
/// `broken(d)` tells whether domain `d` is broken: a broken domain is refused with `EIO`, and
/// a device that ends up in one (its old domain broke while it was being moved, and the move
/// was rolled back) is fenced before this returns. A device already in `to` (another function
/// with the same id moved it) is left alone.
///
/// Attaches of one id are serialized by the caller (the IOMMU group mutex: aliasing functions
/// share a group); the table lock is not held across the hypercalls, which may allocate.
pub fn attach_device<B: Backend, T: DeviceTable>(
    hv: &Hv<'_, B>,
    table: &T,
    id: u64,
    to: u32,
    broken: &dyn Fn(u32) -> bool,
) -> Result<(), Errno> {
    if broken(to) {
        return Err(errno::EIO);
    }
    let dev = DeviceId::decode(id).map_err(|_| errno::EINVAL)?;
    let from = table.with(|devs| {
        let e = entry(devs, id).ok_or(errno::ENODEV)?;
        if e.busy {
            return Err(errno::EBUSY);
        }
        e.busy = true;
        Ok(e.placement)
    })?;
    let (ret, now) = match attach(hv, dev, from, to) {
        Ok(()) => (Ok(()), Placement::Domain(to)),
        Err((e, now)) => (Err(e), now),
    };
    table.with(|devs| {
        if let Some(e) = entry(devs, id) {
            e.placement = now;
            e.busy = false;
            if let Placement::Domain(d) = now {
                if broken(d) {
                    // A fence skipped it while it was busy; nothing else detaches it.
                    let _ = fence_entry(hv, e);
                }
            }
        }
    });
    ret
}

/// Attaches hypervisor device `id`, which the IOMMU core has in paging domain `home`, directly
/// to guest `partition` (ATTACH_DEVICE under [`LogicalId::of_device`]), transactionally.
///
/// `agrees()` runs first, with the device marked busy so that no other move interleaves: it
/// checks that what `home` maps agrees with the guest's memory (see [`super::direct::check`]) and
/// refuses with its own error otherwise, and then nothing is issued. If ATTACH_DEVICE fails the
/// device is put back into `home` ([`move_device`]), or fenced if `home` broke meanwhile.
///
/// Returns `Ok(true)` when the device moved, `Ok(false)` when it was in that guest already
/// (another function with the same id moved it). `EBUSY` if it is being moved or is in another
/// guest, `EINVAL` if the hypervisor does not have it in `home` (the core moved it elsewhere
/// meanwhile), `EIO` if `home` is broken.
pub fn attach_guest<B: Backend, T: DeviceTable>(
    hv: &Hv<'_, B>,
    table: &T,
    id: u64,
    home: u32,
    partition: PartitionId,
    broken: &dyn Fn(u32) -> bool,
    agrees: &mut dyn FnMut() -> Result<(), Errno>,
) -> Result<bool, Errno> {
    if broken(home) {
        return Err(errno::EIO);
    }
    let dev = DeviceId::decode(id).map_err(|_| errno::EINVAL)?;
    let to = Placement::Guest {
        partition,
        logical: LogicalId::of_device(dev),
    };
    table
        .with(|devs| {
            let e = entry(devs, id).ok_or(errno::ENODEV)?;
            if e.busy {
                return Err(errno::EBUSY);
            }
            match e.placement {
                p if p == to => return Ok(false),
                Placement::Guest { .. } => return Err(errno::EBUSY),
                p if p != Placement::Domain(home) => return Err(errno::EINVAL),
                _ => {}
            }
            e.busy = true;
            Ok(true)
        })
        .and_then(|moving| {
            if !moving {
                return Ok(false);
            }
            let (ret, now) = match agrees() {
                Err(e) => (Err(e), Placement::Domain(home)),
                Ok(()) => match move_device(hv, dev, Placement::Domain(home), to) {
                    Ok(()) => (Ok(true), to),
                    Err((e, now)) => (Err(e), now),
                },
            };
            table.with(|devs| {
                if let Some(e) = entry(devs, id) {
                    e.placement = now;
                    e.busy = false;
                    if now == Placement::Domain(home) && broken(home) {
                        let _ = fence_entry(hv, e);
                    }
                }
            });
            ret
        })
}

/// What a fence did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fenced {
    /// Devices detached.
    pub detached: u32,
    /// Devices the hypervisor refused to detach (still attached).
    pub refused: u32,
}

/// Detaches every device placed in `domain`, without allocating. Devices being moved are left
/// to their attach, which fences them at its end if they stay in a broken domain.
pub fn fence_domain<B: Backend, T: DeviceTable>(hv: &Hv<'_, B>, table: &T, domain: u32) -> Fenced {
    table.with(|devs| {
        let mut f = Fenced::default();
        for e in devs
            .iter_mut()
            .filter(|e| !e.busy && e.placement == Placement::Domain(domain))
        {
            match fence_entry(hv, e) {
                Ok(()) => f.detached += 1,
                Err(_) => f.refused += 1,
            }
        }
        f
    })
}

/// Whether any device is attached to anything but the default domain, or being moved.
pub fn devices_in_use<T: DeviceTable>(table: &T) -> bool {
    table.with(|devs| {
        devs.iter()
            .any(|e| e.busy || e.placement != Placement::Domain(DeviceDomainId::S2_DEFAULT))
    })
}

/// One `(SSSS:BB:DD.F)` entry of the skip list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipEntry {
    /// PCI segment.
    pub segment: u16,
    /// Bus.
    pub bus: u8,
    /// devfn.
    pub devfn: u8,
}

fn hex(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    s.iter()
        .try_fold(0u32, |v, &c| Some(v * 16 + (c as char).to_digit(16)?))
}

/// Parses the skip list `(SSSS:BB:DD.F)(SSSS:BB:DD.F)...` (hexadecimal, the format of
/// `hv_iommu_skip=`); `f` gets each entry. `EINVAL` on any malformed entry; then `f` has seen the
/// entries before it.
pub fn parse_skip_list(list: &[u8], f: &mut dyn FnMut(SkipEntry)) -> Result<(), Errno> {
    let mut rest = list;
    while let Some((&c, tail)) = rest.split_first() {
        if c.is_ascii_whitespace() {
            rest = tail;
            continue;
        }
        if c != b'(' {
            return Err(errno::EINVAL);
        }
        let end = tail.iter().position(|&c| c == b')').ok_or(errno::EINVAL)?;
        let (entry, after) = tail.split_at(end);
        rest = after.get(1..).unwrap_or(&[]);
        let mut parts = entry.split(|&c| c == b':');
        let (Some(seg), Some(bus), Some(df), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(errno::EINVAL);
        };
        let mut df = df.split(|&c| c == b'.');
        let (Some(dev), Some(func), None) = (df.next(), df.next(), df.next()) else {
            return Err(errno::EINVAL);
        };
        let (seg, bus, dev, func) = (hex(seg), hex(bus), hex(dev), hex(func));
        match (seg, bus, dev, func) {
            (Some(s), Some(b), Some(d), Some(fu))
                if s <= 0xffff && b <= 0xff && d < 32 && fu < 8 =>
            {
                f(SkipEntry {
                    segment: s as u16,
                    bus: b as u8,
                    devfn: ((d << 3) | fu) as u8,
                })
            }
            _ => return Err(errno::EINVAL),
        }
    }
    Ok(())
}

/// Whether `segment:bus:devfn` is in the skip list (a malformed list matches nothing; it is
/// rejected when the module loads).
pub fn skip_matches(list: &[u8], segment: u16, bus: u8, devfn: u8) -> bool {
    let mut hit = false;
    let want = SkipEntry {
        segment,
        bus,
        devfn,
    };
    let ok = parse_skip_list(list, &mut |e| hit |= e == want);
    ok.is_ok() && hit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_list_matches_every_entry() {
        // The V3 seed's parser stopped at the first successfully parsed entry and never
        // matched; every entry must match here.
        let l = b"(0000:00:04.0)(0001:3a:1f.7) (0000:00:05.1)";
        assert!(skip_matches(l, 0, 0, 4 << 3));
        assert!(skip_matches(l, 1, 0x3a, (0x1f << 3) | 7));
        assert!(skip_matches(l, 0, 0, (5 << 3) | 1));
        assert!(!skip_matches(l, 0, 0, 5 << 3));
        assert!(!skip_matches(b"", 0, 0, 0));
    }

    #[test]
    fn skip_list_rejects_malformed() {
        for bad in [
            &b"0000:00:04.0"[..],
            b"(0000:00:04.0",
            b"(0000:00:20.0)",
            b"(0000:00:04.8)",
            b"(00000:00:04.0)",
            b"(0000:100:04.0)",
            b"(0000:00:04)",
            b"(0000:00:04.0.1)",
            b"(0000:00:04.0)x",
        ] {
            assert_eq!(
                parse_skip_list(bad, &mut |_| {}),
                Err(errno::EINVAL),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn request_counts_give_the_minimum_per_request() {
        let c = RequestCounts::new();
        for n in [1, 507, 508, 4096] {
            c.record_map(n);
        }
        c.record_map(0);
        let m = RequestFigures {
            requests: 4,
            pages: 1 + 507 + 508 + 4096,
            min_hypercalls: 1 + 1 + 2 + 9,
        };
        assert_eq!(c.figures(), m);
        let u = RequestCounts::new();
        for n in [4095, 4096, 8192, 0] {
            u.record_unmap(n);
        }
        assert_eq!(
            u.figures(),
            RequestFigures {
                requests: 3,
                pages: 4095 + 4096 + 8192,
                min_hypercalls: 1 + 2 + 3,
            }
        );
    }

    #[test]
    fn protection_to_map_flags() {
        assert_eq!(map_flags(IOMMU_READ), MapFlags::dma(false));
        assert_eq!(map_flags(IOMMU_WRITE), MapFlags::dma(true));
        assert_eq!(
            map_flags(IOMMU_READ | IOMMU_WRITE | IOMMU_MMIO),
            MapFlags::dma(true).with(MapFlags::NOT_CACHED)
        );
    }
}
