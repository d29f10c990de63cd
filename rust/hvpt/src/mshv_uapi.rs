// SPDX-License-Identifier: GPL-2.0

//! The `/dev/mshv` uAPI subset that VMMs use to hand a VFIO device to an MSHV guest, and the
//! kernel's rules for it, as plain data and functions shared by the simulated `/dev/mshv` and
//! the mshv-vfio bridge (and checked against the numbers rust-vmm sends, on the host).
//!
//! - `/dev/mshv`: `MSHV_CREATE_PARTITION`, in the 16-byte v1 layout the ioctl number encodes or
//!   the 64-byte v2 layout that follows it when `pt_flags` bit 3 is set (7.3's
//!   `mshv_ioctl_process_pt_flags()`).
//! - the partition fd: `MSHV_INITIALIZE_PARTITION`, `MSHV_CREATE_DEVICE`.
//! - the device fd: `MSHV_SET_DEVICE_ATTR` (nr 0x00), nr 0x01 and nr 0x02. The seed series numbers
//!   `MSHV_HAS_DEVICE_ATTR` 0x01; rust-vmm's `mshv-ioctls` numbers `get_device_attr` 0x01 and
//!   `has_device_attr` 0x02, all with the same `_IOW` encoding of the 24-byte attribute. Both
//!   0x01 and 0x02 are answered as *has*: the VFIO device type has no attribute that can be
//!   read, so a get could only ever return what has returns (0 for an attribute that exists,
//!   `ENXIO` otherwise) and write nothing. See `Documentation/mshv-vfio-bridge.rst`.

use core::mem::{offset_of, size_of};

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::FromBytes;
use zerocopy_derive::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::errno::{self, Errno};

/// `MSHV_IOCTL`, the ioctl type of every mshv file.
pub const MSHV_IOCTL: u32 = 0xB8;

const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// Linux's `_IOC(dir, type, nr, size)` (x86 and arm64 layout: nr 8 bits, type 8, size 14, dir 2).
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (ty << 8) | nr
}

/// `MSHV_CREATE_PARTITION` on `/dev/mshv`: `_IOW(0xB8, 0x00, struct mshv_create_partition)`.
pub const MSHV_CREATE_PARTITION: u32 =
    ioc(IOC_WRITE, MSHV_IOCTL, 0x00, size_of::<CreatePartition>());
/// `MSHV_INITIALIZE_PARTITION` on a partition fd: `_IO(0xB8, 0x00)`.
pub const MSHV_INITIALIZE_PARTITION: u32 = ioc(IOC_NONE, MSHV_IOCTL, 0x00, 0);
/// `MSHV_SET_GUEST_MEMORY` on a partition fd: `_IOW(0xB8, 0x02, struct mshv_user_mem_region)`.
pub const MSHV_SET_GUEST_MEMORY: u32 = ioc(IOC_WRITE, MSHV_IOCTL, 0x02, size_of::<UserMemRegion>());
/// `MSHV_CREATE_DEVICE` on a partition fd: `_IOWR(0xB8, 0x08, struct mshv_create_device)`.
pub const MSHV_CREATE_DEVICE: u32 = ioc(
    IOC_READ | IOC_WRITE,
    MSHV_IOCTL,
    0x08,
    size_of::<CreateDevice>(),
);
/// `MSHV_SET_DEVICE_ATTR` on a device fd: `_IOW(0xB8, 0x00, struct mshv_device_attr)`.
pub const MSHV_SET_DEVICE_ATTR: u32 = ioc(IOC_WRITE, MSHV_IOCTL, 0x00, size_of::<DeviceAttr>());
/// Device-fd nr 0x01: the seed's `MSHV_HAS_DEVICE_ATTR`, rust-vmm's `get_device_attr`.
pub const MSHV_DEVICE_ATTR_NR1: u32 = ioc(IOC_WRITE, MSHV_IOCTL, 0x01, size_of::<DeviceAttr>());
/// Device-fd nr 0x02: rust-vmm's `has_device_attr`.
pub const MSHV_DEVICE_ATTR_NR2: u32 = ioc(IOC_WRITE, MSHV_IOCTL, 0x02, size_of::<DeviceAttr>());

