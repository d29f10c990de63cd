// SPDX-License-Identifier: GPL-2.0

//! The hypercall backend of mshv-passthru.
//!
//! Every hypercall the project's modules issue reaches Hyper-V through this module, or, when it
//! is loaded with `simulate=1`, the simulated hypervisor that decodes the same input bytes. The
//! choice is explicit: without `simulate=1` the module loads only on an MSHV root partition that
//! offers device domains, or on L1VH, and refuses everywhere else.
//!
//! The boundary other modules call is C (`mshv_hvcall.h`, implemented in `hvcall_shim.c`); their
//! Rust side is `boundary.rs`. This file selects the backend, owns the simulator (behind an
//! IRQ-safe spinlock, because hypercalls are issued with interrupts off and may come from any
//! context), and exposes it in debugfs. See `Documentation/hv-backend.rst` and
//! `Documentation/hv-simulator.rst`.

use core::ffi::c_void;

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    prelude::*,
    sync::{
        new_spinlock_irq,
        Arc,
        SpinLockIrq, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader, //
    },
};

/// The kernel-independent shared code (also built and tested on the host).
#[path = "../../../rust/hvpt/src/lib.rs"]
pub mod hvpt;

/// Client side of the backend boundary.
#[path = "boundary.rs"]
pub mod boundary;

/// Kernel storage for the shared tables.
#[path = "kalloc.rs"]
pub mod kalloc;

use hvpt::calls::InputPage;
use hvpt::device_id::{pci_device_id, DmaAlias, PciRid, ShadowBusRange};
use hvpt::sim::Sim;
use hvpt::simctl::Command;
use kalloc::KernelAlloc;
use kernel::time::{Instant, Monotonic};

module! {
    type: HvCall,
    name: "mshv_hvcall",
    authors: ["mshv-passthru developers"],
    description: "Hyper-V hypercall backend for PCI passthrough (native or simulated)",
    license: "GPL",
    params: {
        simulate: bool {
            default: false,
            description: "Run on the simulated hypervisor instead of Hyper-V (for testing only)",
        },
        l1vh: bool {
            default: false,
            description: "With simulate=1: the simulated partition is an L1VH (no device domains)",
        },
    },
}

/// C functions of `hvcall_shim.c` internal to this module (declared in `mshv_hvcall.h`).
mod shim {
    use core::ffi::c_void;
    use kernel::ffi::c_int;

    /// `mshv_hvcall_sim_t`.
    pub(super) type SimFn =
        unsafe extern "C" fn(ctx: *mut c_void, control: u64, page: *const c_void) -> u64;

    extern "C" {
        pub(super) fn mshv_hvcall_native_probe() -> c_int;
        pub(super) fn mshv_hvcall_setup(sim: Option<SimFn>, ctx: *mut c_void, l1vh: bool) -> c_int;
        pub(super) fn mshv_hvcall_teardown();
        pub(super) fn mshv_hvcall_sim_ctx() -> *mut c_void;
        pub(super) fn mshv_hvcall_free_pfns(pfns: *const u64, count: u32);
        pub(super) fn mshv_hvcall_mshv_register() -> c_int;
        pub(super) fn mshv_hvcall_mshv_unregister();
        pub(super) fn mshv_hvcall_mshv_live() -> c_int;
        pub(super) fn mshv_hvcall_mshv_pinned() -> i64;
        pub(super) fn mshv_hvcall_list_pci_ids(
            cb: unsafe extern "C" fn(ctx: *mut c_void, bdf: u32, id: u64),
            ctx: *mut c_void,
        );
    }
}

/// Which hypervisor this module talks to.
///
/// Shown in debugfs as `mshv_hvcall/backend` (`native` or `simulated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Real hypercalls to Hyper-V.
    Native,
    /// The simulated hypervisor (test-only, requested with `simulate=1`).
    Simulated,
}

