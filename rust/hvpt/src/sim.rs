// SPDX-License-Identifier: GPL-2.0

//! The simulated hypervisor: what Hyper-V does with the device-domain hypercalls, as far as the
//! spec (seed-series §1(b)) describes it, and strict where it does not.
//!
//! [`Sim::dispatch`] receives the raw control word and the input page, exactly what the native
//! backend hands to `hv_do_hypercall()`, decodes both without trusting them ([`Decoded`]) and
//! applies the call to its model:
//! - partitions: the root (`SELF`) and guest partitions that tests create, each with a pool of
//!   deposited pages;
//! - S2 device domains owned by the root, including the boot-time default domain 0 (identity)
//!   and the NULL domain `0xFFFFFFFF` (blocks DMA); the other domains have a four-level page
//!   table (512 entries per level, 48-bit IOVA) whose tables each consume one deposited page of
//!   the owner's pool, so memory runs out and must be deposited as on Hyper-V;
//! - devices by device id, each attached to exactly one of: a domain, nothing (detached, DMA
//!   blocked), or a guest partition (direct attach, named by its logical id).
//!
//! Storage is generic ([`Storage`](super::storage::Storage)): `Vec`/`Box` on the host, `KVec`/`KBox` with `GFP_ATOMIC`
//! in the kernel (the simulator runs where the hypercall would, with interrupts off).
//!
//! Assumptions where the real behaviour is not documented are listed in
//! `Documentation/hv-simulator.rst`; each is the strict choice.

use core::fmt::{self, Write};

use super::abi::{DeviceDomain, DeviceDomainId, DomainType, PartitionId, HV_PAGE_SIZE};
use super::calls::{AttachDevice, Decoded, Input, InputPage, MapFlags};
use super::device_id::{DeviceId, LogicalId};
use super::errno::{self, Errno};
use super::hypercall::{CallCode, Control, HvResult, HvStatus};
use super::layer::ISSUED_CODES;

pub use super::pagetable::IOVA_BITS;
use super::pagetable::{in_range, PageTable, SetError};
use super::storage::{swap_remove, Storage, StorageVec};
use zerocopy::byteorder::little_endian::U64;
/// Page numbers are 40 bits (52-bit physical addresses).
pub const PFN_BITS: u32 = 40;

/// What a device is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// A root-owned S2 domain (0 is the default domain, `0xFFFFFFFF` the NULL domain).
    Domain(u32),
    /// Nothing: after DETACH_DEVICE_DOMAIN or DETACH_DEVICE. DMA is blocked.
    Detached,
    /// Directly attached to a guest partition under a logical id.
    Partition {
        /// The guest.
        partition: PartitionId,
        /// The id later calls name the device by.
        logical: LogicalId,
    },
}

/// Per-code call statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls dispatched, including failed ones.
    pub calls: u64,
    /// Reps performed.
    pub reps: u64,
    /// Calls that returned a status other than success.
    pub failed: u64,
    /// Nanoseconds spent in the simulator on these calls, as its host measured them
    /// ([`Sim::add_time`]); the simulator has no clock of its own.
    pub ns: u64,
}

/// A deposited-memory pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolInfo {
    /// Pages deposited and not in use.
    pub free: u64,
    /// Pages in use (page tables, attach state).
    pub used: u64,
    /// Pages that must still be deposited before memory-consuming calls succeed again
    /// (fault injection, see [`Sim::require_deposit`]).
    pub debt: u64,
    /// Pages deposited in total.
    pub deposited: u64,
}

/// An injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Fail with `status` after performing at most `after_reps` reps (0 for simple calls); the
    /// last rep of the call is never performed, since it is the one that fails.
    Fail {
        /// The status returned.
        status: HvStatus,
        /// Reps performed before failing.
        after_reps: u16,
    },
    /// Perform at most `reps` reps and return success with fewer reps completed than asked
    /// (what Hyper-V does when a rep call runs out of time).
    Partial {
        /// Reps performed.
        reps: u16,
    },
}

/// Fault injection: skip `skip` matching calls, then apply `kind` to the next `times` ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Only calls with this code match (`None`: every call).
    pub code: Option<CallCode>,
    /// Matching calls let through first.
    pub skip: u32,
    /// Matching calls the fault applies to after that.
    pub times: u32,
    /// What happens to them.
    pub kind: FaultKind,
}

impl Fault {
    /// Calls with `code`: skip `skip`, then fail `times` with `status` after `after_reps` reps.
    pub const fn fail(
        code: CallCode,
        skip: u32,
        times: u32,
        status: HvStatus,
        after_reps: u16,
    ) -> Self {
        Self {
            code: Some(code),
            skip,
            times,
            kind: FaultKind::Fail { status, after_reps },
        }
    }

    /// Calls with `code`: skip `skip`, then complete only `reps` reps of `times` calls.
    pub const fn partial(code: CallCode, skip: u32, times: u32, reps: u16) -> Self {
        Self {
            code: Some(code),
            skip,
            times,
            kind: FaultKind::Partial { reps },
        }
    }
}

/// A contiguous run of mappings with equal flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First IOVA.
    pub iova: u64,
    /// First page number.
    pub pfn: u64,
    /// Pages.
    pub pages: u64,
    /// Flags.
    pub flags: MapFlags,
}

