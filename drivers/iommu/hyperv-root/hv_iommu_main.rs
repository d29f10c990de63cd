// SPDX-License-Identifier: GPL-2.0

//! hyperv-iommu-root: the IOMMU driver for Linux as the MSHV root partition (or L1VH), whose
//! domains are Hyper-V device domains.
//!
//! - identity domain: the hypervisor's boot-time default domain 0 (the default domain type);
//! - blocked domain: the hypervisor's NULL domain `0xFFFFFFFF`;
//! - paging domains: an S2 device domain per iommu domain (ids from an IDA, never 0 or
//!   `0xFFFFFFFF`); every map/unmap reaches the hypervisor before it returns, and a shadow
//!   table records what is mapped for an exact `iova_to_phys` and arbitrary partial unmaps.
//!
//! The iommu_ops tables and registration are C (`hv_iommu_shim.c`); the logic is the shared
//! `hvpt::iommu` code, called through the `hvir_rs_*` functions below. Every hypercall goes
//! through `mshv_hvcall.ko` (`boundary.rs`), so the driver runs unchanged on Hyper-V and on the
//! simulated hypervisor (`mshv_hvcall simulate=1`). See `Documentation/hyperv-iommu-root.rst`.

use core::ffi::{c_int, c_void, CStr};

use kernel::ffi::c_char;

use kernel::{
    prelude::*,
    sync::{new_spinlock_irq, SpinLockIrq},
};

/// The kernel-independent shared code.
#[path = "../../../rust/hvpt/src/lib.rs"]
pub mod hvpt;

/// Client side of the backend boundary (`mshv_hvcall.ko`).
#[path = "../../hv/hvcall/boundary.rs"]
pub mod boundary;

/// Kernel storage for the shared tables.
#[path = "../../hv/hvcall/kalloc.rs"]
pub mod kalloc;

use boundary::HvBackend;
use hvpt::abi::{CreateDomainFlags, DeviceDomain};
use hvpt::device_id::{pci_device_id, DeviceId, DmaAlias, LogicalId, PciRid, ShadowBusRange};
use hvpt::iommu::{attach, PagingDomain, Placement, RequestCounts, ShadowLock};
use hvpt::layer::{Context, Hv};
use hvpt::pagetable::PageTable;
use kalloc::KernelAlloc;

module! {
    type: HvIommu,
    name: "hyperv_iommu_root",
    authors: ["mshv-passthru developers"],
    description: "IOMMU driver for the Hyper-V root partition (device domains)",
    license: "GPL",
}

/// C functions of `hv_iommu_shim.c` (declared in `hv_iommu.h`).
mod shim {
    use kernel::ffi::{c_char, c_int};

    extern "C" {
        pub(super) fn hvir_register() -> c_int;
        pub(super) fn hvir_release() -> c_int;
        pub(super) fn hvir_unregister();
        pub(super) fn hvir_skip_list() -> *const c_char;
        pub(super) fn hvir_dma_list() -> *const c_char;
        pub(super) fn hvir_max_domains() -> core::ffi::c_uint;
    }
}

/// Map requests from the IOMMU core (all paging domains), for `hyperv_iommu_root/stats`.
static MAP_REQUESTS: RequestCounts = RequestCounts::new();
/// Unmap requests, likewise.
static UNMAP_REQUESTS: RequestCounts = RequestCounts::new();

/// `HVIR_DETACHED`.
const DETACHED: u64 = u64::MAX;

/// A paging domain's shadow table behind its lock (updated from `map_pages`, which may run in
/// atomic context, hence an IRQ-safe spinlock and atomic allocations).
#[pin_data]
struct Shadow {
    #[pin]
    table: SpinLockIrq<PageTable<KernelAlloc>>,
    id: u32,
}

impl ShadowLock<KernelAlloc> for Shadow {
    fn with<R>(&self, f: impl FnOnce(&mut PageTable<KernelAlloc>) -> R) -> R {
        f(&mut self.table.lock())
    }
}

fn neg(e: hvpt::errno::Errno) -> c_int {
    -e.0
}

