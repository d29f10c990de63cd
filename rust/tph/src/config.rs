// SPDX-License-Identifier: GPL-2.0

//! The TPH capability as the user sees it through VFIO's config-space region.
//!
//! vfio-pci-core passes the capability through read-only. The driver virtualizes it instead:
//! - the capability register shows the modes this caller may enable (Device Specific only
//!   with `enable_unsafe_tph_ds_mode`);
//! - the control register shows the state the driver set, and a write to it goes through the
//!   same checks as the CTRL feature (a VMM that exposes the capability to a guest forwards
//!   the guest's writes here);
//! - a write to the ST table in the capability is a raw tag, taken only where the ST feature
//!   takes a RAW entry (Device Specific mode);
//! - the header and anything else stay as vfio-pci-core presents them; when TPH cannot be used
//!   at all the driver hides the capability from the chain.
//!
//! The driver reads through vfio-pci-core first and then lays the virtual registers over the
//! bytes they cover ([`overlay`]); writes that touch the capability come here whole
//! ([`Device::config_write`]).

use super::errno::{self as e, Errno};
use super::policy::{CtrlAction, Device, Policy, StWrite, State};
use super::regs;
use super::uapi::{self, ArrayHeader, Ctrl, StEntry};

/// What a config write to the capability does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Nothing (a read-only register, or a value equal to what is there).
    Nothing,
    /// A CTRL action.
    Ctrl(CtrlAction),
    /// An ST table entry, already checked.
    Entry(StWrite),
}

impl Device {
    /// The capability register as the user reads it.
    pub fn virt_cap(&self, policy: Policy) -> u32 {
        let hidden = u32::from(self.cap.modes() & !self.modes(policy));
        self.cap.0 & !hidden
    }

    /// Judges a write of `data` at `off` bytes into the capability, `data` within one
    /// register (the control register or one ST entry). `cur_ctrl` is the control register as
    /// the user reads it, which a partial write updates.
    ///
    /// Errors: `EINVAL` for a write across registers or into the reserved bits of the control
    /// register (or a mode change while enabled written as one: disable first, as CTRL
    /// says); those of CTRL and of a RAW ST entry.
    pub fn config_write(
        &self,
        policy: Policy,
        state: State,
        off: u16,
        data: &[u8],
    ) -> Result<Write, Errno> {
        let len = u16::try_from(data.len()).map_err(|_| e::EINVAL)?;
        let end = off.checked_add(len).ok_or(e::EINVAL)?;
        if len == 0 || end > self.cap.size() {
            return Err(e::EINVAL);
        }
        if end <= regs::CTRL {
            // The header and the capability register: read-only.
            return Ok(Write::Nothing);
        }
        if off >= regs::CTRL && end <= regs::TABLE {
            let cur = state_ctrl(state).to_le_bytes();
            let mut b = cur;
            let at = usize::from(off - regs::CTRL);
            b[at..at + data.len()].copy_from_slice(data);
            return self.ctrl_write(policy, state, u32::from_le_bytes(b));
        }
        if off >= regs::TABLE && off & 1 == 0 && len == 2 {
            let index = (off - regs::TABLE) / 2;
            let tag = u16::from_le_bytes([data[0], data[1]]);
            let ent = StEntry {
                index,
                mem_type: 0,
                flags: uapi::ENTRY_RAW,
                value: u32::from(tag),
            };
            let h = ArrayHeader { count: 1, flags: 0 };
            self.check_st(state, h, &[ent])?;
            return Ok(Write::Entry(StWrite { index, tag }));
        }
        Err(e::EINVAL)
    }

    /// A whole new control register value.
    fn ctrl_write(&self, policy: Policy, state: State, v: u32) -> Result<Write, Errno> {
        if v & !(regs::CTRL_MODE_MASK | regs::CTRL_REQ_MASK) != 0 {
            return Err(e::EINVAL);
        }
        if v == state_ctrl(state) {
            return Ok(Write::Nothing);
        }
        let req = (v & regs::CTRL_REQ_MASK) >> regs::CTRL_REQ_SHIFT;
        let mode = v & regs::CTRL_MODE_MASK;
        let c = if req == 0 {
            Ctrl {
                op: uapi::OP_DISABLE,
                mode: 0,
            }
        } else {
            // The requester type is the kernel's choice; a value other than the one it would
            // choose is not an error for a guest that writes "extended" to a device that
            // cannot do it, but it must name an enable.
            Ctrl {
                op: uapi::OP_ENABLE,
                mode,
            }
        };
        self.ctrl(policy, state, c).map(Write::Ctrl)
    }
}

/// The control register as the user reads it: the state the driver set.
pub fn state_ctrl(state: State) -> u32 {
    match state.enabled {
        Some((m, r)) => m as u32 | (r as u32) << regs::CTRL_REQ_SHIFT,
        None => 0,
    }
}