struct Partition<A: Storage> {
    id: PartitionId,
    pool: PoolInfo,
    /// Deposited pages, returned at [`Sim::drain_deposits`].
    pfns: A::Vec<u64>,
    /// Destroyed partitions stay listed (invisible to hypercalls) until their pages are drained.
    destroyed: bool,
    /// The guest's second-level table (SLAT: EPT/NPT): guest page -> host page. What a device
    /// attached directly to the partition reaches. Filled by the partition's provider (the
    /// simulated `/dev/mshv`'s `MSHV_SET_GUEST_MEMORY`).
    slat: PageTable<A>,
}

struct Domain<A: Storage> {
    id: u32,
    pt: PageTable<A>,
}

struct Device {
    id: u64,
    at: Attachment,
}

// Leaf entries: bit 0 present, bit 1 writable, bit 2 not-cached, page number from bit 12.
const PRESENT: u64 = 1;
const LEAF_WRITE: u64 = 2;
const LEAF_UC: u64 = 4;

fn leaf(pfn: u64, f: MapFlags) -> u64 {
    let mut v = (pfn << 12) | PRESENT;
    if f.contains(MapFlags::WRITABLE) {
        v |= LEAF_WRITE;
    }
    if f.contains(MapFlags::NOT_CACHED) {
        v |= LEAF_UC;
    }
    v
}

fn leaf_flags(v: u64) -> MapFlags {
    let mut f = MapFlags::READABLE;
    if v & LEAF_WRITE != 0 {
        f = f.with(MapFlags::WRITABLE);
    }
    if v & LEAF_UC != 0 {
        f = f.with(MapFlags::NOT_CACHED);
    }
    f
}

type Status<T> = Result<T, HvStatus>;

/// The simulated hypervisor.
pub struct Sim<A: Storage> {
    partitions: A::Vec<Partition<A>>,
    next_partition: u64,
    domains: A::Vec<Domain<A>>,
    devices: A::Vec<Device>,
    stats: [CallStats; ISSUED_CODES.len() + 1],
    fault: Option<Fault>,
    l1vh: bool,
    /// Empty (all-zero) page-table pages kept for reuse, at most [`SPARE_TABLES`]: a map and
    /// unmap of one page (the DMA API's pattern) would otherwise allocate and free three
    /// tables every time. The pool accounting is unaffected.
    spare: A::Vec<A::Table>,
}

/// The most empty tables the simulator keeps for reuse (256 KiB).
const SPARE_TABLES: usize = 64;

/// Keeps `t`, a table that [`PageTable::clear_run`] emptied and released (all entries zero), for
/// reuse if there is room; drops it otherwise.
fn keep_spare<A: Storage>(spare: &mut A::Vec<A::Table>, t: A::Table) {
    if spare.len() < SPARE_TABLES {
        // On failure the table is dropped: only a reuse is lost.
        let _ = spare.try_push(t);
    }
}

impl PoolInfo {
    /// Takes a free page; `INSUFFICIENT_MEMORY` if none is free or a deposit is required.
    fn take(&mut self) -> Result<(), HvStatus> {
        if self.debt > 0 || self.free == 0 {
            return Err(HvStatus::INSUFFICIENT_MEMORY);
        }
        self.free -= 1;
        self.used += 1;
        Ok(())
    }

    /// Returns a page taken with [`PoolInfo::take`].
    fn put(&mut self) {
        self.used = self.used.saturating_sub(1);
        self.free += 1;
    }
}

impl<A: Storage> Sim<A> {
    /// A hypervisor with only the root partition (empty pool), no devices and no domains but
    /// the default and NULL ones.
    pub fn new() -> Result<Self, Errno> {
        let mut s = Self {
            partitions: A::new_vec(),
            next_partition: 1,
            domains: A::new_vec(),
            devices: A::new_vec(),
            stats: [CallStats::default(); ISSUED_CODES.len() + 1],
            fault: None,
            l1vh: false,
            spare: A::new_vec(),
        };
        s.partitions.try_push(Partition {
            id: PartitionId::SELF,
            pool: PoolInfo::default(),
            pfns: A::new_vec(),
            destroyed: false,
            slat: PageTable::new(),
        })?;
        Ok(s)
    }

    // ---- Test controls (not hypercalls) ----

    /// Makes the caller an L1VH partition (an L1 virtualization host) instead of the root.
    ///
    /// An L1VH has no S2 device domains (spec §1(b) 7): no default domain 0 covers its
    /// devices, and the device-domain calls (CREATE/DELETE/ATTACH/DETACH_DEVICE_DOMAIN,
    /// MAP/UNMAP_DEVICE_GPA_PAGES) are refused with `HV_STATUS_ACCESS_DENIED` (the status is an
    /// assumption; the rule is the spec's). Direct attach to a guest (ATTACH/DETACH_DEVICE) and
    /// deposits work as for the root.
    pub fn set_l1vh(&mut self, l1vh: bool) {
        self.l1vh = l1vh;
    }

    /// Whether the caller is an L1VH partition.
    pub fn is_l1vh(&self) -> bool {
        self.l1vh
    }

