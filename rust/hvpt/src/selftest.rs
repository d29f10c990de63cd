// SPDX-License-Identifier: GPL-2.0

//! Scenarios that drive the layer against the simulated hypervisor and check the result.
//!
//! They run twice: under `cargo test` on the host ([`super::sim`] in-process) and as KUnit cases
//! in the test kernel, where the backend fills the per-CPU input page with interrupts off and
//! dispatches to the simulator under its spinlock, the path every module uses in QEMU. Each
//! scenario starts from a fresh simulator and returns `Err` with the failed check's text.

use super::abi::{CreateDomainFlags, DeviceDomain, PartitionId};
use super::calls::{AttachDevice, MapFlags};
use super::device_id::{DeviceId, LogicalId, PciRid};
use super::errno::{self, Errno};
use super::hypercall::{CallCode, HvStatus};
use super::layer::{map_calls, unmap_calls, Context, DepositPolicy, Hv, MAX_STALLS};
use super::sim::{Attachment, Fault, SimBackend};

/// A failed check: its description and source line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What was checked.
    pub what: &'static str,
    /// Where.
    pub line: u32,
}

/// Result of a scenario.
pub type Outcome = Result<(), Failure>;

macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(Failure {
                what: stringify!($cond),
                line: line!(),
            });
        }
    };
}

const FLAGS: CreateDomainFlags = CreateDomainFlags {
    forward_progress_required: true,
    inherit_owning_vtl: false,
};
const IOVA: u64 = 0x4000_0000;
const PFN: u64 = 0x20_0000;

fn pci(bus: u8) -> DeviceId {
    DeviceId::pci(0, bus, 0)
}

/// The sizes of issue 3 with their minimum MAP and UNMAP call counts:
/// `ceil(pages / 507)` and `ceil(pages / 4095)`.
pub const CALL_COUNT_CASES: [(u64, u64, u64); 6] = [
    (1, 1, 1),
    (507, 1, 1),
    (508, 2, 1),
    (4095, 9, 1),
    (4096, 9, 2),
    (262_144, 518, 65),
];

/// Call figures of one map/unmap round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Pages mapped and unmapped.
    pub pages: u64,
    /// MAP calls issued, including those that came back with `INSUFFICIENT_MEMORY`.
    pub map_calls: u64,
    /// MAP calls that came back with `INSUFFICIENT_MEMORY` and were retried after a deposit.
    pub map_retries: u64,
    /// UNMAP calls issued.
    pub unmap_calls: u64,
    /// DEPOSIT calls issued during the map.
    pub deposit_calls: u64,
    /// Pages deposited during the map.
    pub deposited_pages: u64,
    /// Page-table pages the domain held while mapped.
    pub table_pages: u64,
}

/// Maps `pages` pages into a new domain and unmaps them; checks the translation of the first
/// and last page, the call counts, that reps equal pages, and that the domain is empty and
/// deletable afterwards. Returns the figures.
///
/// With `warm`, the root pool is filled first with as many pages as the simulator's page tables
/// can need, and MAP and UNMAP calls must equal the minimum exactly. Without it the pool starts
/// with what domain creation left over, so some MAP calls come back with `INSUFFICIENT_MEMORY`:
/// each must be answered by exactly one deposit and one retry, and the successful MAP calls must
/// still equal the minimum.
pub fn map_unmap_round_trip<B: SimBackend>(
    b: &B,
    pages: u64,
    warm: bool,
) -> Result<Figures, Failure> {
    let hv = Hv::new(b);
    let dom = DeviceDomain::own_s2(11);
    check!(hv.create_domain(dom, FLAGS).is_ok());
    if warm {
        // Upper bound for a 4-level table: leaves, plus two upper levels per 1G, plus slack.
        let need = pages.div_ceil(512) + 2 * pages.div_ceil(1 << 18) + 4;
        check!(hv
            .deposit(PartitionId::SELF, need as usize, Context::Sleepable)
            .is_ok());
    }
    b.with_sim(|s| s.reset_stats());
    check!(hv
        .map(
            dom,
            IOVA,
            PFN,
            pages,
            MapFlags::dma(true),
            Context::Sleepable
        )
        .is_ok());
    let (map, dep, mapped, tables, first, last) = b.with_sim(|s| {
        (
            s.stats(CallCode::MAP_DEVICE_GPA_PAGES),
            s.stats(CallCode::DEPOSIT_MEMORY),
            s.mapped_pages(11),
            s.table_pages(11),
            s.translate(11, IOVA),
            s.translate(11, IOVA + (pages - 1) * 4096),
        )
    });
    check!(map.calls - map.failed == map_calls(pages));
    check!(map.failed == dep.calls && dep.failed == 0);
    check!(!warm || map.failed == 0);
    check!(map.reps == pages);
    check!(mapped == Some(pages));
    check!(first == Some((PFN, MapFlags::dma(true))));
    check!(last == Some((PFN + pages - 1, MapFlags::dma(true))));
    check!(hv.unmap(dom, IOVA, pages, Context::Sleepable).is_ok());
    let (unmap, after, left) = b.with_sim(|s| {
        (
            s.stats(CallCode::UNMAP_DEVICE_GPA_PAGES),
            s.mapped_pages(11),
            s.table_pages(11),
        )
    });
    check!(unmap.calls == unmap_calls(pages) && unmap.reps == pages && unmap.failed == 0);
    check!(after == Some(0) && left == Some(1));
    check!(hv.delete_domain(dom).is_ok());
    let pool = b.with_sim(|s| s.pool(PartitionId::SELF));
    check!(pool.is_some_and(|p| p.used == 0 && p.free == p.deposited));
    Ok(Figures {
        pages,
        map_calls: map.calls,
        map_retries: map.failed,
        unmap_calls: unmap.calls,
        deposit_calls: dep.calls,
        deposited_pages: dep.reps,
        table_pages: tables.unwrap_or(0),
    })
}

