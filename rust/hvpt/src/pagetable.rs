// SPDX-License-Identifier: GPL-2.0

//! A four-level radix table from 4K page numbers to 64-bit entries.
//!
//! 512 entries per level cover a 48-bit IOVA space. The simulated hypervisor uses it as a
//! device domain's page table (each table charged to the deposited pool); the IOMMU driver uses
//! it as its exact record of what it mapped (`iova_to_phys`, partial unmaps without splitting,
//! nothing to allocate on unmap).
//!
//! Tables live in an arena (`A::Vec`) and interior entries hold `slot + 1`; leaves hold the
//! caller's non-zero value. Whoever calls [`PageTable::set`] provides new tables (and so decides
//! the allocation context and any accounting); empty tables are released on [`PageTable::clear`]
//! (all but the root) and [`PageTable::clear_all`].

use super::storage::{Storage, StorageVec, TABLE_ENTRIES};

/// Entries per table.
pub const ENTRIES: usize = TABLE_ENTRIES;
/// Bits of IOVA covered: four levels of 9 bits over 4K pages.
pub const IOVA_BITS: u32 = 48;

struct Slot<A: Storage> {
    e: A::Table,
    used: u16,
}

/// Why [`PageTable::set`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetError<E> {
    /// The page number is beyond [`IOVA_BITS`].
    Range,
    /// The page is already set.
    Occupied,
    /// No table could be had (the caller's error), or the arena could not grow.
    Alloc(Option<E>),
}

/// The table.
///
/// # Invariants
///
/// `root`, when `Some`, and every non-zero interior entry minus one name live slots; `used`
/// counts the non-zero entries of each table; `mapped` counts the non-zero leaf entries.
pub struct PageTable<A: Storage> {
    slots: A::Vec<Option<Slot<A>>>,
    free_slots: A::Vec<u32>,
    root: Option<u32>,
    tables: u64,
    mapped: u64,
}

const fn index(pfn: u64, level: u32) -> usize {
    ((pfn >> (9 * level)) & 511) as usize
}

/// Whether `pfn` is inside the table's range.
pub const fn in_range(pfn: u64) -> bool {
    pfn >> (IOVA_BITS - 12) == 0
}

impl<A: Storage> Default for PageTable<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Storage> PageTable<A> {
    /// An empty table (no allocation).
    pub fn new() -> Self {
        Self {
            slots: A::new_vec(),
            free_slots: A::new_vec(),
            root: None,
            tables: 0,
            mapped: 0,
        }
    }

    /// Tables in use (including the root).
    pub fn tables(&self) -> u64 {
        self.tables
    }

    /// Leaf entries set.
    pub fn mapped(&self) -> u64 {
        self.mapped
    }

    fn slot(&self, s: u32) -> Option<&Slot<A>> {
        self.slots.get(s as usize).and_then(|t| t.as_ref())
    }

    fn slot_mut(&mut self, s: u32) -> Option<&mut Slot<A>> {
        self.slots.get_mut(s as usize).and_then(|t| t.as_mut())
    }

    fn add<E>(&mut self, new: &mut dyn FnMut() -> Result<A::Table, E>) -> Result<u32, SetError<E>> {
        // Reserve the arena entry first, so that a failure after taking a table loses nothing.
        let reuse = self.free_slots.pop();
        if reuse.is_none() && self.slots.try_push(None).is_err() {
            return Err(SetError::Alloc(None));
        }
        let s = reuse.unwrap_or(self.slots.len() as u32 - 1);
        match new() {
            Ok(t) => {
                if let Some(x) = self.slots.get_mut(s as usize) {
                    *x = Some(Slot { e: t, used: 0 });
                }
                self.tables += 1;
                Ok(s)
            }
            Err(e) => {
                // Keep the reserved entry for later (best effort: losing it only wastes an
                // index).
                let _ = self.free_slots.try_push(s);
                Err(SetError::Alloc(Some(e)))
            }
        }
    }

    fn release(&mut self, s: u32, freed: &mut dyn FnMut(A::Table)) {
        if let Some(x) = self.slots.get_mut(s as usize) {
            if let Some(t) = x.take() {
                self.tables -= 1;
                freed(t.e);
                let _ = self.free_slots.try_push(s);
            }
        }
    }

    /// Makes sure the root table exists.
    pub fn ensure_root<E>(
        &mut self,
        new: &mut dyn FnMut() -> Result<A::Table, E>,
    ) -> Result<(), SetError<E>> {
        if self.root.is_none() {
            self.root = Some(self.add(new)?);
        }
        Ok(())
    }