/// `MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES`: the caller passed the v2 struct.
pub const MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES: u32 = 3;
/// `MSHV_PT_BIT_COUNT`: flags at or above are refused.
pub const MSHV_PT_BIT_COUNT: u32 = 6;
/// `MSHV_PT_ISOLATION_COUNT`: isolation values at or above are refused.
pub const MSHV_PT_ISOLATION_COUNT: u64 = 1;
/// `MSHV_NUM_CPU_FEATURES_BANKS`.
pub const MSHV_NUM_CPU_FEATURES_BANKS: u16 = 2;

/// `MSHV_SET_MEM_BIT_WRITABLE`.
pub const MSHV_SET_MEM_BIT_WRITABLE: u8 = 0;
/// `MSHV_SET_MEM_BIT_EXECUTABLE`.
pub const MSHV_SET_MEM_BIT_EXECUTABLE: u8 = 1;
/// `MSHV_SET_MEM_BIT_UNMAP`.
pub const MSHV_SET_MEM_BIT_UNMAP: u8 = 2;
/// `MSHV_SET_MEM_FLAGS_MASK`.
pub const MSHV_SET_MEM_FLAGS_MASK: u8 = (1 << 3) - 1;
/// `MSHV_HV_PAGE_SIZE`: guest page numbers count 4K pages.
pub const MSHV_HV_PAGE_SIZE: u64 = 4096;

/// `MSHV_DEV_TYPE_VFIO`.
pub const MSHV_DEV_TYPE_VFIO: u32 = 0;
/// `MSHV_CREATE_DEVICE_TEST`: check that the type could be created, create nothing.
pub const MSHV_CREATE_DEVICE_TEST: u32 = 1;
/// `MSHV_DEV_VFIO_FILE`, the attribute group of VFIO files.
pub const MSHV_DEV_VFIO_FILE: u32 = 1;
/// `MSHV_DEV_VFIO_FILE_ADD`.
pub const MSHV_DEV_VFIO_FILE_ADD: u64 = 1;
/// `MSHV_DEV_VFIO_FILE_DEL`.
pub const MSHV_DEV_VFIO_FILE_DEL: u64 = 2;

/// `struct mshv_create_partition` (v1, 16 bytes).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct CreatePartition {
    /// `1 << MSHV_PT_BIT_*`.
    pub pt_flags: U64,
    /// `MSHV_PT_ISOLATION_*`.
    pub pt_isolation: U64,
}

/// `struct mshv_create_partition_v2` (64 bytes, packed).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct CreatePartitionV2 {
    /// As v1.
    pub pt_flags: U64,
    /// As v1.
    pub pt_isolation: U64,
    /// Must be [`MSHV_NUM_CPU_FEATURES_BANKS`].
    pub pt_num_cpu_fbanks: U16,
    /// Must be zero.
    pub pt_rsvd: [u8; 6],
    /// Disabled processor feature banks.
    pub pt_cpu_fbanks: [U64; 2],
    /// Must be zero.
    pub pt_rsvd1: [U64; 2],
    /// Disabled xsave features (x86-64; must be zero elsewhere).
    pub pt_disabled_xsave: U64,
}

/// `struct mshv_user_mem_region` (32 bytes).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct UserMemRegion {
    /// Bytes; a nonzero multiple of 4K.
    pub size: U64,
    /// First guest page number.
    pub guest_pfn: U64,
    /// User address of the memory; 4K-aligned.
    pub userspace_addr: U64,
    /// `1 << MSHV_SET_MEM_BIT_*`.
    pub flags: u8,
    /// Must be zero.
    pub rsvd: [u8; 7],
}

/// `struct mshv_create_device` (12 bytes).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct CreateDevice {
    /// `MSHV_DEV_TYPE_*` (in).
    pub ty: U32,
    /// The device fd (out).
    pub fd: U32,
    /// `MSHV_CREATE_DEVICE_*` (in).
    pub flags: U32,
}

/// `struct mshv_device_attr` (24 bytes), the layout of `struct kvm_device_attr`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct DeviceAttr {
    /// Must be zero.
    pub flags: U32,
    /// Attribute group.
    pub group: U32,
    /// Attribute in the group.
    pub attr: U64,
    /// User pointer to the attribute's value (for VFIO files: an `int32` fd).
    pub addr: U64,
}

