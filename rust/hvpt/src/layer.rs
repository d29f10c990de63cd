// SPDX-License-Identifier: GPL-2.0

//! The hypercall layer: typed operations over a [`Backend`], with rep batching, resume and a
//! bounded deposit-and-retry policy.
//!
//! Everything above the backend is identical for Hyper-V and for the simulated hypervisor: the
//! layer encodes an [`Input`] into the backend's input page, builds the control word, issues one
//! hypercall at a time and interprets the result. The backend only dispatches.
//!
//! # Batching
//!
//! MAP carries one page number per rep, so one call maps at most [`MAP_PAGES_PER_CALL`] (507)
//! pages; UNMAP carries only a count, so one call unmaps at most [`MAX_REPS`] (4095) pages. Any
//! size is split into the minimum number of calls ([`map_calls`], [`unmap_calls`]); a rep count
//! is always built from a chunk no larger than those limits, so the control word cannot overflow
//! (the V3 seed's unmap of more than 4095 pages is impossible by construction).
//!
//! A call that returns with fewer reps completed than requested is re-issued from the rep index
//! the hypervisor reported (absolute, as in `hv_do_rep_hypercall()`); the input page is written
//! again for each attempt because interrupts are enabled between attempts.
//!
//! # Memory deposits
//!
//! When a call fails with one of the `INSUFFICIENT_*MEMORY` statuses, the layer deposits pages
//! and retries the same rep. The receiving partition is the one the call charges (the domain's
//! owner for device-domain calls, the guest for ATTACH_DEVICE), or the root (`SELF`) for the
//! `*_ROOT_*` variants. The amount starts at [`DepositPolicy::first_pages`] and doubles on each
//! further shortage without progress (up to one input page, 511 pages); the contiguous variants
//! deposit physically contiguous blocks. After [`DepositPolicy::max_attempts`] shortages in a row
//! without progress the operation fails with `ENOMEM`. Progress resets the count, so every loop
//! is bounded: at most `max_attempts` deposits per rep, and at most [`MAX_STALLS`] successful
//! returns without progress before `EIO`.
//!
//! # Context rules
//!
//! - [`Backend::hypercall`] may be called in any context. It disables interrupts while it fills
//!   the per-CPU input page and dispatches, and re-enables them before returning.
//! - Deposits allocate pages: with `GFP_KERNEL` in [`Context::Sleepable`], with `GFP_ATOMIC` in
//!   [`Context::Atomic`] (an IOMMU `map_pages` called with an atomic gfp). Atomic deposits fail
//!   more readily; the operation then fails with `ENOMEM` and leaves nothing mapped.
//! - Domain create/delete and device attach/detach are only called from process context
//!   (`Context::Sleepable`); MAP and UNMAP may run in either.

use super::abi::{
    CreateDomainFlags, DeviceDomain, PartitionId, DEPOSIT_PAGES_PER_CALL, HV_PAGE_SIZE,
    MAP_PAGES_PER_CALL,
};
use super::calls::{write_u64_list, AttachDevice, Input, InputPage, MapFlags};
use super::device_id::{DeviceId, LogicalId};
use super::errno::{self, Errno};
use super::hypercall::{
    CallCode, Control, HvResult, HvStatus, HV_RESULT_NO_HYPERCALL_PAGE, MAX_REPS,
};

/// Where deposit pages may come from (the caller's context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Process context: deposits allocate with `GFP_KERNEL`.
    Sleepable,
    /// Possibly atomic: deposits allocate with `GFP_ATOMIC`.
    Atomic,
    /// Must not allocate (an IOMMU unmap, a fence): deposits come only from the backend's
    /// reserve of pages allocated earlier ([`Backend::refill_reserve`]).
    Reserve,
}

/// Pages allocated for a deposit.
pub trait DepositPages {
    /// Their page frame numbers (4K units).
    fn pfns(&self) -> &[u64];
}

/// The single boundary between the layer and a hypervisor (real or simulated).
pub trait Backend {
    /// Pages allocated for a deposit.
    type Pages: DepositPages;

    /// Issues one hypercall: calls `fill` on the input page, then dispatches `control`.
    ///
    /// Implementations disable interrupts around `fill` and the dispatch (the input page is
    /// per-CPU). `fill` must not sleep.
    fn hypercall(&self, control: Control, fill: &mut dyn FnMut(&mut InputPage)) -> HvResult;

    /// Allocates `count` pages (at most one input page's worth) for a deposit; with
    /// `contiguous`, as physically contiguous blocks of
    /// [`DepositPolicy::CONTIGUOUS_PAGES`].
    ///
    /// With [`Context::Reserve`] nothing is allocated: the pages come from the reserve, possibly
    /// fewer than `count` (`ENOMEM` when it is empty or `contiguous` is asked for).
    fn alloc_pages(
        &self,
        count: usize,
        contiguous: bool,
        ctx: Context,
    ) -> Result<Self::Pages, Errno>;

