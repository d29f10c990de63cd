// SPDX-License-Identifier: GPL-2.0

//! What a TPH feature call may do, decided before the device is touched.
//!
//! The driver reads the facts of a device once ([`Device`]), keeps the state it set
//! ([`State`]) and asks here, for each call, what to do. Every refusal is decided before any
//! write, so a refused call leaves the device and the state as they were.
//!
//! Rules the review of the upstream series set, and where they are kept:
//! - the kernel derives the tags: ST entries name a CPU and a memory type ([`Device::resolve_st`]);
//!   raw tags only in Device Specific mode, which itself needs `enable_unsafe_tph_ds_mode`
//!   ([`Device::modes`], [`Device::check_st`]): in that mode the device can emit any tag the
//!   user's descriptors ask for, so a raw table entry gives away nothing more;
//! - a caller may only ask about CPUs it may run on (the driver's `resolve` callback refuses
//!   the others with `EPERM`);
//! - 8-bit and 16-bit tags are separate namespaces ([`super::regs::StInfo::tag`]).

use super::errno::{self as e, Errno};
use super::regs::{Loc, MemType, Mode, ReqType, StInfo, TphCap};
use super::uapi::{self, ArrayHeader, CpuStEntry, Ctrl, Info, StEntry};

/// What the driver read of a device and its platform when it bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// The TPH Requester Capability register.
    pub cap: TphCap,
    /// A Root Complex integrated endpoint: no Root Port limits its requester type.
    pub rc_end: bool,
    /// The completer type of the Root Port above the device (`None` without one).
    pub rp_completer: ReqType,
    /// The device's own completer type (Device Capabilities 2).
    pub completer: ReqType,
    /// Entries of the device's MSI-X table (0 without MSI-X).
    pub msix_size: u16,
    /// TPH is off for the whole system (`pci=notph`).
    pub notph: bool,
    /// The platform answers the steering-tag `_DSM` for this device's Root Port.
    pub cpu_st: bool,
}

/// The driver's module parameters that bear on TPH.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `enable_unsafe_tph_ds_mode`: Device Specific mode (and raw tags in it) may be enabled.
    pub unsafe_ds: bool,
}

/// The TPH state the driver set on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The enabled mode and requester type; `None` while TPH is disabled.
    pub enabled: Option<(Mode, ReqType)>,
}

/// What a CTRL call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrlAction {
    /// Nothing: disabling what is disabled.
    Nothing,
    /// Disable TPH (and clear the ST table).
    Disable,
    /// Enable `mode` (after clearing the ST table); the kernel chooses the requester type.
    Enable(Mode),
}

/// One ST table write, resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StWrite {
    /// The table entry.
    pub index: u16,
    /// The tag to write there.
    pub tag: u16,
}

/// Number of bits in the duplicate-index set: one per possible entry.
const INDEX_WORDS: usize = uapi::MAX_ENTRIES as usize / 64;

impl Device {
    /// The requester type an enable chooses: extended if the device can, limited by the Root
    /// Port's completer type unless the device is integrated in the Root Complex (as
    /// `pcie_enable_tph()`, with the reserved completer value already folded to `None`).
    pub fn req_type(&self) -> ReqType {
        let own = if self.cap.ext() {
            ReqType::Ext
        } else {
            ReqType::Tph
        };
        if self.rc_end {
            own
        } else {
            own.min(self.rp_completer)
        }
    }

    /// Entries of the ST table: the capability's, or the MSI-X table's; 0 without a table.
    pub fn table_size(&self) -> u16 {
        match self.cap.loc() {
            Some(Loc::Cap) => self.cap.cap_table_size(),
            Some(Loc::Msix) => self.msix_size,
            _ => 0,
        }
    }

    /// Whether TPH can be used at all: not off for the system, a known table location, a
    /// requester type the platform completes. When not, the driver hides the capability from
    /// user space and CTRL refuses to enable.
    pub fn usable(&self) -> bool {
        !self.notph
            && self.cap.loc().is_some()
            && self.req_type() != ReqType::None
            && self.cap.modes() != 0
    }

    /// Modes CTRL enables under `policy`: the device's, less those whose tags the user can
    /// set unchecked unless the unsafe parameter allows it: Device Specific mode, and Interrupt
    /// Vector mode with the table in MSI-X (vfio-pci-core lets the user mmap the MSI-X table,
    /// tags included); none when TPH is not usable.
    pub fn modes(&self, policy: Policy) -> u8 {
        if !self.usable() {
            return 0;
        }
        let mut unchecked = Mode::DevSpec.bit();
        if self.cap.loc() == Some(Loc::Msix) {
            unchecked |= Mode::IntVec.bit();
        }
        if policy.unsafe_ds {
            unchecked = 0;
        }
        self.cap.modes() & !unchecked
    }