const _: () = {
    assert!(size_of::<CreatePartition>() == 16);
    assert!(size_of::<CreatePartitionV2>() == 64);
    assert!(offset_of!(CreatePartitionV2, pt_num_cpu_fbanks) == 16);
    assert!(offset_of!(CreatePartitionV2, pt_rsvd) == 18);
    assert!(offset_of!(CreatePartitionV2, pt_cpu_fbanks) == 24);
    assert!(offset_of!(CreatePartitionV2, pt_rsvd1) == 40);
    assert!(offset_of!(CreatePartitionV2, pt_disabled_xsave) == 56);
    assert!(size_of::<UserMemRegion>() == 32);
    assert!(offset_of!(UserMemRegion, flags) == 24);
    assert!(size_of::<CreateDevice>() == 12);
    assert!(offset_of!(CreateDevice, fd) == 4);
    assert!(offset_of!(CreateDevice, flags) == 8);
    assert!(size_of::<DeviceAttr>() == 24);
    assert!(offset_of!(DeviceAttr, group) == 4);
    assert!(offset_of!(DeviceAttr, attr) == 8);
    assert!(offset_of!(DeviceAttr, addr) == 16);
};

/// A partition as `MSHV_CREATE_PARTITION` asked for it, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionRequest {
    /// `1 << MSHV_PT_BIT_*`.
    pub flags: u64,
    /// Disabled processor feature banks (zero for v1).
    pub cpu_fbanks: [u64; 2],
    /// Disabled xsave features (zero for v1).
    pub disabled_xsave: u64,
}

fn check_v1(flags: u64, isolation: u64) -> Result<(), Errno> {
    if flags >> MSHV_PT_BIT_COUNT != 0 || isolation >= MSHV_PT_ISOLATION_COUNT {
        return Err(errno::EINVAL);
    }
    Ok(())
}

/// Validates `MSHV_CREATE_PARTITION` as 7.3's `mshv_ioctl_process_pt_flags()` does. `read`
/// copies the start of the user's struct into its argument (`EFAULT` and the like are its
/// errors): first the 16 bytes the ioctl number encodes, then, only when `pt_flags` has
/// [`MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES`], all 64 bytes of the v2 struct, whose v1 fields are
/// checked again (the user may have changed them in between).
pub fn create_partition(
    read: &mut dyn FnMut(&mut [u8]) -> Result<(), Errno>,
) -> Result<PartitionRequest, Errno> {
    let mut v1 = [0u8; size_of::<CreatePartition>()];
    read(&mut v1)?;
    let a = CreatePartition::read_from_bytes(&v1).map_err(|_| errno::EINVAL)?;
    let (flags, isolation) = (a.pt_flags.get(), a.pt_isolation.get());
    check_v1(flags, isolation)?;
    if flags & (1 << MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES) == 0 {
        return Ok(PartitionRequest {
            flags,
            cpu_fbanks: [0; 2],
            disabled_xsave: 0,
        });
    }
    let mut v2 = [0u8; size_of::<CreatePartitionV2>()];
    read(&mut v2)?;
    let b = CreatePartitionV2::read_from_bytes(&v2).map_err(|_| errno::EINVAL)?;
    let flags = b.pt_flags.get();
    check_v1(flags, b.pt_isolation.get())?;
    if b.pt_num_cpu_fbanks.get() != MSHV_NUM_CPU_FEATURES_BANKS
        || b.pt_rsvd.iter().any(|&x| x != 0)
        || b.pt_rsvd1.iter().any(|x| x.get() != 0)
    {
        return Err(errno::EINVAL);
    }
    Ok(PartitionRequest {
        flags,
        cpu_fbanks: b.pt_cpu_fbanks.map(|x| x.get()),
        disabled_xsave: b.pt_disabled_xsave.get(),
    })
}

/// What `MSHV_SET_GUEST_MEMORY` asks for, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestMemory {
    /// First guest page number.
    pub gfn: u64,
    /// 4K pages.
    pub pages: u64,
    /// User address.
    pub uaddr: u64,
    /// Remove the region (the other flags are ignored, as in 7.3).
    pub unmap: bool,
    /// The guest may write it.
    pub writable: bool,
}

