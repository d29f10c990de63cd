// SPDX-License-Identifier: GPL-2.0

//! Input layouts of the device-domain hypercalls, and their typed forms.
//!
//! The wire structs (`Raw*`) are `#[repr(C)]` over unaligned little-endian integers, so they
//! have no padding and alignment 1, exactly like the `__packed` C structs of the spec
//! (seed-series §1(b) 4, Appendix A). Their sizes and field offsets are checked at compile time
//! below. They are converted to and from bytes with `zerocopy` (no `unsafe`).
//!
//! Every wire struct has a typed counterpart whose fields are newtypes (partition ids, domain
//! ids, device ids, flag words). Encoding is infallible; decoding (what the simulated hypervisor
//! does with the bytes it is given) rejects reserved bits and unknown values.

use core::mem::{offset_of, size_of};

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of a hypercall input page.
pub const HV_PAGE_SIZE: usize = 4096;

/// Why an input could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiError {
    /// The input is shorter than the struct it must hold.
    Truncated,
    /// A reserved or padding field is not zero.
    ReservedNonZero,
    /// An enumerated field holds an unknown value.
    UnknownValue,
}

/// A partition id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionId(pub u64);

impl PartitionId {
    /// `HV_PARTITION_ID_SELF`: the caller's own partition (the root or L1VH).
    pub const SELF: Self = Self(u64::MAX);
    /// `HV_PARTITION_ID_INVALID`.
    pub const INVALID: Self = Self(0);
}

/// `union hv_input_vtl` (1 byte): `target_vtl:4, use_target_vtl:1, reserved_z:3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InputVtl {
    /// Target VTL (0..=15), meaningful only with `use_target_vtl`.
    pub target_vtl: u8,
    /// Whether `target_vtl` applies.
    pub use_target_vtl: bool,
}

impl InputVtl {
    /// Encodes the byte.
    pub const fn encode(self) -> u8 {
        (self.target_vtl & 0xf) | ((self.use_target_vtl as u8) << 4)
    }

    /// Decodes the byte; `reserved_z` must be zero.
    pub const fn decode(v: u8) -> Result<Self, AbiError> {
        if v & 0xe0 != 0 {
            return Err(AbiError::ReservedNonZero);
        }
        Ok(Self {
            target_vtl: v & 0xf,
            use_target_vtl: v & 0x10 != 0,
        })
    }
}

/// Device-domain types (`HV_DEVICE_DOMAIN_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DomainType {
    /// Second-stage (GPA) translation: what the root's IOMMU driver uses.
    S2 = 0,
    /// First-stage translation.
    S1 = 1,
    /// SoC domain.
    Soc = 2,
}

/// `union hv_device_domain_id`: `type` in bits 0..3, reserved bits 4..31, `id` in bits 32..63.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceDomainId {
    /// The domain type.
    pub ty: DomainType,
    /// The domain number.
    pub id: u32,
}

impl DeviceDomainId {
    /// `HV_DEVICE_DOMAIN_ID_S2_DEFAULT`: created by the hypervisor at boot, maps all root memory.
    pub const S2_DEFAULT: u32 = 0;
    /// `HV_DEVICE_DOMAIN_ID_S2_NULL`: blocks all DMA (except RMRR).
    pub const S2_NULL: u32 = 0xffff_ffff;

    /// An S2 domain id.
    pub const fn s2(id: u32) -> Self {
        Self {
            ty: DomainType::S2,
            id,
        }
    }

    /// Encodes the 64-bit value.
    pub const fn encode(self) -> u64 {
        (self.ty as u64) | ((self.id as u64) << 32)
    }

    /// Decodes the 64-bit value, rejecting reserved bits and unknown types.
    pub const fn decode(v: u64) -> Result<Self, AbiError> {
        if v & 0xffff_fff0 != 0 {
            return Err(AbiError::ReservedNonZero);
        }
        let ty = match v & 0xf {
            0 => DomainType::S2,
            1 => DomainType::S1,
            2 => DomainType::Soc,
            _ => return Err(AbiError::UnknownValue),
        };
        Ok(Self {
            ty,
            id: (v >> 32) as u32,
        })
    }
}

/// `struct hv_input_device_domain` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawInputDeviceDomain {
    /// Owning partition.
    pub partition_id: U64,
    /// `union hv_input_vtl`.
    pub owner_vtl: u8,
    /// Must be zero.
    pub padding: [u8; 7],
    /// `union hv_device_domain_id`.
    pub domain_id: U64,
}

