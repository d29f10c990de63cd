// SPDX-License-Identifier: GPL-2.0

//! vfio_pci_tph: a vfio-pci variant driver that gives the user of a VFIO-owned PCIe device its
//! TLP Processing Hints (TPH): the capability, enable and disable, the steering tags of CPUs,
//! and ST table programming, through `VFIO_DEVICE_FEATURE` (`include/uapi/linux/vfio_pci_tph.h`).
//! For everything else it is vfio-pci.
//!
//! The C part (`vfio_pci_tph_shim.c`) builds the `pci_driver` and `vfio_device_ops` tables over
//! vfio-pci-core, takes VFIO's locks around a feature call and calls the PCI core's TPH
//! helpers (`drivers/pci/tph.c`). This part holds the per-device TPH state and runs each call:
//! the shared `tph` code decides, before anything is written, what the call may do.
//!
//! Locking: a feature call runs with the device's `igate` and `memory_lock` (for write) held,
//! so it never meets a VFIO reset or a change of interrupt vectors; the per-device mutex below
//! is taken inside those, and alone by resets VFIO did not start (sysfs, AER), which reach the
//! driver through `reset_prepare`/`reset_done`. See `Documentation/vfio-pci-tph.rst`.

use core::ffi::{c_int, c_void};

use kernel::{
    new_mutex,
    prelude::*,
    sync::Mutex,
    uaccess::{UserPtr, UserSlice},
};

/// The kernel-independent shared code.
#[path = "../../../../rust/tph/src/lib.rs"]
pub mod tph;

use tph::config::Write;
use tph::dmabuf;
use tph::errno::Errno;
use tph::policy::{CtrlAction, Device, Policy, StWrite, State};
use tph::regs::{Loc, Mode, ReqType, StInfo, TphCap};
use tph::uapi::{self, ArrayHeader, CpuStEntry, StEntry};

module! {
    type: VfioPciTph,
    name: "vfio_pci_tph",
    authors: ["mshv-passthru developers"],
    description: "vfio-pci variant driver with PCIe TPH steering tags",
    license: "GPL",
    params: {
        enable_unsafe_tph_ds_mode: bool {
            default: false,
            description: "Allow TPH Device Specific mode and raw steering tags (the device then steers its writes as the user's descriptors ask)",
        },
    },
}

/// C functions of `vfio_pci_tph_shim.c` (declared in `vfio_pci_tph.h`).
mod shim {
    use core::ffi::c_void;
    use kernel::ffi::c_int;

    /// A `struct pci_dev *`, opaque here (bindgen's layout of it is not FFI-safe).
    pub(super) type PciDev = c_void;

    /// `struct vpt_facts`.
    #[repr(C)]
    #[derive(Default)]
    pub(super) struct Facts {
        pub(super) cap: u32,
        pub(super) rp_devcap2: u32,
        pub(super) devcap2: u32,
        pub(super) msix_size: u16,
        pub(super) pos: u16,
        pub(super) rc_end: u8,
        pub(super) cpu_st: u8,
    }

    extern "C" {
        pub(super) fn vpt_register() -> c_int;
        pub(super) fn vpt_unregister();
        pub(super) fn vpt_facts(pdev: *mut PciDev, f: *mut Facts);
        pub(super) fn vpt_enable(pdev: *mut PciDev, mode: u8, req_type: *mut u8) -> c_int;
        pub(super) fn vpt_disable(pdev: *mut PciDev);
        pub(super) fn vpt_set_st(pdev: *mut PciDev, index: u16, tag: u16) -> c_int;
        pub(super) fn vpt_table_write(pdev: *mut PciDev, index: u16, tag: u16) -> c_int;
        pub(super) fn vpt_table_read(pdev: *mut PciDev, index: u16, tag: *mut u16) -> c_int;
        pub(super) fn vpt_cpu_st_info(pdev: *mut PciDev, cpu: u32, info: *mut u64) -> c_int;
        pub(super) fn vpt_vector(pdev: *mut PciDev, index: u16) -> bool;
    }
}

/// A bound PCI function the driver may call the TPH helpers on.
///
/// # Invariants
///
/// `0` points to a `struct pci_dev` bound to this driver for as long as the value lives (the C
/// part creates one per call, from a device it holds).
#[derive(Clone, Copy)]
struct Pdev(*mut shim::PciDev);