/// Creates the hypervisor domain `id` and its shadow. Returns the state, or NULL with `*err`.
///
/// # Safety
///
/// `err` must be valid for writes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_domain_new(id: u32, err: *mut c_int) -> *mut c_void {
    let hv = Hv::new(&HvBackend);
    let flags = CreateDomainFlags {
        forward_progress_required: true,
        inherit_owning_vtl: false,
    };
    let fail = |e: c_int| {
        // SAFETY: by the function's safety requirements.
        unsafe { *err = e };
        core::ptr::null_mut()
    };
    let shadow = match KBox::pin_init(
        pin_init!(Shadow {
            table <- new_spinlock_irq!(PageTable::new()),
            id,
        }),
        GFP_KERNEL,
    ) {
        Ok(s) => s,
        Err(_) => return fail(ENOMEM.to_errno()),
    };
    if let Err(e) = hv.create_domain(DeviceDomain::own_s2(id), flags) {
        pr_err!("CREATE_DEVICE_DOMAIN {} failed: {}\n", id, -e.0);
        return fail(neg(e));
    }
    // SAFETY: the shadow is never moved out of the box; `hvir_rs_domain_free` turns the pointer
    // back into the pinned box.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(shadow) });
    raw.cast::<c_void>()
}

/// The shadow behind a state pointer.
///
/// # Safety
///
/// `rs` must come from `hvir_rs_domain_new` and not be freed yet.
unsafe fn shadow<'a>(rs: *mut c_void) -> &'a Shadow {
    // SAFETY: by the function's safety requirements.
    unsafe { &*rs.cast::<Shadow>() }
}

/// Unmaps everything, deletes the hypervisor domain and frees the state.
///
/// # Safety
///
/// `rs` must come from `hvir_rs_domain_new`; it is not used again. No device is attached.
#[no_mangle]
unsafe extern "C" fn hvir_rs_domain_free(rs: *mut c_void) {
    // SAFETY: by the function's safety requirements.
    let s = unsafe { shadow(rs) };
    let hv = Hv::new(&HvBackend);
    let d = PagingDomain::new(s.id, s);
    let stuck = d.unmap_all(&hv);
    if stuck != 0 {
        pr_err!("domain {}: {} pages could not be unmapped\n", s.id, stuck);
    }
    if let Err(e) = hv.delete_domain(d.domain) {
        pr_err!("DELETE_DEVICE_DOMAIN {} failed: {}\n", s.id, -e.0);
    }
    // SAFETY: `rs` came from `KBox::into_raw` in `hvir_rs_domain_new` and is freed once.
    drop(unsafe { KBox::from_raw(rs.cast::<Shadow>()) });
}

/// Maps `pages` pages; `*mapped` gets the bytes mapped.
///
/// # Safety
///
/// `rs` as for [`shadow`]; `mapped` valid for writes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_map(
    rs: *mut c_void,
    iova: u64,
    paddr: u64,
    pages: u64,
    prot: c_int,
    atomic: bool,
    mapped: *mut usize,
) -> c_int {
    // SAFETY: by the function's safety requirements.
    let s = unsafe { shadow(rs) };
    let ctx = if atomic {
        Context::Atomic
    } else {
        Context::Sleepable
    };
    match PagingDomain::new(s.id, s).map(&Hv::new(&HvBackend), iova, paddr, pages, prot, ctx) {
        Ok(()) => {
            MAP_REQUESTS.record_map(pages);
            // SAFETY: by the function's safety requirements.
            unsafe { *mapped += (pages * 4096) as usize };
            0
        }
        Err(e) => neg(e),
    }
}

/// Unmaps up to `pages` pages from `iova`; returns the pages unmapped.
///
/// # Safety
///
/// `rs` as for [`shadow`].
#[no_mangle]
unsafe extern "C" fn hvir_rs_unmap(rs: *mut c_void, iova: u64, pages: u64) -> u64 {
    // SAFETY: by the function's safety requirements.
    let s = unsafe { shadow(rs) };
    let n = PagingDomain::new(s.id, s).unmap(&Hv::new(&HvBackend), iova, pages, Context::Atomic);
    UNMAP_REQUESTS.record_unmap(n);
    n
}

/// # Safety
///
/// `rs` as for [`shadow`].
#[no_mangle]
unsafe extern "C" fn hvir_rs_iova_to_phys(rs: *mut c_void, iova: u64) -> u64 {
    // SAFETY: by the function's safety requirements.
    let s = unsafe { shadow(rs) };
    PagingDomain::new(s.id, s).iova_to_phys(iova)
}

