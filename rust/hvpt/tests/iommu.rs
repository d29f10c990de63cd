// SPDX-License-Identifier: GPL-2.0

//! The driver's kernel-independent logic against the simulated hypervisor: paging-domain
//! map/unmap/iova_to_phys with the shadow table, and transactional attach. Regression tests for
//! the V3 seed's bugs (seed-series §1(d)) that apply to this logic.

use core::cell::{Cell, RefCell};
use core::sync::atomic::AtomicBool;
use std::collections::BTreeMap;

use hvpt::abi::{CreateDomainFlags, DeviceDomain};
use hvpt::device_id::{DeviceId, LogicalId, PciRid};
use hvpt::errno;
use hvpt::errno::Errno;
use hvpt::hypercall::{CallCode, HvStatus};
use hvpt::iommu::{
    attach, attach_device, attach_guest, devices_in_use, fence_domain, move_device, DeviceEntry,
    DeviceTable, DomainState, Fenced, PagingDomain, Placement, Presence, Shadow, Stranded,
    IOMMU_READ, IOMMU_WRITE,
};
use hvpt::layer::{Backend, Context, Hv};
use hvpt::pagetable::PageTable;
use hvpt::sim::{Attachment, Fault, FaultKind, SimBackend};
use hvpt::storage::Storage;
use hvpt::{HostAlloc, HostBackend};

/// The driver's device table.
#[derive(Default)]
struct Devs(RefCell<Vec<DeviceEntry>>);

impl DeviceTable for Devs {
    fn with<R>(&self, f: impl FnOnce(&mut [DeviceEntry]) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// A model of the kernel's shadow (generic_pt): records at 4K granularity, with the IOMMU API's
/// rule enforced: a `forget` that starts inside a record or would end inside one panics (with
/// large leaves the kernel's table could not do it).
#[derive(Default)]
struct ModelShadow {
    /// Records by first page: (first frame, pages).
    records: RefCell<BTreeMap<u64, (u64, u64)>>,
    /// `record` fails with ENOMEM this many more times.
    fail_records: Cell<u32>,
}

impl Shadow for ModelShadow {
    type Gfp = Context;

    fn context(gfp: Context) -> Context {
        gfp
    }

    fn record(&self, first: u64, pfn: u64, pages: u64, _gfp: Context) -> Result<(), Errno> {
        if first.checked_add(pages).is_none_or(|end| end > 1 << 36) {
            return Err(errno::EINVAL);
        }
        let mut r = self.records.borrow_mut();
        let before = r.range(..first + pages).next_back();
        if before.is_some_and(|(&f, &(_, n))| f + n > first) {
            return Err(errno::EEXIST);
        }
        if self.fail_records.get() > 0 {
            self.fail_records.set(self.fail_records.get() - 1);
            return Err(errno::ENOMEM);
        }
        r.insert(first, (pfn, pages));
        Ok(())
    }

    fn forget(&self, first: u64, max: u64) -> u64 {
        let mut r = self.records.borrow_mut();
        if let Some((&f, &(_, n))) = r.range(..=first).next_back() {
            assert!(
                f == first || f + n <= first,
                "forget at {first} splits record {f}+{n}"
            );
        }
        let mut run = 0u64;
        while run < max {
            let Some((_, n)) = r.get(&(first + run)).copied() else {
                break;
            };
            assert!(
                run + n <= max,
                "forget {first}+{max} splits record {}+{n}",
                first + run
            );
            r.remove(&(first + run));
            run += n;
        }
        run
    }

    fn frame(&self, page: u64) -> Option<u64> {
        let r = self.records.borrow();
        let (&f, &(pfn, n)) = r.range(..=page).next_back()?;
        (page - f < n).then(|| pfn + (page - f))
    }

    fn recorded(&self) -> u64 {
        self.records.borrow().values().map(|r| r.1).sum()
    }

    fn span(&self) -> (u64, u64) {
        let r = self.records.borrow();
        match (r.first_key_value(), r.last_key_value()) {
            (Some((&lo, _)), Some((&f, &(_, n)))) => (lo, f + n),
            _ => (0, 0),
        }
    }

    fn extent(&self, from: u64, end: u64) -> Option<(u64, u64, u64)> {
        let r = self.records.borrow();
        let (first, pfn, n) = match r.range(..=from).next_back() {
            Some((&f, &(pfn, n))) if from < f + n => (from, pfn + (from - f), f + n - from),
            _ => r.range(from..).next().map(|(&f, &(pfn, n))| (f, pfn, n))?,
        };
        (first < end).then(|| (first, pfn, n.min(end - first)))
    }
}

/// A paging domain's state as the kernel driver keeps it: shadow, stranded ranges, broken
/// flag, and a fence that detaches the domain's devices through the device table.
struct State<'a> {
    shadow: ModelShadow,
    stranded: RefCell<Stranded>,
    broken: AtomicBool,
    id: u32,
    b: &'a HostBackend,
    devs: &'a Devs,
    fences: Cell<u32>,
    /// Devices the hypervisor refused to detach in a fence.
    refused: Cell<u32>,
    presence: Presence,
    /// `(n, iova, pages)`: right after the `n`th hold of the walk lock (counting from 1), an
    /// unmap of `pages` from `iova` takes the lock (one that raced with a fill or drain).
    unmap_after_walk: Cell<Option<(u32, u64, u64)>>,
    walks: Cell<u32>,
}

impl DomainState for State<'_> {
    type Shadow = ModelShadow;

    fn shadow(&self) -> &ModelShadow {
        &self.shadow
    }

    fn with_stranded<R>(&self, f: impl FnOnce(&mut Stranded) -> R) -> R {
        f(&mut self.stranded.borrow_mut())
    }

    fn broken(&self) -> &AtomicBool {
        &self.broken
    }

    fn fence(&self) {
        let f = fence_domain(&Hv::new(self.b), self.devs, self.id);
        self.refused.set(self.refused.get() + f.refused);
        self.fences.set(self.fences.get() + 1);
    }

    fn presence(&self) -> &Presence {
        &self.presence
    }