    /// The INFO answer.
    pub fn info(&self, policy: Policy, state: State) -> Info {
        let mut flags = 0;
        if self.usable() {
            flags |= uapi::INFO_USABLE;
        }
        if self.cap.ext() {
            flags |= uapi::INFO_EXT;
        }
        if self.cpu_st {
            flags |= uapi::INFO_CPU_ST;
        }
        let (mode, cur_req_type) = match state.enabled {
            Some((m, r)) => {
                flags |= uapi::INFO_ENABLED;
                (m as u8, r as u8)
            }
            None => (0, 0),
        };
        Info {
            flags,
            dev_modes: self.cap.modes(),
            modes: self.modes(policy),
            st_table_loc: self.cap.loc().map_or(0, |l| l as u8),
            req_type: self.req_type() as u8,
            st_table_size: self.table_size(),
            mode,
            cur_req_type,
            completer: self.completer as u8,
        }
    }

    /// Judges a CTRL call.
    ///
    /// Errors: `EINVAL` for an unknown op or mode, or a mode with DISABLE; `EOPNOTSUPP` for a
    /// mode the device does not advertise or a device TPH is not usable on; `EPERM` for Device
    /// Specific mode without `enable_unsafe_tph_ds_mode`; `EBUSY` when TPH is enabled (disable
    /// first: a mode change must not keep the old table).
    pub fn ctrl(&self, policy: Policy, state: State, c: Ctrl) -> Result<CtrlAction, Errno> {
        match c.op {
            uapi::OP_DISABLE if c.mode == 0 => Ok(match state.enabled {
                Some(_) => CtrlAction::Disable,
                None => CtrlAction::Nothing,
            }),
            uapi::OP_ENABLE => {
                let mode = Mode::from_raw(c.mode).ok_or(e::EINVAL)?;
                if !self.usable() || self.cap.modes() & mode.bit() == 0 {
                    return Err(e::EOPNOTSUPP);
                }
                if self.modes(policy) & mode.bit() == 0 {
                    return Err(e::EPERM);
                }
                if state.enabled.is_some() {
                    return Err(e::EBUSY);
                }
                Ok(CtrlAction::Enable(mode))
            }
            _ => Err(e::EINVAL),
        }
    }

    /// Judges an ST call before any tag is resolved: every entry well formed, in the table,
    /// once, and allowed in the enabled mode.
    ///
    /// Errors: `EBADFD` when TPH is disabled or in No ST mode (no tag is used); `EOPNOTSUPP`
    /// without an ST table; `EINVAL` for unknown entry flags, both RAW and CLEAR, an unknown
    /// memory type, a CLEAR entry with a value, or an index given twice; `ENXIO` for an index
    /// past the table; `EPERM` for a RAW entry outside Device Specific mode (which itself
    /// needs `enable_unsafe_tph_ds_mode`); `ERANGE` for a RAW tag wider than the enabled
    /// requester type's.
    pub fn check_st(&self, state: State, h: ArrayHeader, ents: &[StEntry]) -> Result<(), Errno> {
        let (mode, req) = match state.enabled {
            Some((m, r)) if m != Mode::NoSt => (m, r),
            _ => return Err(e::EBADFD),
        };
        let size = self.table_size();
        if size == 0 {
            return Err(e::EOPNOTSUPP);
        }
        if ents.len() != h.count as usize {
            return Err(e::EINVAL);
        }
        let mut seen = [0u64; INDEX_WORDS];
        for s in ents {
            let raw = s.flags & uapi::ENTRY_RAW != 0;
            let clear = s.flags & uapi::ENTRY_CLEAR != 0;
            if s.flags & !(uapi::ENTRY_RAW | uapi::ENTRY_CLEAR) != 0 || (raw && clear) {
                return Err(e::EINVAL);
            }
            if !raw && !clear && MemType::from_raw(s.mem_type).is_none() {
                return Err(e::EINVAL);
            }
            if clear && s.value != 0 {
                return Err(e::EINVAL);
            }
            if s.index >= size {
                return Err(e::ENXIO);
            }
            // index < size <= 2048.
            let (w, b) = (usize::from(s.index) / 64, s.index % 64);
            if seen[w] & (1 << b) != 0 {
                return Err(e::EINVAL);
            }
            seen[w] |= 1 << b;
            if raw {
                if mode != Mode::DevSpec {
                    return Err(e::EPERM);
                }
                let max = if req == ReqType::Ext { 0xffff } else { 0xff };
                if s.value > max {
                    return Err(e::ERANGE);
                }
            }
        }
        Ok(())
    }