/// Moves a device to domain `to`; `*placement` is updated to where it is afterwards.
///
/// # Safety
///
/// `placement` must be valid for reads and writes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_attach(devid: u64, placement: *mut u64, to: u32) -> c_int {
    let Ok(dev) = DeviceId::decode(devid) else {
        return EINVAL.to_errno();
    };
    // SAFETY: by the function's safety requirements.
    let cur = unsafe { *placement };
    let from = if cur == DETACHED {
        Placement::Detached
    } else {
        Placement::Domain(cur as u32)
    };
    let (ret, now) = match attach(&Hv::new(&HvBackend), dev, from, to) {
        Ok(()) => (0, Placement::Domain(to)),
        Err((e, now)) => (neg(e), now),
    };
    // SAFETY: by the function's safety requirements.
    unsafe {
        *placement = match now {
            Placement::Detached => DETACHED,
            Placement::Domain(d) => u64::from(d),
        }
    };
    if let (Placement::Detached, true) = (now, ret != 0) {
        pr_err!(
            "device {:#x}: attach to {} and rollback failed; DMA blocked\n",
            devid,
            to
        );
    }
    ret
}

#[no_mangle]
extern "C" fn hvir_rs_pci_devid(
    segment: u16,
    rid: u16,
    alias: bool,
    alias_rid: u16,
    pcix: bool,
    secondary: u8,
    subordinate: u8,
) -> u64 {
    let a = DmaAlias {
        alias_rid: alias.then_some(PciRid(alias_rid)),
        pcix_bridge_range: pcix.then_some(ShadowBusRange {
            secondary,
            subordinate,
        }),
    };
    pci_device_id(segment, PciRid(rid), a).encode()
}

/// The L1VH logical device id of function `devfn` on the pci-hyperv bus whose VMBus instance GUID
/// is `guid` (16 bytes).
///
/// # Safety
///
/// `guid` must be valid for reads of 16 bytes.
#[no_mangle]
unsafe extern "C" fn hvir_rs_vmbus_devid(guid: *const u8, devfn: u8) -> u64 {
    // SAFETY: by the function's safety requirements; `[u8; 16]` has alignment 1.
    let g = unsafe { &*guid.cast::<[u8; 16]>() };
    DeviceId::Logical(LogicalId::from_vmbus_guid(g, devfn)).encode()
}

/// # Safety
///
/// `list` must be a NUL-terminated string.
#[no_mangle]
unsafe extern "C" fn hvir_rs_skip(list: *const c_char, segment: u16, bus: u8, devfn: u8) -> bool {
    // SAFETY: by the function's safety requirements.
    let l = unsafe { CStr::from_char_ptr(list) };
    hvpt::iommu::skip_matches(l.to_bytes(), segment, bus, devfn)
}

/// The registered IOMMU; dropping it unregisters it (if the release control has not already).
struct Registration;

impl Registration {
    fn new() -> Result<Self> {
        // SAFETY: the shim returns its module parameter buffer, NUL-terminated.
        let skip = unsafe { CStr::from_char_ptr(shim::hvir_skip_list()) };
        // SAFETY: as for the skip list.
        let dma = unsafe { CStr::from_char_ptr(shim::hvir_dma_list()) };
        for (name, list) in [("hv_iommu_skip", skip), ("hv_iommu_dma", dma)] {
            if hvpt::iommu::parse_skip_list(list.to_bytes(), &mut |_| {}).is_err() {
                pr_err!("{name}: malformed, expected (SSSS:BB:DD.F)(SSSS:BB:DD.F)...\n");
                return Err(EINVAL);
            }
        }
        // SAFETY: no preconditions.
        let max = unsafe { shim::hvir_max_domains() };
        if max == 0 || max > i32::MAX as u32 {
            pr_err!("hv_iommu_max_domains={max}: must be 1..{}\n", i32::MAX);
            return Err(EINVAL);
        }
        // SAFETY: no preconditions; undone in `drop`.
        let ret = unsafe { shim::hvir_register() };
        if ret != 0 {
            pr_err!("IOMMU registration failed: {}\n", ret);
            return Err(Error::from_errno(ret));
        }
        pr_info!("registered: domains are Hyper-V device domains\n");
        Ok(Self)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; unregistering twice is a no-op in the shim.
        unsafe { shim::hvir_unregister() };
    }
}

/// `hyperv_iommu_root/release` in debugfs: writing `1` unregisters the IOMMU when no claimed
/// device is in use, so that the module can be unloaded.
fn write_release(_: &(), r: &mut kernel::uaccess::UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let n = r.len();
    let line = buf.get_mut(..n).ok_or(EINVAL)?;
    r.read_slice(line)?;
    if line.trim_ascii() != b"1" {
        return Err(EINVAL);
    }
    // SAFETY: no preconditions.
    let ret = unsafe { shim::hvir_release() };
    if ret != 0 {
        return Err(Error::from_errno(ret));
    }
    pr_info!("released: the IOMMU is unregistered, the module can be unloaded\n");
    Ok(())
}