    fn with_walk<R>(&self, f: impl FnOnce() -> R) -> R {
        self.walks.set(self.walks.get() + 1);
        let r = f();
        if let Some((n, iova, pages)) = self.unmap_after_walk.get() {
            if n == self.walks.get() {
                PagingDomain::new(self.id, self).unmap(&Hv::new(self.b), iova, pages);
            }
        }
        r
    }
}

const RW: i32 = IOMMU_READ | IOMMU_WRITE;

fn backend() -> HostBackend {
    let b = HostBackend::new().unwrap();
    Hv::new(&b)
        .create_domain(DeviceDomain::own_s2(5), CreateDomainFlags::default())
        .unwrap();
    b
}

fn shadow<'a>(b: &'a HostBackend, devs: &'a Devs) -> State<'a> {
    State {
        shadow: ModelShadow::default(),
        stranded: RefCell::new(Stranded::new()),
        broken: AtomicBool::new(false),
        id: 5,
        b,
        devs,
        fences: Cell::new(0),
        refused: Cell::new(0),
        presence: Presence::filled(),
        unmap_after_walk: Cell::new(None),
        walks: Cell::new(0),
    }
}

/// The fixtures of most tests: a backend with domain 5, no device, and domain 5's state.
macro_rules! setup {
    ($b:ident, $sh:ident) => {
        let $b = backend();
        let devs = Devs::default();
        let $sh = shadow(&$b, &devs);
    };
}

/// The simulator's mappings of domain 5 equal the driver's, page by page: the shadow's inside
/// the presence window (all of it unless the domain is lazy), and the stranded pages (mapped in
/// the hypervisor, translated by nothing).
fn same(b: &HostBackend, d: &PagingDomain<'_, State<'_>>, iovas: &[u64]) {
    for &iova in iovas {
        let sim = b
            .with_sim(|s| s.translate(5, iova))
            .map(|(pfn, _)| pfn * 4096);
        let shadow = Some(d.iova_to_phys(iova))
            .filter(|&p| p != 0 && d.state.presence().window_holds(iova / 4096));
        if d.is_stranded(iova / 4096) {
            assert!(sim.is_some() && shadow.is_none(), "stranded iova {iova:#x}");
        } else {
            assert_eq!(sim, shadow, "iova {iova:#x}");
        }
    }
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(d.mapped()));
}

#[test]
fn map_unmap_and_exact_translation() {
    setup!(b, sh);
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    // Four maps of 4 pages each, as the IOMMU core would issue them.
    for i in 0..4 {
        let at = i * 4 * 4096;
        d.map(
            &hv,
            0x10_0000 + at,
            0x8000_0000 + at,
            4,
            RW,
            Context::Sleepable,
        )
        .unwrap();
    }
    assert_eq!(
        d.iova_to_phys(0x10_0000 + 5 * 4096 + 0x123),
        0x8000_0000 + 5 * 4096 + 0x123
    );
    assert_eq!(d.iova_to_phys(0x10_0000 + 16 * 4096), 0);
    // Overlap: EEXIST, nothing changes.
    assert_eq!(
        d.map(
            &hv,
            0x10_0000 + 15 * 4096,
            0x9000_0000,
            2,
            RW,
            Context::Sleepable
        ),
        Err(errno::EEXIST)
    );
    same(&b, &d, &[0x10_0000 + 15 * 4096, 0x10_0000 + 16 * 4096]);
    // Unmapping the second map leaves a hole.
    assert_eq!(d.unmap(&hv, 0x10_0000 + 4 * 4096, 4), 4);
    same(
        &b,
        &d,
        &(0..17).map(|i| 0x10_0000 + i * 4096).collect::<Vec<_>>(),
    );
    assert_eq!(d.mapped(), 12);
    // Unmap stops at the hole; one unmap may cover several maps.
    assert_eq!(d.unmap(&hv, 0x10_0000, 16), 4);
    assert_eq!(d.unmap(&hv, 0x10_0000 + 8 * 4096, 100), 8);
    assert_eq!(d.mapped(), 0);
    same(&b, &d, &[0x10_0000]);
}

/// The host model of the shadow enforces the IOMMU API's rule that an unmap never splits a
/// map (the kernel's table, with large leaves, cannot), so the tests here cannot pass by
/// relying on a split the kernel would not do.
#[test]
#[should_panic(expected = "splits record")]
fn the_model_shadow_refuses_to_split_a_map() {
    let m = ModelShadow::default();
    m.record(0, 100, 8, Context::Sleepable).unwrap();
    m.forget(2, 2);
}

#[test]
fn unmap_of_more_than_4095_pages() {
    // V3 issued one UNMAP with the page count as a 12-bit rep count.
    setup!(b, sh);
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    d.map(&hv, 1 << 30, 1 << 32, 10_000, RW, Context::Sleepable)
        .unwrap();
    b.with_sim(|s| s.reset_stats());
    assert_eq!(d.unmap(&hv, 1 << 30, 10_000), 10_000);
    let st = b.with_sim(|s| s.stats(CallCode::UNMAP_DEVICE_GPA_PAGES));
    assert_eq!((st.calls, st.reps), (3, 10_000));
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
}

#[test]
fn failed_map_leaves_nothing() {
    setup!(b, sh);
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::MAP_DEVICE_GPA_PAGES,
            1,
            1,
            HvStatus::INVALID_PARAMETER,
            10,
        )))
    });
    assert_eq!(
        d.map(&hv, 0, 0x1000_0000, 1000, RW, Context::Sleepable),
        Err(errno::EINVAL)
    );
    assert_eq!(d.mapped(), 0);
    same(&b, &d, &[0, 600 * 4096]);
}

/// Adds device `id` (one function) to the simulator and the device table, and attaches it to
/// domain 5.
fn attached_device(b: &HostBackend, devs: &Devs, id: DeviceId) {
    b.with_sim(|s| s.add_device(id)).unwrap();
    devs.0.borrow_mut().push(DeviceEntry::new(id.encode()));
    let hv = Hv::new(b);
    assert_eq!(attach_device(&hv, devs, id.encode(), 5, &|_| false), Ok(()));
    assert_eq!(
        b.with_sim(|s| s.attachment(id)),
        Some(Attachment::Domain(5))
    );
}