    /// Resolves the entries [`Device::check_st`] accepted into `out` (one write per entry, in
    /// order): RAW as given, CLEAR as 0, a CPU by `resolve(cpu)` in the enabled requester
    /// type's namespace. `resolve` answers the `_DSM` for a CPU the caller may run on and
    /// refuses the others (`EPERM`) or a CPU that does not exist (`EINVAL`).
    ///
    /// Errors: `resolve`'s; `ENODATA` when the platform marks the tag invalid; `EINVAL` if `out`
    /// is not as long as `ents` or TPH is not enabled. Nothing is written on error.
    pub fn resolve_st(
        &self,
        state: State,
        ents: &[StEntry],
        resolve: &mut dyn FnMut(u32) -> Result<StInfo, Errno>,
        out: &mut [StWrite],
    ) -> Result<(), Errno> {
        let ext = match state.enabled {
            Some((_, r)) => r == ReqType::Ext,
            None => return Err(e::EINVAL),
        };
        if out.len() != ents.len() {
            return Err(e::EINVAL);
        }
        let mut memo = Memo::default();
        for (s, o) in ents.iter().zip(out.iter_mut()) {
            let tag = if s.flags & uapi::ENTRY_CLEAR != 0 {
                0
            } else if s.flags & uapi::ENTRY_RAW != 0 {
                // check_st bounded it by the namespace's width.
                u16::try_from(s.value).map_err(|_| e::ERANGE)?
            } else {
                let mem = MemType::from_raw(s.mem_type).ok_or(e::EINVAL)?;
                memo.get(s.value, resolve)?
                    .tag(mem, ext)
                    .ok_or(e::ENODATA)?
            };
            *o = StWrite {
                index: s.index,
                tag,
            };
        }
        Ok(())
    }

    /// Answers a CPU_ST query in place: each entry's tag in the namespace `h` asks for and
    /// whether the platform ignores hints there.
    ///
    /// Errors: `EOPNOTSUPP` when the platform has no steering-tag `_DSM`; `EINVAL` for an
    /// unknown memory type or an `ents` not `h.count` long; `resolve`'s; `ENODATA` when the
    /// platform marks a tag invalid. On error `ents` is partly answered: the driver copies
    /// nothing back to user space then.
    pub fn cpu_st(
        &self,
        h: ArrayHeader,
        ents: &mut [CpuStEntry],
        resolve: &mut dyn FnMut(u32) -> Result<StInfo, Errno>,
    ) -> Result<(), Errno> {
        if !self.cpu_st {
            return Err(e::EOPNOTSUPP);
        }
        if ents.len() != h.count as usize
            || ents.iter().any(|c| MemType::from_raw(c.mem_type).is_none())
        {
            return Err(e::EINVAL);
        }
        let ext = h.flags & uapi::CPU_ST_EXT != 0;
        let mut memo = Memo::default();
        for c in ents.iter_mut() {
            let mem = MemType::from_raw(c.mem_type).ok_or(e::EINVAL)?;
            let info = memo.get(c.cpu, resolve)?;
            c.st = info.tag(mem, ext).ok_or(e::ENODATA)?;
            c.ph_ignore = u8::from(info.ph_ignore(mem));
        }
        Ok(())
    }
}

/// The last CPU's `_DSM` answer: batches name one CPU many times in a row, and each `_DSM`
/// runs AML.
#[derive(Default)]
struct Memo {
    last: Option<(u32, StInfo)>,
}

