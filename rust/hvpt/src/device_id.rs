// SPDX-License-Identifier: GPL-2.0

//! `union hv_device_id`: how a hypercall names a device (seed-series §1(b) 6).
//!
//! The 64-bit value carries its type in bits 62..63. The two types this project uses are:
//! - **PCI** (type 1): requester id, segment, an optional shadow bus range of a PCI-X bridge
//!   that owns the DMA alias, phantom function bits and the `source_shadow` selector;
//! - **logical** (type 0): a 62-bit id. On a root partition it is `(segment << 16) | bdf`; on
//!   L1VH it is derived from the VMBus instance GUID of the pci-hyperv bus.
//!
//! Building the PCI form needs the kernel (the DMA-alias walk and the bridge's PCI-X status are
//! read from config space); the part that does not, turning what that walk found into the id, is
//! here so that it is unit-tested on the host.

use super::abi::AbiError;

const TYPE_SHIFT: u32 = 62;
const TYPE_LOGICAL: u64 = 0;
const TYPE_PCI: u64 = 1;
const LOGICAL_MASK: u64 = (1 << TYPE_SHIFT) - 1;
/// Bits 51..61 of the PCI form (`rsvdz0`).
const PCI_RSVD_MASK: u64 = ((1 << 11) - 1) << 51;

/// A PCI requester id: bus, device (0..32) and function (0..8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciRid(pub u16);

impl PciRid {
    /// The requester id of `bus:devfn`.
    pub const fn new(bus: u8, devfn: u8) -> Self {
        Self(((bus as u16) << 8) | devfn as u16)
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// `devfn` (device << 3 | function).
    pub const fn devfn(self) -> u8 {
        self.0 as u8
    }

    /// The function number.
    pub const fn function(self) -> u8 {
        self.0 as u8 & 7
    }
}

/// The secondary/subordinate bus range of a bridge in PCI-X mode, used when the device's DMA
/// requests carry that bridge's id (`HV_SOURCE_SHADOW_BRIDGE_BUS_RANGE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShadowBusRange {
    /// The bridge's secondary bus.
    pub secondary: u8,
    /// The bridge's subordinate bus.
    pub subordinate: u8,
}

/// The PCI form of a device id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PciDeviceId {
    /// PCI segment (`pci_domain_nr`).
    pub segment: u16,
    /// The requester id DMA arrives with (the device's own, or the alias on another bus).
    pub rid: PciRid,
    /// Set when the alias is a PCI-X bridge: requests carry bus numbers in this range.
    pub shadow: Option<ShadowBusRange>,
    /// `phantom_function_bits` (0..=3).
    pub phantom_function_bits: u8,
}

/// A device id as passed to ATTACH/DETACH_DEVICE_DOMAIN and ATTACH_DEVICE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceId {
    /// `HV_DEVICE_TYPE_PCI`.
    Pci(PciDeviceId),
    /// `HV_DEVICE_TYPE_LOGICAL`: a 62-bit id.
    Logical(LogicalId),
}

/// A 62-bit logical device id.
///
/// # Invariants
///
/// The value fits in 62 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalId(u64);

impl LogicalId {
    /// A logical id; `None` if `v` does not fit in 62 bits.
    pub const fn new(v: u64) -> Option<Self> {
        if v & !LOGICAL_MASK != 0 {
            return None;
        }
        // INVARIANT: checked above.
        Some(Self(v))
    }

    /// The value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The root partition's logical id of a PCI function: `(segment << 16) | bdf`, with no
    /// DMA-alias walk (`hv_build_devid_type_logical`).
    pub const fn from_bdf(segment: u16, rid: PciRid) -> Self {
        // INVARIANT: at most 32 bits.
        Self(((segment as u64) << 16) | rid.0 as u64)
    }