fn page_iovas(pages: u64) -> Vec<u64> {
    (0..pages).map(|i| i * 4096).collect()
}

/// An UNMAP the hypervisor refuses (any status): unmap still reports the run unmapped (the
/// IOMMU core unpins it whatever we say), the shadow keeps exactly what the hypervisor kept,
/// the device is fenced (detached) before unmap returns, and the domain refuses maps. The old
/// driver returned 30 and kept the device attached to pages about to be freed.
#[test]
fn refused_unmap_fences_the_domain() {
    for status in [HvStatus::OPERATION_FAILED, HvStatus::INSUFFICIENT_MEMORY] {
        let b = backend();
        let devs = Devs::default();
        let sh = shadow(&b, &devs);
        attached_device(&b, &devs, dev());
        let hv = Hv::new(&b);
        let d = PagingDomain::new(5, &sh);
        d.map(&hv, 0, 0x1000_0000, 100, RW, Context::Sleepable)
            .unwrap();
        b.with_sim(|s| {
            s.set_fault(Some(Fault::fail(
                CallCode::UNMAP_DEVICE_GPA_PAGES,
                0,
                1000,
                status,
                30,
            )))
        });
        assert_eq!(d.unmap(&hv, 0, 100), 100, "{status:?}");
        assert!(d.is_broken());
        assert_eq!(sh.fences.get(), 1);
        assert_eq!(
            b.with_sim(|s| s.attachment(dev())),
            Some(Attachment::Detached)
        );
        assert_eq!(d.mapped(), 70);
        same(&b, &d, &page_iovas(101));
        assert_eq!(
            d.map(&hv, 1 << 30, 0x1000_0000, 1, RW, Context::Sleepable),
            Err(errno::EIO)
        );
        assert_eq!(
            attach_device(&hv, &devs, dev().encode(), 5, &|x| x == 5 && d.is_broken()),
            Err(errno::EIO)
        );
        // Once the hypervisor lets go, teardown completes.
        b.with_sim(|s| s.set_fault(None));
        assert_eq!(d.unmap_all(&hv), 0);
        assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
        assert_eq!(b.outstanding_pages(), 0);
    }
}

/// A memory shortage on UNMAP is answered from the reserve: the unmap succeeds and nothing is
/// allocated (the old driver deposited freshly allocated `GFP_ATOMIC` pages here).
#[test]
fn unmap_deposits_from_the_reserve_and_never_allocates() {
    setup!(b, sh);
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    d.map(&hv, 0, 0x1000_0000, 5000, RW, Context::Sleepable)
        .unwrap();
    assert_eq!(b.refill_reserve(Context::Sleepable), 64);
    let allocs = |b: &HostBackend| {
        [Context::Sleepable, Context::Atomic, Context::Reserve].map(|c| b.allocations(c))
    };
    let before = allocs(&b);
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::UNMAP_DEVICE_GPA_PAGES,
            1,
            2,
            HvStatus::INSUFFICIENT_MEMORY,
            7,
        )))
    });
    assert_eq!(d.unmap(&hv, 0, 5000), 5000);
    assert!(!d.is_broken());
    assert_eq!(allocs(&b), before, "unmap allocated");
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
    // Two shortages, each after progress: 16 pages from the reserve each.
    assert_eq!(b.reserve_pages(), 64 - 16 - 16);
    assert_eq!(b.outstanding_pages(), 0);
    // With the reserve empty, a shortage is a refusal: the domain is fenced, not fed.
    let _ = b
        .alloc_pages(64, false, Context::Reserve)
        .map(|p| b.release_pages(p, 64));
    assert_eq!(b.reserve_pages(), 0);
    d.map(&hv, 0, 0x1000_0000, 10, RW, Context::Sleepable)
        .unwrap();
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::UNMAP_DEVICE_GPA_PAGES,
            0,
            1,
            HvStatus::INSUFFICIENT_MEMORY,
            0,
        )))
    });
    let before = allocs(&b);
    assert_eq!(d.unmap(&hv, 0, 10), 10);
    assert_eq!(allocs(&b), before, "unmap allocated");
    assert!(d.is_broken());
    same(&b, &d, &page_iovas(11));
}

/// The example: a 1000-page map fails at rep 300 of its second chunk (pages 0..807
/// mapped), and the rollback UNMAP fails after 300 reps: the hypervisor keeps 300..807. The
/// old driver kept a prefix of the same length (0..507) in its shadow.
#[test]
fn failed_map_whose_rollback_fails_keeps_what_the_hypervisor_holds() {
    setup!(b, sh);
    attached_device(&b, sh.devs, dev());
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    b.with_sim(|s| {
        s.set_fault(Some(Fault {
            code: None,
            ..Fault::fail(
                CallCode::MAP_DEVICE_GPA_PAGES,
                1,
                2,
                HvStatus::OPERATION_FAILED,
                300,
            )
        }))
    });
    assert_eq!(
        d.map(&hv, 0, 0x1000_0000, 1000, RW, Context::Sleepable),
        Err(errno::EIO)
    );
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(507));
    assert_eq!(d.mapped(), 507);
    // The IOMMU core sees nothing of the failed map; the driver knows what the hypervisor kept.
    assert!(!d.is_stranded(299) && d.is_stranded(300) && d.is_stranded(806));
    assert!(!d.is_stranded(807));
    assert_eq!(d.iova_to_phys(300 * 4096), 0);
    same(&b, &d, &page_iovas(1001));
    // The caller frees the pages it could not map: the device must not reach them.
    assert!(d.is_broken());
    assert_eq!(
        b.with_sim(|s| s.attachment(dev())),
        Some(Attachment::Detached)
    );
}

