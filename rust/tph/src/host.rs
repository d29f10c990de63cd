// SPDX-License-Identifier: GPL-2.0

//! Host build of the shared `tph` code, for `cargo test`.
//!
//! The vfio_pci_tph module pulls `lib.rs` in with `#[path = ".../lib.rs"] mod tph;`, so the same
//! source is compiled as a module of the kernel crate there and as this crate here. Nothing in
//! `lib.rs` or below may name `crate::`, `std` or `alloc`.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "lib.rs"]
mod tph;

pub use tph::*;