    /// Ends a deposit: the hypervisor now owns the first `taken` pages; the rest are freed, or
    /// go back to the reserve they came from.
    fn release_pages(&self, pages: Self::Pages, taken: usize);

    /// Tops the reserve up to its size, allocating as `ctx` allows (never with
    /// [`Context::Reserve`]). Returns the pages in the reserve afterwards.
    fn refill_reserve(&self, ctx: Context) -> usize;
}

/// The deposit-and-retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepositPolicy {
    /// Pages deposited at the first shortage of a rep.
    pub first_pages: u16,
    /// Shortages in a row without progress before the operation fails with `ENOMEM`.
    pub max_attempts: u8,
}

impl DepositPolicy {
    /// Pages per deposit for the `*_CONTIGUOUS_*` statuses (`HV_MAX_CONTIGUOUS_ALLOCATION_PAGES`).
    pub const CONTIGUOUS_PAGES: usize = 8;

    /// The default: 16 pages first, then 32, 64, 128, 256, 511; then `ENOMEM`.
    pub const DEFAULT: Self = Self {
        first_pages: 16,
        max_attempts: 6,
    };

    /// Pages to deposit at the `attempt`-th shortage in a row (0-based).
    pub const fn pages(&self, attempt: u8, status: HvStatus) -> usize {
        if matches!(
            status,
            HvStatus::INSUFFICIENT_CONTIGUOUS_MEMORY
                | HvStatus::INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY
        ) {
            return Self::CONTIGUOUS_PAGES;
        }
        let shift = if attempt > 15 { 15 } else { attempt };
        let n = (self.first_pages as usize) << shift;
        if n == 0 {
            1
        } else if n > DEPOSIT_PAGES_PER_CALL {
            DEPOSIT_PAGES_PER_CALL
        } else {
            n
        }
    }
}

/// Successful returns without progress tolerated before a rep call fails with `EIO`.
pub const MAX_STALLS: u32 = 16;

/// Minimum number of MAP calls for `pages` pages.
pub const fn map_calls(pages: u64) -> u64 {
    pages.div_ceil(MAP_PAGES_PER_CALL as u64)
}

/// Minimum number of UNMAP calls for `pages` pages.
pub const fn unmap_calls(pages: u64) -> u64 {
    pages.div_ceil(MAX_REPS as u64)
}

/// A failed map or unmap and the pages it leaves mapped in the hypervisor.
///
/// `mapped` is a range of page indices relative to the operation's first page. It is not
/// always a prefix: a map that fails after mapping pages `0..m` is rolled back from page 0,
/// and if that rollback fails after `u` pages, pages `u..m` stay mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    /// Why it failed.
    pub errno: Errno,
    /// For [`Hv::map`]: the pages still mapped after the rollback (empty unless the rollback
    /// failed too). For [`Hv::unmap`]: the pages not unmapped (those that were mapped before).
    pub mapped: core::ops::Range<u64>,
}

impl OpError {
    const fn new(errno: Errno) -> Self {
        Self {
            errno,
            mapped: 0..0,
        }
    }
}

impl From<OpError> for Errno {
    fn from(e: OpError) -> Self {
        e.errno
    }
}

/// The layer over a backend.
pub struct Hv<'a, B: Backend> {
    backend: &'a B,
    policy: DepositPolicy,
}

/// A rep call that stopped early: why, and the absolute rep index reached.
struct RepFailure {
    errno: Errno,
    reached: u16,
}

impl<'a, B: Backend> Hv<'a, B> {
    /// The layer over `backend` with the default deposit policy.
    pub const fn new(backend: &'a B) -> Self {
        Self {
            backend,
            policy: DepositPolicy::DEFAULT,
        }
    }

    /// The layer with another deposit policy.
    pub const fn with_policy(backend: &'a B, policy: DepositPolicy) -> Self {
        Self { backend, policy }
    }

