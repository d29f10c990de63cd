// SPDX-License-Identifier: GPL-2.0

//! The layouts of `include/uapi/linux/vfio_pci_tph.h`, as bytes.
//!
//! The driver copies the feature's data from user space and hands the bytes here; nothing is
//! trusted before these functions return. The layouts are native-endian, as the C structures.

use super::errno::{self as e, Errno};

/// `VFIO_DEVICE_FEATURE_PCI_TPH_INFO` (GET).
pub const FEATURE_INFO: u16 = 0x7400;
/// `VFIO_DEVICE_FEATURE_PCI_TPH_CTRL` (SET).
pub const FEATURE_CTRL: u16 = 0x7401;
/// `VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST` (GET).
pub const FEATURE_CPU_ST: u16 = 0x7402;
/// `VFIO_DEVICE_FEATURE_PCI_TPH_ST` (SET).
pub const FEATURE_ST: u16 = 0x7403;
/// `VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF` (SET).
pub const FEATURE_DMA_BUF: u16 = 0x7404;

/// `VFIO_PCI_TPH_MAX_ENTRIES`: most entries one CPU_ST or ST call takes (the largest table, in
/// the capability or in MSI-X, has 2048).
pub const MAX_ENTRIES: u32 = 2048;

/// `VFIO_PCI_TPH_INFO_ENABLED`.
pub const INFO_ENABLED: u32 = 1 << 0;
/// `VFIO_PCI_TPH_INFO_USABLE`.
pub const INFO_USABLE: u32 = 1 << 1;
/// `VFIO_PCI_TPH_INFO_EXT`.
pub const INFO_EXT: u32 = 1 << 2;
/// `VFIO_PCI_TPH_INFO_CPU_ST`.
pub const INFO_CPU_ST: u32 = 1 << 3;

/// `VFIO_PCI_TPH_DISABLE`.
pub const OP_DISABLE: u32 = 0;
/// `VFIO_PCI_TPH_ENABLE`.
pub const OP_ENABLE: u32 = 1;

/// `VFIO_PCI_TPH_ST_EXT`: a CPU_ST query in the 16-bit namespace.
pub const CPU_ST_EXT: u32 = 1 << 0;

/// `VFIO_PCI_TPH_ST_ENTRY_RAW`.
pub const ENTRY_RAW: u8 = 1 << 0;
/// `VFIO_PCI_TPH_ST_ENTRY_CLEAR`.
pub const ENTRY_CLEAR: u8 = 1 << 1;

/// `VFIO_PCI_TPH_DMA_BUF_ST`: `steering_tag` (8-bit namespace) is given.
pub const DMA_BUF_ST: u32 = 1 << 0;
/// `VFIO_PCI_TPH_DMA_BUF_ST_EXT`: `steering_tag_ext` (16-bit namespace) is given.
pub const DMA_BUF_ST_EXT: u32 = 1 << 1;

/// Size of `struct vfio_pci_tph_dma_buf`.
pub const DMA_BUF_SIZE: usize = 12;

/// Size of `struct vfio_pci_tph_info`.
pub const INFO_SIZE: usize = 16;
/// Size of `struct vfio_pci_tph_ctrl`.
pub const CTRL_SIZE: usize = 8;
/// Size of the header of `struct vfio_pci_tph_cpu_st` and `struct vfio_pci_tph_st`.
pub const ARRAY_HEADER_SIZE: usize = 8;
/// Size of one entry of either array.
pub const ENTRY_SIZE: usize = 8;

