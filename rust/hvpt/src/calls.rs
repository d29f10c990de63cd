// SPDX-License-Identifier: GPL-2.0

//! Typed inputs of the hypercalls this project issues, and their byte encoding.
//!
//! Each input knows its call code, whether it is a rep call, and how to write itself into a
//! hypercall input page ([`Input::write`]). [`Decoded::decode`] is the inverse that the simulated
//! hypervisor runs on the bytes it receives: it trusts nothing, checks the page can hold the
//! header and the rep list the control word announces, and rejects reserved bits.
//!
//! Calls of Appendix A (CONFIGURE/FLUSH_DEVICE_DOMAIN, GET_IOMMU_CAPABILITIES) are not issued:
//! an S2 device domain is only changed by MAP/UNMAP, which the hypervisor applies synchronously,
//! and the page size the interface supports (4K page numbers) is fixed. Their layouts are still
//! checked in [`super::abi`] so that a later user starts from verified structs.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, IntoBytes};

use super::abi::{
    AbiError, CreateDomainFlags, DeviceDomain, PartitionId, RawAttachDevice, RawAttachDeviceDomain,
    RawCreateDeviceDomain, RawDeleteDeviceDomain, RawDepositMemory, RawDetachDevice,
    RawDetachDeviceDomain, RawMapDeviceGpaPages, RawUnmapDeviceGpaPages, HV_PAGE_SIZE,
};
use super::device_id::{DeviceId, LogicalId};
use super::hypercall::{CallCode, Control, HvStatus};

/// A hypercall input page.
pub type InputPage = [u8; HV_PAGE_SIZE];

/// `HV_MAP_GPA_*` flags accepted for device mappings.
///
/// # Invariants
///
/// Only [`MapFlags::KNOWN`] bits are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapFlags(u32);

impl MapFlags {
    /// `HV_MAP_GPA_READABLE`.
    pub const READABLE: Self = Self(0x1);
    /// `HV_MAP_GPA_WRITABLE`.
    pub const WRITABLE: Self = Self(0x2);
    /// `HV_MAP_GPA_NOT_CACHED` (MMIO).
    pub const NOT_CACHED: Self = Self(0x20_0000);
    /// Every bit a device mapping may carry.
    pub const KNOWN: u32 = 0x1 | 0x2 | 0x20_0000;

    /// Read-only or read-write DMA memory.
    pub const fn dma(write: bool) -> Self {
        Self(Self::READABLE.0 | if write { Self::WRITABLE.0 } else { 0 })
    }

    /// The union of two flag sets.
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The raw word.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Decodes a flag word, rejecting unknown bits.
    pub const fn decode(v: u32) -> Result<Self, AbiError> {
        if v & !Self::KNOWN != 0 {
            return Err(AbiError::UnknownValue);
        }
        Ok(Self(v))
    }
}

/// `union hv_attdev_flags` (`HV_ATTACH_DEVICE_FLAGS`), from bit 0: `logical_id`, `resvd0`,
/// `ats_enabled`, `virt_func`, `shared_irq_child`, `virt_dev`, `ats_supported`, `small_irt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AttachDeviceFlags {
    /// `logical_id`: `logical_devid` carries the id later calls use.
    pub logical_id: bool,
    /// `ats_enabled`.
    pub ats_enabled: bool,
    /// `virt_func`: the device is an SR-IOV VF.
    pub virt_func: bool,
    /// `shared_irq_child`.
    pub shared_irq_child: bool,
    /// `virt_dev`.
    pub virt_dev: bool,
    /// `ats_supported`.
    pub ats_supported: bool,
    /// `small_irt`.
    pub small_irt: bool,
}

impl AttachDeviceFlags {
    /// Encodes the flag word.
    pub const fn encode(self) -> u32 {
        (self.logical_id as u32)
            | (self.ats_enabled as u32) << 2
            | (self.virt_func as u32) << 3
            | (self.shared_irq_child as u32) << 4
            | (self.virt_dev as u32) << 5
            | (self.ats_supported as u32) << 6
            | (self.small_irt as u32) << 7
    }