    /// Issues `input` (with `count` reps for a rep call, 0 otherwise) until every rep is done,
    /// resuming and depositing into `charge` as the policy allows. `fill` writes any rep list
    /// after `input`'s header.
    fn issue(
        &self,
        input: &Input,
        count: u16,
        charge: Option<PartitionId>,
        ctx: Context,
        list: &dyn Fn(&mut InputPage),
    ) -> Result<(), RepFailure> {
        let code = input.code();
        let mut start = 0u16;
        let mut shortages = 0u8;
        let mut stalls = 0u32;
        let fail = |errno, reached| Err(RepFailure { errno, reached });
        loop {
            let control = if count == 0 {
                Control::simple(code)
            } else {
                match Control::rep(code, count, start) {
                    Ok(c) => c,
                    Err(_) => return fail(errno::EINVAL, start),
                }
            };
            let r = self.backend.hypercall(control, &mut |page| {
                input.write(page);
                list(page);
            });
            if r.raw() == HV_RESULT_NO_HYPERCALL_PAGE {
                return fail(errno::EOPNOTSUPP, start);
            }
            let status = r.status();
            let reached = if count == 0 { 0 } else { r.reps_completed() };
            if reached < start
                || reached > count
                || (!status.is_success() && count > 0 && reached == count)
            {
                // The hypervisor broke the rep protocol (a rep index outside the call, or a
                // failure with every rep completed); do not guess where it stopped.
                return fail(errno::EIO, start);
            }
            let progressed = reached > start;
            start = reached;
            if progressed {
                shortages = 0;
                stalls = 0;
            }
            if status.is_success() {
                if count == 0 || start == count {
                    return Ok(());
                }
                if !progressed {
                    stalls += 1;
                    if stalls >= MAX_STALLS {
                        return fail(errno::EIO, start);
                    }
                }
                continue;
            }
            let Some(target) = charge.filter(|_| status.needs_memory()) else {
                return fail(status.to_errno(), start);
            };
            if shortages >= self.policy.max_attempts {
                return fail(errno::ENOMEM, start);
            }
            let target = if status.needs_root_memory() {
                PartitionId::SELF
            } else {
                target
            };
            let contiguous = matches!(
                status,
                HvStatus::INSUFFICIENT_CONTIGUOUS_MEMORY
                    | HvStatus::INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY
            );
            let pages = self.policy.pages(shortages, status);
            shortages += 1;
            if let Err(e) = self.deposit_once(target, pages, contiguous, ctx) {
                return fail(e, start);
            }
        }
    }

    /// One DEPOSIT_MEMORY of `pages` (at most 511) freshly allocated pages into `partition`.
    fn deposit_once(
        &self,
        partition: PartitionId,
        pages: usize,
        contiguous: bool,
        ctx: Context,
    ) -> Result<(), Errno> {
        let p = self.backend.alloc_pages(pages, contiguous, ctx)?;
        let n = p.pfns().len();
        let count = match u16::try_from(n) {
            Ok(c) if c > 0 && n <= DEPOSIT_PAGES_PER_CALL => c,
            _ => {
                self.backend.release_pages(p, 0);
                return Err(errno::EINVAL);
            }
        };
        let input = Input::Deposit { partition };
        let pfns = p.pfns();
        let res = self.issue(&input, count, None, ctx, &|page| {
            write_u64_list(page, 8, pfns.iter().copied())
        });
        match res {
            Ok(()) => {
                self.backend.release_pages(p, n);
                Ok(())
            }
            Err(f) => {
                self.backend.release_pages(p, usize::from(f.reached));
                Err(f.errno)
            }
        }
    }

    /// Deposits `pages` pages into `partition` (several calls if needed).
    pub fn deposit(&self, partition: PartitionId, pages: usize, ctx: Context) -> Result<(), Errno> {
        let mut left = pages;
        while left > 0 {
            let n = left.min(DEPOSIT_PAGES_PER_CALL);
            self.deposit_once(partition, n, false, ctx)?;
            left -= n;
        }
        Ok(())
    }

    fn simple(&self, input: Input, charge: Option<PartitionId>, ctx: Context) -> Result<(), Errno> {
        self.issue(&input, 0, charge, ctx, &|_| {})
            .map_err(|f| f.errno)
    }

    /// `HVCALL_CREATE_DEVICE_DOMAIN`.
    pub fn create_domain(
        &self,
        domain: DeviceDomain,
        flags: CreateDomainFlags,
    ) -> Result<(), Errno> {
        self.simple(
            Input::CreateDomain { domain, flags },
            Some(domain.partition),
            Context::Sleepable,
        )
    }

    /// `HVCALL_DELETE_DEVICE_DOMAIN`.
    pub fn delete_domain(&self, domain: DeviceDomain) -> Result<(), Errno> {
        self.simple(Input::DeleteDomain { domain }, None, Context::Sleepable)
    }

    /// `HVCALL_ATTACH_DEVICE_DOMAIN`.
    pub fn attach_domain(&self, domain: DeviceDomain, device: DeviceId) -> Result<(), Errno> {
        self.simple(
            Input::AttachDomain { domain, device },
            Some(domain.partition),
            Context::Sleepable,
        )
    }

    /// `HVCALL_DETACH_DEVICE_DOMAIN`.
    pub fn detach_domain(&self, partition: PartitionId, device: DeviceId) -> Result<(), Errno> {
        self.detach_domain_in(partition, device, Context::Sleepable)
    }