impl Backend {
    /// The name shown in debugfs and in the kernel log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Simulated => "simulated",
        }
    }

    /// Picks the backend from the module parameters and the platform.
    fn select() -> Result<Self> {
        if module_parameters::l1vh.value() && !module_parameters::simulate.value() {
            pr_err!("l1vh=1 describes the simulated partition; it needs simulate=1\n");
            return Err(EINVAL);
        }
        if module_parameters::simulate.value() {
            pr_warn!("using the SIMULATED hypervisor: no hypercall reaches Hyper-V\n");
            return Ok(Self::Simulated);
        }
        // SAFETY: `mshv_hvcall_native_probe` has no preconditions; it only reads state that
        // Hyper-V initialisation set up at boot.
        let ret = unsafe { shim::mshv_hvcall_native_probe() };
        match ret {
            0 => {
                pr_info!("backend: native (Hyper-V root or L1VH partition)\n");
                Ok(Self::Native)
            }
            r if r == EOPNOTSUPP.to_errno() => {
                pr_err!("Hyper-V does not offer device domains (HV_DEVICE_DOMAIN_AVAILABLE)\n");
                Err(EOPNOTSUPP)
            }
            _ => {
                pr_err!(
                    "not an MSHV root or L1VH partition; load with simulate=1 to test on the simulated hypervisor\n"
                );
                Err(ENODEV)
            }
        }
    }
}

/// The simulated hypervisor as the kernel holds it.
pub type SimLock = SpinLockIrq<Sim<KernelAlloc>>;

/// Frees a page the simulator gives back (it was deposited, so it came from
/// `mshv_hvcall_alloc_pfns()`).
fn give_back(pfn: u64) {
    // SAFETY: the simulator only holds page numbers that `DEPOSIT_MEMORY` received, i.e. pages
    // the layer allocated with `mshv_hvcall_alloc_pfns()` and gave away; it hands each back
    // exactly once.
    unsafe { shim::mshv_hvcall_free_pfns(&pfn, 1) };
}

/// The PCI-type device id from the DMA-alias walk's result (`mshv_hvcall_pci_devid()`).
#[no_mangle]
extern "C" fn mshv_hvcall_rs_pci_devid(
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

/// The PCI-type ids of every PCI function (`mshv_hvcall_pci_devid()`, aliases shared): the
/// devices the simulated hypervisor knows, as Hyper-V knows the hardware. Sleeps.
fn pci_ids() -> KVec<(u32, u64)> {
    /// # Safety
    ///
    /// `ctx` must point to a live, exclusively borrowed `KVec<(u32, u64)>`.
    unsafe extern "C" fn add(ctx: *mut c_void, bdf: u32, id: u64) {
        // SAFETY: by the function's safety requirements.
        let v = unsafe { &mut *ctx.cast::<KVec<(u32, u64)>>() };
        if v.push((bdf, id), GFP_KERNEL).is_err() {
            pr_warn!("simulator: cannot list device {:#x}\n", id);
        }
    }
    let mut v = KVec::new();
    let ctx = core::ptr::from_mut(&mut v).cast::<c_void>();
    // SAFETY: `add` matches the callback type and `ctx` points to `v`, exclusively borrowed for
    // the duration of the call.
    unsafe { shim::mshv_hvcall_list_pci_ids(add, ctx) };
    v
}

/// `mshv_hvcall/pci_ids`: each PCI function (`SSSS:BB:DD.F`) and its hypervisor device id, the
/// one definition that tests and scripts read instead of computing ids themselves.
fn show_pci_ids(_: &(), f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    for (bdf, id) in pci_ids().iter() {
        writeln!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x} {:#018x}",
            bdf >> 16,
            (bdf >> 8) & 0xff,
            (bdf >> 3) & 0x1f,
            bdf & 7,
            id
        )?;
    }
    Ok(())
}