    /// Creates a guest partition (what the VMM does through /dev/mshv).
    pub fn create_partition(&mut self) -> Result<PartitionId, Errno> {
        self.next_partition += 1;
        let id = PartitionId(self.next_partition);
        self.partitions.try_push(Partition {
            id,
            pool: PoolInfo::default(),
            pfns: A::new_vec(),
            destroyed: false,
            slat: PageTable::new(),
        })?;
        Ok(id)
    }

    /// Destroys a guest partition. `EBUSY` while a device is still attached to it (a device
    /// must be detached before its partition goes away). Returns the number of pages that were
    /// deposited into it; the simulator keeps them until [`Sim::drain_deposits`] (the root would
    /// withdraw them).
    pub fn destroy_partition(&mut self, id: PartitionId) -> Result<u64, Errno> {
        if id == PartitionId::SELF {
            return Err(errno::EINVAL);
        }
        let i = self.partition_index(id).ok_or(errno::ENOENT)?;
        if self
            .devices
            .iter()
            .any(|d| matches!(d.at, Attachment::Partition { partition, .. } if partition == id))
        {
            return Err(errno::EBUSY);
        }
        let p = &mut self.partitions[i];
        p.destroyed = true;
        p.slat.clear_all(&mut drop);
        Ok(p.pool.deposited)
    }

    /// The index of live guest partition `id`: `EINVAL` for the root, `ENOENT` if none.
    fn guest_errno(&self, id: PartitionId) -> Result<usize, Errno> {
        if id == PartitionId::SELF {
            return Err(errno::EINVAL);
        }
        self.partition_index(id).ok_or(errno::ENOENT)
    }

    /// Maps guest pages `gfn..gfn + count` of partition `id` to host pages `pfn(i)` in its SLAT,
    /// all or nothing: `EEXIST` if one is mapped already (nothing changes), `ERANGE` beyond the
    /// table's reach, `ENOMEM` when memory runs out.
    pub fn map_guest(
        &mut self,
        id: PartitionId,
        gfn: u64,
        count: u64,
        pfn: &mut dyn FnMut(u64) -> u64,
        flags: MapFlags,
    ) -> Result<(), Errno> {
        let i = self.guest_errno(id)?;
        let end = gfn.checked_add(count).ok_or(errno::ERANGE)?;
        let slat = &mut self.partitions[i].slat;
        if slat.next_set(gfn).is_some_and(|g| g < end) {
            return Err(errno::EEXIST);
        }
        slat.ensure_root(&mut || A::new_table())
            .map_err(|_| errno::ENOMEM)?;
        let r = slat.set_run(gfn, count, &mut |k| leaf(pfn(k), flags), &mut || {
            A::new_table()
        });
        match r {
            Ok(()) => Ok(()),
            Err((done, e)) => {
                slat.clear_run(gfn, done, &mut drop);
                Err(match e {
                    SetError::Range => errno::ERANGE,
                    SetError::Occupied => errno::EEXIST,
                    SetError::Alloc(_) => errno::ENOMEM,
                })
            }
        }
    }

    /// Unmaps guest pages `gfn..gfn + count` of partition `id` from its SLAT; returns how many
    /// were mapped.
    pub fn unmap_guest(&mut self, id: PartitionId, gfn: u64, count: u64) -> Result<u64, Errno> {
        let i = self.guest_errno(id)?;
        let slat = &mut self.partitions[i].slat;
        let mut cleared = 0u64;
        let mut at = gfn;
        let end = gfn.saturating_add(count);
        while let Some(g) = slat.next_set(at).filter(|&g| g < end) {
            let run = slat.present_run(g, end - g);
            cleared += slat.clear_run(g, run, &mut drop);
            at = g + run;
        }
        Ok(cleared)
    }

    /// The host page and flags guest address `gpa` of partition `id` reaches through its SLAT.
    pub fn guest_translate(&self, id: PartitionId, gpa: u64) -> Option<(u64, MapFlags)> {
        let i = self.guest_errno(id).ok()?;
        let e = self.partitions[i].slat.get(gpa >> 12)?;
        Some((e >> 12, leaf_flags(e)))
    }

    /// Guest pages mapped in the SLAT of partition `id`.
    pub fn guest_pages(&self, id: PartitionId) -> Option<u64> {
        let i = self.guest_errno(id).ok()?;
        Some(self.partitions[i].slat.mapped())
    }

    /// What `device` reaches at bus address `addr`, wherever the hypervisor has it: through its
    /// paging domain's table; unchanged in the default domain (identity); nothing in the NULL
    /// domain or detached; through its guest partition's SLAT when attached directly (the
    /// address is then a guest physical address). The host page and flags, or `None`.
    pub fn device_translate(&self, device: DeviceId, addr: u64) -> Option<(u64, MapFlags)> {
        match self.attachment(device)? {
            Attachment::Domain(DeviceDomainId::S2_DEFAULT) => {
                Some((addr >> 12, MapFlags::READABLE.with(MapFlags::WRITABLE)))
            }
            Attachment::Domain(DeviceDomainId::S2_NULL) | Attachment::Detached => None,
            Attachment::Domain(id) => self.translate(id, addr),
            Attachment::Partition { partition, .. } => self.guest_translate(partition, addr),
        }
    }