    /// The logical id a direct attach of hypervisor device `dev` uses: an L1VH device's own
    /// (logical) id, or [`LogicalId::from_bdf`] of the requester id a PCI-type id names.
    /// Functions that alias to one requester id are one hypervisor device, attached once, so
    /// they share it (the seed series used each function's own BDF, which gives an aliased
    /// device two logical ids for one attach).
    pub const fn of_device(dev: DeviceId) -> Self {
        match dev {
            DeviceId::Logical(l) => l,
            DeviceId::Pci(p) => Self::from_bdf(p.segment, p.rid),
        }
    }

    /// The L1VH logical id of a function on a pci-hyperv (VMBus) bus, from the bus's VMBus
    /// instance GUID bytes: `g[5] << 24 | g[4] << 16 | g[7] << 8 | (g[6] & 0xf8) | function`
    /// (`hv_pci_vmbus_device_id`; the same formula pci-hyperv uses for RETARGET_INTERRUPT).
    pub const fn from_vmbus_guid(guid: &[u8; 16], devfn: u8) -> Self {
        let v = ((guid[5] as u64) << 24)
            | ((guid[4] as u64) << 16)
            | ((guid[7] as u64) << 8)
            | (guid[6] & 0xf8) as u64
            | (devfn & 7) as u64;
        // INVARIANT: at most 32 bits.
        Self(v)
    }
}

impl DeviceId {
    /// The PCI-type id of `segment:bus:devfn` with no alias and no shadow range.
    pub const fn pci(segment: u16, bus: u8, devfn: u8) -> Self {
        Self::Pci(PciDeviceId {
            segment,
            rid: PciRid::new(bus, devfn),
            shadow: None,
            phantom_function_bits: 0,
        })
    }

    /// Encodes the 64-bit value.
    pub const fn encode(self) -> u64 {
        match self {
            Self::Logical(l) => (TYPE_LOGICAL << TYPE_SHIFT) | l.0,
            Self::Pci(p) => {
                let (range, source_shadow) = match p.shadow {
                    Some(r) => (((r.secondary as u64) << 8) | r.subordinate as u64, 1u64),
                    None => (0, 0),
                };
                (p.rid.0 as u64)
                    | ((p.segment as u64) << 16)
                    | (range << 32)
                    | (((p.phantom_function_bits & 3) as u64) << 48)
                    | (source_shadow << 50)
                    | (TYPE_PCI << TYPE_SHIFT)
            }
        }
    }

    /// Decodes the 64-bit value. Only the logical and PCI types are accepted; the PCI form must
    /// have its reserved bits clear, and a shadow bus range only with `source_shadow` set.
    pub const fn decode(v: u64) -> Result<Self, AbiError> {
        match v >> TYPE_SHIFT {
            TYPE_LOGICAL => Ok(Self::Logical(LogicalId(v & LOGICAL_MASK))),
            TYPE_PCI => {
                if v & PCI_RSVD_MASK != 0 {
                    return Err(AbiError::ReservedNonZero);
                }
                let range = (v >> 32) as u16;
                let shadow = if v & (1 << 50) != 0 {
                    Some(ShadowBusRange {
                        secondary: (range >> 8) as u8,
                        subordinate: range as u8,
                    })
                } else if range != 0 {
                    return Err(AbiError::ReservedNonZero);
                } else {
                    None
                };
                Ok(Self::Pci(PciDeviceId {
                    segment: (v >> 16) as u16,
                    rid: PciRid(v as u16),
                    shadow,
                    phantom_function_bits: ((v >> 48) & 3) as u8,
                }))
            }
            _ => Err(AbiError::UnknownValue),
        }
    }
}

/// What the kernel's DMA-alias walk found for a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaAlias {
    /// The last alias whose bus differs from the device's own (`None` if every alias is on the
    /// device's bus).
    pub alias_rid: Option<PciRid>,
    /// The bus range of the bridge owning that alias, if the bridge runs in PCI-X mode.
    pub pcix_bridge_range: Option<ShadowBusRange>,
}

