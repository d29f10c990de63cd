// SPDX-License-Identifier: GPL-2.0

//! Host build of the shared `hvpt` code.
//!
//! The kernel modules pull `lib.rs` in with `#[path = ".../lib.rs"] pub mod hvpt;`, so the same
//! source is compiled as a module of a kernel crate there and as this crate here. Nothing in
//! `lib.rs` or below may name `crate::`, `std` or `alloc`.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "lib.rs"]
mod hvpt;

pub use hvpt::*;