/// The registered simulator; `None` with the native backend.
fn sim_lock() -> Option<&'static SimLock> {
    // SAFETY: no preconditions.
    let ctx = unsafe { shim::mshv_hvcall_sim_ctx() };
    // SAFETY: a non-NULL context is the registered `SimLock`, alive until the registration is
    // dropped at module exit, which no caller of this outlives: the simulated `/dev/mshv` is
    // unregistered first, and each partition holds the module.
    (!ctx.is_null()).then(|| unsafe { &*ctx.cast::<SimLock>() })
}

/// `MSHV_CREATE_PARTITION` of the simulated `/dev/mshv`: 7.3's validation of either struct
/// size (`hvpt::mshv_uapi::create_partition`), then a guest partition of the simulator.
///
/// # Safety
///
/// `id` must be valid for writes; `uarg` is the user's argument, only read through
/// `copy_from_user`.
#[no_mangle]
unsafe extern "C" fn mshv_hvcall_rs_mshv_create(uarg: *mut c_void, id: *mut u64) -> c_int {
    let r = (|| -> Result<u64> {
        let sim = sim_lock().ok_or(ENODEV)?;
        hvpt::mshv_uapi::create_partition(&mut |dst| {
            UserSlice::new(UserPtr::from_ptr(uarg), dst.len())
                .reader()
                .read_slice(dst)
                .map_err(|_| hvpt::errno::EFAULT)
        })
        .map_err(boundary::kerr)?;
        let p = sim.lock().create_partition().map_err(boundary::kerr)?;
        Ok(p.0)
    })();
    match r {
        Ok(p) => {
            // SAFETY: by the function's safety requirements.
            unsafe { *id = p };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `MSHV_SET_GUEST_MEMORY`'s argument, copied in by the caller: 7.3's checks
/// (`hvpt::mshv_uapi::guest_memory`); on success the region's fields.
///
/// # Safety
///
/// `region` must point to the 32 bytes of a `struct mshv_user_mem_region`; the out pointers
/// must be valid for writes.
#[no_mangle]
unsafe extern "C" fn mshv_hvcall_rs_mshv_memory_check(
    region: *const u8,
    gfn: *mut u64,
    pages: *mut u64,
    unmap: *mut bool,
    writable: *mut bool,
) -> c_int {
    use hvpt::mshv_uapi::{guest_memory, UserMemRegion};
    use zerocopy::FromBytes;

    // SAFETY: by the function's safety requirements, `region` points to that many bytes.
    let bytes = unsafe { core::slice::from_raw_parts(region, size_of::<UserMemRegion>()) };
    let r = UserMemRegion::read_from_bytes(bytes)
        .map_err(|_| hvpt::errno::EINVAL)
        .and_then(|r| guest_memory(&r));
    match r {
        Ok(m) => {
            // SAFETY: by the function's safety requirements.
            unsafe {
                *gfn = m.gfn;
                *pages = m.pages;
                *unmap = m.unmap;
                *writable = m.writable;
            }
            0
        }
        Err(e) => boundary::kerr(e).to_errno(),
    }
}

/// Maps guest pages `gfn..gfn + count` of the simulator's partition `id` to the host pages
/// `pfns` in its SLAT, all or nothing (`EEXIST` where a page is mapped already).
///
/// # Safety
///
/// `pfns` must point to `count` page frame numbers.
#[no_mangle]
unsafe extern "C" fn mshv_hvcall_rs_mshv_map_guest(
    id: u64,
    gfn: u64,
    pfns: *const u64,
    count: u64,
    writable: bool,
) -> c_int {
    use hvpt::calls::MapFlags;

    let Some(sim) = sim_lock() else {
        return ENODEV.to_errno();
    };
    let Ok(n) = usize::try_from(count) else {
        return EINVAL.to_errno();
    };
    // SAFETY: by the function's safety requirements.
    let pfns = unsafe { core::slice::from_raw_parts(pfns, n) };
    let flags = if writable {
        MapFlags::READABLE.with(MapFlags::WRITABLE)
    } else {
        MapFlags::READABLE
    };
    // In chunks, each under the simulator's lock (interrupts off): a 16 GiB region would
    // otherwise keep interrupts off for the whole walk. On a refusal the chunks mapped go.
    const CHUNK: usize = 4096;
    let pt = hvpt::abi::PartitionId(id);
    let mut done = 0usize;
    for chunk in pfns.chunks(CHUNK) {
        let first = gfn.saturating_add(done as u64);
        let r = sim.lock().map_guest(
            pt,
            first,
            chunk.len() as u64,
            &mut |k| {
                usize::try_from(k)
                    .ok()
                    .and_then(|k| chunk.get(k))
                    .copied()
                    .unwrap_or(0)
            },
            flags,
        );
        if let Err(e) = r {
            let _ = sim.lock().unmap_guest(pt, gfn, done as u64);
            return boundary::kerr(e).to_errno();
        }
        done += chunk.len();
    }
    0
}

/// Unmaps guest pages `gfn..gfn + count` of the simulator's partition `id` from its SLAT.
#[no_mangle]
extern "C" fn mshv_hvcall_rs_mshv_unmap_guest(id: u64, gfn: u64, count: u64) {
    if let Some(sim) = sim_lock() {
        // A partition the simulator destroyed already holds nothing.
        let _ = sim
            .lock()
            .unmap_guest(hvpt::abi::PartitionId(id), gfn, count);
    }
}

/// Destroys the simulator's partition `id` when the simulated `/dev/mshv` drops its last
/// reference: 0, or `EBUSY` while a device is still attached to it (its guest memory must then
/// stay pinned: the device may still reach it). The bridge holds the partition while it
/// exists, so a refusal is a bug and is reported.
#[no_mangle]
extern "C" fn mshv_hvcall_rs_mshv_destroy(id: u64) -> c_int {
    let Some(sim) = sim_lock() else {
        return 0;
    };
    let r = sim.lock().destroy_partition(hvpt::abi::PartitionId(id));
    match r {
        Ok(_) => 0,
        // Gone already (a test reset the simulator): nothing can reach it.
        Err(e) if e == hvpt::errno::ENOENT => 0,
        Err(e) => {
            pr_err!(
                "simulated /dev/mshv: partition {} not destroyed: errno {}\n",
                id,
                e.0
            );
            boundary::kerr(e).to_errno()
        }
    }
}

/// Puts the simulator back in its boot state: fresh, with `ids` attached to the default domain.
fn reboot(sim: &mut Sim<KernelAlloc>, ids: &[(u32, u64)]) -> Result {
    sim.reset(&mut give_back).map_err(boundary::kerr)?;
    for &(_, id) in ids {
        let dev = hvpt::device_id::DeviceId::decode(id).map_err(|_| EINVAL)?;
        // Functions behind a PCIe-to-PCI bridge are one device to the hypervisor.
        if sim.attachment(dev).is_none() {
            sim.add_device(dev).map_err(boundary::kerr)?;
        }
    }
    Ok(())
}

/// The simulator's entry point, called by `mshv_hvcall_call()` with interrupts off.
///
/// # Safety
///
/// `ctx` must be the pointer registered with `mshv_hvcall_setup()` (a live [`SimLock`]), and
/// `page` must point to a readable 4K input page.
unsafe extern "C" fn sim_dispatch(ctx: *mut c_void, control: u64, page: *const c_void) -> u64 {
    // SAFETY: by the function's safety requirements.
    let sim = unsafe { &*ctx.cast::<SimLock>() };
    // SAFETY: by the function's safety requirements; `InputPage` has alignment 1.
    let page = unsafe { &*page.cast::<InputPage>() };
    let start = Instant::<Monotonic>::now();
    let mut s = sim.lock();
    let r = s.dispatch(control, page);
    // Lock wait included: contention on the simulator is the simulator's time too.
    s.add_time(
        control,
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(0),
    );
    r.raw()
}

/// The registered backend; dropping it unregisters it and frees what the simulator holds.
///
/// # Invariants
///
/// `mshv_hvcall_setup()` succeeded, with `sim`'s address as context if it is `Some`. `mshv`:
/// the simulated `/dev/mshv` is registered.
struct Registration {
    sim: Option<Arc<SimLock>>,
    mshv: bool,
}

impl Registration {
    fn new(backend: Backend) -> Result<Self> {
        let sim = match backend {
            Backend::Native => None,
            Backend::Simulated => {
                let mut s = Sim::new().map_err(boundary::kerr)?;
                s.set_l1vh(module_parameters::l1vh.value());
                reboot(&mut s, &pci_ids())?;
                Some(Arc::pin_init(new_spinlock_irq!(s), GFP_KERNEL)?)
            }
        };
        let (f, ctx): (Option<shim::SimFn>, *mut c_void) = match &sim {
            Some(s) => (
                Some(sim_dispatch),
                Arc::as_ptr(s).cast_mut().cast::<c_void>(),
            ),
            None => (None, core::ptr::null_mut()),
        };
        // SAFETY: `sim_dispatch` matches `mshv_hvcall_sim_t`; `ctx` points to the `SimLock`
        // that the returned `Registration` keeps alive until `Drop` unregisters it.
        let ret = unsafe { shim::mshv_hvcall_setup(f, ctx, module_parameters::l1vh.value()) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: setup succeeded with `sim` as context.
        let mut reg = Self { sim, mshv: false };
        if reg.sim.is_some() {
            // SAFETY: no preconditions; the simulator it creates partitions in is set up.
            let ret = unsafe { shim::mshv_hvcall_mshv_register() };
            if ret != 0 {
                pr_err!("cannot register the simulated /dev/mshv: errno {}\n", -ret);
                return Err(Error::from_errno(ret));
            }
            reg.mshv = true;
        }
        Ok(reg)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.mshv {
            // SAFETY: registered in `new`. Every partition holds this module, so none is alive.
            unsafe { shim::mshv_hvcall_mshv_unregister() };
        }
        // SAFETY: by the type invariant setup succeeded; module exit runs after every user
        // module is gone (they depend on our symbols), so no call is in flight.
        unsafe { shim::mshv_hvcall_teardown() };
        if let Some(s) = &self.sim {
            s.lock().drain_deposits(&mut give_back);
        }
    }
}

/// What the debugfs files of the simulator see.
type SimRef = Option<Arc<SimLock>>;

fn show_dump(sim: &SimRef, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    match sim {
        Some(s) => s.lock().dump(f),
        None => writeln!(f, "native backend: no simulator"),
    }
}

fn show_stats(sim: &SimRef, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    let Some(s) = sim else {
        return writeln!(f, "native backend: no simulator");
    };
    let s = s.lock();
    for code in hvpt::layer::ISSUED_CODES {
        let st = s.stats(code);
        writeln!(
            f,
            "{:#06x} calls={} reps={} failed={} ns={}",
            code.0, st.calls, st.reps, st.failed, st.ns
        )?;
    }
    writeln!(f, "pages_out={}", boundary::pages_out())?;
    // SAFETY: no preconditions.
    let (live, pinned) = unsafe {
        (
            shim::mshv_hvcall_mshv_live(),
            shim::mshv_hvcall_mshv_pinned(),
        )
    };
    writeln!(f, "mshv_partitions={live} mshv_pinned_pages={pinned}")
}

fn write_control(sim: &SimRef, r: &mut UserSliceReader) -> Result {
    let Some(s) = sim else {
        return Err(ENODEV);
    };
    let mut buf = [0u8; 128];
    let n = r.len();
    let line = buf.get_mut(..n).ok_or(EINVAL)?;
    r.read_slice(line)?;
    let cmd = Command::parse(line).map_err(boundary::kerr)?;
    if cmd == Command::Reset {
        // Back to the boot state, PCI functions included.
        let ids = pci_ids();
        let mut sim = s.lock();
        // Checked under the simulator's lock: a partition being created is counted before
        // the simulator creates it (sim_mshv.c).
        // SAFETY: no preconditions.
        if unsafe { shim::mshv_hvcall_mshv_live() } != 0 {
            // The simulated /dev/mshv's partitions would vanish under their fds.
            return Err(EBUSY);
        }
        return reboot(&mut sim, &ids);
    }
    cmd.apply(&mut s.lock(), &mut give_back)
        .map_err(boundary::kerr)
}

/// Module state. Fields drop in order: the registration goes first (no more hypercalls), then
/// the debugfs files, then the directory.
#[pin_data]
struct HvCall {
    _reg: Registration,
    /// `mshv_hvcall/backend`.
    #[pin]
    backend: File<Backend>,
    /// `mshv_hvcall/dump`: partitions, domains, mappings, devices, statistics.
    #[pin]
    dump: File<SimRef>,
    /// `mshv_hvcall/stats`: calls, reps and failures per code; deposit pages outstanding.
    #[pin]
    stats: File<SimRef>,
    /// `mshv_hvcall/control`: simulator commands (`hvpt::simctl`).
    #[pin]
    control: File<SimRef>,
    /// `mshv_hvcall/pci_ids`: PCI functions and their hypervisor device ids.
    #[pin]
    pci_ids: File<()>,
    _debugfs: Dir,
}

impl kernel::InPlaceModule for HvCall {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let debugfs = Dir::new(c"mshv_hvcall");
        let setup = Backend::select().and_then(|b| Ok((b, Registration::new(b)?)));
        let (backend, reg, sim) = match setup {
            Ok((b, r)) => {
                let sim = r.sim.clone();
                (Ok(b), Ok(r), sim)
            }
            Err(e) => (Err(e), Err(e), None),
        };
        try_pin_init!(Self {
            _reg: reg?,
            backend <- debugfs.read_callback_file(
                c"backend",
                backend?,
                &|b: &Backend, f| writeln!(f, "{}", b.name())
            ),
            dump <- debugfs.read_callback_file(c"dump", sim.clone(), &show_dump),
            stats <- debugfs.read_callback_file(c"stats", sim.clone(), &show_stats),
            control <- debugfs.write_callback_file(c"control", sim, &write_control),
            pci_ids <- debugfs.read_callback_file(c"pci_ids", (), &show_pci_ids),
            _debugfs: debugfs,
        })
    }
}

#[kunit_tests(mshv_hvcall_abi)]
mod tests {
    use super::hvpt::errno;
    use super::hvpt::hypercall::{CallCode, Control, HvResult, HvStatus, MAX_REPS};

    #[test]
    fn control_word_layout() {
        let c = Control::rep(CallCode::MAP_DEVICE_GPA_PAGES, 507, 0);
        assert_eq!(c.map(|c| c.encode()), Ok(0xb3 | (507 << 32)));
        let c = Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, MAX_REPS, 4094);
        assert_eq!(
            c.map(|c| c.encode()),
            Ok(0xb4 | (0xfff << 32) | (0xffe << 48))
        );
    }

    #[test]
    fn rep_count_cannot_overflow() {
        assert!(Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, MAX_REPS + 1, 0).is_err());
    }

    #[test]
    fn control_word_decodes_what_it_encodes() {
        for count in [1u16, 2, 507, 4095] {
            for start in [0u16, count / 2, count - 1] {
                let c = Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, count, start);
                assert!(c.is_ok());
                if let Ok(c) = c {
                    assert_eq!(Control::decode(c.encode()), Ok(c));
                }
            }
        }
    }

    #[test]
    fn result_decoding() {
        let r = HvResult::new(HvStatus::INSUFFICIENT_MEMORY, 12);
        assert_eq!(r.reps_completed(), 12);
        assert!(r.status().needs_memory());
        assert_eq!(r.to_result(), Err(errno::ENOMEM));
        assert_eq!(
            HvResult::from_raw(u64::MAX).to_result(),
            Err(errno::EOPNOTSUPP)
        );
    }
}