    /// Decodes the flag word; `resvd0` (bit 1) and bits 8..31 must be zero.
    pub const fn decode(v: u32) -> Result<Self, AbiError> {
        if v & !0xfd != 0 {
            return Err(AbiError::ReservedNonZero);
        }
        Ok(Self {
            logical_id: v & 1 != 0,
            ats_enabled: v & (1 << 2) != 0,
            virt_func: v & (1 << 3) != 0,
            shared_irq_child: v & (1 << 4) != 0,
            virt_dev: v & (1 << 5) != 0,
            ats_supported: v & (1 << 6) != 0,
            small_irt: v & (1 << 7) != 0,
        })
    }
}

/// `HVCALL_ATTACH_DEVICE`: direct attach of a device to a guest partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachDevice {
    /// The guest partition.
    pub partition: PartitionId,
    /// PCI id on the root, logical id on L1VH.
    pub device: DeviceId,
    /// Attach flags; the driver sets `logical_id`.
    pub flags: AttachDeviceFlags,
    /// `attdev_vtl`.
    pub vtl: u8,
    /// The logical id that names the device from now on.
    pub logical: LogicalId,
    /// `union hv_dev_pci_caps` (left zero by the driver).
    pub pci_caps: u32,
    /// RID of the physical function, for a VF.
    pub pf_rid: u16,
}

impl AttachDevice {
    /// ATTACH_DEVICE of `device` to `partition` under the logical id `logical`, as the driver
    /// (and the seed series) issue it: `logical_id` set, VTL 0, no PCI capabilities, not a VF.
    pub fn logical(partition: PartitionId, device: DeviceId, logical: LogicalId) -> Self {
        Self {
            partition,
            device,
            flags: AttachDeviceFlags {
                logical_id: true,
                ..AttachDeviceFlags::default()
            },
            vtl: 0,
            logical,
            pci_caps: 0,
            pf_rid: 0,
        }
    }
}

/// One hypercall input, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// `HVCALL_CREATE_DEVICE_DOMAIN`.
    CreateDomain {
        /// The new domain.
        domain: DeviceDomain,
        /// Creation flags.
        flags: CreateDomainFlags,
    },
    /// `HVCALL_DELETE_DEVICE_DOMAIN`.
    DeleteDomain {
        /// The domain.
        domain: DeviceDomain,
    },
    /// `HVCALL_ATTACH_DEVICE_DOMAIN`.
    AttachDomain {
        /// The domain.
        domain: DeviceDomain,
        /// The device.
        device: DeviceId,
    },
    /// `HVCALL_DETACH_DEVICE_DOMAIN` (names the device only).
    DetachDomain {
        /// Owner of the device's domain.
        partition: PartitionId,
        /// The device.
        device: DeviceId,
    },
    /// `HVCALL_MAP_DEVICE_GPA_PAGES`, rep: `count` consecutive page numbers from `first_pfn`,
    /// mapped at consecutive IOVAs from `iova`.
    Map {
        /// The domain.
        domain: DeviceDomain,
        /// Mapping flags.
        flags: MapFlags,
        /// IOVA of rep 0 (4K-aligned).
        iova: u64,
        /// Page number of rep 0.
        first_pfn: u64,
        /// Number of reps (at most 507).
        count: u16,
    },
    /// `HVCALL_UNMAP_DEVICE_GPA_PAGES`, rep: `count` pages from `iova`.
    Unmap {
        /// The domain.
        domain: DeviceDomain,
        /// IOVA of rep 0.
        iova: u64,
        /// Number of reps (at most 4095).
        count: u16,
    },
    /// `HVCALL_ATTACH_DEVICE`.
    AttachDevice(AttachDevice),
    /// `HVCALL_DETACH_DEVICE`.
    DetachDevice {
        /// The guest partition.
        partition: PartitionId,
        /// The logical id used at attach.
        logical: LogicalId,
    },
    /// `HVCALL_DEPOSIT_MEMORY`, rep; the page numbers come from the caller's list.
    Deposit {
        /// The partition receiving the pages.
        partition: PartitionId,
    },
}