/// A rep call that returns early (success, fewer reps) is resumed from the reported rep: the
/// mapping is complete and the extra calls are exactly the injected ones.
pub fn resume_after_partial<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let dom = DeviceDomain::own_s2(12);
    check!(hv.create_domain(dom, FLAGS).is_ok());
    check!(hv
        .map(dom, IOVA, PFN, 1, MapFlags::dma(false), Context::Sleepable)
        .is_ok());
    b.with_sim(|s| {
        s.reset_stats();
        s.set_fault(Some(Fault::partial(
            CallCode::MAP_DEVICE_GPA_PAGES,
            1,
            3,
            100,
        )))
    });
    // 1000 pages: 2 calls without faults; the second call comes back 3 times after 100 reps.
    check!(hv
        .map(
            dom,
            IOVA + 0x10_0000,
            PFN + 1,
            1000,
            MapFlags::dma(true),
            Context::Sleepable
        )
        .is_ok());
    let st = b.with_sim(|s| s.stats(CallCode::MAP_DEVICE_GPA_PAGES));
    check!(st.calls == map_calls(1000) + 3 && st.reps == 1000 && st.failed == 0);
    let t = b.with_sim(|s| s.translate(12, IOVA + 0x10_0000 + 999 * 4096));
    check!(t == Some((PFN + 1000, MapFlags::dma(true))));
    // Partial completion of UNMAP too.
    b.with_sim(|s| {
        s.set_fault(Some(Fault::partial(
            CallCode::UNMAP_DEVICE_GPA_PAGES,
            0,
            2,
            7,
        )))
    });
    check!(hv
        .unmap(dom, IOVA + 0x10_0000, 1000, Context::Sleepable)
        .is_ok());
    check!(hv.unmap(dom, IOVA, 1, Context::Sleepable).is_ok());
    check!(b.with_sim(|s| s.mapped_pages(12)) == Some(0));
    check!(hv.delete_domain(dom).is_ok());
    Ok(())
}

/// A hypervisor that keeps returning success without progress makes the call fail with `EIO`
/// after [`MAX_STALLS`] attempts, leaving nothing mapped.
pub fn stalls_are_bounded<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let dom = DeviceDomain::own_s2(13);
    check!(hv.create_domain(dom, FLAGS).is_ok());
    b.with_sim(|s| {
        s.reset_stats();
        s.set_fault(Some(Fault::partial(
            CallCode::MAP_DEVICE_GPA_PAGES,
            1,
            u32::MAX,
            0,
        )))
    });
    let r = hv.map(dom, IOVA, PFN, 600, MapFlags::dma(true), Context::Sleepable);
    b.with_sim(|s| s.set_fault(None));
    check!(r.as_ref().map_err(|e| e.errno) == Err(errno::EIO));
    check!(r.err().map(|e| e.mapped.is_empty()) == Some(true));
    let st = b.with_sim(|s| s.stats(CallCode::MAP_DEVICE_GPA_PAGES));
    check!(st.calls == 1 + u64::from(MAX_STALLS));
    check!(b.with_sim(|s| s.mapped_pages(13)) == Some(0));
    check!(hv.delete_domain(dom).is_ok());
    Ok(())
}