    /// Registers a device, attached to the default domain as at boot.
    pub fn add_device(&mut self, id: DeviceId) -> Result<(), Errno> {
        let id = id.encode();
        if self.devices.iter().any(|d| d.id == id) {
            return Err(errno::EEXIST);
        }
        self.devices.try_push(Device {
            id,
            at: Attachment::Domain(DeviceDomainId::S2_DEFAULT),
        })
    }

    /// Removes a device (hot-unplug); `EBUSY` unless it is in the default domain or detached.
    pub fn remove_device(&mut self, id: DeviceId) -> Result<(), Errno> {
        let id = id.encode();
        let i = self
            .devices
            .iter()
            .position(|d| d.id == id)
            .ok_or(errno::ENOENT)?;
        match self.devices[i].at {
            Attachment::Domain(DeviceDomainId::S2_DEFAULT) | Attachment::Detached => {
                swap_remove(&mut self.devices, i);
                Ok(())
            }
            _ => Err(errno::EBUSY),
        }
    }

    /// Creates root domain `id` as if another owner had (tests: an id a driver finds taken).
    /// `EACCES` if it exists, `EINVAL` for the default and NULL ids.
    pub fn create_domain(&mut self, id: u32) -> Result<(), Errno> {
        self.create(DeviceDomain::own_s2(id))
            .map_err(|s| s.to_errno())
    }

    /// Deletes root domain `id` (no device attached, nothing mapped).
    pub fn delete_domain(&mut self, id: u32) -> Result<(), Errno> {
        self.delete(DeviceDomain::own_s2(id))
            .map_err(|s| s.to_errno())
    }

    /// Makes memory-consuming calls charged to `partition` fail with `INSUFFICIENT_MEMORY` until
    /// `pages` more pages have been deposited into it (0 clears a pending requirement).
    pub fn require_deposit(&mut self, partition: PartitionId, pages: u64) -> Result<(), Errno> {
        let i = self.partition_index(partition).ok_or(errno::ENOENT)?;
        self.partitions[i].pool.debt = pages;
        Ok(())
    }

