// SPDX-License-Identifier: GPL-2.0

//! Hypercall control words, call codes and result values.
//!
//! Layouts follow the Hyper-V TLFS "Hypercall Interface" and Linux's
//! `include/hyperv/hvgdk_mini.h` (`HV_HYPERCALL_*`):
//!
//! | bits   | control word              | result value        |
//! |--------|---------------------------|---------------------|
//! | 0..15  | call code                 | status              |
//! | 16     | fast                      | reserved            |
//! | 17..26 | variable header size (8B) | reserved            |
//! | 27..30 | reserved                  | reserved            |
//! | 31     | nested                    | reserved            |
//! | 32..43 | rep count                 | reps completed      |
//! | 44..47 | reserved                  | reserved            |
//! | 48..59 | rep start index           | reserved            |
//! | 60..63 | reserved                  | reserved            |
//!
//! Both directions are pure functions so that the encoder (kernel modules) and the decoder (the
//! simulated hypervisor) are tested against each other on the host.

use super::errno::{self, Errno};

/// A hypercall call code (bits 0..15 of the control word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallCode(pub u16);

impl CallCode {
    /// `HVCALL_DEPOSIT_MEMORY` (rep): give pages to a partition's memory pool.
    pub const DEPOSIT_MEMORY: Self = Self(0x0048);
    /// `HVCALL_WITHDRAW_MEMORY` (rep): take pages back from a partition's memory pool.
    pub const WITHDRAW_MEMORY: Self = Self(0x0049);
    /// `HVCALL_ATTACH_DEVICE`: attach a device directly to a guest partition.
    pub const ATTACH_DEVICE: Self = Self(0x0082);
    /// `HVCALL_DETACH_DEVICE`: detach a directly attached device from a guest partition.
    pub const DETACH_DEVICE: Self = Self(0x0083);
    /// `HVCALL_CREATE_DEVICE_DOMAIN`.
    pub const CREATE_DEVICE_DOMAIN: Self = Self(0x00b1);
    /// `HVCALL_ATTACH_DEVICE_DOMAIN`.
    pub const ATTACH_DEVICE_DOMAIN: Self = Self(0x00b2);
    /// `HVCALL_MAP_DEVICE_GPA_PAGES` (rep; the reps are the GPA page list).
    pub const MAP_DEVICE_GPA_PAGES: Self = Self(0x00b3);
    /// `HVCALL_UNMAP_DEVICE_GPA_PAGES` (rep; a count, no list).
    pub const UNMAP_DEVICE_GPA_PAGES: Self = Self(0x00b4);
    /// `HVCALL_DETACH_DEVICE_DOMAIN`.
    pub const DETACH_DEVICE_DOMAIN: Self = Self(0x00c4);
    /// `HVCALL_DELETE_DEVICE_DOMAIN`.
    pub const DELETE_DEVICE_DOMAIN: Self = Self(0x00c5);
    /// `HVCALL_CONFIGURE_DEVICE_DOMAIN` (guest pvIOMMU series; Appendix A).
    pub const CONFIGURE_DEVICE_DOMAIN: Self = Self(0x00ce);
    /// `HVCALL_FLUSH_DEVICE_DOMAIN` (Appendix A).
    pub const FLUSH_DEVICE_DOMAIN: Self = Self(0x00d0);
    /// `HVCALL_FLUSH_DEVICE_DOMAIN_LIST` (rep; Appendix A).
    pub const FLUSH_DEVICE_DOMAIN_LIST: Self = Self(0x00d1);
    /// `HVCALL_GET_IOMMU_CAPABILITIES` (Appendix A).
    pub const GET_IOMMU_CAPABILITIES: Self = Self(0x0125);
}

/// The largest rep count (and rep start index) a control word can carry: the fields are 12 bits.
pub const MAX_REPS: u16 = 0xfff;

/// The largest variable-header size, in 8-byte units: the field is 10 bits.
pub const MAX_VARHEAD_QWORDS: u16 = 0x3ff;

const FAST_BIT: u64 = 1 << 16;
const VARHEAD_SHIFT: u32 = 17;
const VARHEAD_MASK: u64 = 0x3ff << VARHEAD_SHIFT;
const NESTED_BIT: u64 = 1 << 31;
const REP_COUNT_SHIFT: u32 = 32;
const REP_COUNT_MASK: u64 = 0xfff << REP_COUNT_SHIFT;
const REP_START_SHIFT: u32 = 48;
const REP_START_MASK: u64 = 0xfff << REP_START_SHIFT;
const CONTROL_RSVD_MASK: u64 = (0xf << 27) | (0xf << 44) | (0xf << 60);

