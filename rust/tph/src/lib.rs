// SPDX-License-Identifier: GPL-2.0

//! Kernel-independent core of the vfio_pci_tph variant driver (PCIe TLP Processing Hints for
//! devices owned through VFIO).
//!
//! - [`regs`]: the TPH Requester capability, the completer field of Device Capabilities 2 and the
//!   ACPI `_DSM` answer that carries a CPU's steering tags, decoded;
//! - [`uapi`]: the layouts of `include/uapi/linux/vfio_pci_tph.h`, decoded from and encoded to the
//!   bytes user space passes;
//! - [`config`]: the TPH capability in config space as the user sees it (reads and writes);
//! - [`policy`]: what each feature call may do on a given device in a given state, decided before
//!   anything touches the device;
//! - [`dmabuf`]: the TPH hints one of the device's dma-bufs may be given.
//!
//! Plain `core` Rust, as `rust/hvpt` (see its rules): the module includes this file, `host.rs`
//! makes it a crate for `cargo test`.

pub mod config;
pub mod dmabuf;
/// The errno values of the shared code (one file, also `hvpt`'s).
#[path = "../../hvpt/src/errno.rs"]
pub mod errno;
pub mod policy;
pub mod regs;
pub mod uapi;
