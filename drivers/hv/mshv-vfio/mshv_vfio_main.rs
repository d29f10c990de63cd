// SPDX-License-Identifier: GPL-2.0

//! mshv-vfio bridge: the VFIO device type of `MSHV_CREATE_DEVICE` on an mshv partition fd.
//!
//! A VMM hands the bridge the VFIO files (group or device cdev fds) of the devices it passes to
//! the guest, with `MSHV_SET_DEVICE_ATTR` group `MSHV_DEV_VFIO_FILE`, attribute `ADD` or `DEL`,
//! exactly as Cloud Hypervisor does through rust-vmm's `mshv-ioctls`. The bridge holds a
//! reference to each file and to the partition it was created on, and drops the files before
//! the partition when its fd is closed.
//!
//! For each PCI function behind an added file, the bridge asks hyperv-iommu-root to attach it
//! directly to the partition (`hvir_attach_guest()`); the IOMMU driver decides (its policy
//! parameter, and whether what the VMM mapped agrees with guest memory) and a refusal leaves
//! the device in device-domain translation, which is not an error for the VMM. Before it drops
//! a file (`DEL`, or its own release), the bridge moves that file's devices back out of the
//! partition itself, rather than leaving it to VFIO's release of the file, which `fput` may
//! defer.
//!
//! The device type table is C (`mshv_vfio_shim.c`), because providers find it with
//! `symbol_get()`; a provider is the patched `mshv_root` on a real host or the simulated
//! `/dev/mshv` of `mshv_hvcall` in tests, and nothing here knows which. The rules of the
//! attribute ioctls are the shared `hvpt::mshv_uapi` code, host-tested. See
//! `Documentation/mshv-vfio-bridge.rst`.

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};

use kernel::{
    debugfs::{
        Dir,
        File as DebugFile, //
    },
    fs::{
        File,
        LocalFile, //
    },
    prelude::*,
    sync::aref::ARef,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// The parts of the kernel-independent shared code (`rust/hvpt`) the bridge uses: the uAPI
/// rules, host-tested with the rest of it.
#[path = "../../../rust/hvpt/src"]
pub mod hvpt {
    pub mod errno;
    pub mod mshv_uapi;
}

use hvpt::errno::Errno;
use hvpt::mshv_uapi::{
    self,
    DeviceAttr,
    FileOp, //
};

module! {
    type: MshvVfio,
    name: "mshv_vfio",
    authors: ["mshv-passthru developers"],
    description: "mshv-vfio bridge: VFIO devices on an MSHV partition (MSHV_CREATE_DEVICE)",
    license: "GPL",
}

/// C functions of `mshv_vfio_shim.c` (declared in `mshv_vfio.h`).
mod shim {
    use core::ffi::{c_int, c_void};
    use kernel::ffi::c_char;

    extern "C" {
        pub(super) fn mshv_vfio_file_is_vfio(file: *mut c_void) -> bool;
        pub(super) fn mshv_vfio_file_pci_devs(
            file: *mut c_void,
            devs: *mut *mut c_void,
            max: c_int,
        ) -> c_int;
        pub(super) fn mshv_vfio_attach(mdev: *mut c_void, pdev: *mut c_void) -> c_int;
        pub(super) fn mshv_vfio_detach(mdev: *mut c_void, pdev: *mut c_void);
        pub(super) fn mshv_vfio_pci_put(pdev: *mut c_void);
        pub(super) fn mshv_vfio_device_partition(
            mdev: *mut c_void,
            partition: *mut *mut c_void,
            ops: *mut *const c_void,
        ) -> c_int;
        pub(super) fn mshv_vfio_pci_direct(pdev: *mut c_void) -> bool;
        pub(super) fn mshv_vfio_pci_name(pdev: *mut c_void) -> *const c_char;
    }
}

/// The most PCI functions one VFIO file may cover (a group's); beyond, `FILE_ADD` is `E2BIG`.
const MAX_FILE_DEVS: usize = 32;

kernel::sync::global_lock! {
    // SAFETY: initialized in `MshvVfio::init`, before any provider can reach the device type:
    // `symbol_get()` fails while the module is still initializing.
    unsafe(uninit) static BRIDGES: Mutex<KVec<Bridge>> = KVec::new();
}

/// The key of the next bridge; the C part holds a bridge as its key.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// Turns a shared-code errno into a kernel error.
fn kerr(e: Errno) -> Error {
    Error::from_errno(-e.0)
}

/// A VFIO file the bridge holds a reference to (dropped with this).
struct VfioFile(ARef<File>);

impl VfioFile {
    /// Takes a reference to the VFIO file behind `fd` of the calling task: `EBADF` if there is
    /// none, `EINVAL` if the file is not a VFIO group or device file.
    fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        let local = LocalFile::fget(fd)?;
        // SAFETY: this runs inside an ioctl of the bridge's own fd; `fdget_pos` is only taken by
        // read/write/lseek-like syscalls, so no `fdget_pos` call is active on this thread.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        // SAFETY: `file` is a live file: we hold a reference to it.
        if !unsafe { shim::mshv_vfio_file_is_vfio(file.as_ptr().cast()) } {
            return Err(EINVAL);
        }
        Ok(Self(file))
    }

    /// Whether this is the file `other`.
    fn is(&self, other: &Self) -> bool {
        core::ptr::eq(self.0.as_ptr(), other.0.as_ptr())
    }
}