/// Why a control word could not be built or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// A rep count or rep start index does not fit in 12 bits.
    RepOutOfRange,
    /// A rep start index at or beyond the rep count.
    RepStartBeyondCount,
    /// A variable-header size does not fit in 10 bits.
    VarheadOutOfRange,
    /// Reserved bits are set in an encoded control word.
    ReservedBits,
}

/// A decoded hypercall control word.
///
/// # Invariants
///
/// `rep_count <= MAX_REPS`, `rep_start <= MAX_REPS`, `varhead_qwords <= MAX_VARHEAD_QWORDS`, and
/// for a rep call (`rep_count > 0`) `rep_start < rep_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    code: CallCode,
    fast: bool,
    nested: bool,
    varhead_qwords: u16,
    rep_count: u16,
    rep_start: u16,
}

impl Control {
    /// A simple (non-rep, memory-based, non-nested) call.
    pub const fn simple(code: CallCode) -> Self {
        // INVARIANT: all counts are zero.
        Self {
            code,
            fast: false,
            nested: false,
            varhead_qwords: 0,
            rep_count: 0,
            rep_start: 0,
        }
    }

    /// A rep call of `count` reps, resumed at rep index `start`.
    pub const fn rep(code: CallCode, count: u16, start: u16) -> Result<Self, ControlError> {
        if count > MAX_REPS || start > MAX_REPS {
            return Err(ControlError::RepOutOfRange);
        }
        if start >= count {
            return Err(ControlError::RepStartBeyondCount);
        }
        // INVARIANT: checked just above.
        Ok(Self {
            code,
            fast: false,
            nested: false,
            varhead_qwords: 0,
            rep_count: count,
            rep_start: start,
        })
    }

    /// The same call with a variable header of `qwords` 8-byte units.
    pub const fn with_varhead(self, qwords: u16) -> Result<Self, ControlError> {
        if qwords > MAX_VARHEAD_QWORDS {
            return Err(ControlError::VarheadOutOfRange);
        }
        // INVARIANT: checked just above; other fields unchanged.
        Ok(Self {
            varhead_qwords: qwords,
            ..self
        })
    }

    /// The call code.
    pub const fn code(&self) -> CallCode {
        self.code
    }

    /// Whether this is a fast (register-based) call.
    pub const fn is_fast(&self) -> bool {
        self.fast
    }

    /// Whether the nested bit is set.
    pub const fn is_nested(&self) -> bool {
        self.nested
    }

    /// Whether this is a rep call.
    pub const fn is_rep(&self) -> bool {
        self.rep_count != 0
    }

    /// The rep count (0 for a simple call).
    pub const fn rep_count(&self) -> u16 {
        self.rep_count
    }

    /// The index of the first rep still to do.
    pub const fn rep_start(&self) -> u16 {
        self.rep_start
    }

    /// Size of the variable header in 8-byte units.
    pub const fn varhead_qwords(&self) -> u16 {
        self.varhead_qwords
    }

    /// The same rep call resumed at `start` (after `start` reps completed).
    pub const fn resumed_at(self, start: u16) -> Result<Self, ControlError> {
        Self::rep(self.code, self.rep_count, start)
    }

    /// Encodes the control word.
    pub const fn encode(&self) -> u64 {
        let mut v = self.code.0 as u64;
        if self.fast {
            v |= FAST_BIT;
        }
        if self.nested {
            v |= NESTED_BIT;
        }
        v |= (self.varhead_qwords as u64) << VARHEAD_SHIFT;
        v |= (self.rep_count as u64) << REP_COUNT_SHIFT;
        v |= (self.rep_start as u64) << REP_START_SHIFT;
        v
    }

    /// Decodes a control word as the hypervisor does, rejecting reserved bits and inconsistent
    /// rep fields.
    pub const fn decode(v: u64) -> Result<Self, ControlError> {
        if v & CONTROL_RSVD_MASK != 0 {
            return Err(ControlError::ReservedBits);
        }
        let rep_count = ((v & REP_COUNT_MASK) >> REP_COUNT_SHIFT) as u16;
        let rep_start = ((v & REP_START_MASK) >> REP_START_SHIFT) as u16;
        if rep_count == 0 && rep_start != 0 {
            return Err(ControlError::RepStartBeyondCount);
        }
        if rep_count != 0 && rep_start >= rep_count {
            return Err(ControlError::RepStartBeyondCount);
        }
        // INVARIANT: the masks bound every field; the rep relation is checked above.
        Ok(Self {
            code: CallCode(v as u16),
            fast: v & FAST_BIT != 0,
            nested: v & NESTED_BIT != 0,
            varhead_qwords: ((v & VARHEAD_MASK) >> VARHEAD_SHIFT) as u16,
            rep_count,
            rep_start,
        })
    }
}