/// PCI functions aliasing to one requester id are one hypervisor device: the second function
/// of the group finds it already moved (the old driver re-attached it and the group attach
/// failed).
#[test]
fn aliasing_functions_share_one_placement() {
    let b = backend();
    let devs = Devs::default();
    b.with_sim(|s| s.add_device(dev())).unwrap();
    let mut e = DeviceEntry::new(dev().encode());
    e.users = 2;
    devs.0.borrow_mut().push(e);
    let hv = Hv::new(&b);
    let id = dev().encode();
    assert_eq!(attach_device(&hv, &devs, id, 5, &|_| false), Ok(()));
    b.with_sim(|s| s.reset_stats());
    assert_eq!(attach_device(&hv, &devs, id, 5, &|_| false), Ok(()));
    let st = b.with_sim(|s| s.stats(CallCode::ATTACH_DEVICE_DOMAIN));
    assert_eq!(st.calls, 0);
    assert!(devices_in_use(&devs));
    assert_eq!(attach_device(&hv, &devs, id, 0, &|_| false), Ok(()));
    assert_eq!(attach_device(&hv, &devs, id, 0, &|_| false), Ok(()));
    assert!(!devices_in_use(&devs));
    assert_eq!(
        attach_device(&hv, &devs, 0xdead, 5, &|_| false),
        Err(errno::ENODEV)
    );
}

/// A device that an attach is moving is left to that attach by a fence; if the attach rolls
/// back into the broken domain, the attach fences it itself.
#[test]
fn fence_and_attach_do_not_lose_a_device() {
    let b = backend();
    let devs = Devs::default();
    attached_device(&b, &devs, dev());
    let hv = Hv::new(&b);
    hv.create_domain(DeviceDomain::own_s2(6), CreateDomainFlags::default())
        .unwrap();
    devs.0.borrow_mut()[0].busy = true;
    assert_eq!(fence_domain(&hv, &devs, 5), Fenced::default());
    devs.0.borrow_mut()[0].busy = false;
    // The move to 6 fails and rolls back into 5, which broke meanwhile.
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::ATTACH_DEVICE_DOMAIN,
            0,
            1,
            HvStatus::OPERATION_FAILED,
            0,
        )))
    });
    assert_eq!(
        attach_device(&hv, &devs, dev().encode(), 6, &|x| x == 5),
        Err(errno::EIO)
    );
    assert_eq!(devs.0.borrow()[0].placement, Placement::Detached);
    assert_eq!(
        b.with_sim(|s| s.attachment(dev())),
        Some(Attachment::Detached)
    );
}

fn dev() -> DeviceId {
    DeviceId::pci(0, 3, 0)
}

#[test]
fn attach_is_transactional() {
    let b = backend();
    let hv = Hv::new(&b);
    b.with_sim(|s| s.add_device(dev())).unwrap();
    hv.create_domain(DeviceDomain::own_s2(6), CreateDomainFlags::default())
        .unwrap();
    // Identity to identity: nothing to do (the boot state).
    assert_eq!(attach(&hv, dev(), Placement::Domain(0), 0), Ok(()));
    // Identity -> 5: a single attach.
    assert_eq!(attach(&hv, dev(), Placement::Domain(0), 5), Ok(()));
    // 5 -> 6 with the attach failing: V3 left the device detached; we put it back in 5.
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::ATTACH_DEVICE_DOMAIN,
            0,
            1,
            HvStatus::INSUFFICIENT_BUFFERS,
            0,
        )))
    });
    assert_eq!(
        attach(&hv, dev(), Placement::Domain(5), 6),
        Err((errno::ENOMEM, Placement::Domain(5)))
    );
    assert_eq!(
        b.with_sim(|s| s.attachment(dev())),
        Some(Attachment::Domain(5))
    );
    // Both the attach and the rollback failing: the device is detached, and we say so.
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::ATTACH_DEVICE_DOMAIN,
            0,
            2,
            HvStatus::OPERATION_FAILED,
            0,
        )))
    });
    assert_eq!(
        attach(&hv, dev(), Placement::Domain(5), 6),
        Err((errno::EIO, Placement::Detached))
    );
    assert_eq!(
        b.with_sim(|s| s.attachment(dev())),
        Some(Attachment::Detached)
    );
    // From detached: a single attach. Then to the blocked domain and back to identity.
    assert_eq!(attach(&hv, dev(), Placement::Detached, 6), Ok(()));
    assert_eq!(attach(&hv, dev(), Placement::Domain(6), u32::MAX), Ok(()));
    assert_eq!(attach(&hv, dev(), Placement::Domain(u32::MAX), 0), Ok(()));
    assert_eq!(
        b.with_sim(|s| s.attachment(dev())),
        Some(Attachment::Domain(0))
    );
    // A failed detach leaves the device where it was.
    b.with_sim(|s| s.remove_device(dev())).unwrap();
    assert_eq!(
        attach(&hv, dev(), Placement::Domain(6), 0).map_err(|e| e.1),
        Err(Placement::Domain(6))
    );
}