/// Validates `MSHV_SET_GUEST_MEMORY` as 7.3's `mshv_partition_ioctl_set_memory()` does (zero or
/// unaligned size, unaligned address, unknown flags, nonzero reserved bytes: `EINVAL`), and
/// also refuses a region whose guest or user range wraps around (`EINVAL`), which 7.3 does
/// not check.
pub fn guest_memory(r: &UserMemRegion) -> Result<GuestMemory, Errno> {
    let (size, uaddr, gfn) = (r.size.get(), r.userspace_addr.get(), r.guest_pfn.get());
    if size == 0
        || size % MSHV_HV_PAGE_SIZE != 0
        || uaddr % MSHV_HV_PAGE_SIZE != 0
        || r.flags & !MSHV_SET_MEM_FLAGS_MASK != 0
        || r.rsvd.iter().any(|&b| b != 0)
    {
        return Err(errno::EINVAL);
    }
    let pages = size / MSHV_HV_PAGE_SIZE;
    if gfn.checked_add(pages).is_none() || uaddr.checked_add(size).is_none() {
        return Err(errno::EINVAL);
    }
    Ok(GuestMemory {
        gfn,
        pages,
        uaddr,
        unmap: r.flags & (1 << MSHV_SET_MEM_BIT_UNMAP) != 0,
        writable: r.flags & (1 << MSHV_SET_MEM_BIT_WRITABLE) != 0,
    })
}

/// A VFIO-file attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOp {
    /// `MSHV_DEV_VFIO_FILE_ADD`: the int32 fd at `addr`.
    Add {
        /// User pointer to the fd.
        addr: u64,
    },
    /// `MSHV_DEV_VFIO_FILE_DEL`: the int32 fd at `addr`.
    Del {
        /// User pointer to the fd.
        addr: u64,
    },
}