/// A Hyper-V status code (`HV_STATUS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvStatus(pub u16);

impl HvStatus {
    /// `HV_STATUS_SUCCESS`.
    pub const SUCCESS: Self = Self(0x0);
    /// `HV_STATUS_INVALID_HYPERCALL_CODE`.
    pub const INVALID_HYPERCALL_CODE: Self = Self(0x2);
    /// `HV_STATUS_INVALID_HYPERCALL_INPUT`.
    pub const INVALID_HYPERCALL_INPUT: Self = Self(0x3);
    /// `HV_STATUS_INVALID_ALIGNMENT`.
    pub const INVALID_ALIGNMENT: Self = Self(0x4);
    /// `HV_STATUS_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: Self = Self(0x5);
    /// `HV_STATUS_ACCESS_DENIED`.
    pub const ACCESS_DENIED: Self = Self(0x6);
    /// `HV_STATUS_INVALID_PARTITION_STATE`.
    pub const INVALID_PARTITION_STATE: Self = Self(0x7);
    /// `HV_STATUS_OPERATION_DENIED`.
    pub const OPERATION_DENIED: Self = Self(0x8);
    /// `HV_STATUS_INSUFFICIENT_MEMORY`.
    pub const INSUFFICIENT_MEMORY: Self = Self(0xb);
    /// `HV_STATUS_INVALID_PARTITION_ID`.
    pub const INVALID_PARTITION_ID: Self = Self(0xd);
    /// `HV_STATUS_NOT_FOUND`.
    pub const NOT_FOUND: Self = Self(0x10);
    /// `HV_STATUS_INSUFFICIENT_BUFFERS`.
    pub const INSUFFICIENT_BUFFERS: Self = Self(0x13);
    /// `HV_STATUS_NO_RESOURCES`.
    pub const NO_RESOURCES: Self = Self(0x1d);
    /// `HV_STATUS_OPERATION_FAILED`.
    pub const OPERATION_FAILED: Self = Self(0x71);
    /// `HV_STATUS_INSUFFICIENT_ROOT_MEMORY`.
    pub const INSUFFICIENT_ROOT_MEMORY: Self = Self(0x73);
    /// `HV_STATUS_INSUFFICIENT_CONTIGUOUS_MEMORY`.
    pub const INSUFFICIENT_CONTIGUOUS_MEMORY: Self = Self(0x75);
    /// `HV_STATUS_INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY`.
    pub const INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY: Self = Self(0x83);

    /// Whether the call succeeded.
    pub const fn is_success(self) -> bool {
        self.0 == Self::SUCCESS.0
    }

    /// Whether the hypervisor asks for more deposited memory (any of the four variants that
    /// Linux's `hv_result_needs_memory()` recognises).
    pub const fn needs_memory(self) -> bool {
        matches!(
            self,
            Self::INSUFFICIENT_MEMORY
                | Self::INSUFFICIENT_ROOT_MEMORY
                | Self::INSUFFICIENT_CONTIGUOUS_MEMORY
                | Self::INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY
        )
    }

    /// Whether the missing memory belongs to the root's own pool rather than the target
    /// partition's (the `*_ROOT_*` variants).
    pub const fn needs_root_memory(self) -> bool {
        matches!(
            self,
            Self::INSUFFICIENT_ROOT_MEMORY | Self::INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY
        )
    }

    /// The errno a failed call is reported as.
    ///
    /// Close to Linux's `hv_result_to_errno()`, but more specific where a caller can act on it:
    /// bad alignment and bad input are `EINVAL`, a missing object is `ENOENT`, and resource
    /// exhaustion is `ENOMEM`/`ENOSPC`. Unknown codes are `EIO`.
    pub const fn to_errno(self) -> Errno {
        match self {
            Self::SUCCESS => Errno(0),
            Self::INVALID_HYPERCALL_CODE => errno::EOPNOTSUPP,
            Self::INVALID_HYPERCALL_INPUT
            | Self::INVALID_ALIGNMENT
            | Self::INVALID_PARAMETER
            | Self::INVALID_PARTITION_ID => errno::EINVAL,
            Self::ACCESS_DENIED | Self::OPERATION_DENIED => errno::EACCES,
            Self::INVALID_PARTITION_STATE => errno::EBUSY,
            Self::NOT_FOUND => errno::ENOENT,
            Self::INSUFFICIENT_MEMORY
            | Self::INSUFFICIENT_ROOT_MEMORY
            | Self::INSUFFICIENT_CONTIGUOUS_MEMORY
            | Self::INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY
            | Self::INSUFFICIENT_BUFFERS => errno::ENOMEM,
            Self::NO_RESOURCES => errno::ENOSPC,
            _ => errno::EIO,
        }
    }
}