impl Memo {
    fn get(
        &mut self,
        cpu: u32,
        resolve: &mut dyn FnMut(u32) -> Result<StInfo, Errno>,
    ) -> Result<StInfo, Errno> {
        match self.last {
            Some((c, i)) if c == cpu => Ok(i),
            _ => {
                let i = resolve(cpu)?;
                self.last = Some((cpu, i));
                Ok(i)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// NS + IV + DS, extended, a table of 16 entries in the capability.
    const CAP16: TphCap = TphCap(0x7 | 0x100 | (1 << 9) | (15 << 16));

    fn dev(cap: TphCap) -> Device {
        Device {
            cap,
            rc_end: false,
            rp_completer: ReqType::Ext,
            completer: ReqType::None,
            msix_size: 8,
            notph: false,
            cpu_st: true,
        }
    }

    fn enabled(m: Mode, r: ReqType) -> State {
        State {
            enabled: Some((m, r)),
        }
    }

    fn hdr(count: usize) -> ArrayHeader {
        ArrayHeader {
            count: count as u32,
            flags: 0,
        }
    }

    fn cpu(index: u16, cpu: u32) -> StEntry {
        StEntry {
            index,
            mem_type: 0,
            flags: 0,
            value: cpu,
        }
    }

    fn raw(index: u16, tag: u32) -> StEntry {
        StEntry {
            index,
            mem_type: 0,
            flags: uapi::ENTRY_RAW,
            value: tag,
        }
    }

    /// CPU n: 8-bit tag n + 1, 16-bit tag 0x100 * (n + 1), both valid for volatile memory;
    /// nothing valid for persistent memory; CPU 7 has no valid tag; CPUs past 7 are not the
    /// caller's.
    fn platform(cpu: u32) -> Result<StInfo, Errno> {
        match cpu {
            7 => Ok(StInfo(0)),
            0..=6 => {
                let n = u64::from(cpu) + 1;
                Ok(StInfo(3 | (n << 8) | ((n << 8) << 16)))
            }
            _ => Err(e::EPERM),
        }
    }

    #[test]
    fn requester_type_is_limited_by_the_root_port() {
        let mut d = dev(CAP16);
        assert_eq!(d.req_type(), ReqType::Ext);
        d.rp_completer = ReqType::Tph;
        assert_eq!(d.req_type(), ReqType::Tph);
        d.rp_completer = ReqType::None;
        assert_eq!(d.req_type(), ReqType::None);
        assert!(!d.usable());
        // An RCiEP has no Root Port: its own type counts.
        d.rc_end = true;
        assert_eq!(d.req_type(), ReqType::Ext);
        assert!(d.usable());
    }

    #[test]
    fn ds_mode_needs_the_unsafe_parameter() {
        let d = dev(CAP16);
        let safe = Policy::default();
        let unsafe_ds = Policy { unsafe_ds: true };
        assert_eq!(d.modes(safe), 3);
        assert_eq!(d.modes(unsafe_ds), 7);
        let ds = Ctrl { op: 1, mode: 2 };
        assert_eq!(d.ctrl(safe, State::default(), ds), Err(e::EPERM));
        assert_eq!(
            d.ctrl(unsafe_ds, State::default(), ds),
            Ok(CtrlAction::Enable(Mode::DevSpec))
        );
        let info = d.info(safe, State::default());
        assert_eq!((info.dev_modes, info.modes), (7, 3));
    }

    #[test]
    fn iv_mode_with_an_msix_table_needs_the_unsafe_parameter() {
        let msix = dev(TphCap(0x3 | (2 << 9)));
        assert_eq!(msix.modes(Policy::default()), 1);
        assert_eq!(msix.modes(Policy { unsafe_ds: true }), 3);
        let iv = Ctrl { op: 1, mode: 1 };
        assert_eq!(
            msix.ctrl(Policy::default(), State::default(), iv),
            Err(e::EPERM)
        );
    }

    #[test]
    fn ctrl_refusals() {
        let d = dev(CAP16);
        let p = Policy::default();
        let off = State::default();
        let on = enabled(Mode::IntVec, ReqType::Ext);
        assert_eq!(d.ctrl(p, off, Ctrl { op: 2, mode: 0 }), Err(e::EINVAL));
        assert_eq!(d.ctrl(p, off, Ctrl { op: 1, mode: 3 }), Err(e::EINVAL));
        assert_eq!(d.ctrl(p, off, Ctrl { op: 0, mode: 1 }), Err(e::EINVAL));
        assert_eq!(d.ctrl(p, on, Ctrl { op: 1, mode: 0 }), Err(e::EBUSY));
        assert_eq!(
            d.ctrl(p, off, Ctrl { op: 0, mode: 0 }),
            Ok(CtrlAction::Nothing)
        );
        assert_eq!(
            d.ctrl(p, on, Ctrl { op: 0, mode: 0 }),
            Ok(CtrlAction::Disable)
        );
        // A mode the device does not have, and a device the platform cannot serve.
        let iv_only = dev(TphCap(0x2 | (1 << 9)));
        assert_eq!(
            iv_only.ctrl(p, off, Ctrl { op: 1, mode: 0 }),
            Err(e::EOPNOTSUPP)
        );
        let notph = Device {
            notph: true,
            ..dev(CAP16)
        };
        assert_eq!(
            notph.ctrl(p, off, Ctrl { op: 1, mode: 1 }),
            Err(e::EOPNOTSUPP)
        );
        assert_eq!(notph.info(p, off).flags & uapi::INFO_USABLE, 0);
    }

    #[test]
    fn st_refusals() {
        let d = dev(CAP16);
        let iv = enabled(Mode::IntVec, ReqType::Ext);
        let ds = enabled(Mode::DevSpec, ReqType::Tph);
        let one = |s: StEntry, st: State| d.check_st(st, hdr(1), &[s]);
        assert_eq!(one(cpu(0, 0), State::default()), Err(e::EBADFD));
        assert_eq!(
            one(cpu(0, 0), enabled(Mode::NoSt, ReqType::Ext)),
            Err(e::EBADFD)
        );
        assert_eq!(one(cpu(16, 0), iv), Err(e::ENXIO));
        assert_eq!(one(raw(0, 5), iv), Err(e::EPERM));
        assert_eq!(one(raw(0, 0x100), ds), Err(e::ERANGE));
        assert_eq!(one(raw(0, 0xff), ds), Ok(()));
        let both = StEntry {
            flags: uapi::ENTRY_RAW | uapi::ENTRY_CLEAR,
            ..raw(0, 0)
        };
        assert_eq!(one(both, ds), Err(e::EINVAL));
        let unknown = StEntry {
            flags: 4,
            ..cpu(0, 0)
        };
        assert_eq!(one(unknown, iv), Err(e::EINVAL));
        let pm2 = StEntry {
            mem_type: 2,
            ..cpu(0, 0)
        };
        assert_eq!(one(pm2, iv), Err(e::EINVAL));
        assert_eq!(
            d.check_st(iv, hdr(2), &[cpu(3, 0), cpu(3, 1)]),
            Err(e::EINVAL)
        );
        // No table: Device Specific only, nothing to program.
        let none = dev(TphCap(0x4));
        assert_eq!(none.check_st(ds, hdr(1), &[raw(0, 1)]), Err(e::EOPNOTSUPP));
        // A table in MSI-X: bounded by the MSI-X table.
        let msix = dev(TphCap(0x2 | (2 << 9)));
        assert_eq!(msix.check_st(iv, hdr(1), &[cpu(7, 0)]), Ok(()));
        assert_eq!(msix.check_st(iv, hdr(1), &[cpu(8, 0)]), Err(e::ENXIO));
    }

    #[test]
    fn tags_are_resolved_in_the_enabled_namespace() {
        let d = dev(CAP16);
        let ents = [
            cpu(0, 2),
            raw(1, 0x1234),
            StEntry {
                flags: uapi::ENTRY_CLEAR,
                ..cpu(2, 0)
            },
        ];
        let mut out = [StWrite::default(); 3];
        let ext = enabled(Mode::DevSpec, ReqType::Ext);
        assert_eq!(d.check_st(ext, hdr(3), &ents), Ok(()));
        assert_eq!(d.resolve_st(ext, &ents, &mut platform, &mut out), Ok(()));
        let tags: Vec<_> = out.iter().map(|w| (w.index, w.tag)).collect();
        assert_eq!(tags, [(0, 0x300), (1, 0x1234), (2, 0)]);
        let tph = enabled(Mode::IntVec, ReqType::Tph);
        assert_eq!(
            d.resolve_st(tph, &ents[..1], &mut platform, &mut out[..1]),
            Ok(())
        );
        assert_eq!(out[0].tag, 3);
        // Invalid on the platform, and a CPU that is not the caller's.
        assert_eq!(
            d.resolve_st(tph, &[cpu(0, 7)], &mut platform, &mut out[..1]),
            Err(e::ENODATA)
        );
        assert_eq!(
            d.resolve_st(tph, &[cpu(0, 9)], &mut platform, &mut out[..1]),
            Err(e::EPERM)
        );
        let pm = StEntry {
            mem_type: 1,
            ..cpu(0, 1)
        };
        assert_eq!(
            d.resolve_st(tph, &[pm], &mut platform, &mut out[..1]),
            Err(e::ENODATA)
        );
    }

    #[test]
    fn cpu_st_answers_and_refusals() {
        let d = dev(CAP16);
        let q = |cpu, mem_type| CpuStEntry {
            cpu,
            mem_type,
            ..Default::default()
        };
        let mut ents = [q(0, 0), q(5, 0)];
        let ext = ArrayHeader {
            count: 2,
            flags: uapi::CPU_ST_EXT,
        };
        assert_eq!(d.cpu_st(ext, &mut ents, &mut platform), Ok(()));
        assert_eq!((ents[0].st, ents[1].st), (0x100, 0x600));
        assert_eq!(d.cpu_st(hdr(2), &mut ents, &mut platform), Ok(()));
        assert_eq!((ents[0].st, ents[1].st), (1, 6));
        assert_eq!(
            d.cpu_st(hdr(1), &mut [q(7, 0)], &mut platform),
            Err(e::ENODATA)
        );
        assert_eq!(
            d.cpu_st(hdr(1), &mut [q(8, 0)], &mut platform),
            Err(e::EPERM)
        );
        assert_eq!(
            d.cpu_st(hdr(1), &mut [q(0, 2)], &mut platform),
            Err(e::EINVAL)
        );
        let no_dsm = Device { cpu_st: false, ..d };
        assert_eq!(
            no_dsm.cpu_st(hdr(1), &mut [q(0, 0)], &mut platform),
            Err(e::EOPNOTSUPP)
        );
    }

    #[test]
    fn one_dsm_per_run_of_one_cpu() {
        let d = dev(CAP16);
        let ents: Vec<_> = (0..16).map(|i| cpu(i, u32::from(i / 8))).collect();
        let mut out = [StWrite::default(); 16];
        let mut calls = 0;
        let mut counted = |c| {
            calls += 1;
            platform(c)
        };
        let st = enabled(Mode::IntVec, ReqType::Tph);
        assert_eq!(d.resolve_st(st, &ents, &mut counted, &mut out), Ok(()));
        assert_eq!(calls, 2);
    }

    fn any_entry() -> impl Strategy<Value = StEntry> {
        (0u16..24, 0u8..3, 0u8..5, 0u32..12).prop_map(|(index, mem_type, flags, value)| StEntry {
            index,
            mem_type,
            flags,
            value,
        })
    }

    proptest! {
        /// Whatever the batch: an accepted one names each index of the table at most once,
        /// raw tags only in Device Specific mode, and resolves (with a platform that answers
        /// every CPU) to exactly one write per entry, CPU entries to the platform's tag in the
        /// enabled namespace. A refused one is refused whatever the order of its entries.
        #[test]
        fn st_batches(ents in proptest::collection::vec(any_entry(), 1..20),
                      mode in 0u32..3, ext in any::<bool>(), rot in 0usize..20) {
            let d = dev(CAP16);
            let req = if ext { ReqType::Ext } else { ReqType::Tph };
            let st = enabled(Mode::from_raw(mode).unwrap(), req);
            let h = hdr(ents.len());
            let verdict = d.check_st(st, h, &ents);
            let mut rotated = ents.clone();
            rotated.rotate_left(rot % ents.len());
            prop_assert_eq!(verdict.is_ok(), d.check_st(st, h, &rotated).is_ok());
            if verdict.is_err() {
                return Ok(());
            }
            let mut idx: Vec<_> = ents.iter().map(|s| s.index).collect();
            idx.sort_unstable();
            idx.dedup();
            prop_assert_eq!(idx.len(), ents.len());
            prop_assert!(idx.iter().all(|&i| i < 16));
            prop_assert!(st.enabled.unwrap().0 != Mode::NoSt);
            let total = |c: u32| Ok(StInfo(3 | (u64::from(c) << 8) | (u64::from(c) << 24)
                                          | (3u64 << 32)));
            let mut out = std::vec![StWrite::default(); ents.len()];
            prop_assert_eq!(d.resolve_st(st, &ents, &mut { total }, &mut out), Ok(()));
            for (s, w) in ents.iter().zip(&out) {
                prop_assert_eq!(s.index, w.index);
                let want = if s.flags & uapi::ENTRY_CLEAR != 0 {
                    0
                } else if s.flags & uapi::ENTRY_RAW != 0 {
                    prop_assert_eq!(st.enabled.unwrap().0, Mode::DevSpec);
                    s.value as u16
                } else if s.mem_type == 1 {
                    0
                } else if ext {
                    (s.value << 8) as u16
                } else {
                    s.value as u16
                };
                prop_assert_eq!(w.tag, want);
            }
        }
    }
}
