// SPDX-License-Identifier: GPL-2.0

//! Cloud Hypervisor's VFIO flow on MSHV, through rust-vmm's `mshv-ioctls` and `vfio-ioctls`
//! (feature `mshv`) from crates.io, unchanged, against the mshv-vfio bridge:
//!
//! 1. open `/dev/mshv`, `MSHV_CREATE_PARTITION` (the 64-byte v2 struct), `MSHV_INITIALIZE_PARTITION`,
//!    `MSHV_SET_GUEST_MEMORY` of the guest's RAM;
//! 2. `MSHV_CREATE_DEVICE` of type VFIO on the partition fd;
//! 3. a VFIO type1 container that knows the bridge, and the device (its group goes into the
//!    container and, with `MSHV_SET_DEVICE_ATTR` FILE/ADD, to the bridge);
//! 4. `VFIO_IOMMU_MAP_DMA` of guest RAM, then unmap and teardown (FILE/DEL, close).
//!
//! At FILE/ADD the IOMMU driver attaches the device directly to the partition (the guest's SLAT
//! translates its DMA) unless `hyperv_iommu_root.hv_iommu_direct_attach=N`; the sample prints
//! which mode the device got and checks it is the one the policy asks for, and that the map of
//! guest RAM at IOVA = GPA keeps it there.
//!
//! After each step it prints what the hypervisor holds (the simulated hypervisor's and the
//! bridge's debugfs) and checks it; any difference is an error (exit status 1).
//!
//! Usage: `mshv-vfio-sample SSSS:BB:DD.F` (a function bound to vfio-pci), as root.

use std::error::Error;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use mshv_bindings::{
    mshv_create_device, mshv_create_partition_v2, mshv_device_attr, mshv_user_mem_region,
    MSHV_DEV_TYPE_VFIO, MSHV_DEV_VFIO_FILE, MSHV_DEV_VFIO_FILE_ADD, MSHV_NUM_CPU_FEATURES_BANKS,
    MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES, MSHV_PT_BIT_GPA_SUPER_PAGES, MSHV_PT_BIT_LAPIC,
    MSHV_PT_BIT_X2APIC, MSHV_SET_MEM_BIT_EXECUTABLE, MSHV_SET_MEM_BIT_WRITABLE,
};
use mshv_ioctls::Mshv;
use vfio_ioctls::{VfioContainer, VfioDevice, VfioDeviceFd};

type Res<T> = Result<T, Box<dyn Error>>;

const DUMP: &str = "/sys/kernel/debug/mshv_hvcall/dump";
const PCI_IDS: &str = "/sys/kernel/debug/mshv_hvcall/pci_ids";
const BRIDGE: &str = "/sys/kernel/debug/mshv_vfio/state";
const GUEST_RAM: usize = 4 << 20;
const DIRECT_PARAM: &str = "/sys/module/hyperv_iommu_root/parameters/hv_iommu_direct_attach";

/// Guest partition ids the simulated hypervisor holds.
fn partitions() -> Res<Vec<u64>> {
    Ok(fs::read_to_string(DUMP)?
        .lines()
        .filter_map(|l| l.strip_prefix("partition "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect())
}

/// Pages in the SLAT of guest partition `pt`.
fn slat_pages(pt: u64) -> Res<Option<u64>> {
    let head = format!("partition {pt} pool ");
    Ok(fs::read_to_string(DUMP)?
        .lines()
        .find(|l| l.starts_with(&head))
        .and_then(|l| l.split(' ').find_map(|w| w.strip_prefix("slat=")))
        .and_then(|n| n.parse().ok()))
}

/// `(domain id, mapped pages)` of every paging domain.
fn domains() -> Res<Vec<(u32, u64)>> {
    Ok(fs::read_to_string(DUMP)?
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("domain ")?.split(' ');
            let id = w.next()?.parse().ok()?;
            let mapped = w.find_map(|x| x.strip_prefix("mapped="))?.parse().ok()?;
            Some((id, mapped))
        })
        .collect())
}