/// The layer and the simulator in the kernel: the shared scenarios of `hvpt::selftest` through
/// the real boundary (`mshv_hvcall_call()`: per-CPU input page, interrupts off, simulator under
/// its spinlock). Each case starts from a fresh simulator and checks that every deposit page
/// was freed afterwards. With the native backend the cases do nothing (they would reset the
/// simulator, which does not exist).
#[kunit_tests(mshv_hvcall_sim)]
mod sim_tests {
    use super::boundary::{pages_out, HvBackend};
    use super::hvpt::calls::InputPage;
    use super::hvpt::errno::Errno;
    use super::hvpt::hypercall::{Control, HvResult};
    use super::hvpt::layer::{Backend, Context};
    use super::hvpt::selftest::{self, Figures, Outcome};
    use super::hvpt::sim::{Sim, SimBackend};
    use super::kalloc::KernelAlloc;
    use super::{give_back, shim, SimLock};
    use kernel::prelude::*;

    /// The module's backend, with access to its simulator.
    struct Kunit {
        sim: &'static SimLock,
    }

    impl Backend for Kunit {
        type Pages = super::boundary::PfnList;

        fn hypercall(&self, control: Control, fill: &mut dyn FnMut(&mut InputPage)) -> HvResult {
            HvBackend.hypercall(control, fill)
        }