    /// `HVCALL_DETACH_DEVICE_DOMAIN` in context `ctx` (a fence uses [`Context::Reserve`]).
    pub fn detach_domain_in(
        &self,
        partition: PartitionId,
        device: DeviceId,
        ctx: Context,
    ) -> Result<(), Errno> {
        self.simple(
            Input::DetachDomain { partition, device },
            Some(partition),
            ctx,
        )
    }

    /// `HVCALL_ATTACH_DEVICE`: deposits go to the guest partition.
    pub fn attach_device(&self, a: AttachDevice) -> Result<(), Errno> {
        self.simple(
            Input::AttachDevice(a),
            Some(a.partition),
            Context::Sleepable,
        )
    }

    /// `HVCALL_DETACH_DEVICE`.
    pub fn detach_device(&self, partition: PartitionId, logical: LogicalId) -> Result<(), Errno> {
        self.simple(
            Input::DetachDevice { partition, logical },
            Some(partition),
            Context::Sleepable,
        )
    }

    /// Maps `pages` physically contiguous 4K pages from `first_pfn` at `iova` (4K-aligned).
    ///
    /// On failure, the pages this call mapped are unmapped again before it returns;
    /// [`OpError::mapped`] is non-empty only if that rollback failed too.
    pub fn map(
        &self,
        domain: DeviceDomain,
        iova: u64,
        first_pfn: u64,
        pages: u64,
        flags: MapFlags,
        ctx: Context,
    ) -> Result<(), OpError> {
        check_range(iova, pages)?;
        if first_pfn.checked_add(pages).is_none() {
            return Err(OpError::new(errno::EOVERFLOW));
        }
        let mut done = 0u64;
        while done < pages {
            let n = (pages - done).min(MAP_PAGES_PER_CALL as u64) as u16;
            let input = Input::Map {
                domain,
                flags,
                iova: iova + done * HV_PAGE_SIZE as u64,
                first_pfn: first_pfn + done,
                count: n,
            };
            // `Input::write` writes the page-number list of MAP itself.
            if let Err(f) = self.issue(&input, n, Some(domain.partition), ctx, &|_| {}) {
                let mapped = done + u64::from(f.reached);
                // Roll back pages 0..mapped; a rollback that stops at page u leaves u..mapped.
                let left = match self.unmap(domain, iova, mapped, ctx) {
                    Ok(()) => 0..0,
                    Err(e) => e.mapped.start..mapped,
                };
                return Err(OpError {
                    errno: f.errno,
                    mapped: left,
                });
            }
            done += u64::from(n);
        }
        Ok(())
    }

    /// Unmaps `pages` pages from `iova` (4K-aligned).
    pub fn unmap(
        &self,
        domain: DeviceDomain,
        iova: u64,
        pages: u64,
        ctx: Context,
    ) -> Result<(), OpError> {
        check_range(iova, pages)?;
        let mut done = 0u64;
        while done < pages {
            let n = (pages - done).min(u64::from(MAX_REPS)) as u16;
            let input = Input::Unmap {
                domain,
                iova: iova + done * HV_PAGE_SIZE as u64,
                count: n,
            };
            if let Err(f) = self.issue(&input, n, Some(domain.partition), ctx, &|_| {}) {
                return Err(OpError {
                    errno: f.errno,
                    mapped: done + u64::from(f.reached)..pages,
                });
            }
            done += u64::from(n);
        }
        Ok(())
    }
}

/// Checks that `iova` is 4K-aligned and `pages` pages from it do not wrap.
fn check_range(iova: u64, pages: u64) -> Result<(), OpError> {
    if iova % HV_PAGE_SIZE as u64 != 0 {
        return Err(OpError::new(errno::EINVAL));
    }
    match pages
        .checked_mul(HV_PAGE_SIZE as u64)
        .and_then(|b| b.checked_add(iova))
    {
        Some(_) => Ok(()),
        None => Err(OpError::new(errno::EOVERFLOW)),
    }
}

/// The codes the layer issues, for per-code statistics.
pub const ISSUED_CODES: [CallCode; 9] = [
    CallCode::DEPOSIT_MEMORY,
    CallCode::ATTACH_DEVICE,
    CallCode::DETACH_DEVICE,
    CallCode::CREATE_DEVICE_DOMAIN,
    CallCode::ATTACH_DEVICE_DOMAIN,
    CallCode::MAP_DEVICE_GPA_PAGES,
    CallCode::UNMAP_DEVICE_GPA_PAGES,
    CallCode::DETACH_DEVICE_DOMAIN,
    CallCode::DELETE_DEVICE_DOMAIN,
];