/// The hypervisor's device id of PCI function `bdf` (`mshv_hvcall/pci_ids`).
fn device_id(bdf: &str) -> Res<String> {
    fs::read_to_string(PCI_IDS)?
        .lines()
        .find_map(|l| Some(l.strip_prefix(bdf)?.trim().to_string()))
        .ok_or_else(|| format!("{bdf} is not in {PCI_IDS}").into())
}

/// Prints the guest partitions, the device domains and where the device is.
fn show(step: &str, dev: &str) -> Res<()> {
    println!("== {step}");
    for l in fs::read_to_string(DUMP)?.lines() {
        let guest = l.starts_with("partition ") && !l.starts_with("partition self");
        if guest || l.starts_with("domain ") || l.starts_with(&format!("device {dev} ")) {
            println!("   hypervisor: {l}");
        }
    }
    for l in fs::read_to_string(BRIDGE)?.lines() {
        println!("   bridge:     {l}");
    }
    Ok(())
}

/// The translation the bridge reports for `bdf`: `direct` or `domain`.
fn mode(bdf: &str) -> Res<String> {
    let key = format!("  device {bdf} ");
    fs::read_to_string(BRIDGE)?
        .lines()
        .find_map(|l| Some(l.strip_prefix(&key)?.to_string()))
        .ok_or_else(|| format!("{bdf} is not in {BRIDGE}").into())
}

/// The partition the hypervisor has device `dev` attached to, if any.
fn attached_to(dev: &str) -> Res<Option<u64>> {
    let key = format!("device {dev} partition ");
    Ok(fs::read_to_string(DUMP)?
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.split(' ').next()?.parse().ok()))
}