/// `INSUFFICIENT_MEMORY` is answered by deposits into the charged partition and a retry of the
/// same rep; a shortage that deposits cannot fix ends in `ENOMEM` after the policy's attempts,
/// with nothing mapped and no deposit page lost.
pub fn deposits_are_bounded<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let dom = DeviceDomain::own_s2(14);
    // The root pool starts empty: creating the domain needs a deposit.
    check!(b
        .with_sim(|s| s.pool(PartitionId::SELF))
        .is_some_and(|p| p.deposited == 0));
    check!(hv.create_domain(dom, FLAGS).is_ok());
    check!(b.with_sim(|s| s.stats(CallCode::DEPOSIT_MEMORY)).calls == 1);
    // The hypervisor wants 40 pages for something else first: 16 + 32 deposited.
    b.with_sim(|s| {
        s.reset_stats();
        s.require_deposit(PartitionId::SELF, 40)
    })
    .map_err(|_| Failure {
        what: "require_deposit",
        line: line!(),
    })?;
    check!(hv
        .map(dom, IOVA, PFN, 507, MapFlags::dma(true), Context::Sleepable)
        .is_ok());
    let (dep, map) = b.with_sim(|s| {
        (
            s.stats(CallCode::DEPOSIT_MEMORY),
            s.stats(CallCode::MAP_DEVICE_GPA_PAGES),
        )
    });
    check!(dep.calls == 2 && dep.reps == 16 + 32);
    check!(map.calls == 3 && map.failed == 2);
    // Now a shortage that never ends: 3 attempts (16, 32, 64 pages), then ENOMEM.
    let strict = Hv::with_policy(
        b,
        DepositPolicy {
            first_pages: 16,
            max_attempts: 3,
        },
    );
    b.with_sim(|s| {
        s.reset_stats();
        s.require_deposit(PartitionId::SELF, 1 << 40)
    })
    .map_err(|_| Failure {
        what: "require_deposit",
        line: line!(),
    })?;
    let r = strict.map(
        dom,
        IOVA + 0x20_0000,
        PFN,
        1024,
        MapFlags::dma(true),
        Context::Atomic,
    );
    check!(r.map_err(|e| e.errno) == Err(errno::ENOMEM));
    let dep = b.with_sim(|s| s.stats(CallCode::DEPOSIT_MEMORY));
    check!(dep.calls == 3 && dep.reps == 16 + 32 + 64);
    check!(b.with_sim(|s| s.mapped_pages(14)) == Some(507));
    // Clear the debt; then the domain is torn down normally.
    b.with_sim(|s| s.require_deposit(PartitionId::SELF, 0))
        .map_err(|_| Failure {
            what: "require_deposit",
            line: line!(),
        })?;
    check!(hv.unmap(dom, IOVA, 507, Context::Sleepable).is_ok());
    check!(hv.delete_domain(dom).is_ok());
    Ok(())
}

/// The shortage count restarts whenever a call makes progress: one MAP call whose tables run out
/// four times succeeds with small deposits even though the policy allows only two shortages in
/// a row.
pub fn shortages_reset_on_progress<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::with_policy(
        b,
        DepositPolicy {
            first_pages: 1,
            max_attempts: 2,
        },
    );
    let dom = DeviceDomain::own_s2(17);
    check!(hv.create_domain(dom, FLAGS).is_ok());
    b.with_sim(|s| s.reset_stats());
    // One call of 507 pages across the 2G boundary of a fresh domain: 3 tables for the first 5
    // pages (1 + 2 pages deposited), then 2 more (1 + 2 again) after progress.
    let iova = (2 << 30) - 5 * 4096;
    check!(hv
        .map(dom, iova, PFN, 507, MapFlags::dma(true), Context::Sleepable)
        .is_ok());
    let (dep, map) = b.with_sim(|s| {
        (
            s.stats(CallCode::DEPOSIT_MEMORY),
            s.stats(CallCode::MAP_DEVICE_GPA_PAGES),
        )
    });
    check!(dep.calls == 4 && dep.reps == 6 && map.calls == 5);
    check!(hv.unmap(dom, iova, 507, Context::Sleepable).is_ok());
    check!(hv.delete_domain(dom).is_ok());
    Ok(())
}