/// Builds the PCI-type id (`hv_build_devid_type_pci`): the requester id is the alias found on
/// another bus if any, and a PCI-X bridge contributes its bus range as the shadow range.
pub const fn pci_device_id(segment: u16, rid: PciRid, alias: DmaAlias) -> DeviceId {
    let (rid, shadow) = match alias.alias_rid {
        Some(a) => (a, alias.pcix_bridge_range),
        None => (rid, None),
    };
    DeviceId::Pci(PciDeviceId {
        segment,
        rid,
        shadow,
        phantom_function_bits: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pci_layout_matches_the_c_union() {
        // segment 0x0001, bus 0x3a, dev 0x1f, fn 7; PCI-X bridge 0x3b..0x3f.
        let id = DeviceId::Pci(PciDeviceId {
            segment: 1,
            rid: PciRid::new(0x3a, (0x1f << 3) | 7),
            shadow: Some(ShadowBusRange {
                secondary: 0x3b,
                subordinate: 0x3f,
            }),
            phantom_function_bits: 0,
        });
        // rid 0x3aff, segment @16, subordinate @32, secondary @40, source_shadow @50, type @62.
        assert_eq!(
            id.encode(),
            0x3aff | 1 << 16 | 0x3f << 32 | 0x3b << 40 | 1 << 50 | 1 << 62
        );
    }

    #[test]
    fn logical_ids() {
        let rid = PciRid::new(0x12, (3 << 3) | 1);
        assert_eq!(LogicalId::from_bdf(2, rid).get(), 0x2_1219);
        assert_eq!(
            DeviceId::Logical(LogicalId::from_bdf(2, rid)).encode() >> 62,
            0
        );
        let g = [
            0, 1, 2, 3, 0x44, 0x55, 0x6f, 0x77, 8, 9, 10, 11, 12, 13, 14, 15,
        ];
        assert_eq!(LogicalId::from_vmbus_guid(&g, 0x0a).get(), 0x5544_7768 | 2);
        assert!(LogicalId::new(1 << 62).is_none());
        // Direct attach: an L1VH device's own id; a PCI-type id's requester id (the alias).
        let l = LogicalId::new(0x5544_776a).unwrap();
        assert_eq!(LogicalId::of_device(DeviceId::Logical(l)), l);
        assert_eq!(
            LogicalId::of_device(DeviceId::pci(2, 0x12, 0x19)).get(),
            0x2_1219
        );
    }

    #[test]
    fn alias_walk_result() {
        let rid = PciRid::new(5, 8);
        let none = DmaAlias {
            alias_rid: None,
            pcix_bridge_range: None,
        };
        assert_eq!(
            pci_device_id(0, rid, none).encode(),
            DeviceId::Pci(PciDeviceId {
                segment: 0,
                rid,
                shadow: None,
                phantom_function_bits: 0
            })
            .encode()
        );
        let bridge = DmaAlias {
            alias_rid: Some(PciRid::new(4, 0)),
            pcix_bridge_range: Some(ShadowBusRange {
                secondary: 5,
                subordinate: 6,
            }),
        };
        assert_eq!(
            pci_device_id(0, rid, bridge).encode(),
            0x400 | 6 << 32 | 5 << 40 | 1 << 50 | 1 << 62
        );
    }

    #[test]
    fn decode_rejects_bad_values() {
        assert_eq!(DeviceId::decode(2 << 62), Err(AbiError::UnknownValue));
        assert_eq!(
            DeviceId::decode(1 << 62 | 1 << 51),
            Err(AbiError::ReservedNonZero)
        );
        // A bus range without source_shadow.
        assert_eq!(
            DeviceId::decode(1 << 62 | 1 << 32),
            Err(AbiError::ReservedNonZero)
        );
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(v in any::<u64>()) {
            if let Ok(id) = DeviceId::decode(v) {
                prop_assert_eq!(id.encode(), v);
            }
        }
    }
}