/// A PCI function behind a held VFIO file, with a reference to it.
///
/// # Invariants
///
/// `pdev` is a `struct pci_dev` this holds one reference to; `direct` is set when the IOMMU
/// driver moved it into the partition of `mdev` on the bridge's request. `mdev` is the bridge's
/// device, valid while this lives (the bridge's release drops it before the device goes).
struct PciFn {
    pdev: NonNull<c_void>,
    mdev: NonNull<c_void>,
    direct: bool,
}

impl PciFn {
    /// Whether the IOMMU driver has it in a guest partition now (it may have moved it back
    /// since the bridge asked: a later map disagreed, or VFIO moved it).
    fn in_guest(&self) -> bool {
        // SAFETY: by the type invariant `pdev` is live.
        unsafe { shim::mshv_vfio_pci_direct(self.pdev.as_ptr()) }
    }

    fn name(&self) -> &CStr {
        // SAFETY: by the type invariant `pdev` is live; `pci_name()` is its device name, a
        // NUL-terminated string that lives as long as the device.
        unsafe { CStr::from_char_ptr(shim::mshv_vfio_pci_name(self.pdev.as_ptr())) }
    }
}

impl Drop for PciFn {
    fn drop(&mut self) {
        if self.direct {
            // SAFETY: by the type invariant `pdev` and `mdev` are live.
            unsafe { shim::mshv_vfio_detach(self.mdev.as_ptr(), self.pdev.as_ptr()) };
        }
        // SAFETY: by the type invariant this owns one reference, given back once.
        unsafe { shim::mshv_vfio_pci_put(self.pdev.as_ptr()) };
    }
}

/// A VFIO file held by a bridge, and the PCI functions behind it. Dropping it moves the
/// functions out of the partition first (field order), then drops the file.
struct Held {
    devs: KVec<PciFn>,
    file: VfioFile,
}

/// The `struct mshv_device` a bridge belongs to, for `mshv_vfio_attach()`.
///
/// # Invariants
///
/// Valid from the bridge's creation to its release, which removes the bridge first.
struct MshvDevice(NonNull<c_void>);

// SAFETY: the device is only passed to C calls that may run on any thread.
unsafe impl Send for MshvDevice {}

// SAFETY: `PciFn` only holds a reference to a PCI function, usable from any thread.
unsafe impl Send for PciFn {}

/// One bridge: the VFIO files added to one partition. Lives in [`BRIDGES`].
///
/// # Invariants
///
/// No file is in `files` twice; `key` is unique among bridges.
struct Bridge {
    key: u64,
    /// The hypervisor's id of the partition the bridge was created on (the provider's, from the
    /// fd the VMM passed; never derived from the calling task).
    partition: u64,
    mdev: MshvDevice,
    /// Files added and not deleted.
    files: KVec<Held>,
}

/// Runs `f` on the bridge `key` under [`BRIDGES`]' lock; `ENODEV` if there is none (which the
/// C part's lifetime rules exclude).
fn with_bridge<R>(key: u64, f: impl FnOnce(&mut Bridge) -> Result<R>) -> Result<R> {
    let mut all = BRIDGES.lock();
    let b = all.iter_mut().find(|b| b.key == key).ok_or(ENODEV)?;
    f(b)
}

/// The PCI functions behind `file`, each referenced, none attached yet, for the bridge of device
/// `mdev`.
fn pci_fns(file: &VfioFile, mdev: NonNull<c_void>) -> Result<KVec<PciFn>> {
    let mut raw = [core::ptr::null_mut::<c_void>(); MAX_FILE_DEVS];
    // SAFETY: `file` is a live VFIO file (we hold it); `raw` has room for `MAX_FILE_DEVS`.
    let n = unsafe {
        shim::mshv_vfio_file_pci_devs(
            file.0.as_ptr().cast(),
            raw.as_mut_ptr(),
            MAX_FILE_DEVS as c_int,
        )
    };
    let n = usize::try_from(n).map_err(|_| Error::from_errno(n))?;
    let mut fns = KVec::new();
    let mut res = Ok(());
    for &p in raw.iter().take(n) {
        let Some(pdev) = NonNull::new(p) else {
            continue;
        };
        // INVARIANT: the shim returned a reference to each; not attached yet.
        let f = PciFn {
            pdev,
            mdev,
            direct: false,
        };
        // On failure `f` comes back in the error and its reference is dropped.
        if fns.push(f, GFP_KERNEL).is_err() {
            res = Err(ENOMEM);
        }
    }
    res.map(|()| fns)
}