/// A MAP that fails part-way (here after 300 reps of its second call) is rolled back: nothing
/// of it stays mapped, earlier mappings are untouched, and the error is the hypervisor's.
pub fn failed_map_rolls_back<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let dom = DeviceDomain::own_s2(15);
    check!(hv.create_domain(dom, FLAGS).is_ok());
    check!(hv
        .map(dom, 0, PFN, 4, MapFlags::dma(false), Context::Sleepable)
        .is_ok());
    b.with_sim(|s| {
        s.set_fault(Some(Fault::fail(
            CallCode::MAP_DEVICE_GPA_PAGES,
            1,
            1,
            HvStatus::INVALID_PARAMETER,
            300,
        )))
    });
    let r = hv.map(
        dom,
        IOVA,
        PFN,
        1000,
        MapFlags::dma(true),
        Context::Sleepable,
    );
    check!(
        r == Err(super::layer::OpError {
            errno: errno::EINVAL,
            mapped: 0..0
        })
    );
    check!(b.with_sim(|s| s.mapped_pages(15)) == Some(4));
    check!(b.with_sim(|s| s.translate(15, IOVA)).is_none());
    check!(b.with_sim(|s| s.translate(15, 3 * 4096)) == Some((PFN + 3, MapFlags::dma(false))));
    check!(hv.unmap(dom, 0, 4, Context::Sleepable).is_ok());
    check!(hv.delete_domain(dom).is_ok());
    Ok(())
}

fn errno_of(r: Result<(), Errno>) -> Errno {
    match r {
        Ok(()) => Errno(0),
        Err(e) => e,
    }
}

/// What the simulator must reject, with the status (errno) it must use; none of the rejected
/// calls changes its state.
pub fn strict_rejections<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let dom = DeviceDomain::own_s2(16);
    let dev = pci(3);
    check!(b.with_sim(|s| s.add_device(dev)).is_ok());
    check!(b.with_sim(|s| s.add_device(dev)) == Err(errno::EEXIST));
    check!(hv.create_domain(dom, FLAGS).is_ok());
    // The same id twice; the reserved ids.
    check!(errno_of(hv.create_domain(dom, FLAGS)) == errno::EACCES);
    check!(errno_of(hv.create_domain(DeviceDomain::own_s2(0), FLAGS)) == errno::EINVAL);
    check!(errno_of(hv.create_domain(DeviceDomain::own_s2(u32::MAX), FLAGS)) == errno::EINVAL);
    // Unknown domain, unknown device, unknown partition.
    let other = DeviceDomain::own_s2(17);
    check!(errno_of(hv.attach_domain(other, dev)) == errno::ENOENT);
    check!(errno_of(hv.attach_domain(dom, pci(9))) == errno::ENOENT);
    let mut foreign = dom;
    foreign.partition = PartitionId(0x77);
    check!(errno_of(hv.attach_domain(foreign, dev)) == errno::EINVAL);
    // Attach, then attaching the attached device elsewhere is refused.
    check!(hv.attach_domain(dom, dev).is_ok());
    check!(errno_of(hv.attach_domain(DeviceDomain::own_s2(u32::MAX), dev)) == errno::EACCES);
    // Deleting a domain with a device attached.
    check!(errno_of(hv.delete_domain(dom)) == errno::EACCES);
    // Maps: overlap, unaligned, the identity domain, bad flags.
    let ctx = Context::Sleepable;
    check!(hv.map(dom, IOVA, PFN, 8, MapFlags::dma(true), ctx).is_ok());
    let r = hv.map(dom, IOVA + 4 * 4096, PFN + 100, 8, MapFlags::dma(true), ctx);
    check!(r.map_err(|e| (e.errno, e.mapped)) == Err((errno::EINVAL, 0..0)));
    check!(
        b.with_sim(|s| s.translate(16, IOVA + 4 * 4096)) == Some((PFN + 4, MapFlags::dma(true)))
    );
    check!(b.with_sim(|s| s.translate(16, IOVA + 8 * 4096)).is_none());
    check!(
        hv.map(dom, IOVA + 1, PFN, 1, MapFlags::dma(true), ctx)
            .map_err(|e| e.errno)
            == Err(errno::EINVAL)
    );
    let r = hv.map(
        DeviceDomain::own_s2(0),
        IOVA,
        PFN,
        1,
        MapFlags::dma(true),
        ctx,
    );
    check!(r.map_err(|e| e.errno) == Err(errno::EACCES));
    let r = hv.map(dom, 0, PFN, 1, MapFlags::WRITABLE, ctx);
    check!(r.map_err(|e| e.errno) == Err(errno::EINVAL));
    let r = hv.map(dom, 1 << 48, PFN, 1, MapFlags::dma(true), ctx);
    check!(r.map_err(|e| e.errno) == Err(errno::EINVAL));
    // Unmapping what is not mapped stops at the hole and reports how far it got.
    let r = hv.unmap(dom, IOVA + 6 * 4096, 4, ctx);
    check!(r.map_err(|e| (e.errno, e.mapped)) == Err((errno::EINVAL, 2..4)));
    check!(b.with_sim(|s| s.mapped_pages(16)) == Some(6));
    // A domain with mappings cannot be deleted either.
    check!(hv.detach_domain(PartitionId::SELF, dev).is_ok());
    check!(b.with_sim(|s| s.attachment(dev)) == Some(Attachment::Detached));
    check!(errno_of(hv.detach_domain(PartitionId::SELF, dev)) == errno::EACCES);
    check!(errno_of(hv.delete_domain(dom)) == errno::EACCES);
    check!(hv.unmap(dom, IOVA, 6, ctx).is_ok());
    check!(hv.delete_domain(dom).is_ok());
    check!(errno_of(hv.delete_domain(dom)) == errno::ENOENT);
    check!(errno_of(hv.delete_domain(DeviceDomain::own_s2(0))) == errno::EACCES);
    // Back to the identity domain.
    check!(hv.attach_domain(DeviceDomain::own_s2(0), dev).is_ok());
    check!(b.with_sim(|s| s.attachment(dev)) == Some(Attachment::Domain(0)));
    Ok(())
}