/// The most reps one call may carry, per code: the 12-bit count, and for calls with a rep list
/// also what fits in the input page after the header.
pub const fn max_reps(code: CallCode) -> u16 {
    match code {
        CallCode::MAP_DEVICE_GPA_PAGES => super::abi::MAP_PAGES_PER_CALL as u16,
        CallCode::DEPOSIT_MEMORY => super::abi::DEPOSIT_PAGES_PER_CALL as u16,
        CallCode::UNMAP_DEVICE_GPA_PAGES => super::hypercall::MAX_REPS,
        _ => 0,
    }
}

fn put<T: IntoBytes + zerocopy::Immutable>(page: &mut InputPage, v: &T) {
    // The structs are all smaller than the page (checked at compile time in `abi`), so this
    // cannot fail.
    let _ = v.write_to_prefix(page.as_mut_slice());
}

impl Input {
    /// The call code.
    pub const fn code(&self) -> CallCode {
        match self {
            Self::CreateDomain { .. } => CallCode::CREATE_DEVICE_DOMAIN,
            Self::DeleteDomain { .. } => CallCode::DELETE_DEVICE_DOMAIN,
            Self::AttachDomain { .. } => CallCode::ATTACH_DEVICE_DOMAIN,
            Self::DetachDomain { .. } => CallCode::DETACH_DEVICE_DOMAIN,
            Self::Map { .. } => CallCode::MAP_DEVICE_GPA_PAGES,
            Self::Unmap { .. } => CallCode::UNMAP_DEVICE_GPA_PAGES,
            Self::AttachDevice(_) => CallCode::ATTACH_DEVICE,
            Self::DetachDevice { .. } => CallCode::DETACH_DEVICE,
            Self::Deposit { .. } => CallCode::DEPOSIT_MEMORY,
        }
    }

    /// Writes the input (header and, for MAP, the page-number list) into `page`.
    ///
    /// For [`Input::Deposit`] only the header is written; the caller appends its page list with
    /// [`write_u64_list`].
    pub fn write(&self, page: &mut InputPage) {
        match *self {
            Self::CreateDomain { domain, flags } => put(
                page,
                &RawCreateDeviceDomain {
                    device_domain: domain.to_raw(),
                    flags: U32::new(flags.encode()),
                },
            ),
            Self::DeleteDomain { domain } => put(
                page,
                &RawDeleteDeviceDomain {
                    device_domain: domain.to_raw(),
                },
            ),
            Self::AttachDomain { domain, device } => put(
                page,
                &RawAttachDeviceDomain {
                    device_domain: domain.to_raw(),
                    device_id: U64::new(device.encode()),
                },
            ),
            Self::DetachDomain { partition, device } => put(
                page,
                &RawDetachDeviceDomain {
                    partition_id: U64::new(partition.0),
                    device_id: U64::new(device.encode()),
                },
            ),
            Self::Map {
                domain,
                flags,
                iova,
                first_pfn,
                count,
            } => {
                put(
                    page,
                    &RawMapDeviceGpaPages {
                        device_domain: domain.to_raw(),
                        target_vtl: 0,
                        padding: [0; 3],
                        map_flags: U32::new(flags.bits()),
                        target_device_va_base: U64::new(iova),
                    },
                );
                let list = (0..u64::from(count)).map(|i| first_pfn.wrapping_add(i));
                write_u64_list(page, super::abi::MAP_HEADER_SIZE, list);
            }
            Self::Unmap { domain, iova, .. } => put(
                page,
                &RawUnmapDeviceGpaPages {
                    device_domain: domain.to_raw(),
                    target_device_va_base: U64::new(iova),
                },
            ),
            Self::AttachDevice(a) => put(
                page,
                &RawAttachDevice {
                    partition_id: U64::new(a.partition.0),
                    device_id: U64::new(a.device.encode()),
                    attdev_flags: U32::new(a.flags.encode()),
                    attdev_vtl: a.vtl,
                    rsvd0: 0,
                    rsvd1: U16::new(0),
                    logical_devid: U64::new(a.logical.get()),
                    dev_pcicaps: U32::new(a.pci_caps),
                    pf_pci_rid: U16::new(a.pf_rid),
                    resvd2: U16::new(0),
                },
            ),
            Self::DetachDevice { partition, logical } => put(
                page,
                &RawDetachDevice {
                    partition_id: U64::new(partition.0),
                    logical_devid: U64::new(logical.get()),
                },
            ),
            Self::Deposit { partition } => put(
                page,
                &RawDepositMemory {
                    partition_id: U64::new(partition.0),
                },
            ),
        }
    }
}