/// Direct attach and back, both ways transactional: a device moves between root domains and a
/// guest partition, and a refused step leaves it where it was (or detached if the rollback is
/// refused too, and the result says so).
#[test]
fn moves_between_domains_and_guests_are_transactional() {
    let b = backend();
    let hv = Hv::new(&b);
    b.with_sim(|s| s.add_device(dev())).unwrap();
    let guest_id = b.with_sim(|s| s.create_partition()).unwrap();
    hv.create_domain(DeviceDomain::own_s2(6), CreateDomainFlags::default())
        .unwrap();
    let logical = LogicalId::from_bdf(0, PciRid::new(3, 0));
    let guest = Placement::Guest {
        partition: guest_id,
        logical,
    };
    let at = |b: &HostBackend| b.with_sim(|s| s.attachment(dev()));
    let in_guest = Some(Attachment::Partition {
        partition: guest_id,
        logical,
    });
    let fail = |code, times| {
        b.with_sim(|s| {
            s.set_fault(Some(Fault::fail(
                code,
                0,
                times,
                HvStatus::OPERATION_FAILED,
                0,
            )))
        })
    };
    // Default -> guest refused: still in the default domain.
    fail(CallCode::ATTACH_DEVICE, 1);
    assert_eq!(
        move_device(&hv, dev(), Placement::Domain(0), guest),
        Err((errno::EIO, Placement::Domain(0)))
    );
    assert_eq!(at(&b), Some(Attachment::Domain(0)));
    // Default -> 6 -> guest -> 6.
    assert_eq!(
        move_device(&hv, dev(), Placement::Domain(0), Placement::Domain(6)),
        Ok(())
    );
    assert_eq!(move_device(&hv, dev(), Placement::Domain(6), guest), Ok(()));
    assert_eq!(at(&b), in_guest);
    assert_eq!(move_device(&hv, dev(), guest, Placement::Domain(6)), Ok(()));
    assert_eq!(at(&b), Some(Attachment::Domain(6)));
    // 6 -> guest refused: back in 6.
    fail(CallCode::ATTACH_DEVICE, 1);
    assert_eq!(
        move_device(&hv, dev(), Placement::Domain(6), guest),
        Err((errno::EIO, Placement::Domain(6)))
    );
    assert_eq!(at(&b), Some(Attachment::Domain(6)));
    // Guest -> 6 refused: back in the guest.
    assert_eq!(move_device(&hv, dev(), Placement::Domain(6), guest), Ok(()));
    fail(CallCode::ATTACH_DEVICE_DOMAIN, 1);
    assert_eq!(
        move_device(&hv, dev(), guest, Placement::Domain(6)),
        Err((errno::EIO, guest))
    );
    assert_eq!(at(&b), in_guest);
    // Guest -> 6 with the re-attach refused too: detached, and the result says so.
    b.with_sim(|s| {
        // Every call after the detach: the attach, then the rollback.
        s.set_fault(Some(Fault {
            code: None,
            skip: 1,
            times: 2,
            kind: FaultKind::Fail {
                status: HvStatus::OPERATION_FAILED,
                after_reps: 0,
            },
        }))
    });
    assert_eq!(
        move_device(&hv, dev(), guest, Placement::Domain(6)),
        Err((errno::EIO, Placement::Detached))
    );
    assert_eq!(at(&b), Some(Attachment::Detached));
    // Detached -> guest -> detached; the guest can then go.
    b.with_sim(|s| s.set_fault(None));
    assert_eq!(move_device(&hv, dev(), Placement::Detached, guest), Ok(()));
    assert_eq!(
        b.with_sim(|s| s.destroy_partition(guest_id)),
        Err(errno::EBUSY)
    );
    assert_eq!(move_device(&hv, dev(), guest, Placement::Detached), Ok(()));
    assert_eq!(at(&b), Some(Attachment::Detached));
    assert!(b.with_sim(|s| s.destroy_partition(guest_id)).is_ok());
    assert_eq!(
        move_device(&hv, dev(), Placement::Detached, Placement::Domain(0)),
        Ok(())
    );
}

/// Direct attach out of a paging domain: refused before any hypercall when the check refuses,
/// transactional when ATTACH_DEVICE fails (back in the home domain), idempotent for a device
/// already in that guest, and refused for a device the table has elsewhere or in another guest.
#[test]
fn attach_guest_checks_first_and_is_transactional() {
    let b = backend();
    let devs = Devs::default();
    attached_device(&b, &devs, dev());
    let hv = Hv::new(&b);
    let id = dev().encode();
    let g1 = b.with_sim(|s| s.create_partition()).unwrap();
    let g2 = b.with_sim(|s| s.create_partition()).unwrap();
    let logical = LogicalId::of_device(dev());
    let at = || b.with_sim(|s| s.attachment(dev()));
    let ok = &mut || Ok(());
    // The check refuses: nothing issued, still in 5.
    b.with_sim(|s| s.reset_stats());
    assert_eq!(
        attach_guest(&hv, &devs, id, 5, g1, &|_| false, &mut || Err(errno::EXDEV)),
        Err(errno::EXDEV)
    );
    assert_eq!(b.with_sim(|s| s.stats(CallCode::ATTACH_DEVICE)).calls, 0);
    assert_eq!(at(), Some(Attachment::Domain(5)));
    assert_eq!(devs.0.borrow()[0].placement, Placement::Domain(5));
    // ATTACH_DEVICE refused: back in 5.
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::ATTACH_DEVICE,
            0,
            1,
            HvStatus::OPERATION_FAILED,
            0,
        )))
    });
    assert_eq!(
        attach_guest(&hv, &devs, id, 5, g1, &|_| false, ok),
        Err(errno::EIO)
    );
    assert_eq!(at(), Some(Attachment::Domain(5)));
    assert_eq!(devs.0.borrow()[0].placement, Placement::Domain(5));
    assert!(!devs.0.borrow()[0].busy);
    // A home the table does not have it in, or a broken home.
    assert_eq!(
        attach_guest(&hv, &devs, id, 6, g1, &|_| false, ok),
        Err(errno::EINVAL)
    );
    assert_eq!(
        attach_guest(&hv, &devs, id, 5, g1, &|d| d == 5, ok),
        Err(errno::EIO)
    );
    // Attached; again is a no-op; another guest is refused.
    assert_eq!(
        attach_guest(&hv, &devs, id, 5, g1, &|_| false, ok),
        Ok(true)
    );
    let in_g1 = Placement::Guest {
        partition: g1,
        logical,
    };
    assert_eq!(devs.0.borrow()[0].placement, in_g1);
    assert_eq!(
        at(),
        Some(Attachment::Partition {
            partition: g1,
            logical
        })
    );
    assert_eq!(
        attach_guest(&hv, &devs, id, 5, g1, &|_| false, ok),
        Ok(false)
    );
    assert_eq!(
        attach_guest(&hv, &devs, id, 5, g2, &|_| false, ok),
        Err(errno::EBUSY)
    );
    // The guest cannot go while the device is there; back to 5, then it can.
    assert_eq!(b.with_sim(|s| s.destroy_partition(g1)), Err(errno::EBUSY));
    assert_eq!(attach_device(&hv, &devs, id, 5, &|_| false), Ok(()));
    assert_eq!(at(), Some(Attachment::Domain(5)));
    assert!(b.with_sim(|s| s.destroy_partition(g1)).is_ok());
}