fn u16_at(b: &[u8; 8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8; 8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `struct vfio_pci_tph_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// `VFIO_PCI_TPH_INFO_*`.
    pub flags: u32,
    /// Modes the device advertises.
    pub dev_modes: u8,
    /// Modes CTRL enables for this caller now.
    pub modes: u8,
    /// `VFIO_PCI_TPH_LOC_*`.
    pub st_table_loc: u8,
    /// The requester type an enable would choose.
    pub req_type: u8,
    /// ST table entries.
    pub st_table_size: u16,
    /// The enabled mode.
    pub mode: u8,
    /// The enabled requester type.
    pub cur_req_type: u8,
    /// The device's own completer type.
    pub completer: u8,
}

impl Info {
    /// The bytes user space reads (`__reserved` zero).
    pub fn to_bytes(&self) -> [u8; INFO_SIZE] {
        let mut b = [0u8; INFO_SIZE];
        b[0..4].copy_from_slice(&self.flags.to_ne_bytes());
        b[4] = self.dev_modes;
        b[5] = self.modes;
        b[6] = self.st_table_loc;
        b[7] = self.req_type;
        b[8..10].copy_from_slice(&self.st_table_size.to_ne_bytes());
        b[10] = self.mode;
        b[11] = self.cur_req_type;
        b[12] = self.completer;
        b
    }
}

/// `struct vfio_pci_tph_ctrl`, undecoded: [`super::policy`] judges the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctrl {
    /// `VFIO_PCI_TPH_DISABLE` or `VFIO_PCI_TPH_ENABLE`.
    pub op: u32,
    /// `VFIO_PCI_TPH_MODE_*`.
    pub mode: u32,
}

impl Ctrl {
    /// Decodes the structure.
    pub fn from_bytes(b: &[u8; CTRL_SIZE]) -> Self {
        Self {
            op: u32_at(b, 0),
            mode: u32_at(b, 4),
        }
    }
}

/// The header of a CPU_ST or ST array, checked against the length user space passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayHeader {
    /// Entries, 1..=[`MAX_ENTRIES`].
    pub count: u32,
    /// Flags, only `known` ones.
    pub flags: u32,
}

impl ArrayHeader {
    /// Decodes the header of an array feature whose data is `len` bytes (argsz less the
    /// `vfio_device_feature` header). `known` are the flags the feature takes.
    ///
    /// Errors: `EINVAL` for no entries, unknown flags or data shorter than `count` entries;
    /// `E2BIG` for more than [`MAX_ENTRIES`].
    pub fn parse(b: &[u8; ARRAY_HEADER_SIZE], len: usize, known: u32) -> Result<Self, Errno> {
        let h = Self {
            count: u32_at(b, 0),
            flags: u32_at(b, 4),
        };
        if h.count == 0 || h.flags & !known != 0 {
            return Err(e::EINVAL);
        }
        if h.count > MAX_ENTRIES {
            return Err(e::E2BIG);
        }
        // count <= 2048: no overflow.
        if len < ARRAY_HEADER_SIZE + h.count as usize * ENTRY_SIZE {
            return Err(e::EINVAL);
        }
        Ok(h)
    }

    /// Bytes of the whole array, header included.
    pub fn bytes(&self) -> usize {
        ARRAY_HEADER_SIZE + self.count as usize * ENTRY_SIZE
    }
}

/// `struct vfio_pci_tph_cpu_st_entry`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStEntry {
    /// In: the CPU.
    pub cpu: u32,
    /// In: `VFIO_PCI_TPH_MEM_*`.
    pub mem_type: u8,
    /// Out: the platform ignores Processing Hints there.
    pub ph_ignore: u8,
    /// Out: the steering tag.
    pub st: u16,
}

impl CpuStEntry {
    /// Decodes an entry.
    pub fn from_bytes(b: &[u8; ENTRY_SIZE]) -> Self {
        Self {
            cpu: u32_at(b, 0),
            mem_type: b[4],
            ph_ignore: b[5],
            st: u16_at(b, 6),
        }
    }

    /// The bytes user space reads back.
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..4].copy_from_slice(&self.cpu.to_ne_bytes());
        b[4] = self.mem_type;
        b[5] = self.ph_ignore;
        b[6..8].copy_from_slice(&self.st.to_ne_bytes());
        b
    }
}

/// `struct vfio_pci_tph_st_entry`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StEntry {
    /// The table entry.
    pub index: u16,
    /// `VFIO_PCI_TPH_MEM_*` of the CPU's memory.
    pub mem_type: u8,
    /// `VFIO_PCI_TPH_ST_ENTRY_*`.
    pub flags: u8,
    /// A CPU, a raw tag, or 0.
    pub value: u32,
}

impl StEntry {
    /// Decodes an entry.
    pub fn from_bytes(b: &[u8; ENTRY_SIZE]) -> Self {
        Self {
            index: u16_at(b, 0),
            mem_type: b[2],
            flags: b[3],
            value: u32_at(b, 4),
        }
    }

    /// The bytes of this entry (user space's side, for tests and tools).
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&self.index.to_ne_bytes());
        b[2] = self.mem_type;
        b[3] = self.flags;
        b[4..8].copy_from_slice(&self.value.to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u32, flags: u32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&count.to_ne_bytes());
        b[4..8].copy_from_slice(&flags.to_ne_bytes());
        b
    }

    #[test]
    fn array_header_limits() {
        assert_eq!(ArrayHeader::parse(&header(0, 0), 8, 0), Err(e::EINVAL));
        assert_eq!(ArrayHeader::parse(&header(1, 2), 16, 1), Err(e::EINVAL));
        assert_eq!(
            ArrayHeader::parse(&header(2049, 0), 1 << 20, 0),
            Err(e::E2BIG)
        );
        assert_eq!(
            ArrayHeader::parse(&header(u32::MAX, 0), usize::MAX, 0),
            Err(e::E2BIG)
        );
        // Data one byte short of the last entry.
        assert_eq!(
            ArrayHeader::parse(&header(3, 0), 8 + 3 * 8 - 1, 0),
            Err(e::EINVAL)
        );
        let h = ArrayHeader::parse(&header(2048, 1), 8 + 2048 * 8, 1);
        assert_eq!(
            h,
            Ok(ArrayHeader {
                count: 2048,
                flags: 1
            })
        );
        assert_eq!(h.map(|h| h.bytes()), Ok(8 + 2048 * 8));
    }

    #[test]
    fn entries_round_trip() {
        let s = StEntry {
            index: 0x7ff,
            mem_type: 1,
            flags: ENTRY_RAW,
            value: 0xdead_beef,
        };
        assert_eq!(StEntry::from_bytes(&s.to_bytes()), s);
        let c = CpuStEntry {
            cpu: 3,
            mem_type: 0,
            ph_ignore: 1,
            st: 0xabcd,
        };
        assert_eq!(CpuStEntry::from_bytes(&c.to_bytes()), c);
    }

    #[test]
    fn info_layout() {
        let i = Info {
            flags: INFO_ENABLED | INFO_EXT,
            dev_modes: 7,
            modes: 3,
            st_table_loc: 1,
            req_type: 3,
            st_table_size: 64,
            mode: 1,
            cur_req_type: 3,
            completer: 1,
        };
        let b = i.to_bytes();
        assert_eq!(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]), 5);
        assert_eq!(&b[4..8], &[7, 3, 1, 3]);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 64);
        assert_eq!(&b[10..16], &[1, 3, 1, 0, 0, 0]);
    }
}

/// `struct vfio_pci_tph_dma_buf`, undecoded: [`super::dmabuf`] judges the values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaBuf {
    /// The dma-buf, a file descriptor of the caller's.
    pub dmabuf_fd: i32,
    /// `VFIO_PCI_TPH_DMA_BUF_*`.
    pub flags: u32,
    /// The tag in the 16-bit namespace.
    pub steering_tag_ext: u16,
    /// The tag in the 8-bit namespace.
    pub steering_tag: u8,
    /// The Processing Hint, 0..=3.
    pub ph: u8,
}

impl DmaBuf {
    /// Decodes the structure.
    pub fn from_bytes(b: &[u8; DMA_BUF_SIZE]) -> Self {
        Self {
            dmabuf_fd: i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            flags: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            steering_tag_ext: u16::from_ne_bytes([b[8], b[9]]),
            steering_tag: b[10],
            ph: b[11],
        }
    }

    /// The bytes user space passes.
    pub fn to_bytes(&self) -> [u8; DMA_BUF_SIZE] {
        let mut b = [0u8; DMA_BUF_SIZE];
        b[0..4].copy_from_slice(&self.dmabuf_fd.to_ne_bytes());
        b[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        b[8..10].copy_from_slice(&self.steering_tag_ext.to_ne_bytes());
        b[10] = self.steering_tag;
        b[11] = self.ph;
        b
    }
}
