// SPDX-License-Identifier: GPL-2.0

//! The layer against the simulated hypervisor, on the host: the shared scenarios (the same ones
//! KUnit runs in the test kernel), call counts for the sizes in issue 3, and a property test that
//! keeps the simulator equal to a reference model under random operations.

use std::collections::BTreeMap;

use hvpt::abi::{CreateDomainFlags, DeviceDomain, PartitionId};
use hvpt::calls::MapFlags;
use hvpt::device_id::DeviceId;
use hvpt::errno::{self, Errno};
use hvpt::hypercall::{CallCode, Control, HvStatus};
use hvpt::layer::{map_calls, unmap_calls, Context, Hv};
use hvpt::selftest;
use hvpt::sim::{Attachment, Extent, Fault, FaultKind, SimBackend};
use hvpt::HostBackend;
use proptest::prelude::*;

fn backend() -> HostBackend {
    HostBackend::new().expect("simulator")
}

fn run(name: &str, f: fn(&HostBackend) -> selftest::Outcome) {
    let b = backend();
    if let Err(e) = f(&b) {
        panic!("{name}: check failed at selftest.rs:{}: {}", e.line, e.what);
    }
    assert_eq!(b.outstanding_pages(), 0, "{name}: deposit pages leaked");
    // Every page the hypervisor took comes back when it is reset (as at module unload).
    let mut back = 0u64;
    b.with_sim(|s| s.reset(&mut |_| back += 1)).unwrap();
    assert_eq!(
        back,
        b.deposited_pages(),
        "{name}: simulator lost deposited pages"
    );
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name), selftest::$name);
            }
        )*
    };
}

scenarios!(
    resume_after_partial,
    stalls_are_bounded,
    deposits_are_bounded,
    shortages_reset_on_progress,
    failed_map_rolls_back,
    strict_rejections,
    direct_attach,
    guest_slat,
    l1vh_refuses_device_domains,
);

/// The sizes of issue 3: MAP and UNMAP calls equal the minimum.
#[test]
fn call_counts_are_minimal() {
    for (pages, map, unmap) in selftest::CALL_COUNT_CASES {
        assert_eq!((map_calls(pages), unmap_calls(pages)), (map, unmap));
        for warm in [true, false] {
            let b = backend();
            let f = selftest::map_unmap_round_trip(&b, pages, warm)
                .unwrap_or_else(|e| panic!("{pages} pages: line {}: {}", e.line, e.what));
            assert_eq!(
                (f.map_calls - f.map_retries, f.unmap_calls),
                (map, unmap),
                "{pages} pages"
            );
            if warm {
                assert_eq!(f.map_retries, 0);
            }
            assert_eq!(b.outstanding_pages(), 0);
        }
    }
}

/// Pages deposited when an allocation fails are not lost, and the map fails cleanly.
#[test]
fn failed_deposit_allocation_leaves_nothing() {
    let b = backend();
    let hv = Hv::new(&b);
    let dom = DeviceDomain::own_s2(3);
    b.fail_allocations_after(Some(0));
    assert_eq!(
        hv.create_domain(dom, CreateDomainFlags::default()),
        Err(errno::ENOMEM)
    );
    assert_eq!(b.with_sim(|s| s.domain_ids().count()), 0);
    b.fail_allocations_after(None);
    hv.create_domain(dom, CreateDomainFlags::default()).unwrap();
    b.fail_allocations_after(Some(0));
    // The root table and 15 free pages: mapping 2 GiB apart needs more than 15 tables.
    let mut r = Ok(());
    for i in 0..8u64 {
        r = hv.map(
            dom,
            i << 39,
            0x1000,
            1,
            MapFlags::dma(true),
            Context::Atomic,
        );
        if r.is_err() {
            break;
        }
    }
    assert_eq!(
        r.map_err(|e| (e.errno, e.mapped)),
        Err((errno::ENOMEM, 0..0))
    );
    assert_eq!(b.outstanding_pages(), 0);
}