/// A C return value as a `Result`.
fn check(ret: c_int) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// A shared-code errno as a kernel error.
fn err(e: Errno) -> Error {
    Error::from_errno(-e.0)
}

impl Pdev {
    fn facts(self) -> shim::Facts {
        let mut f = shim::Facts::default();
        // SAFETY: by the type invariant; `f` is a valid `struct vpt_facts` to fill.
        unsafe { shim::vpt_facts(self.0, &mut f) };
        f
    }

    /// `pcie_enable_tph()`: the requester type tph.c chose.
    fn enable(self, mode: Mode) -> Result<u8> {
        let mut req = 0u8;
        // SAFETY: by the type invariant; `req` is writable.
        check(unsafe { shim::vpt_enable(self.0, mode as u8, &mut req) })?;
        Ok(req)
    }

    fn disable(self) {
        // SAFETY: by the type invariant.
        unsafe { shim::vpt_disable(self.0) }
    }

    /// `pcie_tph_set_st_entry()`.
    fn set_st(self, w: StWrite) -> Result {
        // SAFETY: by the type invariant.
        check(unsafe { shim::vpt_set_st(self.0, w.index, w.tag) })
    }

    /// Writes an entry of the table in the capability directly (TPH may be off).
    fn table_write(self, index: u16, tag: u16) -> Result {
        // SAFETY: by the type invariant; the caller bounds `index` by the table's size.
        check(unsafe { shim::vpt_table_write(self.0, index, tag) })
    }

    fn table_read(self, index: u16) -> Result<u16> {
        let mut tag = 0u16;
        // SAFETY: by the type invariant; the caller bounds `index`; `tag` is writable.
        check(unsafe { shim::vpt_table_read(self.0, index, &mut tag) })?;
        Ok(tag)
    }

    /// Whether MSI-X vector `index` is allocated (MSI-X enabled and the vector set up).
    fn vector(self, index: u16) -> bool {
        // SAFETY: by the type invariant.
        unsafe { shim::vpt_vector(self.0, index) }
    }

    /// The platform's `_DSM` answer for `cpu`, a CPU the caller may run on.
    fn cpu_st_info(self, cpu: u32) -> core::result::Result<StInfo, Errno> {
        let mut v = 0u64;
        // SAFETY: by the type invariant; `v` is writable.
        let ret = unsafe { shim::vpt_cpu_st_info(self.0, cpu, &mut v) };
        if ret < 0 {
            return Err(Errno(-ret));
        }
        Ok(StInfo(v))
    }
}

/// The TPH state of one device, under its mutex.
struct Inner {
    state: State,
    /// The ST table in the capability as it was at bind, put back whenever TPH goes off.
    baseline: KVec<u16>,
    /// `pcie_enable_tph()` refused a request the device and policy allow: TPH is off for the
    /// system (`pci=notph`, which modules cannot read).
    notph: bool,
    /// Between `reset_prepare` and `reset_done` of a reset VFIO did not start (sysfs, AER):
    /// calls that change the device are refused (`EBUSY`).
    resetting: bool,
}

/// The driver's state for a device with a TPH Requester capability.
#[pin_data]
struct TphDevice {
    dev: Device,
    /// Where the capability is in config space.
    dev_pos: u16,
    #[pin]
    inner: Mutex<Inner>,
}

fn policy() -> Policy {
    Policy {
        unsafe_ds: module_parameters::enable_unsafe_tph_ds_mode.value(),
    }
}