/// A device domain as named in every device-domain hypercall: owner partition, VTL, id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceDomain {
    /// Owning partition (`SELF` for the root's own domains).
    pub partition: PartitionId,
    /// Owner VTL.
    pub owner_vtl: InputVtl,
    /// Domain id.
    pub domain: DeviceDomainId,
}

impl DeviceDomain {
    /// An S2 domain owned by the caller's own partition, VTL 0.
    pub const fn own_s2(id: u32) -> Self {
        Self {
            partition: PartitionId::SELF,
            owner_vtl: InputVtl {
                target_vtl: 0,
                use_target_vtl: false,
            },
            domain: DeviceDomainId::s2(id),
        }
    }

    /// The wire form.
    pub fn to_raw(self) -> RawInputDeviceDomain {
        RawInputDeviceDomain {
            partition_id: U64::new(self.partition.0),
            owner_vtl: self.owner_vtl.encode(),
            padding: [0; 7],
            domain_id: U64::new(self.domain.encode()),
        }
    }

    /// Decodes the wire form.
    pub fn from_raw(raw: &RawInputDeviceDomain) -> Result<Self, AbiError> {
        if raw.padding != [0; 7] {
            return Err(AbiError::ReservedNonZero);
        }
        Ok(Self {
            partition: PartitionId(raw.partition_id.get()),
            owner_vtl: InputVtl::decode(raw.owner_vtl)?,
            domain: DeviceDomainId::decode(raw.domain_id.get())?,
        })
    }
}

/// `union hv_create_device_domain_flags`: bit 0 `forward_progress_required`, bit 1
/// `inherit_owning_vtl`, bits 2..31 reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CreateDomainFlags {
    /// `forward_progress_required`.
    pub forward_progress_required: bool,
    /// `inherit_owning_vtl`.
    pub inherit_owning_vtl: bool,
}

impl CreateDomainFlags {
    /// Encodes the flag word.
    pub const fn encode(self) -> u32 {
        (self.forward_progress_required as u32) | ((self.inherit_owning_vtl as u32) << 1)
    }

    /// Decodes the flag word, rejecting reserved bits.
    pub const fn decode(v: u32) -> Result<Self, AbiError> {
        if v & !0x3 != 0 {
            return Err(AbiError::ReservedNonZero);
        }
        Ok(Self {
            forward_progress_required: v & 1 != 0,
            inherit_owning_vtl: v & 2 != 0,
        })
    }
}

/// `struct hv_input_create_device_domain` (28 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawCreateDeviceDomain {
    /// The domain to create.
    pub device_domain: RawInputDeviceDomain,
    /// `union hv_create_device_domain_flags`.
    pub flags: U32,
}

/// `struct hv_input_delete_device_domain` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawDeleteDeviceDomain {
    /// The domain to delete.
    pub device_domain: RawInputDeviceDomain,
}

/// `struct hv_input_attach_device_domain` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawAttachDeviceDomain {
    /// The domain to attach to.
    pub device_domain: RawInputDeviceDomain,
    /// `union hv_device_id`.
    pub device_id: U64,
}

/// `struct hv_input_detach_device_domain` (16 bytes). It names no domain.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawDetachDeviceDomain {
    /// Owning partition of the device's domain.
    pub partition_id: U64,
    /// `union hv_device_id`.
    pub device_id: U64,
}

/// Header of `struct hv_input_map_device_gpa_pages` (40 bytes), followed by the rep list
/// `u64 gpa_page_list[]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawMapDeviceGpaPages {
    /// The domain to map into.
    pub device_domain: RawInputDeviceDomain,
    /// Target VTL.
    pub target_vtl: u8,
    /// Must be zero.
    pub padding: [u8; 3],
    /// `HV_MAP_GPA_*` flags.
    pub map_flags: U32,
    /// Device virtual address (IOVA) of rep 0.
    pub target_device_va_base: U64,
}

/// `struct hv_input_unmap_device_gpa_pages` (32 bytes). The reps are a count, with no list.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawUnmapDeviceGpaPages {
    /// The domain to unmap from.
    pub device_domain: RawInputDeviceDomain,
    /// Device virtual address (IOVA) of rep 0.
    pub target_device_va_base: U64,
}