        fn alloc_pages(
            &self,
            count: usize,
            contiguous: bool,
            ctx: Context,
        ) -> core::result::Result<Self::Pages, Errno> {
            HvBackend.alloc_pages(count, contiguous, ctx)
        }

        fn release_pages(&self, pages: Self::Pages, taken: usize) {
            HvBackend.release_pages(pages, taken)
        }

        fn refill_reserve(&self, ctx: Context) -> usize {
            HvBackend.refill_reserve(ctx)
        }
    }

    impl SimBackend for Kunit {
        type Alloc = KernelAlloc;

        fn with_sim<R>(&self, f: impl FnOnce(&mut Sim<KernelAlloc>) -> R) -> R {
            f(&mut self.sim.lock())
        }
    }

    /// Runs `f` on a fresh simulator: `Ok(None)` with the native backend or, for a case about
    /// the root partition (`root_only`), when the simulated partition is an L1VH (the case is
    /// marked skipped); `Err` if the simulator could not be reset or deposit pages were not all
    /// freed after.
    fn fresh<R>(
        root_only: bool,
        f: impl FnOnce(&Kunit) -> R,
    ) -> core::result::Result<Option<R>, ()> {
        // SAFETY: no preconditions.
        let ctx = unsafe { shim::mshv_hvcall_sim_ctx() };
        if ctx.is_null() {
            super::boundary::kunit_skip_unless_simulated();
            return Ok(None);
        }
        // SAFETY: a non-NULL context is the registered `SimLock`, alive while this module is
        // (KUnit runs the cases of a loaded module).
        let sim = unsafe { &*ctx.cast::<SimLock>() };
        let b = Kunit { sim };
        if root_only && b.with_sim(|s| s.is_l1vh()) {
            super::boundary::kunit_skip(
                c"a root-partition case; the simulator is an L1VH (l1vh=1)",
            );
            return Ok(None);
        }
        let reset = |b: &Kunit| b.with_sim(|s| s.reset(&mut give_back)).is_ok();
        if !reset(&b) {
            pr_err!("simulator reset failed\n");
            return Err(());
        }
        let before = pages_out();
        let r = f(&b);
        let ids = super::pci_ids();
        let ok = b.with_sim(|s| super::reboot(s, &ids)).is_ok();
        if !ok || pages_out() != before {
            pr_err!("deposit pages not freed: {} -> {}\n", before, pages_out());
            return Err(());
        }
        Ok(Some(r))
    }