    /// The entry of `pfn`, if set.
    pub fn get(&self, pfn: u64) -> Option<u64> {
        if !in_range(pfn) {
            return None;
        }
        let mut s = self.root?;
        for level in (1..=3).rev() {
            let e = self.slot(s)?.e[index(pfn, level)];
            if e == 0 {
                return None;
            }
            s = (e - 1) as u32;
        }
        let e = self.slot(s)?.e[index(pfn, 0)];
        (e != 0).then_some(e)
    }

    /// Sets `pfn` to `value` (non-zero), creating tables with `new` as needed. Tables created
    /// before a failure stay (they are released when emptied by a later `clear`, or by
    /// `clear_all`).
    pub fn set<E>(
        &mut self,
        pfn: u64,
        value: u64,
        new: &mut dyn FnMut() -> Result<A::Table, E>,
    ) -> Result<(), SetError<E>> {
        if !in_range(pfn) || value == 0 {
            return Err(SetError::Range);
        }
        let s = self.leaf_for(pfn, new)?;
        let t = self.slot_mut(s).ok_or(SetError::Alloc(None))?;
        let i = index(pfn, 0);
        if t.e[i] != 0 {
            return Err(SetError::Occupied);
        }
        t.e[i] = value;
        t.used += 1;
        self.mapped += 1;
        Ok(())
    }

    /// The leaf table covering `pfn` (in range), created with `new` as needed.
    fn leaf_for<E>(
        &mut self,
        pfn: u64,
        new: &mut dyn FnMut() -> Result<A::Table, E>,
    ) -> Result<u32, SetError<E>> {
        self.ensure_root(new)?;
        let mut s = self.root.unwrap_or(0);
        for level in (1..=3).rev() {
            let i = index(pfn, level);
            let e = self.slot(s).map_or(0, |t| t.e[i]);
            s = if e != 0 {
                (e - 1) as u32
            } else {
                let child = self.add(new)?;
                if let Some(t) = self.slot_mut(s) {
                    t.e[i] = u64::from(child) + 1;
                    t.used += 1;
                }
                child
            };
        }
        Ok(s)
    }

    /// The tables from the root down to the leaf covering `pfn`, if they all exist.
    fn path(&self, pfn: u64) -> Option<[u32; 4]> {
        if !in_range(pfn) {
            return None;
        }
        let mut path = [self.root?; 4];
        for level in (1..=3).rev() {
            let e = self.slot(path[3 - level as usize])?.e[index(pfn, level)];
            if e == 0 {
                return None;
            }
            path[4 - level as usize] = (e - 1) as u32;
        }
        Some(path)
    }

    /// Releases the empty tables of `path` (the leaf first, never the root) and unlinks them.
    fn prune(&mut self, path: [u32; 4], pfn: u64, freed: &mut dyn FnMut(A::Table)) {
        for depth in (1..4).rev() {
            if self.slot(path[depth]).is_none_or(|t| t.used != 0) {
                break;
            }
            self.release(path[depth], freed);
            let level = 4 - depth as u32;
            if let Some(parent) = self.slot_mut(path[depth - 1]) {
                parent.e[index(pfn, level)] = 0;
                parent.used -= 1;
            }
        }
    }

    /// Sets the `count` pages from `first` to `value(i)` for the `i`-th page (non-zero), one
    /// table walk per leaf table rather than per page. On failure returns how many pages were
    /// set (the first ones) and why; tables created stay, as with [`PageTable::set`].
    pub fn set_run<E>(
        &mut self,
        first: u64,
        count: u64,
        value: &mut dyn FnMut(u64) -> u64,
        new: &mut dyn FnMut() -> Result<A::Table, E>,
    ) -> Result<(), (u64, SetError<E>)> {
        let mut done = 0u64;
        while done < count {
            let pfn = first.checked_add(done).ok_or((done, SetError::Range))?;
            if !in_range(pfn) {
                return Err((done, SetError::Range));
            }
            let s = self.leaf_for(pfn, new).map_err(|e| (done, e))?;
            let t = self
                .slots
                .get_mut(s as usize)
                .and_then(|t| t.as_mut())
                .ok_or((done, SetError::Alloc(None)))?;
            let mut err = None;
            let mut added = 0u16;
            for e in t.e.iter_mut().skip(index(pfn, 0)) {
                if done == count {
                    break;
                }
                let v = value(done);
                if *e != 0 || v == 0 {
                    err = Some(if v == 0 {
                        SetError::Range
                    } else {
                        SetError::Occupied
                    });
                    break;
                }
                *e = v;
                added += 1;
                done += 1;
            }
            t.used += added;
            self.mapped += u64::from(added);
            if let Some(e) = err {
                return Err((done, e));
            }
        }
        Ok(())
    }