/// Lays the virtual capability and control registers over `buf`, the bytes a read of config
/// space at `off` returned; `pos` is where the capability is. Bytes outside the two registers
/// are left as they are.
pub fn overlay(buf: &mut [u8], off: u64, pos: u16, cap: u32, ctrl: u32) {
    let regs = [(regs::CAP, cap), (regs::CTRL, ctrl)];
    for (reg, v) in regs {
        let base = u64::from(pos) + u64::from(reg);
        for (i, byte) in v.to_le_bytes().into_iter().enumerate() {
            let at = base + i as u64;
            if let Some(j) = at.checked_sub(off) {
                if let Some(slot) = usize::try_from(j).ok().and_then(|j| buf.get_mut(j)) {
                    *slot = byte;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::regs::{Mode, ReqType, TphCap};
    use super::*;
    use proptest::prelude::*;

    /// The capability register of `cap` with `modes` only.
    fn with_modes(cap: TphCap, modes: u8) -> u32 {
        (cap.0 & !7) | u32::from(modes & 7)
    }

    /// Whether the user-visible capability shows `mode`.
    fn shows(virt_cap: u32, mode: Mode) -> bool {
        virt_cap & u32::from(mode.bit()) != 0
    }

    const CAP16: TphCap = TphCap(0x7 | 0x100 | (1 << 9) | (15 << 16));

    fn dev() -> Device {
        Device {
            cap: CAP16,
            rc_end: false,
            rp_completer: ReqType::Ext,
            completer: ReqType::None,
            msix_size: 0,
            notph: false,
            cpu_st: true,
        }
    }

    #[test]
    fn the_capability_shows_what_may_be_enabled() {
        let d = dev();
        let safe = d.virt_cap(Policy::default());
        assert!(!shows(safe, Mode::DevSpec) && shows(safe, Mode::IntVec));
        assert_eq!(safe, with_modes(CAP16, 3));
        assert_eq!(d.virt_cap(Policy { unsafe_ds: true }), CAP16.0);
    }

    #[test]
    fn control_writes_are_ctrl_calls() {
        let d = dev();
        let p = Policy::default();
        let off = State::default();
        // IV mode, extended requests, written as one dword and as a word.
        let iv = 1u32 | 3 << 8;
        assert_eq!(
            d.config_write(p, off, 8, &iv.to_le_bytes()),
            Ok(Write::Ctrl(CtrlAction::Enable(Mode::IntVec)))
        );
        assert_eq!(
            d.config_write(p, off, 8, &[1, 1]),
            Ok(Write::Ctrl(CtrlAction::Enable(Mode::IntVec)))
        );
        // Only the requester-enable byte: NS mode (0) with requests on.
        assert_eq!(
            d.config_write(p, off, 9, &[3]),
            Ok(Write::Ctrl(CtrlAction::Enable(Mode::NoSt)))
        );
        assert_eq!(d.config_write(p, off, 8, &[2, 3]), Err(e::EPERM));
        assert_eq!(d.config_write(p, off, 8, &[0x10, 0]), Err(e::EINVAL));
        let on = State {
            enabled: Some((Mode::IntVec, ReqType::Ext)),
        };
        assert_eq!(state_ctrl(on), iv);
        assert_eq!(
            d.config_write(p, on, 8, &iv.to_le_bytes()),
            Ok(Write::Nothing)
        );
        assert_eq!(
            d.config_write(p, on, 9, &[0]),
            Ok(Write::Ctrl(CtrlAction::Disable))
        );
        assert_eq!(d.config_write(p, on, 8, &[0, 3]), Err(e::EBUSY));
        // Read-only registers; writes across registers or past the capability.
        assert_eq!(d.config_write(p, off, 4, &[0; 4]), Ok(Write::Nothing));
        assert_eq!(d.config_write(p, off, 6, &[0; 4]), Err(e::EINVAL));
        assert_eq!(d.config_write(p, off, 0xc + 32, &[0; 2]), Err(e::EINVAL));
    }

    #[test]
    fn table_writes_are_raw_entries() {
        let d = dev();
        let p = Policy { unsafe_ds: true };
        let iv = State {
            enabled: Some((Mode::IntVec, ReqType::Ext)),
        };
        let ds = State {
            enabled: Some((Mode::DevSpec, ReqType::Tph)),
        };
        assert_eq!(d.config_write(p, iv, 0xc + 4, &[5, 0]), Err(e::EPERM));
        assert_eq!(
            d.config_write(p, ds, 0xc + 4, &[5, 0]),
            Ok(Write::Entry(StWrite { index: 2, tag: 5 }))
        );
        assert_eq!(d.config_write(p, ds, 0xc + 4, &[5, 1]), Err(e::ERANGE));
        assert_eq!(d.config_write(p, ds, 0xc + 5, &[5, 0]), Err(e::EINVAL));
        assert_eq!(d.config_write(p, ds, 0xc + 4, &[5]), Err(e::EINVAL));
        assert_eq!(
            d.config_write(p, State::default(), 0xc, &[5, 0]),
            Err(e::EBADFD)
        );
    }

    proptest! {
        /// Whatever the read: the bytes of the two registers come out virtual, all others as
        /// they were, and nothing outside the buffer is touched.
        #[test]
        fn overlay_patches_exactly_the_registers(off in 0u64..0x140, len in 0usize..0x40,
                                                 cap in any::<u32>(), ctrl in any::<u32>()) {
            let pos = 0x100u16;
            let mut buf = std::vec![0xeeu8; len];
            overlay(&mut buf, off, pos, cap, ctrl);
            for (i, b) in buf.iter().enumerate() {
                let at = off + i as u64;
                let want = match at.checked_sub(0x104) {
                    Some(k @ 0..=3) => cap.to_le_bytes()[k as usize],
                    Some(k @ 4..=7) => ctrl.to_le_bytes()[k as usize - 4],
                    _ => 0xee,
                };
                prop_assert_eq!(*b, want);
            }
        }
    }
}