fn check(what: &str, ok: bool) -> Res<()> {
    if ok {
        println!("   ok: {what}");
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}

fn run(bdf: &str) -> Res<()> {
    let dev = device_id(bdf)?;
    let before = partitions()?;
    let mshv = Mshv::new()?;
    // Cloud Hypervisor's partition flags, in the v2 struct (bit 3: read all 64 bytes).
    let args = mshv_create_partition_v2 {
        pt_flags: [
            MSHV_PT_BIT_LAPIC,
            MSHV_PT_BIT_X2APIC,
            MSHV_PT_BIT_GPA_SUPER_PAGES,
            MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES,
        ]
        .iter()
        .fold(0u64, |f, &b| f | 1u64 << b),
        pt_num_cpu_fbanks: MSHV_NUM_CPU_FEATURES_BANKS as u16,
        ..Default::default()
    };
    let vm = mshv.create_vm_with_args(&args)?;
    vm.initialize()?;
    let created: Vec<u64> = partitions()?
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    show("MSHV_CREATE_PARTITION + MSHV_INITIALIZE_PARTITION", &dev)?;
    check("one new guest partition", created.len() == 1)?;
    let pt = created[0];

    // Guest RAM: anonymous memory the guest's memory at GPA 0, and the device's at IOVA 0.
    // SAFETY: a fresh anonymous mapping; nothing else refers to that range.
    let ram = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            GUEST_RAM,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if ram == libc::MAP_FAILED {
        return Err("mmap of guest RAM failed".into());
    }
    let pages = (GUEST_RAM / 4096) as u64;
    vm.map_user_memory(mshv_user_mem_region {
        size: GUEST_RAM as u64,
        guest_pfn: 0,
        userspace_addr: ram as u64,
        flags: (1 << MSHV_SET_MEM_BIT_WRITABLE) | (1 << MSHV_SET_MEM_BIT_EXECUTABLE),
        rsvd: [0; 7],
    })?;
    show("MSHV_SET_GUEST_MEMORY of 4 MiB guest RAM at GPA 0", &dev)?;
    check(
        "the guest's SLAT holds every page of guest RAM",
        slat_pages(pt)? == Some(pages),
    )?;

    let mut cd = mshv_create_device {
        type_: MSHV_DEV_TYPE_VFIO,
        fd: 0,
        flags: 0,
    };
    let bridge = vm.create_device(&mut cd)?;
    let attr = mshv_device_attr {
        flags: 0,
        group: MSHV_DEV_VFIO_FILE,
        attr: u64::from(MSHV_DEV_VFIO_FILE_ADD),
        addr: 0,
    };
    bridge.has_device_attr(&attr)?;
    show("MSHV_CREATE_DEVICE (VFIO)", &dev)?;
    let state = fs::read_to_string(BRIDGE)?;
    check(
        "the bridge is on the new partition, with no file",
        state.contains(&format!("bridge partition {pt} files 0\n")),
    )?;

    let handle = Arc::new(VfioDeviceFd::new_from_mshv(bridge));
    let container = Arc::new(VfioContainer::new(Some(handle))?);
    let sysfs = PathBuf::from(format!("/sys/bus/pci/devices/{bdf}"));
    let device = VfioDevice::new(&sysfs, container.clone(), false)?;
    show(
        "VfioDevice::new: group in the container, MSHV_SET_DEVICE_ATTR FILE/ADD",
        &dev,
    )?;
    let state = fs::read_to_string(BRIDGE)?;
    check(
        "the bridge holds the group file",
        state.contains(&format!("bridge partition {pt} files 1\n")),
    )?;
    let direct = fs::read_to_string(DIRECT_PARAM)?.trim() == "Y";
    let want = if direct { "direct" } else { "domain" };
    let got = mode(bdf)?;
    println!(
        "   device {bdf}: {got} (hv_iommu_direct_attach={})",
        if direct { "Y" } else { "N" }
    );
    check(&format!("the device's translation is {want}"), got == want)?;
    check(
        "the hypervisor agrees",
        attached_to(&dev)? == direct.then_some(pt),
    )?;

    // SAFETY: `ram` is a mapping of GUEST_RAM bytes that no Rust reference points into; it is
    // unmapped from the device below before it is unmapped from the process.
    unsafe { container.vfio_dma_map(0, GUEST_RAM, ram.cast())? };
    show("VFIO_IOMMU_MAP_DMA of 4 MiB guest RAM at IOVA 0", &dev)?;
    if direct {
        // The container's domain, which no device uses in the hypervisor, records the map in its
        // shadow only (it is filled if the device goes back to it).
        check(
            "no device domain holds guest RAM (the container's is filled lazily)",
            domains()?.iter().all(|&(_, m)| m == 0),
        )?;
    } else {
        check(
            "one device domain holds every page of guest RAM",
            domains()?.iter().any(|&(_, m)| m == pages),
        )?;
    }
    check(
        "the device's translation did not change (the map is guest RAM at IOVA = GPA)",
        mode(bdf)? == want && attached_to(&dev)? == direct.then_some(pt),
    )?;

    container.vfio_dma_unmap(0, GUEST_RAM)?;
    show("VFIO_IOMMU_UNMAP_DMA", &dev)?;
    check(
        "no page mapped in any device domain",
        domains()?.iter().all(|&(_, m)| m == 0),
    )?;

    drop(device);
    show(
        "device closed: its group leaves the container (MSHV_SET_DEVICE_ATTR FILE/DEL)",
        &dev,
    )?;
    let state = fs::read_to_string(BRIDGE)?;
    check(
        "the bridge holds no file",
        state.contains(&format!("bridge partition {pt} files 0\n")),
    )?;
    check(
        "the device is in no partition",
        attached_to(&dev)?.is_none(),
    )?;

    drop(container);
    show("container closed, and with it the bridge fd", &dev)?;
    let state = fs::read_to_string(BRIDGE)?;
    check("no bridge is left", state.starts_with("bridges 0 files 0"))?;
    check("the partition is still there", partitions()?.contains(&pt))?;

    drop(vm);
    drop(mshv);
    show("partition fd closed", &dev)?;
    check("the guest partition is gone", !partitions()?.contains(&pt))?;
    // SAFETY: neither the device nor the guest reaches the range any more; nothing else refers
    // to it.
    unsafe { libc::munmap(ram, GUEST_RAM) };
    Ok(())
}

fn main() {
    let Some(bdf) = std::env::args().nth(1) else {
        eprintln!("usage: mshv-vfio-sample SSSS:BB:DD.F");
        std::process::exit(2);
    };
    if let Err(e) = run(&bdf) {
        eprintln!("mshv-vfio-sample: {e}");
        std::process::exit(1);
    }
    println!("mshv-vfio-sample: Cloud Hypervisor's flow passed");
}
