// SPDX-License-Identifier: GPL-2.0

//! TPH registers and the platform's steering-tag answer, decoded.
//!
//! Offsets and fields as in `include/uapi/linux/pci_regs.h` (PCIe r6.2, sec. 7.9.13): the TPH
//! Requester extended capability is a header, a capability register (`+4`), a control register
//! (`+8`) and, when the table is located there, the ST table (`+0xc`, one 16-bit entry each).

/// Offset of the TPH Requester Capability register in the capability.
pub const CAP: u16 = 4;
/// Offset of the TPH Requester Control register.
pub const CTRL: u16 = 8;
/// Offset of the first ST table entry (when the table is in the capability).
pub const TABLE: u16 = 0xc;

/// Capability register: No ST mode supported.
const CAP_ST_NS: u32 = 1 << 0;
/// Capability register: Interrupt Vector mode supported.
const CAP_ST_IV: u32 = 1 << 1;
/// Capability register: Device Specific mode supported.
const CAP_ST_DS: u32 = 1 << 2;
/// Capability register: Extended TPH Requester supported (16-bit tags).
const CAP_EXT_TPH: u32 = 1 << 8;
/// Capability register: ST Table Location.
const CAP_LOC_SHIFT: u32 = 9;
/// Capability register: ST Table Size (entries - 1), bits 26:16.
const CAP_ST_SHIFT: u32 = 16;
const CAP_ST_MASK: u32 = 0x7ff;

/// Control register: ST Mode Select, bits 2:0.
pub const CTRL_MODE_MASK: u32 = 0x7;
/// Control register: TPH Requester Enable, bits 9:8 (shift).
pub const CTRL_REQ_SHIFT: u32 = 8;
/// Control register: TPH Requester Enable, bits 9:8 (mask).
pub const CTRL_REQ_MASK: u32 = 0x3 << CTRL_REQ_SHIFT;

/// Device Capabilities 2: TPH Completer Supported, bits 13:12.
const DEVCAP2_TPH_COMP_SHIFT: u32 = 12;

/// An ST mode (the encoding of ST Mode Select).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No ST: hints without steering tags.
    NoSt = 0,
    /// Interrupt Vector: the tag of the MSI-X vector (ST table entry) the request is tied to.
    IntVec = 1,
    /// Device Specific: the device picks the tag, by means the kernel cannot see.
    DevSpec = 2,
}

impl Mode {
    /// The mode encoded as `v`; `None` for reserved encodings.
    pub fn from_raw(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::NoSt),
            1 => Some(Self::IntVec),
            2 => Some(Self::DevSpec),
            _ => None,
        }
    }

    /// This mode's bit in a set of modes (bit n for mode n, as the capability register's).
    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A TPH requester or completer type (the encoding of TPH Requester Enable and of TPH Completer
/// Supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReqType {
    /// No TPH.
    None = 0,
    /// TPH with 8-bit steering tags.
    Tph = 1,
    /// TPH and extended TPH: 16-bit steering tags.
    Ext = 3,
}

impl ReqType {
    /// Decodes a two-bit field. The reserved value 2 reads as `None`: a port that reports it
    /// promises nothing (7.3's `pcie_enable_tph()` does not fold it and would write 2 into TPH
    /// Requester Enable, which is why the driver never lets it through).
    pub fn from_field(v: u32) -> Self {
        match v & 3 {
            1 => Self::Tph,
            3 => Self::Ext,
            _ => Self::None,
        }
    }

    /// The completer type a port's Device Capabilities 2 register reports.
    pub fn from_devcap2(devcap2: u32) -> Self {
        Self::from_field(devcap2 >> DEVCAP2_TPH_COMP_SHIFT)
    }
}

/// Where a device keeps its ST table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    /// No table: tags only in Device Specific mode, by the device's own means.
    None = 0,
    /// In the TPH capability, after the control register.
    Cap = 1,
    /// In the MSI-X table, the upper half of each vector's control word.
    Msix = 2,
}

/// The TPH Requester Capability register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TphCap(pub u32);

impl TphCap {
    /// Modes the device advertises (bit n for mode n).
    pub fn modes(self) -> u8 {
        (self.0 & (CAP_ST_NS | CAP_ST_IV | CAP_ST_DS)) as u8
    }

    /// Whether the device can issue extended (16-bit) tags.
    pub fn ext(self) -> bool {
        self.0 & CAP_EXT_TPH != 0
    }

    /// The ST table location; `None` for the reserved encoding 3 (there is no table the driver
    /// could use).
    pub fn loc(self) -> Option<Loc> {
        match (self.0 >> CAP_LOC_SHIFT) & 3 {
            0 => Some(Loc::None),
            1 => Some(Loc::Cap),
            2 => Some(Loc::Msix),
            _ => None,
        }
    }

    /// Entries of the table in the capability: the ST Table Size field plus one, 0 when the
    /// table is elsewhere.
    pub fn cap_table_size(self) -> u16 {
        match self.loc() {
            Some(Loc::Cap) => ((self.0 >> CAP_ST_SHIFT) & CAP_ST_MASK) as u16 + 1,
            _ => 0,
        }
    }