/// `hyperv_iommu_root/stats`: the map/unmap requests of the IOMMU core and the fewest
/// hypercalls that could carry them (compare with `mshv_hvcall/stats`).
fn show_stats(_: &(), f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    for (name, c) in [("map", &MAP_REQUESTS), ("unmap", &UNMAP_REQUESTS)] {
        let x = c.figures();
        writeln!(
            f,
            "{name} requests={} pages={} min_hypercalls={}",
            x.requests, x.pages, x.min_hypercalls
        )?;
    }
    Ok(())
}

/// Module state. The debugfs files go before the registration is dropped.
#[pin_data]
struct HvIommu {
    #[pin]
    release: kernel::debugfs::File<()>,
    #[pin]
    stats: kernel::debugfs::File<()>,
    _debugfs: kernel::debugfs::Dir,
    _reg: Registration,
}

impl kernel::InPlaceModule for HvIommu {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let debugfs = kernel::debugfs::Dir::new(c"hyperv_iommu_root");
        let reg = Registration::new();
        try_pin_init!(Self {
            release <- debugfs.write_callback_file(c"release", (), &write_release),
            stats <- debugfs.read_callback_file(c"stats", (), &show_stats),
            _debugfs: debugfs,
            _reg: reg?,
        })
    }
}

#[kunit_tests(hyperv_iommu_root)]
mod tests {
    use super::hvpt::errno;
    use super::hvpt::iommu::{IOMMU_READ, IOMMU_WRITE};
    use super::*;

    /// A domain id the driver's IDA never hands out (its ids stop at `INT_MAX`).
    const TEST_DOMAIN: u32 = 0x8000_0001;
    const PAGE: u64 = 4096;

    /// The driver's paging-domain code in the kernel (shadow under `SpinLockIrq`, kernel
    /// allocations, the hypercall backend): map, exact translation, overlap refused, partial
    /// unmaps that split a mapping, and teardown.
    #[test]
    fn map_translate_and_partial_unmap() {
        let hv = Hv::new(&HvBackend);
        let shadow = KBox::pin_init(
            pin_init!(Shadow {
                table <- new_spinlock_irq!(PageTable::new()),
                id: TEST_DOMAIN,
            }),
            GFP_KERNEL,
        );
        assert!(shadow.is_ok());
        let Ok(shadow) = shadow else {
            return;
        };
        let flags = CreateDomainFlags {
            forward_progress_required: true,
            inherit_owning_vtl: false,
        };
        let target = DeviceDomain::own_s2(TEST_DOMAIN);
        assert_eq!(hv.create_domain(target, flags), Ok(()));
        let d = PagingDomain::new(TEST_DOMAIN, &*shadow);
        let (iova, pa, rw) = (0x1_0000_0000u64, 0x4000_0000u64, IOMMU_READ | IOMMU_WRITE);

        assert_eq!(d.map(&hv, iova, pa, 600, rw, Context::Sleepable), Ok(()));
        assert_eq!(d.mapped(), 600);
        assert_eq!(d.iova_to_phys(iova + 123 * PAGE + 5), pa + 123 * PAGE + 5);
        assert_eq!(d.iova_to_phys(iova + 600 * PAGE), 0);
        // Overlapping the last page: refused, nothing changes.
        let over = d.map(&hv, iova + 599 * PAGE, pa, 2, rw, Context::Atomic);
        assert_eq!(over, Err(errno::EEXIST));
        assert_eq!(d.mapped(), 600);
        // A hole in the middle of the one mapping.
        assert_eq!(d.unmap(&hv, iova + 100 * PAGE, 10, Context::Atomic), 10);
        assert_eq!(d.iova_to_phys(iova + 100 * PAGE), 0);
        assert_eq!(d.iova_to_phys(iova + 110 * PAGE), pa + 110 * PAGE);
        assert_eq!(d.iova_to_phys(iova + 99 * PAGE), pa + 99 * PAGE);
        // An unmap stops at the hole.
        assert_eq!(d.unmap(&hv, iova, 600, Context::Sleepable), 100);
        assert_eq!(d.mapped(), 490);
        assert_eq!(d.unmap_all(&hv), 0);
        assert_eq!(d.mapped(), 0);
        assert_eq!(hv.delete_domain(target), Ok(()));
    }
}