/// Writes little-endian `u64`s into `page` from byte offset `at`; stops at the end of the page.
pub fn write_u64_list(page: &mut InputPage, at: usize, list: impl Iterator<Item = u64>) {
    let mut at = at;
    for v in list {
        let Some(dst) = page
            .get_mut(at..at.saturating_add(8))
            .and_then(|s| <&mut [u8; 8]>::try_from(s).ok())
        else {
            return;
        };
        *dst = v.to_le_bytes();
        at += 8;
    }
}

/// A decoded input as the simulated hypervisor sees it. Rep lists stay in the page: `list`
/// holds the entries from rep 0 to the rep count.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The call and its header fields. For MAP, `first_pfn` is `list[0]` and the list itself is
    /// authoritative (entries need not be consecutive).
    pub input: Input,
    /// The rep list (MAP and DEPOSIT), empty otherwise.
    pub list: &'a [U64],
}

fn header<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable>(
    page: &InputPage,
) -> Result<&T, HvStatus> {
    T::ref_from_prefix(page.as_slice())
        .map(|(h, _)| h)
        .map_err(|_| HvStatus::INVALID_HYPERCALL_INPUT)
}

fn param<T>(r: Result<T, AbiError>) -> Result<T, HvStatus> {
    r.map_err(|_| HvStatus::INVALID_PARAMETER)
}