    /// Installs (or with `None` clears) the fault.
    pub fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
    }

    /// The installed fault, with its remaining counts.
    pub fn fault(&self) -> Option<Fault> {
        self.fault
    }

    // ---- Introspection ----

    /// Statistics of calls with `code`.
    pub fn stats(&self, code: CallCode) -> CallStats {
        self.stats[stats_index(code)]
    }

    /// Adds `ns` nanoseconds spent dispatching a call whose control word is `control` (the host
    /// of the simulator times [`Sim::dispatch`]).
    pub fn add_time(&mut self, control: u64, ns: u64) {
        let s = &mut self.stats[stats_index(CallCode(control as u16))];
        s.ns = s.ns.saturating_add(ns);
    }

    /// Clears all statistics.
    pub fn reset_stats(&mut self) {
        self.stats = [CallStats::default(); ISSUED_CODES.len() + 1];
    }

    /// The pool of `partition`.
    pub fn pool(&self, partition: PartitionId) -> Option<PoolInfo> {
        self.partition_index(partition)
            .map(|i| self.partitions[i].pool)
    }

    /// The attachment of `device`.
    pub fn attachment(&self, device: DeviceId) -> Option<Attachment> {
        let id = device.encode();
        self.devices.iter().find(|d| d.id == id).map(|d| d.at)
    }

    /// Ids of the domains created through CREATE_DEVICE_DOMAIN, in creation order (deleted ones
    /// leave a gap filled by the last).
    pub fn domain_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.domains.iter().map(|d| d.id)
    }

    /// Pages mapped in domain `id`.
    pub fn mapped_pages(&self, id: u32) -> Option<u64> {
        self.domains
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.pt.mapped())
    }

    /// Page-table pages of domain `id`.
    pub fn table_pages(&self, id: u32) -> Option<u64> {
        self.domains
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.pt.tables())
    }

    /// What `iova` translates to in domain `id`: page number and flags.
    pub fn translate(&self, id: u32, iova: u64) -> Option<(u64, MapFlags)> {
        let d = self.domains.iter().find(|d| d.id == id)?;
        let e = d.pt.get(iova >> 12)?;
        Some((e >> 12, leaf_flags(e)))
    }

    /// Calls `f` for every extent of domain `id` in IOVA order; adjacent pages with consecutive
    /// page numbers and equal flags form one extent.
    pub fn for_each_extent(&self, id: u32, f: &mut dyn FnMut(Extent)) {
        if let Some(d) = self.domains.iter().find(|d| d.id == id) {
            extents(&d.pt, f);
        }
    }

    /// Calls `f` for every extent of the SLAT of guest partition `id` in guest address order
    /// (`iova` is the guest physical address), as [`Sim::for_each_extent`].
    pub fn for_each_guest_extent(&self, id: PartitionId, f: &mut dyn FnMut(Extent)) {
        if let Ok(i) = self.guest_errno(id) {
            extents(&self.partitions[i].slat, f);
        }
    }

    /// Writes a text dump of partitions, domains, mappings, devices and statistics.
    pub fn dump(&self, w: &mut dyn Write) -> fmt::Result {
        for p in self.partitions.iter().filter(|p| !p.destroyed) {
            write_partition(w, p.id)?;
            let q = p.pool;
            write!(
                w,
                " pool deposited={} free={} used={} debt={}",
                q.deposited, q.free, q.used, q.debt
            )?;
            if p.id == PartitionId::SELF {
                writeln!(w)?;
                continue;
            }
            writeln!(w, " slat={}", p.slat.mapped())?;
            let mut r = Ok(());
            extents(&p.slat, &mut |x| {
                if r.is_ok() {
                    r = write_extent(w, "gpa", x);
                }
            });
            r?;
        }
        for d in self.domains.iter() {
            writeln!(
                w,
                "domain {} owner=self mapped={} tables={}",
                d.id,
                d.pt.mapped(),
                d.pt.tables()
            )?;
            let mut r = Ok(());
            extents(&d.pt, &mut |x| {
                if r.is_ok() {
                    r = write_extent(w, "iova", x);
                }
            });
            r?;
        }
        for d in self.devices.iter() {
            write!(w, "device {:#018x} ", d.id)?;
            match d.at {
                Attachment::Domain(DeviceDomainId::S2_DEFAULT) => writeln!(w, "domain default")?,
                Attachment::Domain(DeviceDomainId::S2_NULL) => writeln!(w, "domain null")?,
                Attachment::Domain(id) => writeln!(w, "domain {id}")?,
                Attachment::Detached => writeln!(w, "detached")?,
                Attachment::Partition { partition, logical } => {
                    writeln!(w, "partition {} logical {:#x}", partition.0, logical.get())?
                }
            }
        }
        for (i, s) in self.stats.iter().enumerate() {
            if s.calls == 0 {
                continue;
            }
            match ISSUED_CODES.get(i) {
                Some(c) => write!(w, "calls code={:#06x}", c.0)?,
                None => write!(w, "calls code=other")?,
            }
            writeln!(w, " calls={} reps={} failed={}", s.calls, s.reps, s.failed)?;
        }
        Ok(())
    }

    // ---- Dispatch ----

    /// Handles one hypercall: `control` and `page` are exactly what `hv_do_hypercall()` would
    /// pass to Hyper-V. Returns the 64-bit result (status and reps completed).
    pub fn dispatch(&mut self, control: u64, page: &InputPage) -> HvResult {
        let c = match Control::decode(control) {
            Ok(c) => c,
            Err(_) => {
                self.count(CallCode(control as u16), 0, false);
                return HvResult::new(HvStatus::INVALID_HYPERCALL_INPUT, 0);
            }
        };
        let start = c.rep_start();
        let (status, reached) = match Decoded::decode(&c, page) {
            Err(s) => (s, start),
            Ok(d) => {
                let mut limit = if c.is_rep() { c.rep_count() } else { 1 };
                let mut injected = None;
                match self.take_fault(c.code()) {
                    Some(FaultKind::Fail { status, after_reps }) => {
                        // The rep at `limit` is the one that fails, so at least one rep is
                        // left undone: a failed rep call never reports every rep completed.
                        limit = if c.is_rep() {
                            (limit - 1).min(start.saturating_add(after_reps))
                        } else {
                            0
                        };
                        injected = Some(status);
                    }
                    Some(FaultKind::Partial { reps }) if c.is_rep() => {
                        limit = limit.min(start.saturating_add(reps));
                    }
                    _ => {}
                }
                match self.execute(&d, start, limit) {
                    Err((s, at)) => (s, at),
                    Ok(at) => (injected.unwrap_or(HvStatus::SUCCESS), at),
                }
            }
        };
        let reps = if c.is_rep() { reached - start } else { 0 };
        self.count(c.code(), u64::from(reps), status.is_success());
        HvResult::new(status, if c.is_rep() { reached } else { 0 })
    }

    fn count(&mut self, code: CallCode, reps: u64, ok: bool) {
        let s = &mut self.stats[stats_index(code)];
        s.calls += 1;
        s.reps += reps;
        if !ok {
            s.failed += 1;
        }
    }

    fn take_fault(&mut self, code: CallCode) -> Option<FaultKind> {
        let f = self.fault.as_mut()?;
        if f.code.is_some_and(|c| c != code) {
            return None;
        }
        if f.skip > 0 {
            f.skip -= 1;
            return None;
        }
        let kind = f.kind;
        f.times = f.times.saturating_sub(1);
        if f.times == 0 {
            self.fault = None;
        }
        Some(kind)
    }

    /// Runs reps `start..limit` (a simple call when `limit` is 1 and the call is not a rep
    /// call, nothing when 0). Returns the absolute rep index reached, or the failure status and
    /// the rep it failed at.
    fn execute(&mut self, d: &Decoded<'_>, start: u16, limit: u16) -> Result<u16, (HvStatus, u16)> {
        let simple = |r: Status<()>| r.map(|()| 0).map_err(|s| (s, 0));
        if self.l1vh
            && matches!(
                d.input,
                Input::CreateDomain { .. }
                    | Input::DeleteDomain { .. }
                    | Input::AttachDomain { .. }
                    | Input::DetachDomain { .. }
                    | Input::Map { .. }
                    | Input::Unmap { .. }
            )
        {
            return Err((HvStatus::ACCESS_DENIED, start));
        }
        if limit == 0
            && !matches!(
                d.input,
                Input::Map { .. } | Input::Unmap { .. } | Input::Deposit { .. }
            )
        {
            return Ok(0);
        }
        match d.input {
            Input::CreateDomain { domain, .. } => simple(self.create(domain)),
            Input::DeleteDomain { domain } => simple(self.delete(domain)),
            Input::AttachDomain { domain, device } => simple(self.attach_domain(domain, device)),
            Input::DetachDomain { partition, device } => {
                simple(self.detach_domain(partition, device))
            }
            Input::AttachDevice(a) => simple(self.attach_device(a)),
            Input::DetachDevice { partition, logical } => {
                simple(self.detach_device(partition, logical))
            }
            Input::Map {
                domain,
                flags,
                iova,
                ..
            } => {
                let di = self.own_domain(domain).map_err(|s| (s, start))?;
                if !flags.contains(MapFlags::READABLE) {
                    return Err((HvStatus::INVALID_PARAMETER, start));
                }
                if iova % HV_PAGE_SIZE as u64 != 0 {
                    return Err((HvStatus::INVALID_ALIGNMENT, start));
                }
                self.map_reps(di, iova, flags, start, limit, d.list)
            }
            Input::Unmap { domain, iova, .. } => {
                let di = self.own_domain(domain).map_err(|s| (s, start))?;
                if iova % HV_PAGE_SIZE as u64 != 0 {
                    return Err((HvStatus::INVALID_ALIGNMENT, start));
                }
                self.unmap_reps(di, iova, start, limit)
            }
            Input::Deposit { partition } => {
                let pi = self
                    .partition_index(partition)
                    .ok_or((HvStatus::INVALID_PARTITION_ID, start))?;
                for rep in start..limit {
                    let pfn = d.list.get(usize::from(rep)).map_or(0, |p| p.get());
                    self.deposit_one(pi, pfn).map_err(|s| (s, rep))?;
                }
                Ok(limit.max(start))
            }
        }
    }

    fn partition_index(&self, id: PartitionId) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| p.id == id && !p.destroyed)
    }

    /// Checks the owner, VTL and type of a domain reference. Only the root's S2 domains exist.
    fn check_owner(&self, d: DeviceDomain) -> Status<()> {
        if d.partition != PartitionId::SELF {
            return Err(if self.partition_index(d.partition).is_some() {
                HvStatus::ACCESS_DENIED
            } else {
                HvStatus::INVALID_PARTITION_ID
            });
        }
        if d.owner_vtl.use_target_vtl && d.owner_vtl.target_vtl != 0 {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        if d.domain.ty != DomainType::S2 {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        Ok(())
    }

    /// Index of a created (pageable) domain.
    fn own_domain(&self, d: DeviceDomain) -> Status<usize> {
        self.check_owner(d)?;
        if matches!(
            d.domain.id,
            DeviceDomainId::S2_DEFAULT | DeviceDomainId::S2_NULL
        ) {
            return Err(HvStatus::ACCESS_DENIED);
        }
        self.domains
            .iter()
            .position(|x| x.id == d.domain.id)
            .ok_or(HvStatus::NOT_FOUND)
    }

    fn device_index(&self, id: DeviceId) -> Status<usize> {
        let id = id.encode();
        self.devices
            .iter()
            .position(|d| d.id == id)
            .ok_or(HvStatus::NOT_FOUND)
    }

    /// Takes one page of partition `pi`'s pool.
    /// Takes one page of partition `pi`'s pool.
    fn charge(&mut self, pi: usize) -> Status<()> {
        self.partitions[pi].pool.take()
    }

    fn uncharge(&mut self, pi: usize) {
        self.partitions[pi].pool.put();
    }

    /// A new page-table page charged to `pool`, as [`PageTable`] asks for one.
    /// A zeroed table charged to `pool`: a spare one if there is one.
    fn charged_table(
        pool: &mut PoolInfo,
        spare: &mut A::Vec<A::Table>,
    ) -> Result<A::Table, HvStatus> {
        pool.take()?;
        if let Some(t) = spare.pop() {
            return Ok(t);
        }
        A::new_table().map_err(|_| {
            pool.put();
            HvStatus::INSUFFICIENT_MEMORY
        })
    }

    fn create(&mut self, d: DeviceDomain) -> Status<()> {
        self.check_owner(d)?;
        let id = d.domain.id;
        if matches!(id, DeviceDomainId::S2_DEFAULT | DeviceDomainId::S2_NULL) {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        if self.domains.iter().any(|x| x.id == id) {
            return Err(HvStatus::OPERATION_DENIED);
        }
        self.domains
            .try_push(Domain {
                id,
                pt: PageTable::new(),
            })
            .map_err(|_| HvStatus::INSUFFICIENT_MEMORY)?;
        let pool = &mut self.partitions[0].pool;
        let spare = &mut self.spare;
        let r = match self.domains.last_mut() {
            Some(dom) => dom.pt.ensure_root(&mut || Self::charged_table(pool, spare)),
            None => Err(SetError::Alloc(None)),
        };
        if let Err(e) = r {
            self.domains.pop();
            return Err(set_status(e));
        }
        Ok(())
    }

    fn delete(&mut self, d: DeviceDomain) -> Status<()> {
        let i = self.own_domain(d)?;
        let id = d.domain.id;
        if self.devices.iter().any(|x| x.at == Attachment::Domain(id)) {
            return Err(HvStatus::OPERATION_DENIED);
        }
        if self.domains[i].pt.mapped() != 0 {
            return Err(HvStatus::OPERATION_DENIED);
        }
        if let Some(mut dom) = swap_remove(&mut self.domains, i) {
            let pool = &mut self.partitions[0].pool;
            dom.pt.clear_all(&mut |_| pool.put());
        }
        Ok(())
    }

    fn attach_domain(&mut self, d: DeviceDomain, device: DeviceId) -> Status<()> {
        self.check_owner(d)?;
        let id = d.domain.id;
        if !matches!(id, DeviceDomainId::S2_DEFAULT | DeviceDomainId::S2_NULL)
            && !self.domains.iter().any(|x| x.id == id)
        {
            return Err(HvStatus::NOT_FOUND);
        }
        let di = self.device_index(device)?;
        let dev = &mut self.devices[di];
        match dev.at {
            Attachment::Domain(DeviceDomainId::S2_DEFAULT) | Attachment::Detached => {
                dev.at = Attachment::Domain(id);
                Ok(())
            }
            _ => Err(HvStatus::OPERATION_DENIED),
        }
    }

    fn detach_domain(&mut self, partition: PartitionId, device: DeviceId) -> Status<()> {
        if partition != PartitionId::SELF {
            return Err(if self.partition_index(partition).is_some() {
                HvStatus::ACCESS_DENIED
            } else {
                HvStatus::INVALID_PARTITION_ID
            });
        }
        let di = self.device_index(device)?;
        let dev = &mut self.devices[di];
        match dev.at {
            Attachment::Domain(_) => {
                dev.at = Attachment::Detached;
                Ok(())
            }
            _ => Err(HvStatus::OPERATION_DENIED),
        }
    }

    fn guest_index(&self, partition: PartitionId) -> Status<usize> {
        match self.partition_index(partition) {
            Some(i) if partition != PartitionId::SELF => Ok(i),
            _ => Err(HvStatus::INVALID_PARTITION_ID),
        }
    }

    fn attach_device(&mut self, a: AttachDevice) -> Status<()> {
        let pi = self.guest_index(a.partition)?;
        if !a.flags.logical_id || a.logical.get() == 0 || a.vtl != 0 || a.pci_caps >> 12 != 0 {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        let di = self.device_index(a.device)?;
        if !matches!(
            self.devices[di].at,
            Attachment::Domain(DeviceDomainId::S2_DEFAULT) | Attachment::Detached
        ) {
            return Err(HvStatus::OPERATION_DENIED);
        }
        let taken = self.devices.iter().any(|d| {
            matches!(d.at, Attachment::Partition { partition, logical }
                if partition == a.partition && logical == a.logical)
        });
        if taken {
            return Err(HvStatus::OPERATION_DENIED);
        }
        self.charge(pi)?;
        self.devices[di].at = Attachment::Partition {
            partition: a.partition,
            logical: a.logical,
        };
        Ok(())
    }

    fn detach_device(&mut self, partition: PartitionId, logical: LogicalId) -> Status<()> {
        let pi = self.guest_index(partition)?;
        let want = Attachment::Partition { partition, logical };
        let di = self
            .devices
            .iter()
            .position(|d| d.at == want)
            .ok_or(HvStatus::NOT_FOUND)?;
        self.devices[di].at = Attachment::Detached;
        self.uncharge(pi);
        Ok(())
    }

    fn deposit_one(&mut self, pi: usize, pfn: u64) -> Status<()> {
        if pfn == 0 || pfn >> PFN_BITS != 0 {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        if self.partitions.iter().any(|p| p.pfns.contains(&pfn)) {
            // The same page deposited twice: the caller gave away a page it does not own.
            return Err(HvStatus::INVALID_PARAMETER);
        }
        let p = &mut self.partitions[pi];
        p.pfns
            .try_push(pfn)
            .map_err(|_| HvStatus::INSUFFICIENT_MEMORY)?;
        p.pool.deposited += 1;
        if p.pool.debt > 0 {
            // A debt page is consumed by the hypervisor for something else: it counts as used.
            p.pool.debt -= 1;
            p.pool.used += 1;
        } else {
            p.pool.free += 1;
        }
        Ok(())
    }

    /// MAP reps `start..limit` of a call at `iova`: rep `r` maps page `list[r]` at
    /// `iova + r * 4K`. Fails at the first rep with a bad IOVA or page number, an occupied page,
    /// or no table (the pool is empty); the reps before it stay mapped.
    fn map_reps(
        &mut self,
        di: usize,
        iova: u64,
        flags: MapFlags,
        start: u16,
        limit: u16,
        list: &[U64],
    ) -> Result<u16, (HvStatus, u16)> {
        let pfn_of = |rep: u16| list.get(usize::from(rep)).map(|p| p.get());
        // The reps that can be mapped at all: in range, with a valid page number.
        let mut good = start;
        while good < limit
            && iova_of(iova, good).is_some_and(|a| in_range(a >> 12))
            && pfn_of(good).is_some_and(|p| p >> PFN_BITS == 0)
        {
            good += 1;
        }
        if good > start {
            let pool = &mut self.partitions[0].pool;
            let spare = &mut self.spare;
            let first = (iova >> 12) + u64::from(start);
            let value = &mut |i: u64| leaf(pfn_of(start + i as u16).unwrap_or(0), flags);
            self.domains[di]
                .pt
                .set_run(first, u64::from(good - start), value, &mut || {
                    Self::charged_table(pool, spare)
                })
                .map_err(|(done, e)| (set_status(e), start + done as u16))?;
        }
        if good < limit {
            return Err((HvStatus::INVALID_PARAMETER, good));
        }
        Ok(limit.max(start))
    }

    /// UNMAP reps `start..limit` at `iova`; fails at the first page that is not mapped.
    fn unmap_reps(
        &mut self,
        di: usize,
        iova: u64,
        start: u16,
        limit: u16,
    ) -> Result<u16, (HvStatus, u16)> {
        if limit <= start {
            return Ok(start);
        }
        let Some(first) = iova_of(iova, start).map(|a| a >> 12) else {
            return Err((HvStatus::INVALID_PARAMETER, start));
        };
        let pool = &mut self.partitions[0].pool;
        let spare = &mut self.spare;
        let pt = &mut self.domains[di].pt;
        let n = pt.present_run(first, u64::from(limit - start));
        pt.clear_run(first, n, &mut |t| {
            pool.put();
            keep_spare::<A>(spare, t);
        });
        if n < u64::from(limit - start) {
            return Err((HvStatus::INVALID_PARAMETER, start + n as u16));
        }
        Ok(limit)
    }

    /// Returns to the state of [`Sim::new`]: every deposited page goes to `give_back`, and all
    /// partitions, domains, devices, faults and statistics are dropped.
    pub fn reset(&mut self, give_back: &mut dyn FnMut(u64)) -> Result<(), Errno> {
        self.drain_deposits(give_back);
        let l1vh = self.l1vh;
        *self = Self::new()?;
        // The kind of partition is the machine's, not state.
        self.l1vh = l1vh;
        Ok(())
    }

    /// Hands every deposited page of every partition to `give_back` (teardown).
    pub fn drain_deposits(&mut self, give_back: &mut dyn FnMut(u64)) {
        for p in self.partitions.iter_mut() {
            while let Some(pfn) = p.pfns.pop() {
                give_back(pfn);
            }
        }
    }
}

/// Calls `f` for every extent of `pt` in address order; adjacent pages with consecutive page
/// numbers and equal flags form one extent.
fn extents<A: Storage>(pt: &PageTable<A>, f: &mut dyn FnMut(Extent)) {
    let mut cur: Option<Extent> = None;
    pt.for_each(&mut |iova_pfn, e| {
        let (pfn, flags) = (e >> 12, leaf_flags(e));
        let iova = iova_pfn << 12;
        if let Some(c) = cur.as_mut() {
            if c.iova + c.pages * HV_PAGE_SIZE as u64 == iova
                && c.pfn + c.pages == pfn
                && c.flags == flags
            {
                c.pages += 1;
                return;
            }
            f(*c);
        }
        cur = Some(Extent {
            iova,
            pfn,
            pages: 1,
            flags,
        });
    });
    if let Some(c) = cur {
        f(c);
    }
}

/// Writes `e` as a dump line, its address labelled `label`.
fn write_extent(w: &mut dyn Write, label: &str, e: Extent) -> fmt::Result {
    writeln!(
        w,
        "  {}={:#x} pfn={:#x} pages={} flags={:#x}",
        label,
        e.iova,
        e.pfn,
        e.pages,
        e.flags.bits()
    )
}

/// The status for a failed page-table update: no table is `INSUFFICIENT_MEMORY` (the pool was
/// empty, or the simulator's own memory ran out), an occupied page or an IOVA out of range is
/// `INVALID_PARAMETER`.
fn set_status(e: SetError<HvStatus>) -> HvStatus {
    match e {
        SetError::Alloc(Some(s)) => s,
        SetError::Alloc(None) => HvStatus::INSUFFICIENT_MEMORY,
        SetError::Range | SetError::Occupied => HvStatus::INVALID_PARAMETER,
    }
}

/// IOVA of rep `rep` from `base`, `None` on overflow.
fn iova_of(base: u64, rep: u16) -> Option<u64> {
    base.checked_add(u64::from(rep) * HV_PAGE_SIZE as u64)
}

fn stats_index(code: CallCode) -> usize {
    ISSUED_CODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(ISSUED_CODES.len())
}

fn write_partition(w: &mut dyn Write, id: PartitionId) -> fmt::Result {
    if id == PartitionId::SELF {
        write!(w, "partition self")
    } else {
        write!(w, "partition {}", id.0)
    }
}

/// A backend that runs a [`Sim`]: tests reach the simulator behind it for controls and checks.
pub trait SimBackend: super::layer::Backend {
    /// The simulator's storage.
    type Alloc: Storage;
    /// Runs `f` on the simulator (under its lock in the kernel).
    fn with_sim<R>(&self, f: impl FnOnce(&mut Sim<Self::Alloc>) -> R) -> R;
}
