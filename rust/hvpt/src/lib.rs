// SPDX-License-Identifier: GPL-2.0

//! Kernel-independent core of the mshv-passthru modules.
//!
//! Everything here is plain `core` Rust: no kernel crate, no `std`, no `alloc`. The kernel modules
//! include this file as a module (`#[path = "../../rust/hvpt/src/lib.rs"] pub mod hvpt;`), and
//! `host.rs` turns it into a crate so that `cargo test` runs the same code on the host.
//!
//! Rules for code below this module:
//! - refer to sibling modules with `super::`, never `crate::` (the crate differs per user);
//! - no panics on any input: every decoder returns an error instead;
//! - errors are specific and map to a Linux errno through [`errno`].

pub mod abi;
pub mod calls;
pub mod device_id;
pub mod direct;
pub mod errno;
pub mod hypercall;
pub mod iommu;
pub mod layer;
pub mod mshv_uapi;
pub mod pagetable;
pub mod reserve;
pub mod storage;

// The simulated hypervisor and its tests: only in the module that hosts it (mshv_hvcall,
// built with `--cfg mshv_pt_sim`) and in the host crate (feature `sim`), never in a
// production driver.
#[cfg(any(feature = "sim", mshv_pt_sim))]
pub mod selftest;
#[cfg(any(feature = "sim", mshv_pt_sim))]
pub mod sim;
#[cfg(any(feature = "sim", mshv_pt_sim))]
pub mod simctl;