    /// Length in bytes of the capability in config space: the header, both registers and, when
    /// the table is there, two bytes per entry.
    pub fn size(self) -> u16 {
        TABLE + 2 * self.cap_table_size()
    }
}

/// The memory a steering tag targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Volatile memory.
    Volatile = 0,
    /// Persistent memory.
    Persistent = 1,
}

impl MemType {
    /// The type encoded as `v` in the uAPI; `None` otherwise.
    pub fn from_raw(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Volatile),
            1 => Some(Self::Persistent),
            _ => None,
        }
    }
}

/// The answer of the PCI `_DSM` (revision 7, function 0xF, "Cache Locality TPH Features") for one
/// processor: for volatile memory in bits 31:0 and for persistent memory in bits 63:32, each half
/// `st valid` (bit 0), `extended st valid` (1), `ph ignore` (2), the 8-bit tag (15:8) and the
/// 16-bit tag (31:16). The layout of `union st_info` in `drivers/pci/tph.c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StInfo(pub u64);

impl StInfo {
    fn half(self, mem: MemType) -> u32 {
        match mem {
            MemType::Volatile => self.0 as u32,
            MemType::Persistent => (self.0 >> 32) as u32,
        }
    }

    /// The tag for `mem` in the 16-bit namespace if `ext`, else in the 8-bit one; `None` when the
    /// platform marks it invalid. The two namespaces are distinct: the same number can name
    /// different targets, so one is never derived from the other.
    pub fn tag(self, mem: MemType, ext: bool) -> Option<u16> {
        let h = self.half(mem);
        match ext {
            false if h & 1 != 0 => Some(((h >> 8) & 0xff) as u16),
            true if h & 2 != 0 => Some((h >> 16) as u16),
            _ => None,
        }
    }

    /// Whether the platform ignores Processing Hints for `mem`.
    pub fn ph_ignore(self, mem: MemType) -> bool {
        self.half(mem) & 4 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_fields() {
        // NS + IV + DS, extended, table in the capability with 64 entries.
        let cap = TphCap(0x7 | CAP_EXT_TPH | (1 << CAP_LOC_SHIFT) | (63 << CAP_ST_SHIFT));
        assert_eq!(cap.modes(), 7);
        assert!(cap.ext());
        assert_eq!(cap.loc(), Some(Loc::Cap));
        assert_eq!(cap.cap_table_size(), 64);
        assert_eq!(cap.size(), 0xc + 128);
        // The size field counts only for a table in the capability.
        let msix = TphCap(CAP_ST_IV | (2 << CAP_LOC_SHIFT) | (63 << CAP_ST_SHIFT));
        assert_eq!(
            (msix.loc(), msix.cap_table_size(), msix.size()),
            (Some(Loc::Msix), 0, 0xc)
        );
        assert_eq!(TphCap(3 << CAP_LOC_SHIFT).loc(), None);
        // The largest table: 2048 entries.
        let big = TphCap((1 << CAP_LOC_SHIFT) | (0x7ff << CAP_ST_SHIFT));
        assert_eq!(big.cap_table_size(), 2048);
    }

    #[test]
    fn completer_types_fold_the_reserved_value() {
        assert_eq!(ReqType::from_devcap2(0), ReqType::None);
        assert_eq!(ReqType::from_devcap2(1 << 12), ReqType::Tph);
        assert_eq!(ReqType::from_devcap2(2 << 12), ReqType::None);
        assert_eq!(ReqType::from_devcap2(3 << 12 | 0xfff), ReqType::Ext);
        assert!(ReqType::None < ReqType::Tph && ReqType::Tph < ReqType::Ext);
    }

    #[test]
    fn st_info_namespaces_are_separate() {
        // Volatile: 8-bit 0x12 valid, 16-bit 0x3456 invalid, PH ignored.
        // Persistent: 8-bit invalid, 16-bit 0xabcd valid.
        let v = 0x3456_1200 | 1 | 4;
        let p = 0xabcd_0000 | 2;
        let i = StInfo(v | (p << 32));
        assert_eq!(i.tag(MemType::Volatile, false), Some(0x12));
        assert_eq!(i.tag(MemType::Volatile, true), None);
        assert_eq!(i.tag(MemType::Persistent, false), None);
        assert_eq!(i.tag(MemType::Persistent, true), Some(0xabcd));
        assert!(i.ph_ignore(MemType::Volatile));
        assert!(!i.ph_ignore(MemType::Persistent));
    }

    #[test]
    fn modes_and_mem_types_decode() {
        assert_eq!(Mode::from_raw(1), Some(Mode::IntVec));
        assert_eq!(Mode::from_raw(3), None);
        assert_eq!(Mode::DevSpec.bit(), 4);
        assert_eq!(MemType::from_raw(1), Some(MemType::Persistent));
        assert_eq!(MemType::from_raw(2), None);
    }
}