/// A deposit the hypervisor takes only partly: the rest is freed, the taken part is not.
#[test]
fn partial_deposit_frees_the_rest() {
    let b = backend();
    let hv = Hv::new(&b);
    b.with_sim(|s| {
        s.set_fault(Some(hvpt::sim::Fault::fail(
            CallCode::DEPOSIT_MEMORY,
            0,
            1,
            HvStatus::INVALID_PARAMETER,
            5,
        )))
    });
    assert_eq!(
        hv.deposit(PartitionId::SELF, 20, Context::Sleepable),
        Err(errno::EINVAL)
    );
    assert_eq!(b.outstanding_pages(), 0);
    assert_eq!(b.deposited_pages(), 5);
    assert_eq!(b.with_sim(|s| s.pool(PartitionId::SELF)).unwrap().free, 5);
    // Depositing into a partition that does not exist.
    assert_eq!(
        hv.deposit(PartitionId(0x55), 1, Context::Sleepable),
        Err(errno::EINVAL)
    );
    assert_eq!(b.outstanding_pages(), 0);
}

/// Malformed control words and inputs straight into the simulator.
#[test]
fn raw_dispatch_rejections() {
    let b = backend();
    let page = [0u8; 4096];
    let s = |control: u64| b.with_sim(|s| s.dispatch(control, &page)).status();
    // Reserved control bits, fast calls, unknown code.
    assert_eq!(s(0xb1 | 1 << 27), HvStatus::INVALID_HYPERCALL_INPUT);
    assert_eq!(s(0xb1 | 1 << 16), HvStatus::INVALID_HYPERCALL_INPUT);
    assert_eq!(s(0x1234), HvStatus::INVALID_HYPERCALL_CODE);
    // A rep start beyond the count, a rep count above 507 for MAP.
    assert_eq!(
        s(0xb3 | 5 << 32 | 6 << 48),
        HvStatus::INVALID_HYPERCALL_INPUT
    );
    assert_eq!(s(0xb3 | 508 << 32), HvStatus::INVALID_HYPERCALL_INPUT);
    // An all-zero MAP input names partition 0 (invalid).
    let r = b.with_sim(|s| {
        s.dispatch(
            Control::rep(CallCode::MAP_DEVICE_GPA_PAGES, 1, 0)
                .unwrap()
                .encode(),
            &page,
        )
    });
    assert_eq!(r.status(), HvStatus::INVALID_PARTITION_ID);
    assert_eq!(r.reps_completed(), 0);
    let stats = b.with_sim(|s| s.stats(CallCode::MAP_DEVICE_GPA_PAGES));
    assert_eq!((stats.calls, stats.failed, stats.reps), (3, 3, 0));
}

// ---- Property test: the simulator equals a reference model ----