    /// How many pages from `first` on (at most `max`) are set without a gap.
    pub fn present_run(&self, first: u64, max: u64) -> u64 {
        let mut n = 0u64;
        while n < max {
            let Some(pfn) = first.checked_add(n) else {
                break;
            };
            let Some(t) = self.path(pfn).and_then(|p| self.slot(p[3])) else {
                break;
            };
            let before = n;
            for &e in t.e.iter().skip(index(pfn, 0)) {
                if n == max || e == 0 {
                    break;
                }
                n += 1;
            }
            if n == max || n - before < (ENTRIES - index(pfn, 0)) as u64 {
                break;
            }
        }
        n
    }

    /// Clears the `count` pages from `first` that are set (unset ones are skipped), one table
    /// walk per leaf table; tables that become empty go to `freed` (all their entries zero),
    /// except the root. Returns the pages cleared.
    pub fn clear_run(&mut self, first: u64, count: u64, freed: &mut dyn FnMut(A::Table)) -> u64 {
        let mut n = 0u64;
        let mut cleared = 0u64;
        while n < count {
            let Some(pfn) = first.checked_add(n) else {
                break;
            };
            if !in_range(pfn) {
                break;
            }
            let in_leaf = ((ENTRIES - index(pfn, 0)) as u64).min(count - n);
            if let Some(path) = self.path(pfn) {
                if let Some(t) = self.slot_mut(path[3]) {
                    let mut gone = 0u16;
                    for e in t.e.iter_mut().skip(index(pfn, 0)).take(in_leaf as usize) {
                        if *e != 0 {
                            *e = 0;
                            gone += 1;
                        }
                    }
                    t.used -= gone;
                    self.mapped -= u64::from(gone);
                    cleared += u64::from(gone);
                }
                self.prune(path, pfn, freed);
            }
            n += in_leaf;
        }
        cleared
    }

    /// Clears `pfn` and returns its entry (`None` if it was not set). Tables that become empty
    /// are handed to `freed`, except the root.
    pub fn clear(&mut self, pfn: u64, freed: &mut dyn FnMut(A::Table)) -> Option<u64> {
        let path = self.path(pfn)?;
        let t = self.slot_mut(path[3])?;
        let i = index(pfn, 0);
        let old = t.e[i];
        if old == 0 {
            return None;
        }
        t.e[i] = 0;
        t.used -= 1;
        self.mapped -= 1;
        self.prune(path, pfn, freed);
        Some(old)
    }

    /// Releases every table (the root too); every entry is dropped.
    pub fn clear_all(&mut self, freed: &mut dyn FnMut(A::Table)) {
        for s in 0..self.slots.len() {
            self.release(s as u32, freed);
        }
        self.root = None;
        self.mapped = 0;
    }

    /// The first set page number at or after `from`.
    pub fn next_set(&self, from: u64) -> Option<u64> {
        if !in_range(from) {
            return None;
        }
        self.find(self.root?, 3, 0, from)
    }

    fn find(&self, s: u32, level: u32, base: u64, from: u64) -> Option<u64> {
        let t = self.slot(s)?;
        // Below `from`'s own index at this level nothing qualifies, unless `from` lies before
        // this table altogether.
        let start = if from > base { index(from, level) } else { 0 };
        for (i, &e) in t.e.iter().enumerate().skip(start) {
            if e == 0 {
                continue;
            }
            let pfn = base | ((i as u64) << (9 * level));
            if level == 0 {
                return Some(pfn);
            }
            if let Some(p) = self.find((e - 1) as u32, level - 1, pfn, from) {
                return Some(p);
            }
        }
        None
    }

    /// Calls `f(pfn, entry)` for every set entry, in page order.
    pub fn for_each(&self, f: &mut dyn FnMut(u64, u64)) {
        if let Some(r) = self.root {
            self.walk(r, 3, 0, f);
        }
    }

    fn walk(&self, s: u32, level: u32, base: u64, f: &mut dyn FnMut(u64, u64)) {
        let Some(t) = self.slot(s) else {
            return;
        };
        for (i, &e) in t.e.iter().enumerate() {
            if e == 0 {
                continue;
            }
            let pfn = base | ((i as u64) << (9 * level));
            if level == 0 {
                f(pfn, e);
            } else {
                self.walk((e - 1) as u32, level - 1, pfn, f);
            }
        }
    }
}
