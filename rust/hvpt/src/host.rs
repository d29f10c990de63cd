// SPDX-License-Identifier: GPL-2.0

//! Host build of the shared `hvpt` code.
//!
//! The kernel modules pull `lib.rs` in with `#[path = ".../lib.rs"] pub mod hvpt;`, so the same
//! source is compiled as a module of a kernel crate there and as this crate here. Nothing in
//! `lib.rs` or below may name `crate::`, `std` or `alloc`.
//!
//! This file adds what only the host needs: the simulator's storage on `alloc` ([`HostAlloc`])
//! and a backend that runs the simulator in-process ([`HostBackend`]), used by `cargo test` and
//! the figures example.

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[path = "lib.rs"]
mod hvpt;

pub use hvpt::*;

use alloc::boxed::Box;
use alloc::vec::Vec;

use hvpt::errno::{self as e, Errno};
use hvpt::storage::{Storage, StorageVec};

/// `Vec` with fallible push.
pub struct HostVec<T>(Vec<T>);

impl<T> core::ops::Deref for HostVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> core::ops::DerefMut for HostVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T> StorageVec<T> for HostVec<T> {
    fn try_push(&mut self, v: T) -> Result<(), Errno> {
        self.0.try_reserve(1).map_err(|_| e::ENOMEM)?;
        self.0.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
}

/// The simulator's storage on the host.
pub struct HostAlloc;

impl Storage for HostAlloc {
    type Vec<T> = HostVec<T>;
    type Table = Box<[u64; 512]>;

    fn new_vec<T>() -> HostVec<T> {
        HostVec(Vec::new())
    }

    fn new_table() -> Result<Box<[u64; 512]>, Errno> {
        Ok(Box::new([0; 512]))
    }
}

#[cfg(feature = "sim")]
mod sim_backend;
#[cfg(feature = "sim")]
pub use sim_backend::HostBackend;