    /// Runs the root-partition case `f` (see [`fresh`]); `false` on failure.
    fn run(name: &str, f: fn(&Kunit) -> Outcome) -> bool {
        check(name, fresh(true, f))
    }

    /// Reports the outcome of a case; `false` on failure.
    fn check(name: &str, outcome: core::result::Result<Option<Outcome>, ()>) -> bool {
        match outcome {
            Err(()) => false,
            Ok(None) | Ok(Some(Ok(()))) => true,
            Ok(Some(Err(e))) => {
                pr_err!(
                    "{}: check failed at selftest.rs:{}: {}\n",
                    name,
                    e.line,
                    e.what
                );
                false
            }
        }
    }

    /// The round trip for `pages`; `Ok(None)` with the native backend.
    fn figures(pages: u64, warm: bool) -> core::result::Result<Option<Figures>, ()> {
        match fresh(true, |b| selftest::map_unmap_round_trip(b, pages, warm))? {
            None => Ok(None),
            Some(Ok(f)) => {
                pr_info!(
                    "figures: pages={} warm={} map_calls={} map_retries={} unmap_calls={} deposit_calls={} deposited_pages={} table_pages={}\n",
                    f.pages, warm, f.map_calls, f.map_retries, f.unmap_calls,
                    f.deposit_calls, f.deposited_pages, f.table_pages
                );
                Ok(Some(f))
            }
            Some(Err(e)) => {
                pr_err!(
                    "{} pages: check failed at selftest.rs:{}: {}\n",
                    pages,
                    e.line,
                    e.what
                );
                Err(())
            }
        }
    }