/// `MSHV_DEV_VFIO_FILE_ADD`: `EEXIST` if the file is held already. Then asks for direct attach
/// of each PCI function behind it; a refusal is not an error (the device stays in
/// device-domain translation, logged).
fn add(key: u64, fd: i32) -> Result {
    let file = VfioFile::get(fd)?;
    let mut refused = None;
    let r = with_bridge(key, |b| {
        if b.files.iter().any(|h| h.file.is(&file)) {
            refused = Some(file);
            return Err(EEXIST);
        }
        let devs = match pci_fns(&file, b.mdev.0) {
            Ok(d) => d,
            Err(e) => {
                refused = Some(file);
                return Err(e);
            }
        };
        let mut held = Held { devs, file };
        if b.files.reserve(1, GFP_KERNEL).is_err() {
            refused = Some(held.file);
            return Err(ENOMEM);
        }
        for f in held.devs.iter_mut() {
            // SAFETY: `mdev` is valid while the bridge is in the registry (type invariant);
            // `f.pdev` is referenced.
            f.direct = unsafe { shim::mshv_vfio_attach(b.mdev.0.as_ptr(), f.pdev.as_ptr()) } == 0;
        }
        // Within the capacity reserved above.
        b.files.push_within_capacity(held).map_err(|_| ENOMEM)
    });
    // A file not taken is released here, outside the lock.
    drop(refused);
    r
}

/// `MSHV_DEV_VFIO_FILE_DEL`: `ENOENT` if the file is not held.
fn del(key: u64, fd: i32) -> Result {
    let file = VfioFile::get(fd)?;
    let removed = with_bridge(key, |b| {
        let i = b
            .files
            .iter()
            .position(|h| h.file.is(&file))
            .ok_or(ENOENT)?;
        Ok(b.files.remove(i)?)
    })?;
    // The devices leave the partition, then both file references go, outside the lock.
    drop((removed, file));
    Ok(())
}

/// An ioctl's negative errno.
fn to_long(e: Error) -> c_long {
    // Widening: `c_long` is at least as wide as the `c_int` errno.
    e.to_errno() as c_long
}

/// Reads the int32 fd at the user address `addr`.
fn read_fd(addr: u64) -> Result<i32> {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    UserSlice::new(UserPtr::from_addr(addr), size_of::<i32>())
        .reader()
        .read::<i32>()
}

fn attr(flags: u32, group: u32, attr: u64, addr: u64) -> DeviceAttr {
    DeviceAttr {
        flags: flags.into(),
        group: group.into(),
        attr: attr.into(),
        addr: addr.into(),
    }
}

/// Creates a bridge on partition `partition_id` for the `struct mshv_device` `mdev`; its handle
/// (never NULL), or NULL and `*err`.
///
/// # Safety
///
/// `err` must be valid for writes; `mdev` must stay valid until `mshv_vfio_rs_release()`.
#[no_mangle]
unsafe extern "C" fn mshv_vfio_rs_create(
    partition_id: u64,
    mdev: *mut c_void,
    err: *mut c_int,
) -> *mut c_void {
    let Some(mdev) = NonNull::new(mdev) else {
        // SAFETY: by the function's safety requirements.
        unsafe { *err = EINVAL.to_errno() };
        return core::ptr::null_mut();
    };
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let b = Bridge {
        key,
        partition: partition_id,
        // INVARIANT: the C part releases the bridge before the device goes.
        mdev: MshvDevice(mdev),
        files: KVec::new(),
    };
    // INVARIANT: `files` is empty; keys come from a 64-bit counter that does not wrap.
    if BRIDGES.lock().push(b, GFP_KERNEL).is_err() {
        // SAFETY: by the function's safety requirements.
        unsafe { *err = ENOMEM.to_errno() };
        return core::ptr::null_mut();
    }
    // The handle is the key: an opaque, nonzero value the C part stores in `dev->private`.
    key as usize as *mut c_void
}

/// Frees a bridge, dropping every file reference it holds (`fput`) before it returns.
///
/// # Safety
///
/// `bridge` must come from `mshv_vfio_rs_create()`, and no other call on it may run or follow.
#[no_mangle]
unsafe extern "C" fn mshv_vfio_rs_release(bridge: *mut c_void) {
    let key = bridge as usize as u64;
    let gone = {
        let mut all = BRIDGES.lock();
        all.iter()
            .position(|b| b.key == key)
            .and_then(|i| all.remove(i).ok())
    };
    // The devices leave the partition and the file references go here, outside the lock,
    // before the C part drops the partition.
    drop(gone);
}