/// Validates an attribute of the VFIO device type: nonzero `flags` are `EINVAL` (the seed did
/// not check them), an unknown group or attribute is `ENXIO`.
pub fn vfio_attr(a: &DeviceAttr) -> Result<FileOp, Errno> {
    if a.flags.get() != 0 {
        return Err(errno::EINVAL);
    }
    if a.group.get() != MSHV_DEV_VFIO_FILE {
        return Err(errno::ENXIO);
    }
    let addr = a.addr.get();
    match a.attr.get() {
        MSHV_DEV_VFIO_FILE_ADD => Ok(FileOp::Add { addr }),
        MSHV_DEV_VFIO_FILE_DEL => Ok(FileOp::Del { addr }),
        _ => Err(errno::ENXIO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    /// The numbers rust-vmm's `mshv-ioctls` and Cloud Hypervisor send (seed-series §1(b) 10,
    /// §5), and 7.3's.
    #[test]
    fn ioctl_numbers_are_the_clients() {
        assert_eq!(MSHV_CREATE_PARTITION, 0x4010_B800);
        assert_eq!(MSHV_INITIALIZE_PARTITION, 0xB800);
        assert_eq!(MSHV_CREATE_DEVICE, 0xC00C_B808);
        assert_eq!(MSHV_SET_DEVICE_ATTR, 0x4018_B800);
        assert_eq!(MSHV_DEVICE_ATTR_NR1, 0x4018_B801);
        assert_eq!(MSHV_DEVICE_ATTR_NR2, 0x4018_B802);
    }

    fn v2(flags: u64) -> CreatePartitionV2 {
        CreatePartitionV2 {
            pt_flags: U64::new(flags),
            pt_num_cpu_fbanks: U16::new(2),
            pt_cpu_fbanks: [U64::new(7), U64::new(9)],
            pt_disabled_xsave: U64::new(3),
            ..Default::default()
        }
    }

    /// Feeds `bytes` as user memory and counts the reads.
    fn from(bytes: &[u8], reads: &mut u32) -> Result<PartitionRequest, Errno> {
        create_partition(&mut |dst| {
            *reads += 1;
            let src = bytes.get(..dst.len()).ok_or(errno::EFAULT)?;
            dst.copy_from_slice(src);
            Ok(())
        })
    }

    #[test]
    fn create_partition_v1_and_v2() {
        // rust-vmm's default: LAPIC, X2APIC, GPA_SUPER_PAGES, CPU_AND_XSAVE_FEATURES.
        let mut reads = 0;
        let r = from(v2(0xf).as_bytes(), &mut reads).unwrap();
        assert_eq!(reads, 2);
        assert_eq!(r.cpu_fbanks, [7, 9]);
        assert_eq!(r.disabled_xsave, 3);
        // v1: 16 bytes are all there is; a 64-byte read would fault.
        let v1 = CreatePartition {
            pt_flags: U64::new(0x3),
            pt_isolation: U64::new(0),
        };
        let mut reads = 0;
        let r = from(v1.as_bytes(), &mut reads).unwrap();
        assert_eq!((reads, r.cpu_fbanks, r.disabled_xsave), (1, [0, 0], 0));
        // The v2 bit with only 16 readable bytes: the fault of the second read.
        let v1 = CreatePartition {
            pt_flags: U64::new(0x8),
            pt_isolation: U64::new(0),
        };
        assert_eq!(from(v1.as_bytes(), &mut 0), Err(errno::EFAULT));
    }

    #[test]
    fn create_partition_refuses_what_the_kernel_refuses() {
        let mut bad = v2(0xf);
        bad.pt_flags = U64::new(1 << 6);
        assert_eq!(from(bad.as_bytes(), &mut 0), Err(errno::EINVAL));
        let mut bad = v2(0xf);
        bad.pt_isolation = U64::new(1);
        assert_eq!(from(bad.as_bytes(), &mut 0), Err(errno::EINVAL));
        let mut bad = v2(0xf);
        bad.pt_num_cpu_fbanks = U16::new(3);
        assert_eq!(from(bad.as_bytes(), &mut 0), Err(errno::EINVAL));
        let mut bad = v2(0xf);
        bad.pt_rsvd[5] = 1;
        assert_eq!(from(bad.as_bytes(), &mut 0), Err(errno::EINVAL));
        let mut bad = v2(0xf);
        bad.pt_rsvd1[1] = U64::new(1);
        assert_eq!(from(bad.as_bytes(), &mut 0), Err(errno::EINVAL));
        // The v1 fields are checked again after the second read: changed in between.
        let good = v2(0xf);
        let mut evil = v2(0xf);
        evil.pt_flags = U64::new(0xf | 1 << 7);
        let mut n = 0;
        let r = create_partition(&mut |dst| {
            n += 1;
            let src = if n == 1 {
                good.as_bytes()
            } else {
                evil.as_bytes()
            };
            dst.copy_from_slice(&src[..dst.len()]);
            Ok(())
        });
        assert_eq!(r, Err(errno::EINVAL));
    }

    #[test]
    fn guest_memory_rules() {
        let r = |size: u64, gfn: u64, uaddr: u64, flags: u8| UserMemRegion {
            size: U64::new(size),
            guest_pfn: U64::new(gfn),
            userspace_addr: U64::new(uaddr),
            flags,
            rsvd: [0; 7],
        };
        assert_eq!(MSHV_SET_GUEST_MEMORY, 0x4020_B802);
        assert_eq!(
            guest_memory(&r(0x3000, 0x10, 0x7000_0000, 1)),
            Ok(GuestMemory {
                gfn: 0x10,
                pages: 3,
                uaddr: 0x7000_0000,
                unmap: false,
                writable: true
            })
        );
        assert!(guest_memory(&r(0x3000, 0x10, 0x7000_0000, 4)).is_ok_and(|m| m.unmap));
        assert_eq!(guest_memory(&r(0, 0, 0x1000, 1)), Err(errno::EINVAL));
        assert_eq!(guest_memory(&r(0x1800, 0, 0x1000, 1)), Err(errno::EINVAL));
        assert_eq!(guest_memory(&r(0x1000, 0, 0x1800, 1)), Err(errno::EINVAL));
        assert_eq!(guest_memory(&r(0x1000, 0, 0x1000, 8)), Err(errno::EINVAL));
        assert_eq!(
            guest_memory(&r(0x2000, u64::MAX, 0x1000, 1)),
            Err(errno::EINVAL)
        );
        assert_eq!(
            guest_memory(&r(0x2000, 0, u64::MAX & !0xfff, 1)),
            Err(errno::EINVAL)
        );
        let mut bad = r(0x1000, 0, 0x1000, 1);
        bad.rsvd[6] = 1;
        assert_eq!(guest_memory(&bad), Err(errno::EINVAL));
    }

    #[test]
    fn vfio_attrs() {
        let a = |flags, group, attr| DeviceAttr {
            flags: U32::new(flags),
            group: U32::new(group),
            attr: U64::new(attr),
            addr: U64::new(0x1000),
        };
        assert_eq!(vfio_attr(&a(0, 1, 1)), Ok(FileOp::Add { addr: 0x1000 }));
        assert_eq!(vfio_attr(&a(0, 1, 2)), Ok(FileOp::Del { addr: 0x1000 }));
        assert_eq!(vfio_attr(&a(1, 1, 1)), Err(errno::EINVAL));
        assert_eq!(vfio_attr(&a(0, 2, 1)), Err(errno::ENXIO));
        assert_eq!(vfio_attr(&a(0, 1, 3)), Err(errno::ENXIO));
    }
}