/// `struct hv_input_attach_device` (40 bytes): direct attach of a device to a guest partition.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawAttachDevice {
    /// The guest partition.
    pub partition_id: U64,
    /// `union hv_device_id` (PCI on the root, logical on L1VH).
    pub device_id: U64,
    /// `union hv_attdev_flags`.
    pub attdev_flags: U32,
    /// VTL.
    pub attdev_vtl: u8,
    /// Must be zero.
    pub rsvd0: u8,
    /// Must be zero.
    pub rsvd1: U16,
    /// The logical device id chosen by the root.
    pub logical_devid: U64,
    /// `union hv_dev_pci_caps`.
    pub dev_pcicaps: U32,
    /// RID of the physical function (for a VF).
    pub pf_pci_rid: U16,
    /// Must be zero.
    pub resvd2: U16,
}

/// `struct hv_input_detach_device` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawDetachDevice {
    /// The guest partition.
    pub partition_id: U64,
    /// The logical device id used at attach.
    pub logical_devid: U64,
}

/// Header of `struct hv_input_deposit_memory` (8 bytes), followed by the rep list
/// `u64 gpa_page_list[]` (page frame numbers of the pages given to the partition).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawDepositMemory {
    /// The partition whose pool receives the pages.
    pub partition_id: U64,
}

/// `struct hv_input_flush_device_domain` (32 bytes; Appendix A).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawFlushDeviceDomain {
    /// The domain to flush.
    pub device_domain: RawInputDeviceDomain,
    /// Flags (none defined).
    pub flags: U32,
    /// Must be zero.
    pub reserved: U32,
}

/// `struct hv_input_get_iommu_capabilities` (16 bytes; Appendix A).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawGetIommuCapabilities {
    /// The partition asking.
    pub partition_id: U64,
    /// Must be zero.
    pub reserved: U64,
}

/// `struct hv_output_get_iommu_capabilities` (24 bytes; Appendix A).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct RawIommuCapabilities {
    /// Size of this struct.
    pub size: U32,
    /// Reserved.
    pub reserved: U16,
    /// Largest IOVA width in bits.
    pub max_iova_width: u8,
    /// Largest PASID width in bits.
    pub max_pasid_width: u8,
    /// `HV_IOMMU_CAP_*`.
    pub iommu_cap: U64,
    /// Supported page sizes.
    pub pgsize_bitmap: U64,
}

/// Bytes of the MAP header: the GPA page list starts here.
pub const MAP_HEADER_SIZE: usize = size_of::<RawMapDeviceGpaPages>();

/// Page numbers per MAP input page: `(4096 - 40) / 8 = 507`.
pub const MAP_PAGES_PER_CALL: usize = (HV_PAGE_SIZE - MAP_HEADER_SIZE) / 8;

/// Page numbers per DEPOSIT input page: `(4096 - 8) / 8 = 511`.
pub const DEPOSIT_PAGES_PER_CALL: usize = (HV_PAGE_SIZE - size_of::<RawDepositMemory>()) / 8;