/// The partition of the bridge whose `struct mshv_device` is `mdev`, with a reference taken for
/// the caller (hyperv_iommu_root's guest partition HWPT). `EINVAL` if no live bridge has that
/// device: `mdev` is then never dereferenced.
///
/// # Safety
///
/// `partition` and `ops` must be valid for writes.
#[no_mangle]
unsafe extern "C" fn mshv_vfio_rs_partition_of(
    mdev: *mut c_void,
    partition: *mut *mut c_void,
    ops: *mut *const c_void,
) -> c_int {
    let all = BRIDGES.lock();
    if !all.iter().any(|b| b.mdev.0.as_ptr() == mdev) {
        return EINVAL.to_errno();
    }
    // SAFETY: `mdev` is a live bridge's device (type invariant of `MshvDevice`: valid while
    // the bridge is in the registry, whose lock we hold); the out-pointers are the caller's.
    unsafe { shim::mshv_vfio_device_partition(mdev, partition, ops) }
}

/// `MSHV_SET_DEVICE_ATTR`.
///
/// # Safety
///
/// `bridge` must come from `mshv_vfio_rs_create()` and not be released yet.
#[no_mangle]
unsafe extern "C" fn mshv_vfio_rs_set_attr(
    bridge: *mut c_void,
    flags: u32,
    group: u32,
    attr_nr: u64,
    addr: u64,
) -> c_long {
    let key = bridge as usize as u64;
    let r = match mshv_uapi::vfio_attr(&attr(flags, group, attr_nr, addr)) {
        Err(e) => Err(kerr(e)),
        Ok(FileOp::Add { addr }) => read_fd(addr).and_then(|fd| add(key, fd)),
        Ok(FileOp::Del { addr }) => read_fd(addr).and_then(|fd| del(key, fd)),
    };
    match r {
        Ok(()) => 0,
        Err(e) => to_long(e),
    }
}

/// The "has" attribute ioctls: 0 for the VFIO file attributes, `ENXIO` for any other, `EINVAL`
/// for nonzero flags. Nothing is read from or written to `addr`.
///
/// # Safety
///
/// `bridge` must come from `mshv_vfio_rs_create()` and not be released yet.
#[no_mangle]
unsafe extern "C" fn mshv_vfio_rs_has_attr(
    _bridge: *mut c_void,
    flags: u32,
    group: u32,
    attr_nr: u64,
    addr: u64,
) -> c_long {
    match mshv_uapi::vfio_attr(&attr(flags, group, attr_nr, addr)) {
        Ok(_) => 0,
        Err(e) => to_long(kerr(e)),
    }
}

/// `mshv_vfio/state`: each bridge alive, its partition and the VFIO file references it holds,
/// and the PCI functions behind them with their translation now: `direct` (attached to the
/// partition) or `domain` (device-domain translation).
fn show_state(_: &(), f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    let all = BRIDGES.lock();
    let files: usize = all.iter().map(|b| b.files.len()).sum();
    writeln!(f, "bridges {} files {}", all.len(), files)?;
    for b in all.iter() {
        writeln!(
            f,
            "bridge partition {} files {}",
            b.partition,
            b.files.len()
        )?;
        for d in b.files.iter().flat_map(|h| h.devs.iter()) {
            let mode = if d.in_guest() { "direct" } else { "domain" };
            writeln!(f, "  device {} {}", d.name().to_str().unwrap_or("?"), mode)?;
        }
    }
    Ok(())
}

/// Module state. A bridge holds the module (the provider took it with `symbol_get()`), so no
/// bridge is alive when this is dropped.
#[pin_data(PinnedDrop)]
struct MshvVfio {
    #[pin]
    state: DebugFile<()>,
    _debugfs: Dir,
}

#[pinned_drop]
impl PinnedDrop for MshvVfio {
    fn drop(self: Pin<&mut Self>) {
        // No bridge is alive (each holds the module); free the list's own buffer, which the
        // static would otherwise keep past unload.
        let list = core::mem::take(&mut *BRIDGES.lock());
        drop(list);
    }
}

impl kernel::InPlaceModule for MshvVfio {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called exactly once, before anything else uses the lock.
        unsafe { BRIDGES.init() };
        let debugfs = Dir::new(c"mshv_vfio");
        try_pin_init!(Self {
            state <- debugfs.read_callback_file(c"state", (), &show_state),
            _debugfs: debugfs,
        })
    }
}
