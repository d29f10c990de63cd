// SPDX-License-Identifier: GPL-2.0

//! `VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF`: the TLP Processing Hints another device should send
//! with its writes into one of this device's dma-bufs.
//!
//! The device owning the dma-buf is the *completer* of those writes, so what it may be given
//! depends on its own TPH Completer Supported field (Device Capabilities 2), not on its
//! requester capability: a device that completes no TPH takes no hint, a device that does not
//! complete Extended TPH takes no 16-bit tag. Which dma-buf, and storing the hint, are the
//! driver's (the kernel's dma-buf code); everything about the values is decided here, before.

use super::errno::{self as e, Errno};
use super::regs::ReqType;
use super::uapi::{self, DmaBuf};

/// The hint as the exporter keeps it for importers; no tag at all is "no hint".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hint {
    /// The tag of the 8-bit namespace, if given.
    pub st: Option<u8>,
    /// The tag of the 16-bit namespace, if given.
    pub st_ext: Option<u16>,
    /// The Processing Hint (0 when no tag is given).
    pub ph: u8,
}

/// What the device completes, from its Device Capabilities 2 register.
///
/// Errors: `EOPNOTSUPP` when it completes no TPH (then the feature is not offered: PROBE says
/// so too).
pub fn completer(devcap2: u32) -> Result<ReqType, Errno> {
    match ReqType::from_devcap2(devcap2) {
        ReqType::None => Err(e::EOPNOTSUPP),
        c => Ok(c),
    }
}

/// Judges a SET on a device with Device Capabilities 2 `devcap2`.
///
/// `flags` 0 clears the hint. As upstream, a tag whose flag is not set is ignored, and so is the
/// Processing Hint when no tag is given. Errors: `EINVAL` for unknown flags or a Processing Hint
/// over 3; `EOPNOTSUPP` when the device completes no TPH, or a 16-bit tag for a device that does
/// not complete Extended TPH.
pub fn check(devcap2: u32, req: &DmaBuf) -> Result<Hint, Errno> {
    let known = uapi::DMA_BUF_ST | uapi::DMA_BUF_ST_EXT;
    if req.flags & !known != 0 || req.ph > 3 {
        return Err(e::EINVAL);
    }
    let st = req.flags & uapi::DMA_BUF_ST != 0;
    let ext = req.flags & uapi::DMA_BUF_ST_EXT != 0;
    let c = completer(devcap2)?;
    if ext && c != ReqType::Ext {
        return Err(e::EOPNOTSUPP);
    }
    Ok(Hint {
        st: st.then_some(req.steering_tag),
        st_ext: ext.then_some(req.steering_tag_ext),
        ph: if st || ext { req.ph } else { 0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// DEVCAP2 with TPH Completer Supported `c`.
    fn devcap2(c: u32) -> u32 {
        c << 12 | 0x1f
    }

    fn req(flags: u32, ext: u16, st: u8, ph: u8) -> DmaBuf {
        DmaBuf {
            dmabuf_fd: 7,
            flags,
            steering_tag_ext: ext,
            steering_tag: st,
            ph,
        }
    }

    #[test]
    fn layout() {
        let r = req(3, 0x1234, 0x56, 2);
        let b = r.to_bytes();
        assert_eq!(&b[0..4], &7i32.to_ne_bytes());
        assert_eq!(&b[8..10], &0x1234u16.to_ne_bytes());
        assert_eq!((b[10], b[11]), (0x56, 2));
        assert_eq!(DmaBuf::from_bytes(&b), r);
    }

    #[test]
    fn hints() {
        let ext = devcap2(3);
        assert_eq!(
            check(ext, &req(3, 0x1234, 0x56, 2)),
            Ok(Hint {
                st: Some(0x56),
                st_ext: Some(0x1234),
                ph: 2
            })
        );
        assert_eq!(
            check(devcap2(1), &req(1, 0, 0, 1)),
            Ok(Hint {
                st: Some(0),
                st_ext: None,
                ph: 1
            })
        );
        // Clearing, on any device that completes TPH; what comes with it is ignored.
        assert_eq!(check(devcap2(1), &req(0, 0, 0, 0)), Ok(Hint::default()));
        assert_eq!(check(devcap2(3), &req(0, 9, 9, 3)), Ok(Hint::default()));
        // A tag whose flag is not set is ignored.
        assert_eq!(
            check(ext, &req(1, 0x77, 0x56, 0)).map(|h| h.st_ext),
            Ok(None)
        );
    }

    #[test]
    fn refusals() {
        let ext = devcap2(3);
        assert_eq!(check(ext, &req(4, 0, 0, 0)), Err(e::EINVAL));
        assert_eq!(check(ext, &req(1, 0, 1, 4)), Err(e::EINVAL));
        // Completer types: none (0, and the reserved 2), 8-bit only.
        assert_eq!(check(devcap2(0), &req(1, 0, 1, 0)), Err(e::EOPNOTSUPP));
        assert_eq!(check(devcap2(0), &req(0, 0, 0, 0)), Err(e::EOPNOTSUPP));
        assert_eq!(check(devcap2(2), &req(1, 0, 1, 0)), Err(e::EOPNOTSUPP));
        assert_eq!(check(devcap2(1), &req(2, 1, 0, 0)), Err(e::EOPNOTSUPP));
        assert_eq!(completer(devcap2(1)), Ok(ReqType::Tph));
    }

    proptest! {
        /// Whatever the bytes, a hint that passes is exactly what was asked for, and only
        /// what the device completes.
        #[test]
        fn accepted_hints_are_what_was_asked(
            b in proptest::array::uniform12(any::<u8>()),
            c in 0u32..4,
        ) {
            let r = DmaBuf::from_bytes(&b);
            if let Ok(h) = check(devcap2(c), &r) {
                prop_assert!(r.flags & !3 == 0 && r.ph <= 3);
                prop_assert!(c == 1 || c == 3);
                prop_assert_eq!(h.st.is_some(), r.flags & 1 != 0);
                prop_assert_eq!(h.st_ext.is_some(), r.flags & 2 != 0);
                prop_assert!(h.st_ext.is_none() || c == 3);
                prop_assert_eq!(h.st.unwrap_or(0), r.steering_tag);
                prop_assert_eq!(h.st_ext.unwrap_or(0), r.steering_tag_ext);
                prop_assert_eq!(h.ph, if r.flags == 0 { 0 } else { r.ph });
            }
        }
    }
}