/// The 64-bit value a hypercall returns: status plus reps completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvResult(u64);

/// What `hv_do_hypercall()` returns when no hypercall page is set up (`U64_MAX`).
pub const HV_RESULT_NO_HYPERCALL_PAGE: u64 = u64::MAX;

impl HvResult {
    /// Wraps a raw result value.
    pub const fn from_raw(v: u64) -> Self {
        Self(v)
    }

    /// Builds a result value (what the hypervisor returns).
    pub const fn new(status: HvStatus, reps_completed: u16) -> Self {
        Self(status.0 as u64 | (((reps_completed & MAX_REPS) as u64) << REP_COUNT_SHIFT))
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The status code.
    pub const fn status(self) -> HvStatus {
        HvStatus(self.0 as u16)
    }

    /// How many reps completed (bits 32..43).
    pub const fn reps_completed(self) -> u16 {
        ((self.0 & REP_COUNT_MASK) >> REP_COUNT_SHIFT) as u16
    }

    /// The errno for this result; `Ok` on success.
    pub const fn to_result(self) -> Result<(), Errno> {
        if self.0 == HV_RESULT_NO_HYPERCALL_PAGE {
            return Err(errno::EOPNOTSUPP);
        }
        if self.status().is_success() {
            Ok(())
        } else {
            Err(self.status().to_errno())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // HV_HYPERCALL_REP_COMP_1 and rep start as in hvgdk_mini.h.
        let c = Control::rep(CallCode::MAP_DEVICE_GPA_PAGES, 1, 0).unwrap();
        assert_eq!(c.encode(), 0x00b3 | (1 << 32));
        let c = Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, 4095, 4094).unwrap();
        assert_eq!(c.encode(), 0x00b4 | (0xfff << 32) | (0xffe << 48));
        assert_eq!(
            Control::simple(CallCode::CREATE_DEVICE_DOMAIN).encode(),
            0xb1
        );
    }

    #[test]
    fn rep_bounds() {
        let code = CallCode::UNMAP_DEVICE_GPA_PAGES;
        assert_eq!(
            Control::rep(code, 4096, 0),
            Err(ControlError::RepOutOfRange)
        );
        assert_eq!(
            Control::rep(code, 10, 10),
            Err(ControlError::RepStartBeyondCount)
        );
        assert_eq!(
            Control::rep(code, 0, 0),
            Err(ControlError::RepStartBeyondCount)
        );
        assert!(Control::simple(code).with_varhead(1024).is_err());
    }

    #[test]
    fn decode_rejects_reserved() {
        for bit in [27, 30, 44, 47, 60, 63] {
            assert_eq!(
                Control::decode(0xb1 | (1u64 << bit)),
                Err(ControlError::ReservedBits)
            );
        }
        // rep start without a rep count
        assert!(Control::decode(0xb4 | (1 << 48)).is_err());
    }

    #[test]
    fn status_mapping() {
        assert!(HvStatus::INSUFFICIENT_CONTIGUOUS_ROOT_MEMORY.needs_memory());
        assert!(HvStatus::INSUFFICIENT_ROOT_MEMORY.needs_root_memory());
        assert!(!HvStatus::INSUFFICIENT_MEMORY.needs_root_memory());
        assert!(!HvStatus::INVALID_PARAMETER.needs_memory());
        assert_eq!(
            HvResult::from_raw(u64::MAX).to_result(),
            Err(errno::EOPNOTSUPP)
        );
        assert_eq!(
            HvResult::new(HvStatus::INVALID_ALIGNMENT, 3).to_result(),
            Err(errno::EINVAL)
        );
        assert_eq!(HvResult::new(HvStatus::SUCCESS, 7).to_result(), Ok(()));
        assert_eq!(HvStatus(0x1234).to_errno(), errno::EIO);
    }

    proptest! {
        #[test]
        fn control_roundtrip(code: u16, count in 1u16..=4095, start_frac in 0.0f64..1.0, vh in 0u16..=1023) {
            let start = ((count as f64) * start_frac) as u16 % count;
            let c = Control::rep(CallCode(code), count, start).unwrap().with_varhead(vh).unwrap();
            prop_assert_eq!(Control::decode(c.encode()), Ok(c));
        }

        #[test]
        fn decode_never_panics_and_roundtrips(v: u64) {
            if let Ok(c) = Control::decode(v) {
                prop_assert_eq!(c.encode(), v);
            }
        }

        #[test]
        fn result_roundtrip(status: u16, reps in 0u16..=4095) {
            let r = HvResult::new(HvStatus(status), reps);
            prop_assert_eq!(r.status(), HvStatus(status));
            prop_assert_eq!(r.reps_completed(), reps);
        }
    }
}