    #[test]
    fn minimal_call_counts() {
        for (pages, map, unmap) in selftest::CALL_COUNT_CASES {
            let warm = figures(pages, true);
            assert!(warm.is_ok());
            if let Ok(Some(f)) = warm {
                assert_eq!((f.map_calls, f.map_retries, f.unmap_calls), (map, 0, unmap));
            }
            let cold = figures(pages, false);
            assert!(cold.is_ok());
            if let Ok(Some(f)) = cold {
                assert_eq!((f.map_calls - f.map_retries, f.unmap_calls), (map, unmap));
            }
        }
    }

    #[test]
    fn resume_after_partial() {
        assert!(run("resume_after_partial", selftest::resume_after_partial));
    }

    #[test]
    fn stalls_are_bounded() {
        assert!(run("stalls_are_bounded", selftest::stalls_are_bounded));
    }

    #[test]
    fn deposits_are_bounded() {
        assert!(run("deposits_are_bounded", selftest::deposits_are_bounded));
    }

    #[test]
    fn shortages_reset_on_progress() {
        assert!(run(
            "shortages_reset_on_progress",
            selftest::shortages_reset_on_progress
        ));
    }

    #[test]
    fn failed_map_rolls_back() {
        assert!(run(
            "failed_map_rolls_back",
            selftest::failed_map_rolls_back
        ));
    }

    #[test]
    fn strict_rejections() {
        assert!(run("strict_rejections", selftest::strict_rejections));
    }

    #[test]
    fn direct_attach() {
        assert!(run("direct_attach", selftest::direct_attach));
    }

    #[test]
    fn guest_slat() {
        assert!(run("guest_slat", selftest::guest_slat));
    }

    #[test]
    fn l1vh_refuses_device_domains() {
        // Runs whatever the simulated partition's kind: the case switches it to L1VH itself.
        assert!(check(
            "l1vh_refuses_device_domains",
            fresh(false, selftest::l1vh_refuses_device_domains)
        ));
    }
}