/// A new device on bus `bus` (in the default domain) and a new guest partition.
fn device_and_guest<B: SimBackend>(b: &B, bus: u8) -> Result<(DeviceId, PartitionId), Failure> {
    let dev = pci(bus);
    check!(b.with_sim(|s| s.add_device(dev)).is_ok());
    b.with_sim(|s| s.create_partition())
        .map(|guest| (dev, guest))
        .map_err(|_| Failure {
            what: "create_partition",
            line: line!(),
        })
}

/// Direct attach charges the guest partition's pool (deposits go there, not to the root), a
/// partition with an attached device cannot be destroyed, and detach frees the page again.
pub fn direct_attach<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let (dev, guest) = device_and_guest(b, 4)?;
    let logical = LogicalId::from_bdf(0, PciRid::new(4, 0));
    let a = AttachDevice::logical(guest, dev, logical);
    let root_before = b.with_sim(|s| s.pool(PartitionId::SELF));
    check!(
        errno_of(hv.attach_device(AttachDevice {
            partition: PartitionId::SELF,
            ..a
        })) == errno::EINVAL
    );
    check!(hv.attach_device(a).is_ok());
    check!(b.with_sim(|s| s.pool(PartitionId::SELF)) == root_before);
    check!(b
        .with_sim(|s| s.pool(guest))
        .is_some_and(|p| p.used == 1 && p.deposited == 16));
    check!(
        b.with_sim(|s| s.attachment(dev))
            == Some(Attachment::Partition {
                partition: guest,
                logical
            })
    );
    check!(errno_of(hv.attach_domain(DeviceDomain::own_s2(0), dev)) == errno::EACCES);
    check!(b.with_sim(|s| s.destroy_partition(guest)) == Err(errno::EBUSY));
    let wrong = LogicalId::from_bdf(0, PciRid::new(5, 0));
    check!(errno_of(hv.detach_device(guest, wrong)) == errno::ENOENT);
    check!(hv.detach_device(guest, logical).is_ok());
    check!(b.with_sim(|s| s.destroy_partition(guest)) == Ok(16));
    check!(b.with_sim(|s| s.pool(guest)).is_none());
    check!(hv.attach_domain(DeviceDomain::own_s2(0), dev).is_ok());
    Ok(())
}

