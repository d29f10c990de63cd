// SPDX-License-Identifier: GPL-2.0

//! Storage for the shared tables: what [`PageTable`](super::pagetable::PageTable), the IOMMU
//! driver's shadow and the simulated hypervisor allocate from.
//!
//! The host build uses `Vec`/`Box`; a kernel module supplies `KVec`/`KBox` with the flags its
//! context allows (`drivers/hv/hvcall/kalloc.rs`). This module sits below both the page table
//! and the simulator, so that production code (the IOMMU driver) needs nothing of the
//! simulator.

use core::ops::{Deref, DerefMut};

use super::errno::Errno;

/// Entries of one table page.
pub const TABLE_ENTRIES: usize = 512;

/// A fallible vector (`Vec` on the host, `KVec` in the kernel).
pub trait StorageVec<T>: Deref<Target = [T]> + DerefMut {
    /// Appends `v`; `ENOMEM` if memory runs out.
    fn try_push(&mut self, v: T) -> Result<(), Errno>;
    /// Removes the last element.
    fn pop(&mut self) -> Option<T>;
}

/// Where a table gets its memory.
pub trait Storage {
    /// A growable vector.
    type Vec<T>: StorageVec<T>;
    /// One zeroed table page.
    type Table: Deref<Target = [u64; TABLE_ENTRIES]> + DerefMut;
    /// An empty vector (no allocation).
    fn new_vec<T>() -> Self::Vec<T>;
    /// A zeroed table; `ENOMEM` if memory runs out.
    fn new_table() -> Result<Self::Table, Errno>;
}

/// Removes element `i` by moving the last one into its place.
pub fn swap_remove<T, V: StorageVec<T>>(v: &mut V, i: usize) -> Option<T> {
    let last = v.len().checked_sub(1)?;
    if i > last {
        return None;
    }
    v.swap(i, last);
    v.pop()
}