impl<'a> Decoded<'a> {
    /// Decodes `page` for `control`. Control-word errors (a rep count on a simple call, none on
    /// a rep call, more reps than the page holds) are `INVALID_HYPERCALL_INPUT`; reserved bits
    /// and unknown values in the input are `INVALID_PARAMETER`; unknown codes are
    /// `INVALID_HYPERCALL_CODE`.
    pub fn decode(control: &Control, page: &'a InputPage) -> Result<Self, HvStatus> {
        let code = control.code();
        let is_rep_code = matches!(
            code,
            CallCode::MAP_DEVICE_GPA_PAGES
                | CallCode::UNMAP_DEVICE_GPA_PAGES
                | CallCode::DEPOSIT_MEMORY
        );
        let known = is_rep_code
            || matches!(
                code,
                CallCode::CREATE_DEVICE_DOMAIN
                    | CallCode::DELETE_DEVICE_DOMAIN
                    | CallCode::ATTACH_DEVICE_DOMAIN
                    | CallCode::DETACH_DEVICE_DOMAIN
                    | CallCode::ATTACH_DEVICE
                    | CallCode::DETACH_DEVICE
            );
        if !known {
            return Err(HvStatus::INVALID_HYPERCALL_CODE);
        }
        if control.is_fast() || control.is_nested() || control.varhead_qwords() != 0 {
            return Err(HvStatus::INVALID_HYPERCALL_INPUT);
        }
        if is_rep_code != control.is_rep() || control.rep_count() > max_reps(code) {
            return Err(HvStatus::INVALID_HYPERCALL_INPUT);
        }
        let count = control.rep_count();
        let list_at = |hdr: usize| -> Result<&'a [U64], HvStatus> {
            let bytes = page
                .get(hdr..hdr + 8 * usize::from(count))
                .ok_or(HvStatus::INVALID_HYPERCALL_INPUT)?;
            <[U64]>::ref_from_bytes(bytes).map_err(|_| HvStatus::INVALID_HYPERCALL_INPUT)
        };
        let mut list: &'a [U64] = &[];
        let input = match code {
            CallCode::CREATE_DEVICE_DOMAIN => {
                let h: &RawCreateDeviceDomain = header(page)?;
                Input::CreateDomain {
                    domain: param(DeviceDomain::from_raw(&h.device_domain))?,
                    flags: param(CreateDomainFlags::decode(h.flags.get()))?,
                }
            }
            CallCode::DELETE_DEVICE_DOMAIN => {
                let h: &RawDeleteDeviceDomain = header(page)?;
                Input::DeleteDomain {
                    domain: param(DeviceDomain::from_raw(&h.device_domain))?,
                }
            }
            CallCode::ATTACH_DEVICE_DOMAIN => {
                let h: &RawAttachDeviceDomain = header(page)?;
                Input::AttachDomain {
                    domain: param(DeviceDomain::from_raw(&h.device_domain))?,
                    device: param(DeviceId::decode(h.device_id.get()))?,
                }
            }
            CallCode::DETACH_DEVICE_DOMAIN => {
                let h: &RawDetachDeviceDomain = header(page)?;
                Input::DetachDomain {
                    partition: PartitionId(h.partition_id.get()),
                    device: param(DeviceId::decode(h.device_id.get()))?,
                }
            }
            CallCode::MAP_DEVICE_GPA_PAGES => {
                let h: &RawMapDeviceGpaPages = header(page)?;
                if h.padding != [0; 3] || h.target_vtl != 0 {
                    return Err(HvStatus::INVALID_PARAMETER);
                }
                list = list_at(super::abi::MAP_HEADER_SIZE)?;
                Input::Map {
                    domain: param(DeviceDomain::from_raw(&h.device_domain))?,
                    flags: param(MapFlags::decode(h.map_flags.get()))?,
                    iova: h.target_device_va_base.get(),
                    first_pfn: list.first().map_or(0, |p| p.get()),
                    count,
                }
            }
            CallCode::UNMAP_DEVICE_GPA_PAGES => {
                let h: &RawUnmapDeviceGpaPages = header(page)?;
                Input::Unmap {
                    domain: param(DeviceDomain::from_raw(&h.device_domain))?,
                    iova: h.target_device_va_base.get(),
                    count,
                }
            }
            CallCode::ATTACH_DEVICE => {
                let h: &RawAttachDevice = header(page)?;
                if h.rsvd0 != 0 || h.rsvd1.get() != 0 || h.resvd2.get() != 0 {
                    return Err(HvStatus::INVALID_PARAMETER);
                }
                Input::AttachDevice(AttachDevice {
                    partition: PartitionId(h.partition_id.get()),
                    device: param(DeviceId::decode(h.device_id.get()))?,
                    flags: param(AttachDeviceFlags::decode(h.attdev_flags.get()))?,
                    vtl: h.attdev_vtl,
                    logical: LogicalId::new(h.logical_devid.get())
                        .ok_or(HvStatus::INVALID_PARAMETER)?,
                    pci_caps: h.dev_pcicaps.get(),
                    pf_rid: h.pf_pci_rid.get(),
                })
            }
            CallCode::DETACH_DEVICE => {
                let h: &RawDetachDevice = header(page)?;
                Input::DetachDevice {
                    partition: PartitionId(h.partition_id.get()),
                    logical: LogicalId::new(h.logical_devid.get())
                        .ok_or(HvStatus::INVALID_PARAMETER)?,
                }
            }
            _ => {
                let h: &RawDepositMemory = header(page)?;
                list = list_at(core::mem::size_of::<RawDepositMemory>())?;
                Input::Deposit {
                    partition: PartitionId(h.partition_id.get()),
                }
            }
        };
        Ok(Self { input, list })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::boxed::Box;

    fn page() -> Box<InputPage> {
        Box::new([0u8; HV_PAGE_SIZE])
    }

    fn pci(bus: u8) -> DeviceId {
        DeviceId::pci(0, bus, 0)
    }

    fn roundtrip(input: Input, control: Control) -> Input {
        let mut p = page();
        input.write(&mut p);
        Decoded::decode(&control, &p).map(|d| d.input).unwrap()
    }