// Layout checks against seed-series §1(b) 4 and Appendix A.
const _: () = {
    assert!(size_of::<RawInputDeviceDomain>() == 24);
    assert!(offset_of!(RawInputDeviceDomain, owner_vtl) == 8);
    assert!(offset_of!(RawInputDeviceDomain, padding) == 9);
    assert!(offset_of!(RawInputDeviceDomain, domain_id) == 16);

    assert!(size_of::<RawCreateDeviceDomain>() == 28);
    assert!(offset_of!(RawCreateDeviceDomain, flags) == 24);

    assert!(size_of::<RawDeleteDeviceDomain>() == 24);

    assert!(size_of::<RawAttachDeviceDomain>() == 32);
    assert!(offset_of!(RawAttachDeviceDomain, device_id) == 24);

    assert!(size_of::<RawDetachDeviceDomain>() == 16);
    assert!(offset_of!(RawDetachDeviceDomain, device_id) == 8);

    assert!(size_of::<RawMapDeviceGpaPages>() == 40);
    assert!(offset_of!(RawMapDeviceGpaPages, target_vtl) == 24);
    assert!(offset_of!(RawMapDeviceGpaPages, padding) == 25);
    assert!(offset_of!(RawMapDeviceGpaPages, map_flags) == 28);
    assert!(offset_of!(RawMapDeviceGpaPages, target_device_va_base) == 32);
    assert!(MAP_PAGES_PER_CALL == 507);

    assert!(size_of::<RawUnmapDeviceGpaPages>() == 32);
    assert!(offset_of!(RawUnmapDeviceGpaPages, target_device_va_base) == 24);

    assert!(size_of::<RawAttachDevice>() == 40);
    assert!(offset_of!(RawAttachDevice, device_id) == 8);
    assert!(offset_of!(RawAttachDevice, attdev_flags) == 16);
    assert!(offset_of!(RawAttachDevice, attdev_vtl) == 20);
    assert!(offset_of!(RawAttachDevice, rsvd0) == 21);
    assert!(offset_of!(RawAttachDevice, rsvd1) == 22);
    assert!(offset_of!(RawAttachDevice, logical_devid) == 24);
    assert!(offset_of!(RawAttachDevice, dev_pcicaps) == 32);
    assert!(offset_of!(RawAttachDevice, pf_pci_rid) == 36);
    assert!(offset_of!(RawAttachDevice, resvd2) == 38);

    assert!(size_of::<RawDetachDevice>() == 16);
    assert!(offset_of!(RawDetachDevice, logical_devid) == 8);

    assert!(size_of::<RawDepositMemory>() == 8);
    assert!(DEPOSIT_PAGES_PER_CALL == 511);

    assert!(size_of::<RawFlushDeviceDomain>() == 32);
    assert!(offset_of!(RawFlushDeviceDomain, flags) == 24);

    assert!(size_of::<RawGetIommuCapabilities>() == 16);
    assert!(size_of::<RawIommuCapabilities>() == 24);
    assert!(offset_of!(RawIommuCapabilities, max_iova_width) == 6);
    assert!(offset_of!(RawIommuCapabilities, iommu_cap) == 8);
    assert!(offset_of!(RawIommuCapabilities, pgsize_bitmap) == 16);
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use zerocopy::{FromBytes, IntoBytes};

    #[test]
    fn domain_id_example_from_spec() {
        // S2 type with id 0x12345678 gives 0x1234567800000000.
        assert_eq!(
            DeviceDomainId::s2(0x1234_5678).encode(),
            0x1234_5678_0000_0000
        );
        assert_eq!(
            DeviceDomainId::decode(0x1234_5678_0000_0010),
            Err(AbiError::ReservedNonZero)
        );
        assert_eq!(DeviceDomainId::decode(3), Err(AbiError::UnknownValue));
    }

    #[test]
    fn device_domain_bytes() {
        let raw = DeviceDomain::own_s2(7).to_raw();
        let b = raw.as_bytes();
        assert_eq!(&b[0..8], &[0xff; 8]);
        assert_eq!(&b[8..16], &[0; 8]);
        assert_eq!(&b[16..24], &[0, 0, 0, 0, 7, 0, 0, 0]);
        let mut bad = [0u8; 24];
        bad.copy_from_slice(b);
        bad[12] = 1;
        let parsed = RawInputDeviceDomain::read_from_bytes(&bad[..]).unwrap();
        assert_eq!(
            DeviceDomain::from_raw(&parsed),
            Err(AbiError::ReservedNonZero)
        );
    }

    proptest! {
        #[test]
        fn device_domain_roundtrip(part: u64, vtl in 0u8..16, use_vtl: bool, ty in 0u8..3, id: u32) {
            let ty = [DomainType::S2, DomainType::S1, DomainType::Soc][ty as usize];
            let d = DeviceDomain {
                partition: PartitionId(part),
                owner_vtl: InputVtl { target_vtl: vtl, use_target_vtl: use_vtl },
                domain: DeviceDomainId { ty, id },
            };
            prop_assert_eq!(DeviceDomain::from_raw(&d.to_raw()), Ok(d));
        }

        #[test]
        fn device_domain_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 24)) {
            let raw = RawInputDeviceDomain::read_from_bytes(&bytes[..]).unwrap();
            if let Ok(d) = DeviceDomain::from_raw(&raw) {
                let raw = d.to_raw();
                prop_assert_eq!(raw.as_bytes(), &bytes[..]);
            }
        }

        #[test]
        fn create_flags_roundtrip(v: u32) {
            match CreateDomainFlags::decode(v) {
                Ok(f) => prop_assert_eq!(f.encode(), v),
                Err(e) => prop_assert_eq!(e, AbiError::ReservedNonZero),
            }
        }
    }
}
