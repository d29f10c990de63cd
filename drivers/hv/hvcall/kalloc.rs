// SPDX-License-Identifier: GPL-2.0

//! Kernel storage for the simulated hypervisor's tables ([`Storage`]): `KVec` and zeroed `KBox`
//! pages with `GFP_ATOMIC`, because the simulator runs where a hypercall would, under a
//! spinlock with interrupts off. Only `mshv_hvcall.ko`, which hosts the simulator, uses it (the
//! IOMMU driver's shadow is the kernel's generic page table).

use kernel::prelude::*;

use super::hvpt::errno::{self, Errno};
use super::hvpt::storage::{Storage, StorageVec};

/// `KVec` with `GFP_ATOMIC` growth: the simulator runs where the hypercall would, with
/// interrupts off.
pub struct AtomicVec<T>(KVec<T>);

impl<T> core::ops::Deref for AtomicVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> core::ops::DerefMut for AtomicVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T> StorageVec<T> for AtomicVec<T> {
    fn try_push(&mut self, v: T) -> core::result::Result<(), Errno> {
        self.0
            .push(v, GFP_ATOMIC | __GFP_NOWARN)
            .map_err(|_| errno::ENOMEM)
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
}

/// The simulator's storage in the kernel.
pub struct KernelAlloc;

impl Storage for KernelAlloc {
    type Vec<T> = AtomicVec<T>;
    type Table = KBox<[u64; 512]>;

    fn new_vec<T>() -> AtomicVec<T> {
        AtomicVec(KVec::new())
    }

    fn new_table() -> core::result::Result<KBox<[u64; 512]>, Errno> {
        KBox::zeroed(GFP_ATOMIC | __GFP_NOWARN).map_err(|_| errno::ENOMEM)
    }
}
