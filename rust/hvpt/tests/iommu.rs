// SPDX-License-Identifier: GPL-2.0

//! The driver's kernel-independent logic against the simulated hypervisor: paging-domain
//! map/unmap/iova_to_phys with the shadow table, and transactional attach. Regression tests for
//! the V3 seed's bugs (seed-series §1(d)) that apply to this logic.

use core::cell::RefCell;

use hvpt::abi::{CreateDomainFlags, DeviceDomain};
use hvpt::device_id::DeviceId;
use hvpt::errno;
use hvpt::hypercall::{CallCode, HvStatus};
use hvpt::iommu::{attach, PagingDomain, Placement, ShadowLock, IOMMU_READ, IOMMU_WRITE};
use hvpt::layer::{Context, Hv};
use hvpt::pagetable::PageTable;
use hvpt::sim::{Attachment, Fault, SimAlloc, SimBackend};
use hvpt::{HostAlloc, HostBackend};

struct Shadow(RefCell<PageTable<HostAlloc>>);

impl ShadowLock<HostAlloc> for Shadow {
    fn with<R>(&self, f: impl FnOnce(&mut PageTable<HostAlloc>) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

const RW: i32 = IOMMU_READ | IOMMU_WRITE;

fn setup() -> (HostBackend, Shadow) {
    let b = HostBackend::new().unwrap();
    Hv::new(&b)
        .create_domain(DeviceDomain::own_s2(5), CreateDomainFlags::default())
        .unwrap();
    (b, Shadow(RefCell::new(PageTable::new())))
}

/// The simulator's mappings of domain 5 equal the shadow's, page by page.
fn same(b: &HostBackend, d: &PagingDomain<'_, HostAlloc, Shadow>, iovas: &[u64]) {
    for &iova in iovas {
        let sim = b
            .with_sim(|s| s.translate(5, iova))
            .map(|(pfn, _)| pfn * 4096);
        let shadow = Some(d.iova_to_phys(iova)).filter(|&p| p != 0);
        assert_eq!(sim, shadow, "iova {iova:#x}");
    }
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(d.mapped()));
}

#[test]
fn map_unmap_and_exact_translation() {
    let (b, sh) = setup();
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    d.map(&hv, 0x10_0000, 0x8000_0000, 16, RW, Context::Sleepable)
        .unwrap();
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
    // Partial unmap in the middle splits the mapping (V3 could not split).
    assert_eq!(d.unmap(&hv, 0x10_0000 + 4 * 4096, 4, Context::Sleepable), 4);
    same(
        &b,
        &d,
        &(0..17).map(|i| 0x10_0000 + i * 4096).collect::<Vec<_>>(),
    );
    assert_eq!(d.mapped(), 12);
    // Unmap stops at the hole.
    assert_eq!(d.unmap(&hv, 0x10_0000, 16, Context::Sleepable), 4);
    assert_eq!(
        d.unmap(&hv, 0x10_0000 + 8 * 4096, 100, Context::Sleepable),
        8
    );
    assert_eq!(d.mapped(), 0);
    same(&b, &d, &[0x10_0000]);
}

#[test]
fn unmap_of_more_than_4095_pages() {
    // V3 issued one UNMAP with the page count as a 12-bit rep count.
    let (b, sh) = setup();
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    d.map(&hv, 1 << 30, 1 << 32, 10_000, RW, Context::Sleepable)
        .unwrap();
    b.with_sim(|s| s.reset_stats());
    assert_eq!(d.unmap(&hv, 1 << 30, 10_000, Context::Sleepable), 10_000);
    let st = b.with_sim(|s| s.stats(CallCode::UNMAP_DEVICE_GPA_PAGES));
    assert_eq!((st.calls, st.reps), (3, 10_000));
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
}

#[test]
fn failed_map_leaves_nothing() {
    let (b, sh) = setup();
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

#[test]
fn failed_unmap_keeps_shadow_and_hypervisor_equal() {
    let (b, sh) = setup();
    let hv = Hv::new(&b);
    let d = PagingDomain::new(5, &sh);
    d.map(&hv, 0, 0x1000_0000, 100, RW, Context::Sleepable)
        .unwrap();
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::UNMAP_DEVICE_GPA_PAGES,
            0,
            1,
            HvStatus::OPERATION_FAILED,
            30,
        )))
    });
    assert_eq!(d.unmap(&hv, 0, 100, Context::Sleepable), 30);
    assert_eq!(d.mapped(), 70);
    same(&b, &d, &[0, 29 * 4096, 30 * 4096, 99 * 4096]);
    assert_eq!(d.unmap_all(&hv), 0);
    assert_eq!(b.with_sim(|s| s.mapped_pages(5)), Some(0));
}

fn dev() -> DeviceId {
    DeviceId::pci(0, 3, 0)
}

#[test]
fn attach_is_transactional() {
    let (b, _) = setup();
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