mod pagetable {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// `next_set` is the first set page at or after `from`, like a sorted set's range query;
        /// clearing releases every table but the root.
        #[test]
        fn next_set_is_a_range_query(
            pfns in proptest::collection::btree_set(prop_oneof![0u64..2048, 0u64..(1 << 36)], 0..200),
            probes in proptest::collection::vec(prop_oneof![0u64..2048, 0u64..(1 << 36)], 1..50),
        ) {
            let mut pt: PageTable<HostAlloc> = PageTable::new();
            for &p in &pfns {
                pt.set(p, p + 1, &mut || HostAlloc::new_table()).unwrap();
            }
            let model: BTreeSet<u64> = pfns.clone();
            for &f in &probes {
                prop_assert_eq!(pt.next_set(f), model.range(f..).next().copied(), "from {}", f);
            }
            for &p in &pfns {
                prop_assert_eq!(pt.clear(p, &mut drop), Some(p + 1));
            }
            prop_assert_eq!(pt.mapped(), 0);
            prop_assert!(pt.tables() <= 1);
        }

        /// The run operations (one walk per leaf table) agree with a per-page model: `set_run`
        /// stops at the first occupied page having set the ones before, `present_run` is the
        /// gap-free run, `clear_run` clears what is set and frees every emptied table.
        #[test]
        fn run_operations_match_a_per_page_model(
            ops in proptest::collection::vec(
                (0u8..3, prop_oneof![0u64..1600, (1u64 << 36) - 600..(1 << 36)], 1u64..1100),
                1..40),
        ) {
            let mut pt: PageTable<HostAlloc> = PageTable::new();
            let mut model = BTreeSet::new();
            for (op, first, n) in ops {
                let n = n.min((1u64 << 36) - first);
                match op {
                    0 => {
                        let stop = (first..first + n).find(|p| model.contains(p));
                        let r = pt.set_run(first, n, &mut |i| first + i + 1, &mut || {
                            HostAlloc::new_table()
                        });
                        let want = stop.map_or(n, |s| s - first);
                        model.extend(first..first + want);
                        match stop {
                            None => prop_assert!(r.is_ok()),
                            Some(_) => prop_assert_eq!(r.err().map(|e| e.0), Some(want)),
                        }
                    }
                    1 => {
                        let want = (first..first + n).take_while(|p| model.contains(p)).count();
                        prop_assert_eq!(pt.present_run(first, n), want as u64);
                    }
                    _ => {
                        let want = model.range(first..first + n).count() as u64;
                        prop_assert_eq!(pt.clear_run(first, n, &mut drop), want);
                        model = model.into_iter().filter(|p| !(first..first + n).contains(p)).collect();
                    }
                }
                prop_assert_eq!(pt.mapped(), model.len() as u64);
                for &p in model.iter().take(64) {
                    prop_assert_eq!(pt.get(p), Some(p + 1));
                }
            }
            let all: Vec<u64> = model.iter().copied().collect();
            for p in all {
                prop_assert_eq!(pt.clear_run(p, 1, &mut drop), 1);
            }
            prop_assert_eq!(pt.mapped(), 0);
            prop_assert!(pt.tables() <= 1);
        }
    }
}

mod domain_vs_simulator {
    use super::*;
    use proptest::prelude::*;

    const WINDOW: u64 = 3000;

    fn status(i: u8) -> HvStatus {
        [
            HvStatus::OPERATION_FAILED,
            HvStatus::INSUFFICIENT_MEMORY,
            HvStatus::INVALID_PARAMETER,
        ][usize::from(i % 3)]
    }

    proptest! {
        /// Random maps and unmaps on a domain with a device attached, with faults injected into
        /// any call (MAP, the rollback's UNMAP, UNMAP, the deposits): after every operation the
        /// shadow equals the simulator page by page; a page the hypervisor holds that the IOMMU
        /// core believes unmapped exists only in a broken domain whose device is detached; unmap
        /// never allocates.
        #[test]
        fn shadow_equals_hypervisor_under_faults(
            ops in proptest::collection::vec(
                (any::<bool>(), 0u64..WINDOW - 1, 1u64..1200,
                 proptest::option::weighted(0.4, (0u32..3, 1u32..4, any::<u8>(), 0u16..700))),
                1..30),
        ) {
            let b = backend();
            let devs = Devs::default();
            let sh = shadow(&b, &devs);
            attached_device(&b, &devs, dev());
            let hv = Hv::new(&b);
            let d = PagingDomain::new(5, &sh);
            // What the IOMMU core believes mapped: its maps, by first page.
            let mut core: BTreeMap<u64, u64> = BTreeMap::new();
            for (is_map, first, n, fault) in ops {
                let n = n.min(WINDOW - first);
                b.refill_reserve(Context::Sleepable);
                b.with_sim(|s| s.set_fault(fault.map(|(skip, times, st, after)| Fault {
                    code: None,
                    ..Fault::fail(CallCode::MAP_DEVICE_GPA_PAGES, skip, times, status(st), after)
                })));
                if is_map {
                    if d.map(&hv, first * 4096, 0x4000_0000 + first * 4096, n, RW,
                             Context::Sleepable).is_ok() {
                        core.insert(first, n);
                    }
                // The core unmaps only whole maps of its own: the map at or after `first`,
                // with as many of the maps right after it as `n` covers.
                } else if let Some((&at, _)) = core.range(first..).next() {
                    let mut len = 0;
                    while let Some(&m) = core.get(&(at + len)) {
                        if len > 0 && len + m > n {
                            break;
                        }
                        len += m;
                    }
                    let before = [Context::Sleepable, Context::Atomic].map(|c| b.allocations(c));
                    let run = d.unmap(&hv, at * 4096, len);
                    prop_assert_eq!([Context::Sleepable, Context::Atomic].map(|c| b.allocations(c)),
                                    before, "unmap allocated");
                    prop_assert_eq!(run, len);
                    let mut p = at;
                    while p < at + len {
                        p += core.remove(&p).unwrap_or(1);
                    }
                }
                b.with_sim(|s| s.set_fault(None));
                let mapped = |p: u64| core.range(..=p).next_back().is_some_and(|(&f, &n)| p < f + n);
                let mut stray = false;
                for p in 0..WINDOW {
                    let sim = b.with_sim(|s| s.translate(5, p * 4096)).map(|(pfn, _)| pfn * 4096);
                    let mine = Some(d.iova_to_phys(p * 4096)).filter(|&x| x != 0);
                    if d.is_stranded(p) {
                        prop_assert!(sim.is_some() && mine.is_none() && !mapped(p), "page {}", p);
                    } else {
                        prop_assert_eq!(sim, mine, "page {}", p);
                    }
                    prop_assert_eq!(mine.is_some(), mapped(p), "page {}", p);
                    stray |= sim.is_some() && !mapped(p);
                }
                prop_assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(d.mapped()));
                if stray {
                    // Fenced, unless the hypervisor refused the detach too (then it was
                    // counted, and the kernel driver logs it).
                    prop_assert!(d.is_broken());
                    prop_assert!(sh.refused.get() > 0
                        || b.with_sim(|s| s.attachment(dev())) == Some(Attachment::Detached));
                }
                prop_assert_eq!(b.outstanding_pages(), 0);
            }
            prop_assert_eq!(d.unmap_all(&hv), 0);
            prop_assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
        }
    }
}