impl TphDevice {
    fn new(pdev: Pdev) -> Result<Pin<KBox<Self>>> {
        let f = pdev.facts();
        let dev_pos = f.pos;
        let dev = Device {
            cap: TphCap(f.cap),
            rc_end: f.rc_end != 0,
            rp_completer: ReqType::from_devcap2(f.rp_devcap2),
            completer: ReqType::from_devcap2(f.devcap2),
            msix_size: f.msix_size,
            notph: false,
            cpu_st: f.cpu_st != 0,
        };
        let mut baseline = KVec::new();
        if dev.cap.loc() == Some(Loc::Cap) {
            for i in 0..dev.cap.cap_table_size() {
                baseline.push(pdev.table_read(i)?, GFP_KERNEL)?;
            }
        }
        KBox::pin_init(
            pin_init!(Self {
                dev,
                dev_pos,
                inner <- new_mutex!(Inner {
                    state: State::default(),
                    baseline,
                    notph: false,
                    resetting: false,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The device facts, with what enabling has taught.
    fn device(&self, g: &Inner) -> Device {
        Device {
            notph: g.notph,
            ..self.dev
        }
    }

    /// TPH off and the table as at bind. Cannot fail: a config write that does not reach the
    /// device leaves nothing the next enable would trust (it clears the table again).
    fn quiesce(&self, pdev: Pdev) {
        let mut g = self.inner.lock();
        let dev = self.device(&g);
        Self::off(&mut g, dev, pdev);
    }

    /// Around a reset: TPH off before (`done` false) and the bind-time table back after.
    fn reset(&self, pdev: Pdev, done: bool) {
        let mut g = self.inner.lock();
        let dev = self.device(&g);
        Self::off(&mut g, dev, pdev);
        g.resetting = !done;
    }

    fn off(g: &mut Inner, dev: Device, pdev: Pdev) {
        if g.state.enabled.take().is_some() {
            // A table in MSI-X is each vector's control word, which neither disabling nor a
            // reset clears (pci_restore_state() writes the cached words back): clear the tags
            // of the vectors set up, while tph.c still has TPH enabled. Nothing to do on
            // failure: see `quiesce`.
            let _ = Self::clear_msix_tags(dev, pdev);
            pdev.disable();
        }
        for (i, &tag) in (0u16..).zip(g.baseline.iter()) {
            // Nothing to do on failure: see `quiesce`.
            let _ = pdev.table_write(i, tag);
        }
    }

    /// One feature call on `data`, the feature's payload copied from user space (`len` bytes
    /// as the user gave them, at most the largest payload); returns how many bytes of `data`
    /// go back to user space.
    fn feature(&self, pdev: Pdev, index: u32, data: &mut [u8]) -> Result<usize> {
        let mut g = self.inner.lock();
        let dev = self.device(&g);
        let changes = matches!(
            u16::try_from(index),
            Ok(uapi::FEATURE_CTRL | uapi::FEATURE_ST)
        );
        if changes && g.resetting {
            return Err(EBUSY);
        }
        match u16::try_from(index) {
            Ok(uapi::FEATURE_INFO) => {
                let info = dev.info(policy(), g.state).to_bytes();
                data.get_mut(..info.len())
                    .ok_or(EINVAL)?
                    .copy_from_slice(&info);
                Ok(info.len())
            }
            Ok(uapi::FEATURE_CTRL) => {
                let c = uapi::Ctrl::from_bytes(fixed(data)?);
                match dev.ctrl(policy(), g.state, c).map_err(err)? {
                    CtrlAction::Nothing => {}
                    CtrlAction::Disable => Self::off(&mut g, dev, pdev),
                    CtrlAction::Enable(mode) => Self::enable(&mut g, dev, pdev, mode)?,
                }
                Ok(0)
            }
            Ok(uapi::FEATURE_CPU_ST) => {
                let h = header(data, uapi::CPU_ST_EXT)?;
                let mut q = KVec::with_capacity(h.count as usize, GFP_KERNEL)?;
                for b in entries(data, h) {
                    q.push(CpuStEntry::from_bytes(fixed(b)?), GFP_KERNEL)?;
                }
                dev.cpu_st(h, &mut q, &mut |cpu| pdev.cpu_st_info(cpu))
                    .map_err(err)?;
                // The header goes back as it came, each entry answered.
                let mut at = uapi::ARRAY_HEADER_SIZE;
                for c in q.iter() {
                    let end = at + uapi::ENTRY_SIZE;
                    data.get_mut(at..end)
                        .ok_or(EINVAL)?
                        .copy_from_slice(&c.to_bytes());
                    at = end;
                }
                Ok(h.bytes())
            }
            Ok(uapi::FEATURE_ST) => {
                let h = header(data, 0)?;
                let mut st = KVec::with_capacity(h.count as usize, GFP_KERNEL)?;
                for b in entries(data, h) {
                    st.push(StEntry::from_bytes(fixed(b)?), GFP_KERNEL)?;
                }
                dev.check_st(g.state, h, &st).map_err(err)?;
                // In the MSI-X table an entry exists while its vector is allocated (the caller
                // holds igate: vectors do not change under the call).
                if dev.cap.loc() == Some(Loc::Msix) && st.iter().any(|s| !pdev.vector(s.index)) {
                    return Err(ENXIO);
                }
                let mut out = KVec::from_elem(StWrite::default(), st.len(), GFP_KERNEL)?;
                dev.resolve_st(g.state, &st, &mut |cpu| pdev.cpu_st_info(cpu), &mut out)
                    .map_err(err)?;
                Self::program(&mut g, dev, pdev, &out)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }

    /// Lays the virtual capability and control registers over what a config read of `len`
    /// bytes at `off` gave user space at `buf`.
    fn cfg_read(&self, off: u64, buf: *mut c_void, len: usize) -> Result {
        let pos = u64::from(self.dev_pos);
        // The two registers: [pos + 4, pos + 12).
        let lo = off.max(pos + u64::from(tph::regs::CAP));
        let hi = off
            .saturating_add(len as u64)
            .min(pos + u64::from(tph::regs::TABLE));
        if lo >= hi {
            return Ok(());
        }
        let (cap, ctrl) = {
            let g = self.inner.lock();
            let dev = self.device(&g);
            (dev.virt_cap(policy()), tph::config::state_ctrl(g.state))
        };
        let mut b = [0u8; 8];
        // hi - lo <= 8.
        let n = (hi - lo) as usize;
        tph::config::overlay(&mut b[..n], lo, self.dev_pos, cap, ctrl);
        let at = buf.wrapping_byte_add((lo - off) as usize);
        UserSlice::new(UserPtr::from_ptr(at), n)
            .writer()
            .write_slice(&b[..n])
    }

    /// A config write of `data` at `off` bytes into the capability.
    fn cfg_write(&self, pdev: Pdev, off: u16, data: &[u8]) -> Result {
        let mut g = self.inner.lock();
        if g.resetting {
            return Err(EBUSY);
        }
        let dev = self.device(&g);
        match dev
            .config_write(policy(), g.state, off, data)
            .map_err(err)?
        {
            Write::Nothing | Write::Ctrl(CtrlAction::Nothing) => Ok(()),
            Write::Ctrl(CtrlAction::Disable) => {
                Self::off(&mut g, dev, pdev);
                Ok(())
            }
            Write::Ctrl(CtrlAction::Enable(mode)) => Self::enable(&mut g, dev, pdev, mode),
            Write::Entry(w) => Self::program(&mut g, dev, pdev, &[w]),
        }
    }

    fn enable(g: &mut Inner, dev: Device, pdev: Pdev, mode: Mode) -> Result {
        // The table as at bind, whatever an earlier enable left.
        Self::off(g, dev, pdev);
        match pdev.enable(mode) {
            Ok(req) => {
                g.state.enabled = Some((mode, ReqType::from_field(req.into())));
                // A vector torn down while tagged keeps its tag in the device, and the PCI
                // core writes it back when the vector is set up again: nothing is steered
                // before the user programs it.
                if let Err(e) = Self::clear_msix_tags(dev, pdev) {
                    // tph.c turned TPH off on the failed write.
                    Self::off(g, dev, pdev);
                    return Err(e);
                }
                Ok(())
            }
            // The device and policy allow the mode (checked): only `pci=notph` is left.
            Err(e) if e == EINVAL => {
                g.notph = true;
                Err(EOPNOTSUPP)
            }
            Err(e) => Err(e),
        }
    }

    /// Tag 0 in every vector set up, when the table is in MSI-X (TPH enabled). A vector that
    /// is not set up cannot be written (`pcie_tph_set_st_entry()` returns `ENXIO`).
    fn clear_msix_tags(dev: Device, pdev: Pdev) -> Result {
        if dev.cap.loc() == Some(Loc::Msix) {
            for i in (0..dev.msix_size).filter(|&i| pdev.vector(i)) {
                pdev.set_st(StWrite { index: i, tag: 0 })?;
            }
        }
        Ok(())
    }

    /// Writes resolved entries. Every refusal was decided before this; a write can still
    /// fail at the device, and tph.c then disables TPH: the state follows, with the table put
    /// back as at bind.
    fn program(g: &mut Inner, dev: Device, pdev: Pdev, out: &[StWrite]) -> Result {
        for w in out {
            if let Err(e) = pdev.set_st(*w) {
                pr_warn!("ST entry {} not written ({:?}): TPH disabled\n", w.index, e);
                g.state.enabled = None;
                Self::off(g, dev, pdev);
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The header of an array feature whose payload is `data`.
fn header(data: &[u8], known: u32) -> Result<ArrayHeader> {
    let hb = data.get(..uapi::ARRAY_HEADER_SIZE).ok_or(EINVAL)?;
    ArrayHeader::parse(fixed(hb)?, data.len(), known).map_err(err)
}

/// The entries of an array feature, as `h` (checked against `data`'s length) counts them.
fn entries(data: &[u8], h: ArrayHeader) -> impl Iterator<Item = &[u8]> {
    (0..h.count as usize).filter_map(move |i| {
        let at = uapi::ARRAY_HEADER_SIZE + i * uapi::ENTRY_SIZE;
        data.get(at..at + uapi::ENTRY_SIZE)
    })
}

/// `b` as an array of `N` bytes.
fn fixed<const N: usize>(b: &[u8]) -> Result<&[u8; N]> {
    b.get(..N).ok_or(EINVAL)?.try_into().map_err(|_| EINVAL)
}

/// Allocates the state of a device with a TPH capability (`init` of its `vfio_device`).
///
/// # Safety
///
/// `pdev` is a PCI function being bound to this driver; `state` is writable.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_new(pdev: *mut shim::PciDev, state: *mut *mut c_void) -> c_int {
    match TphDevice::new(Pdev(pdev)) {
        Ok(d) => {
            // SAFETY: the C part keeps the pointer until `vpt_rs_free` and never moves the
            // value behind it.
            let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(d) });
            // SAFETY: `state` is writable (the function's precondition).
            unsafe { *state = raw.cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Frees what [`vpt_rs_new`] made; `NULL` is nothing.
///
/// # Safety
///
/// `state` is `NULL` or from [`vpt_rs_new`], and not used after this.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_free(state: *mut c_void) {
    if !state.is_null() {
        // SAFETY: by the precondition, from `KBox::into_raw` in `vpt_rs_new`, freed once.
        drop(unsafe { KBox::from_raw(state.cast::<TphDevice>()) });
    }
}

/// TPH off and the table as at bind (open, close, around resets).
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`] for `pdev`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_quiesce(state: *mut c_void, pdev: *mut shim::PciDev) {
    // SAFETY: by the precondition the state lives and is only shared.
    let d = unsafe { &*state.cast::<TphDevice>() };
    d.quiesce(Pdev(pdev));
}

/// Around a reset of the device (`reset_prepare`, then `reset_done` with `done`).
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`] for `pdev`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_reset(state: *mut c_void, pdev: *mut shim::PciDev, done: bool) {
    // SAFETY: by the precondition the state lives and is only shared.
    let d = unsafe { &*state.cast::<TphDevice>() };
    d.reset(Pdev(pdev), done);
}

/// One TPH feature call on `data`, its payload in kernel memory (`len` bytes), already checked
/// by `vfio_check_feature()` for the feature's direction and minimum size; returns how many
/// bytes of `data` go back to user space, or a negative errno.
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`] for `pdev`, not yet freed; `data` is valid for reads and
/// writes of `len` bytes and not otherwise used during the call; for CTRL and ST the caller
/// holds the device's `igate` and `memory_lock`.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_feature(
    state: *mut c_void,
    pdev: *mut shim::PciDev,
    index: u32,
    data: *mut u8,
    len: usize,
) -> c_int {
    // SAFETY: by the precondition the state lives and is only shared.
    let d = unsafe { &*state.cast::<TphDevice>() };
    // SAFETY: by the precondition `data` is `len` bytes, exclusively ours for the call.
    let data = unsafe { core::slice::from_raw_parts_mut(data, len) };
    match d.feature(Pdev(pdev), index, data) {
        // At most the largest payload (16392 bytes).
        Ok(n) => n as c_int,
        Err(e) => e.to_errno(),
    }
}

/// Lays the virtual TPH registers over a config read (`vpt_read`).
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`], not yet freed; `buf` is the user buffer of the read, `len`
/// bytes long, which held config space from `off`.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_cfg_read(
    state: *mut c_void,
    off: u64,
    buf: *mut c_void,
    len: usize,
) -> c_int {
    // SAFETY: by the precondition the state lives and is only shared.
    let d = unsafe { &*state.cast::<TphDevice>() };
    match d.cfg_read(off, buf, len) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A config write of `data` (`len` bytes, at most 4, in kernel memory) at `off` bytes into the
/// TPH capability (`vpt_write`): `len` on success.
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`] for `pdev`, not yet freed; `data` is valid for reads of `len`
/// bytes; the caller holds the device's `igate` and `memory_lock`.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_cfg_write(
    state: *mut c_void,
    pdev: *mut shim::PciDev,
    off: u16,
    data: *const u8,
    len: usize,
) -> isize {
    // SAFETY: by the precondition the state lives and is only shared.
    let d = unsafe { &*state.cast::<TphDevice>() };
    // SAFETY: by the precondition `data` is `len` readable bytes.
    let data = unsafe { core::slice::from_raw_parts(data, len) };
    match d.cfg_write(Pdev(pdev), off, data) {
        // len <= 4.
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Bytes of the TPH capability in config space.
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`], not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_cfg_size(state: *mut c_void) -> u16 {
    // SAFETY: by the precondition the state lives and is only shared.
    unsafe { &*state.cast::<TphDevice>() }.dev.cap.size()
}

/// Whether TPH can be used on the device (else its capability is hidden).
///
/// # Safety
///
/// `state` is from [`vpt_rs_new`], not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_usable(state: *mut c_void) -> bool {
    // SAFETY: by the precondition the state lives and is only shared.
    let d = unsafe { &*state.cast::<TphDevice>() };
    let g = d.inner.lock();
    d.device(&g).usable()
}

struct VfioPciTph;

impl kernel::Module for VfioPciTph {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: no preconditions; undone in `drop`.
        check(unsafe { shim::vpt_register() })?;
        Ok(Self)
    }
}

impl Drop for VfioPciTph {
    fn drop(&mut self) {
        // SAFETY: registered in `init`; unbinding every device frees its state first.
        unsafe { shim::vpt_unregister() };
    }
}

/// `struct vpt_dma_buf_hint`: a dma-buf's TPH hint as `vfio_pci_core_dma_buf_set_tph()` takes
/// it (a tag is given when its `valid` byte is 1).
#[repr(C)]
pub struct DmaBufHint {
    st_ext: u16,
    st: u8,
    ph: u8,
    st_valid: u8,
    st_ext_valid: u8,
}

// The C part checks the same size (BUILD_BUG_ON).
const _: () = assert!(core::mem::size_of::<DmaBufHint>() == 6);

/// Judges `VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF` on a device whose Device Capabilities 2 register
/// is `devcap2`: with `req` `NULL`, whether the device takes hints at all (PROBE); else the
/// `struct vfio_pci_tph_dma_buf` at `req`, its hint written to `hint`. 0 or a negative errno.
///
/// # Safety
///
/// `req` is `NULL` or valid for reads of `sizeof(struct vfio_pci_tph_dma_buf)` bytes; when it is
/// not `NULL`, `hint` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn vpt_rs_dma_buf(
    devcap2: u32,
    req: *const u8,
    hint: *mut DmaBufHint,
) -> c_int {
    if req.is_null() {
        return match dmabuf::completer(devcap2) {
            Ok(_) => 0,
            Err(e) => err(e).to_errno(),
        };
    }
    // SAFETY: by the precondition `req` points to that many readable bytes (alignment 1).
    let b = unsafe { &*req.cast::<[u8; uapi::DMA_BUF_SIZE]>() };
    match dmabuf::check(devcap2, &uapi::DmaBuf::from_bytes(b)) {
        Ok(h) => {
            let out = DmaBufHint {
                st_ext: h.st_ext.unwrap_or(0),
                st: h.st.unwrap_or(0),
                ph: h.ph,
                st_valid: h.st.is_some().into(),
                st_ext_valid: h.st_ext.is_some().into(),
            };
            // SAFETY: by the precondition `hint` points to a writable `struct vpt_dma_buf_hint`,
            // so it is aligned for it.
            unsafe { hint.write(out) };
            0
        }
        Err(e) => err(e).to_errno(),
    }
}