    #[test]
    fn every_input_roundtrips() {
        let dom = DeviceDomain::own_s2(7);
        let simple = [
            Input::CreateDomain {
                domain: dom,
                flags: CreateDomainFlags {
                    forward_progress_required: true,
                    inherit_owning_vtl: false,
                },
            },
            Input::DeleteDomain { domain: dom },
            Input::AttachDomain {
                domain: dom,
                device: pci(3),
            },
            Input::DetachDomain {
                partition: PartitionId::SELF,
                device: pci(3),
            },
            Input::AttachDevice(AttachDevice {
                partition: PartitionId(5),
                device: pci(4),
                flags: AttachDeviceFlags {
                    logical_id: true,
                    ..Default::default()
                },
                vtl: 0,
                logical: LogicalId::new(0x1234).unwrap(),
                pci_caps: 0,
                pf_rid: 0,
            }),
            Input::DetachDevice {
                partition: PartitionId(5),
                logical: LogicalId::new(0x1234).unwrap(),
            },
        ];
        for i in simple {
            assert_eq!(roundtrip(i, Control::simple(i.code())), i);
        }
        let map = Input::Map {
            domain: dom,
            flags: MapFlags::dma(true),
            iova: 0x10_0000,
            first_pfn: 0x800,
            count: 507,
        };
        let c = Control::rep(map.code(), 507, 0).unwrap();
        assert_eq!(roundtrip(map, c), map);
        let unmap = Input::Unmap {
            domain: dom,
            iova: 0x10_0000,
            count: 4095,
        };
        let c = Control::rep(unmap.code(), 4095, 0).unwrap();
        assert_eq!(roundtrip(unmap, c), unmap);
    }

    #[test]
    fn map_list_is_written_after_the_header() {
        let mut p = page();
        Input::Map {
            domain: DeviceDomain::own_s2(1),
            flags: MapFlags::dma(false),
            iova: 0,
            first_pfn: 0x1122,
            count: 2,
        }
        .write(&mut p);
        assert_eq!(&p[40..48], &0x1122u64.to_le_bytes());
        assert_eq!(&p[48..56], &0x1123u64.to_le_bytes());
    }

    #[test]
    fn decode_rejects_what_the_hypervisor_rejects() {
        let p = page();
        let map = CallCode::MAP_DEVICE_GPA_PAGES;
        // Simple control on a rep code, and the reverse.
        assert_eq!(
            Decoded::decode(&Control::simple(map), &p).unwrap_err(),
            HvStatus::INVALID_HYPERCALL_INPUT
        );
        let c = Control::rep(CallCode::CREATE_DEVICE_DOMAIN, 1, 0).unwrap();
        assert_eq!(
            Decoded::decode(&c, &p).unwrap_err(),
            HvStatus::INVALID_HYPERCALL_INPUT
        );
        // 508 page numbers do not fit after the 40-byte header.
        let c = Control::rep(map, 508, 0).unwrap();
        assert_eq!(
            Decoded::decode(&c, &p).unwrap_err(),
            HvStatus::INVALID_HYPERCALL_INPUT
        );
        // Unknown code.
        let c = Control::simple(CallCode(0x7777));
        assert_eq!(
            Decoded::decode(&c, &p).unwrap_err(),
            HvStatus::INVALID_HYPERCALL_CODE
        );
        // Reserved map flag.
        let mut p = page();
        Input::Map {
            domain: DeviceDomain::own_s2(1),
            flags: MapFlags::dma(false),
            iova: 0,
            first_pfn: 0,
            count: 1,
        }
        .write(&mut p);
        p[28] |= 0x4;
        let c = Control::rep(map, 1, 0).unwrap();
        assert_eq!(
            Decoded::decode(&c, &p).unwrap_err(),
            HvStatus::INVALID_PARAMETER
        );
    }

    #[test]
    fn attach_flags_layout() {
        let f = AttachDeviceFlags {
            logical_id: true,
            small_irt: true,
            ..Default::default()
        };
        assert_eq!(f.encode(), 0x81);
        assert!(AttachDeviceFlags::decode(0x2).is_err());
        assert!(AttachDeviceFlags::decode(0x100).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), HV_PAGE_SIZE),
                               control: u64) {
            let mut p = page();
            p.copy_from_slice(&bytes);
            if let Ok(c) = Control::decode(control) {
                let _ = Decoded::decode(&c, &p);
            }
        }

        #[test]
        fn attach_flags_roundtrip(v in 0u32..0x100) {
            if let Ok(f) = AttachDeviceFlags::decode(v) {
                prop_assert_eq!(f.encode(), v);
            }
        }
    }
}