/// A backend with domain 5, and domain 5 empty (a paging domain no device uses yet): its state
/// `sh`, the layer `hv` and the domain `d`.
macro_rules! lazy_setup {
    ($b:ident, $sh:ident, $hv:ident, $d:ident) => {
        let $b = backend();
        let devs = Devs::default();
        let $sh = lazy(&$b, &devs);
        let $hv = Hv::new(&$b);
        let $d = PagingDomain::new(5, &$sh);
    };
}

/// Domain 5's state, empty (a paging domain no device uses yet).
fn lazy<'a>(b: &'a HostBackend, devs: &'a Devs) -> State<'a> {
    State {
        presence: Presence::empty(),
        ..shadow(b, devs)
    }
}

fn calls(b: &HostBackend, code: CallCode) -> u64 {
    b.with_sim(|s| s.stats(code).calls)
}

/// Runs of `(first page, pages)` with gaps, contiguous frames across two records (one MAP
/// fills both), a run longer than one MAP, and one far from the others.
const RUNS: [(u64, u64); 5] = [(16, 4), (20, 8), (100, 1200), (2000, 1), (9000, 3)];

fn map_runs(hv: &Hv<'_, HostBackend>, d: &PagingDomain<'_, State<'_>>) {
    for (first, n) in RUNS {
        d.map(
            hv,
            first * 4096,
            0x4000_0000 + first * 4096,
            n,
            RW,
            Context::Sleepable,
        )
        .unwrap();
    }
}

fn run_iovas() -> Vec<u64> {
    RUNS.iter()
        .flat_map(|&(f, n)| (f.saturating_sub(1)..f + n + 1).map(|p| p * 4096))
        .collect()
}

/// A domain no device uses maps and unmaps in the shadow only: no hypercall, nothing in the
/// hypervisor. A fill puts every recorded page into the hypervisor in the fewest MAPs (one per
/// run of contiguous frames, 507 pages each); from then on maps and unmaps go to the hypervisor
/// too; a drain unmaps them all (one UNMAP per recorded run) and the shadow keeps them.
#[test]
fn a_lazy_domain_is_filled_and_drained_page_by_page() {
    lazy_setup!(b, sh, hv, d);
    map_runs(&hv, &d);
    assert_eq!(d.unmap(&hv, 2000 * 4096, 1), 1);
    d.map(&hv, 2000 * 4096, 0x5000_0000, 1, RW, Context::Sleepable)
        .unwrap();
    assert_eq!(calls(&b, CallCode::MAP_DEVICE_GPA_PAGES), 0);
    assert_eq!(calls(&b, CallCode::UNMAP_DEVICE_GPA_PAGES), 0);
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
    assert_eq!(d.iova_to_phys(2000 * 4096 + 5), 0x5000_0005);
    same(&b, &d, &run_iovas());

    d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}).unwrap();
    assert!(sh.presence.is_filled());
    // 16..28 is one run of frames (two records); 1200 pages need 3 MAPs; 2000; 9000.
    assert_eq!(calls(&b, CallCode::MAP_DEVICE_GPA_PAGES), 1 + 3 + 1 + 1);
    assert_eq!(
        b.with_sim(|s| s.mapped_pages(5)),
        Some(1 + 4 + 8 + 1200 + 3)
    );
    same(&b, &d, &run_iovas());
    // Filled: maps and unmaps reach the hypervisor.
    d.map(&hv, 5000 * 4096, 0x6000_0000, 2, RW, Context::Sleepable)
        .unwrap();
    assert_eq!(d.unmap(&hv, 16 * 4096, 4), 4);
    same(&b, &d, &[5000 * 4096, 5001 * 4096, 16 * 4096, 20 * 4096]);

    let unmaps = calls(&b, CallCode::UNMAP_DEVICE_GPA_PAGES);
    d.drain(&hv, &|| {}).unwrap();
    assert!(sh.presence.is_empty());
    // 20..28, 100..1300, 2000, 5000..5002, 9000..9003.
    assert_eq!(calls(&b, CallCode::UNMAP_DEVICE_GPA_PAGES) - unmaps, 5);
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
    assert_eq!(d.iova_to_phys(100 * 4096), 0x4000_0000 + 100 * 4096);
    same(&b, &d, &run_iovas());
    assert_eq!(d.unmap_all(&hv), 0);
    assert_eq!(sh.shadow.recorded(), 0);
}

/// A fill the hypervisor refuses part-way is drained back: the domain is empty again (shadow
/// intact, nothing in the hypervisor, not broken) and can be filled later. If even the drain
/// is refused, the window keeps exactly what the hypervisor still maps and the domain is broken.
#[test]
fn a_refused_fill_leaves_the_domain_empty_or_broken_and_exact() {
    for after in [0, 1, 2] {
        lazy_setup!(b, sh, hv, d);
        map_runs(&hv, &d);
        b.with_sim(|s| {
            s.set_fault(Some(Fault::fail(
                CallCode::MAP_DEVICE_GPA_PAGES,
                after,
                1,
                HvStatus::OPERATION_FAILED,
                7,
            )))
        });
        assert_eq!(
            d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}),
            Err(errno::EIO)
        );
        assert!(sh.presence.is_empty() && !d.is_broken(), "after {after}");
        assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
        same(&b, &d, &run_iovas());
        b.with_sim(|s| s.set_fault(None));
        d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}).unwrap();
        same(&b, &d, &run_iovas());
    }
    // Every call refused after the second: the third MAP, its rollback and the drain.
    lazy_setup!(b, sh, hv, d);
    map_runs(&hv, &d);
    b.with_sim(|s| {
        s.set_fault(Some(Fault {
            code: None,
            ..Fault::fail(
                CallCode::MAP_DEVICE_GPA_PAGES,
                2,
                100,
                HvStatus::OPERATION_FAILED,
                9,
            )
        }))
    });
    assert!(d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}).is_err());
    b.with_sim(|s| s.set_fault(None));
    assert!(d.is_broken());
    same(&b, &d, &run_iovas());
    assert_eq!(
        d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}),
        Err(errno::EIO)
    );
    // Teardown still unmaps everything the hypervisor holds.
    assert_eq!(d.unmap_all(&hv), 0);
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
}