#[derive(Clone, Copy, Debug)]
enum Op {
    Map {
        dom: u8,
        page: u16,
        pages: u16,
        pfn: u32,
        write: bool,
    },
    Unmap {
        dom: u8,
        page: u16,
        pages: u16,
    },
    Attach {
        dev: u8,
        dom: u8,
    },
    Detach {
        dev: u8,
    },
    Delete {
        dom: u8,
    },
    Create {
        dom: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Few domains and a small IOVA window (2048 pages over 4 leaf tables) so that operations
    // collide often; page counts up to 1100 cross both the 507 and leaf-table boundaries.
    prop_oneof![
        4 => (0u8..3, 0u16..2048, 1u16..1100, 1u32..1 << 20, any::<bool>())
            .prop_map(|(dom, page, pages, pfn, write)| Op::Map { dom, page, pages, pfn, write }),
        3 => (0u8..3, 0u16..2048, 1u16..1100).prop_map(|(dom, page, pages)| Op::Unmap { dom, page, pages }),
        1 => (0u8..3, 0u8..4).prop_map(|(dev, dom)| Op::Attach { dev, dom }),
        1 => (0u8..3).prop_map(|dev| Op::Detach { dev }),
        1 => (0u8..3).prop_map(|dom| Op::Delete { dom }),
        1 => (0u8..3).prop_map(|dom| Op::Create { dom }),
    ]
}

/// Faults that the layer must absorb without changing the outcome: a rep call that returns
/// early, or one that runs out of memory part-way.
fn fault() -> impl Strategy<Value = Option<Fault>> {
    let code = prop_oneof![
        Just(CallCode::MAP_DEVICE_GPA_PAGES),
        Just(CallCode::UNMAP_DEVICE_GPA_PAGES)
    ];
    let kind = prop_oneof![
        (1u16..600).prop_map(|reps| FaultKind::Partial { reps }),
        (0u16..600).prop_map(|after_reps| FaultKind::Fail {
            status: HvStatus::INSUFFICIENT_MEMORY,
            after_reps
        }),
    ];
    proptest::option::weighted(
        0.3,
        (code, 0u32..3, 1u32..4, kind).prop_map(|(code, skip, times, kind)| Fault {
            code: Some(code),
            skip,
            times,
            kind,
        }),
    )
}

/// The reference: what must be mapped and attached after each operation.
#[derive(Default)]
struct Model {
    domains: BTreeMap<u32, BTreeMap<u64, (u64, bool)>>,
    attached: BTreeMap<u8, Attachment>,
}

/// Domain ids: 1..=3 are created; 3 maps to the NULL domain for attach.
fn dom_id(d: u8) -> u32 {
    u32::from(d) + 1
}

fn dev(d: u8) -> DeviceId {
    DeviceId::pci(0, d + 1, 0)
}

const BASE: u64 = 0x7fff_f000_0000;

impl Model {
    fn apply(&mut self, op: &Op) -> Result<(), Errno> {
        match *op {
            Op::Create { dom } => {
                if self.domains.contains_key(&dom_id(dom)) {
                    return Err(errno::EACCES);
                }
                self.domains.insert(dom_id(dom), BTreeMap::new());
                Ok(())
            }
            Op::Delete { dom } => {
                let id = dom_id(dom);
                let m = self.domains.get(&id).ok_or(errno::ENOENT)?;
                if !m.is_empty() || self.attached.values().any(|a| *a == Attachment::Domain(id)) {
                    return Err(errno::EACCES);
                }
                self.domains.remove(&id);
                Ok(())
            }
            Op::Map {
                dom,
                page,
                pages,
                pfn,
                write,
            } => {
                let m = self.domains.get_mut(&dom_id(dom)).ok_or(errno::ENOENT)?;
                let first = BASE / 4096 + u64::from(page);
                let range = first..first + u64::from(pages);
                if m.range(range.clone()).next().is_some() {
                    return Err(errno::EINVAL);
                }
                for (i, p) in range.enumerate() {
                    m.insert(p, (u64::from(pfn) + i as u64, write));
                }
                Ok(())
            }
            Op::Unmap { dom, page, pages } => {
                let m = self.domains.get_mut(&dom_id(dom)).ok_or(errno::ENOENT)?;
                let first = BASE / 4096 + u64::from(page);
                // Unmap stops at the first hole; what came before it stays unmapped.
                for p in first..first + u64::from(pages) {
                    if m.remove(&p).is_none() {
                        return Err(errno::EINVAL);
                    }
                }
                Ok(())
            }
            Op::Attach { dev, dom } => {
                let id = if dom == 3 { u32::MAX } else { dom_id(dom) };
                if id != u32::MAX && !self.domains.contains_key(&id) {
                    return Err(errno::ENOENT);
                }
                let cur = *self.attached.get(&dev).unwrap_or(&Attachment::Domain(0));
                if !matches!(cur, Attachment::Domain(0) | Attachment::Detached) {
                    return Err(errno::EACCES);
                }
                self.attached.insert(dev, Attachment::Domain(id));
                Ok(())
            }
            Op::Detach { dev } => {
                let cur = *self.attached.get(&dev).unwrap_or(&Attachment::Domain(0));
                if !matches!(cur, Attachment::Domain(_)) {
                    return Err(errno::EACCES);
                }
                self.attached.insert(dev, Attachment::Detached);
                Ok(())
            }
        }
    }
}

fn apply(hv: &Hv<'_, HostBackend>, op: &Op) -> Result<(), Errno> {
    let ctx = Context::Sleepable;
    match *op {
        Op::Create { dom } => hv.create_domain(
            DeviceDomain::own_s2(dom_id(dom)),
            CreateDomainFlags::default(),
        ),
        Op::Delete { dom } => hv.delete_domain(DeviceDomain::own_s2(dom_id(dom))),
        Op::Map {
            dom,
            page,
            pages,
            pfn,
            write,
        } => hv
            .map(
                DeviceDomain::own_s2(dom_id(dom)),
                BASE + u64::from(page) * 4096,
                u64::from(pfn),
                u64::from(pages),
                MapFlags::dma(write),
                ctx,
            )
            .map_err(|e| {
                assert!(e.mapped.is_empty(), "rollback left pages mapped");
                e.errno
            }),
        Op::Unmap { dom, page, pages } => hv
            .unmap(
                DeviceDomain::own_s2(dom_id(dom)),
                BASE + u64::from(page) * 4096,
                u64::from(pages),
                ctx,
            )
            .map_err(|e| e.errno),
        Op::Attach { dev: d, dom } => {
            let id = if dom == 3 { u32::MAX } else { dom_id(dom) };
            hv.attach_domain(DeviceDomain::own_s2(id), dev(d))
        }
        Op::Detach { dev: d } => hv.detach_domain(PartitionId::SELF, dev(d)),
    }
}

fn extents_of(m: &BTreeMap<u64, (u64, bool)>) -> Vec<Extent> {
    let mut v: Vec<Extent> = Vec::new();
    for (&p, &(pfn, w)) in m {
        let flags = MapFlags::dma(w);
        if let Some(last) = v.last_mut() {
            if last.iova / 4096 + last.pages == p
                && last.pfn + last.pages == pfn
                && last.flags == flags
            {
                last.pages += 1;
                continue;
            }
        }
        v.push(Extent {
            iova: p * 4096,
            pfn,
            pages: 1,
            flags,
        });
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn simulator_matches_the_model(ops in proptest::collection::vec((op(), fault()), 1..40)) {
        let b = backend();
        for d in 0..3 {
            b.with_sim(|s| s.add_device(dev(d))).unwrap();
        }
        let hv = Hv::new(&b);
        let mut model = Model::default();
        for (op, fault) in &ops {
            // A fault the layer must absorb (early return, memory shortage part-way) changes
            // the calls but never the outcome.
            b.with_sim(|s| {
                s.reset_stats();
                s.set_fault(*fault)
            });
            let want = model.apply(op);
            let got = apply(&hv, op);
            b.with_sim(|s| s.set_fault(None));
            prop_assert_eq!(got, want, "{:?} with {:?}", op, fault);
            if fault.is_some() {
                continue;
            }
            // Successful maps and unmaps take exactly the minimum number of calls.
            let (m, u) = b.with_sim(|s| (s.stats(CallCode::MAP_DEVICE_GPA_PAGES), s.stats(CallCode::UNMAP_DEVICE_GPA_PAGES)));
            match (*op, want) {
                (Op::Map { pages, .. }, Ok(())) => prop_assert_eq!(m.calls - m.failed, map_calls(u64::from(pages))),
                (Op::Unmap { pages, .. }, Ok(())) => prop_assert_eq!(u.calls, unmap_calls(u64::from(pages))),
                _ => {}
            }
        }
        for (&id, m) in &model.domains {
            let mut got = Vec::new();
            b.with_sim(|s| s.for_each_extent(id, &mut |x| got.push(x)));
            prop_assert_eq!(got, extents_of(m), "domain {}", id);
            prop_assert_eq!(b.with_sim(|s| s.mapped_pages(id)), Some(m.len() as u64));
        }
        let mut ids: Vec<u32> = b.with_sim(|s| s.domain_ids().collect());
        ids.sort();
        prop_assert_eq!(ids, model.domains.keys().copied().collect::<Vec<_>>());
        for d in 0..3u8 {
            let want = *model.attached.get(&d).unwrap_or(&Attachment::Domain(0));
            prop_assert_eq!(b.with_sim(|s| s.attachment(dev(d))), Some(want));
        }
        prop_assert_eq!(b.outstanding_pages(), 0);
        // Every page table is accounted to the root pool.
        let tables: u64 = model.domains.keys().map(|&id| b.with_sim(|s| s.table_pages(id)).unwrap()).sum();
        let pool = b.with_sim(|s| s.pool(PartitionId::SELF)).unwrap();
        prop_assert_eq!(pool.used, tables);
        prop_assert_eq!(pool.free + pool.used, pool.deposited);
    }
}