/// A guest partition's SLAT: mapped all or nothing, refused where a page is mapped already,
/// and what a device reaches follows where the hypervisor has it: identity in the default
/// domain, the SLAT (guest addresses) once attached directly, nothing detached.
pub fn guest_slat<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let (dev, guest) = device_and_guest(b, 6)?;
    let rw = MapFlags::READABLE.with(MapFlags::WRITABLE);
    // Guest pages 0x10..0x13 on host pages 0x500, 0x700, 0x900.
    let map = |gfn, n, flags| {
        b.with_sim(|s| s.map_guest(guest, gfn, n, &mut |k| 0x500 + 0x200 * k, flags))
    };
    check!(map(0x10, 3, rw).is_ok());
    check!(b.with_sim(|s| s.guest_pages(guest)) == Some(3));
    check!(b.with_sim(|s| s.guest_translate(guest, 0x11_000)) == Some((0x700, rw)));
    // Overlapping the end: refused, nothing added.
    check!(map(0x12, 2, rw) == Err(errno::EEXIST));
    check!(b.with_sim(|s| s.guest_pages(guest)) == Some(3));
    check!(b.with_sim(|s| s.guest_translate(guest, 0x13_000)).is_none());
    check!(
        b.with_sim(|s| s.map_guest(PartitionId::SELF, 0, 1, &mut |_| 1, rw)) == Err(errno::EINVAL)
    );
    // In the default domain the device reaches host addresses as they are.
    check!(b.with_sim(|s| s.device_translate(dev, 0x11_000)) == Some((0x11, rw)));
    let logical = LogicalId::from_bdf(0, PciRid::new(6, 0));
    check!(hv
        .attach_device(AttachDevice::logical(guest, dev, logical))
        .is_ok());
    check!(b.with_sim(|s| s.device_translate(dev, 0x11_000)) == Some((0x700, rw)));
    check!(b.with_sim(|s| s.device_translate(dev, 0x13_000)).is_none());
    check!(hv.detach_device(guest, logical).is_ok());
    check!(b.with_sim(|s| s.device_translate(dev, 0x11_000)).is_none());
    check!(b.with_sim(|s| s.unmap_guest(guest, 0x11, 5)) == Ok(2));
    check!(b.with_sim(|s| s.guest_pages(guest)) == Some(1));
    check!(b.with_sim(|s| s.destroy_partition(guest)).is_ok());
    check!(b.with_sim(|s| s.guest_pages(guest)).is_none());
    check!(hv.attach_domain(DeviceDomain::own_s2(0), dev).is_ok());
    Ok(())
}

/// An L1VH partition has no S2 device domains (spec §1(b) 7): every device-domain call is
/// refused and changes nothing, while deposits and direct attach to a guest work.
pub fn l1vh_refuses_device_domains<B: SimBackend>(b: &B) -> Outcome {
    let was = b.with_sim(|s| s.is_l1vh());
    b.with_sim(|s| s.set_l1vh(true));
    // Back to the simulator's mode whatever the outcome.
    let r = l1vh_scenario(b);
    b.with_sim(|s| s.set_l1vh(was));
    r
}

fn l1vh_scenario<B: SimBackend>(b: &B) -> Outcome {
    let hv = Hv::new(b);
    let dev = pci(6);
    let dom = DeviceDomain::own_s2(17);
    check!(b.with_sim(|s| s.add_device(dev)).is_ok());
    let refused = |r: Result<(), Errno>| r == Err(errno::EACCES);
    check!(refused(hv.create_domain(dom, CreateDomainFlags::default())));
    check!(b.with_sim(|s| s.domain_ids().count()) == 0);
    check!(refused(hv.attach_domain(DeviceDomain::own_s2(0), dev)));
    check!(refused(
        hv.attach_domain(DeviceDomain::own_s2(u32::MAX), dev)
    ));
    check!(refused(hv.detach_domain(PartitionId::SELF, dev)));
    check!(refused(hv.delete_domain(dom)));
    let ctx = Context::Sleepable;
    check!(refused(
        hv.map(dom, IOVA, PFN, 1, MapFlags::dma(true), ctx)
            .map_err(|e| e.errno)
    ));
    check!(refused(hv.unmap(dom, IOVA, 1, ctx).map_err(|e| e.errno)));
    check!(hv.deposit(PartitionId::SELF, 16, ctx).is_ok());
    let guest = b.with_sim(|s| s.create_partition());
    let Ok(guest) = guest else {
        return Err(Failure {
            what: "create_partition",
            line: line!(),
        });
    };
    let logical = LogicalId::from_bdf(0, PciRid::new(6, 0));
    let a = AttachDevice::logical(guest, dev, logical);
    check!(hv.attach_device(a).is_ok());
    check!(hv.detach_device(guest, logical).is_ok());
    check!(b.with_sim(|s| s.destroy_partition(guest)).is_ok());
    Ok(())
}
