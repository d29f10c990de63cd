// SPDX-License-Identifier: GPL-2.0

//! Direct attach's precondition: what a VMM mapped for a device agrees with the memory of the
//! guest the device would be attached to.
//!
//! A device attached directly to a guest partition is translated by the guest's SLAT, so the
//! addresses it uses are guest physical addresses. That is only what the VMM asked for when
//! every page it mapped for the device (IOVA -> host page, in the device's paging domain) is
//! guest memory at the same address (GPA = IOVA) backed by the same host page, with the same
//! access. Otherwise the device must stay in (or return to) device-domain translation, and the
//! first page that disagrees says why.
//!
//! Pages of guest memory the VMM did not map are not a disagreement: the device then reaches
//! more of the guest's own memory than the VMM mapped, never anything outside the guest.

/// A run of mapped pages: `pages` IOVA pages from `iova_page`, to host pages from `pfn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First IOVA page number.
    pub iova_page: u64,
    /// First host page number.
    pub pfn: u64,
    /// Pages.
    pub pages: u64,
    /// The device may write.
    pub writable: bool,
}

/// The first page where a mapping and the guest's memory disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The IOVA page is not guest memory.
    NotGuestMemory {
        /// The IOVA page number.
        iova_page: u64,
    },
    /// The guest page is backed by another host page than the one mapped.
    OtherPage {
        /// The IOVA (= guest) page number.
        iova_page: u64,
        /// The host page the VMM mapped.
        mapped: u64,
        /// The host page behind the guest page.
        guest: u64,
    },
    /// The guest page allows other access than the mapping (writable vs read-only).
    Access {
        /// The IOVA (= guest) page number.
        iova_page: u64,
    },
    /// A run wraps around the address space.
    Overflow,
}

/// Checks every page of `runs` against `guest` (guest page number -> host page and whether the
/// guest may write it, or `None` if it is not guest memory). Returns the number of pages
/// checked, or the first page that disagrees.
pub fn check(
    runs: impl IntoIterator<Item = Run>,
    guest: &mut dyn FnMut(u64) -> Option<(u64, bool)>,
) -> Result<u64, Mismatch> {
    let mut checked = 0u64;
    for r in runs {
        for k in 0..r.pages {
            let iova_page = r.iova_page.checked_add(k).ok_or(Mismatch::Overflow)?;
            let mapped = r.pfn.checked_add(k).ok_or(Mismatch::Overflow)?;
            let (host, writable) =
                guest(iova_page).ok_or(Mismatch::NotGuestMemory { iova_page })?;
            if host != mapped {
                return Err(Mismatch::OtherPage {
                    iova_page,
                    mapped,
                    guest: host,
                });
            }
            if writable != r.writable {
                return Err(Mismatch::Access { iova_page });
            }
            checked += 1;
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest pages 0x100..0x110 on host pages 0x5000.., writable; 0x200 read-only on 0x9000.
    fn guest(gfn: u64) -> Option<(u64, bool)> {
        match gfn {
            0x100..0x110 => Some((0x5000 + gfn - 0x100, true)),
            0x200 => Some((0x9000, false)),
            _ => None,
        }
    }

    fn run(iova_page: u64, pfn: u64, pages: u64, writable: bool) -> Run {
        Run {
            iova_page,
            pfn,
            pages,
            writable,
        }
    }

    #[test]
    fn agreement() {
        assert_eq!(check([], &mut guest), Ok(0));
        let ok = [run(0x100, 0x5000, 4, true), run(0x108, 0x5008, 8, true)];
        assert_eq!(check(ok, &mut guest), Ok(12));
        assert_eq!(check([run(0x200, 0x9000, 1, false)], &mut guest), Ok(1));
    }

    #[test]
    fn the_first_disagreement_is_named() {
        assert_eq!(
            check([run(0x10e, 0x500e, 4, true)], &mut guest),
            Err(Mismatch::NotGuestMemory { iova_page: 0x110 })
        );
        assert_eq!(
            check([run(0x100, 0x5001, 2, true)], &mut guest),
            Err(Mismatch::OtherPage {
                iova_page: 0x100,
                mapped: 0x5001,
                guest: 0x5000
            })
        );
        assert_eq!(
            check([run(0x200, 0x9000, 1, true)], &mut guest),
            Err(Mismatch::Access { iova_page: 0x200 })
        );
        assert_eq!(
            check([run(0x100, 0x5000, 1, false)], &mut guest),
            Err(Mismatch::Access { iova_page: 0x100 })
        );
        assert_eq!(
            check([run(u64::MAX, 0x5000, 2, true)], &mut |_| Some((
                0x5000, true
            ))),
            Err(Mismatch::Overflow)
        );
    }
}