/// Unmaps that take the walk lock between two steps of a fill or a drain: a run the fill
/// mapped already is unmapped in the hypervisor too, one it has not reached is never mapped;
/// during a drain, a run still inside the window is unmapped in the hypervisor, one behind it
/// only in the shadow.
#[test]
fn unmaps_between_the_steps_of_a_fill_or_drain() {
    // Walk 1 sets the window; walk 2 maps 16..28; walk 3 maps 100..607.
    for (walk, run) in [
        (2, (16u64, 4u64)),
        (2, (100, 1200)),
        (3, (100, 1200)),
        (3, (9000, 3)),
    ] {
        lazy_setup!(b, sh, hv, d);
        map_runs(&hv, &d);
        sh.unmap_after_walk.set(Some((walk, run.0 * 4096, run.1)));
        d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}).unwrap();
        assert_eq!(d.iova_to_phys(run.0 * 4096), 0);
        same(&b, &d, &run_iovas());

        sh.walks.set(0);
        let (first, n) = if run.0 == 100 { (2000, 1) } else { (100, 1200) };
        sh.unmap_after_walk.set(Some((walk - 1, first * 4096, n)));
        d.drain(&hv, &|| {}).unwrap();
        assert!(!d.is_broken());
        assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
        same(&b, &d, &run_iovas());
    }
}

mod lazy_domain_vs_simulator {
    use super::*;
    use proptest::prelude::*;

    const WINDOW: u64 = 6000;

    proptest! {
        /// Random maps, unmaps, fills and drains of a domain that starts empty, with faults
        /// injected into any call and an unmap racing into a fill or drain: after every step,
        /// the simulator holds exactly the shadow's pages inside the window plus the stranded
        /// ones, page by page; a domain that is not broken is empty or filled; unmap never
        /// allocates.
        #[test]
        fn window_equals_hypervisor_under_faults(
            ops in proptest::collection::vec(
                (0u8..4, 0u64..WINDOW - 1, 1u64..1500,
                 proptest::option::weighted(0.3, (0u32..4, 1u32..3, 0u16..600)),
                 proptest::option::weighted(0.3, 1u32..6)),
                1..24),
        ) {
            lazy_setup!(b, sh, hv, d);
            let mut core: BTreeMap<u64, u64> = BTreeMap::new();
            for (op, first, n, fault, race) in ops {
                let n = n.min(WINDOW - first);
                b.refill_reserve(Context::Sleepable);
                b.with_sim(|s| s.set_fault(fault.map(|(skip, times, after)| Fault {
                    code: None,
                    ..Fault::fail(CallCode::MAP_DEVICE_GPA_PAGES, skip, times,
                                  HvStatus::OPERATION_FAILED, after)
                })));
                // An unmap of the core's first map at or after `first` during a fill/drain.
                let victim = core.range(first..).next().map(|(&f, &n)| (f, n));
                sh.walks.set(0);
                sh.unmap_after_walk.set(race.zip(victim).map(|(w, (f, n))| (w, f * 4096, n)));
                match op {
                    0 => {
                        if d.map(&hv, first * 4096, 0x4000_0000 + first * 4096, n, RW,
                                 Context::Sleepable).is_ok() {
                            core.insert(first, n);
                        }
                    }
                    1 => {
                        if let Some((at, len)) = victim {
                            let before =
                                [Context::Sleepable, Context::Atomic].map(|c| b.allocations(c));
                            prop_assert_eq!(d.unmap(&hv, at * 4096, len), len);
                            prop_assert_eq!(
                                [Context::Sleepable, Context::Atomic].map(|c| b.allocations(c)),
                                before, "unmap allocated");
                            core.remove(&at);
                        }
                    }
                    2 => { let _ = d.fill(&hv, hvpt::iommu::map_flags(RW), &|| {}); }
                    _ => { let _ = d.drain(&hv, &|| {}); }
                }
                if let (Some((w, _, _)), Some((f, _))) = (sh.unmap_after_walk.get(), victim) {
                    if sh.walks.get() >= w && op >= 2 {
                        core.remove(&f);
                    }
                }
                sh.unmap_after_walk.set(None);
                b.with_sim(|s| s.set_fault(None));
                let presence = &sh.presence;
                prop_assert!(d.is_broken() || presence.is_empty() || presence.is_filled());
                let mapped = |p: u64| core.range(..=p).next_back().is_some_and(|(&f, &n)| p < f + n);
                for p in 0..WINDOW {
                    let sim = b.with_sim(|s| s.translate(5, p * 4096)).map(|(pfn, _)| pfn * 4096);
                    let mine = Some(d.iova_to_phys(p * 4096)).filter(|&x| x != 0);
                    prop_assert_eq!(mine.is_some(), mapped(p), "page {}", p);
                    let held = mine.filter(|_| presence.window_holds(p));
                    if d.is_stranded(p) {
                        prop_assert!(sim.is_some() && held.is_none(), "page {}", p);
                    } else {
                        prop_assert_eq!(sim, held, "page {}", p);
                    }
                }
                prop_assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(d.mapped()));
                prop_assert_eq!(b.outstanding_pages(), 0);
            }
            prop_assert_eq!(d.unmap_all(&hv), 0);
            prop_assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
        }
    }
}
