// SPDX-License-Identifier: GPL-2.0

//! The hypercall backend of mshv-passthru.
//!
//! Every hypercall the project's modules issue reaches Hyper-V through this module, or, when it
//! is loaded with `simulate=1`, the simulated hypervisor that decodes the same input bytes. The
//! choice is explicit: without `simulate=1` the module loads only on an MSHV root partition that
//! offers device domains, or on L1VH, and refuses everywhere else.
//!
//! See `Documentation/hv-backend.rst`.

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    prelude::*, //
};

/// The kernel-independent shared code (also built and tested on the host).
#[path = "../../../rust/hvpt/src/lib.rs"]
pub mod hvpt;

module! {
    type: HvCall,
    name: "mshv_hvcall",
    authors: ["mshv-passthru developers"],
    description: "Hyper-V hypercall backend for PCI passthrough (native or simulated)",
    license: "GPL",
    params: {
        simulate: bool {
            default: false,
            description: "Run on the simulated hypervisor instead of Hyper-V (for testing only)",
        },
    },
}

/// C functions of `hvcall_shim.c` (declared in `hvcall_shim.h`).
mod shim {
    use kernel::ffi::c_int;

    extern "C" {
        /// Whether this kernel runs as an MSHV root partition with device domains, or as L1VH.
        pub(super) fn mshv_hvcall_native_probe() -> c_int;
    }
}

/// Which hypervisor this module talks to.
///
/// Shown in debugfs as `mshv_hvcall/backend` (`native` or `simulated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Real hypercalls to Hyper-V.
    Native,
    /// The simulated hypervisor (test-only, requested with `simulate=1`).
    Simulated,
}

impl Backend {
    /// The name shown in debugfs and in the kernel log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Simulated => "simulated",
        }
    }

    /// Picks the backend from the module parameters and the platform.
    fn select() -> Result<Self> {
        if module_parameters::simulate.value() {
            pr_warn!("using the SIMULATED hypervisor: no hypercall reaches Hyper-V\n");
            return Ok(Self::Simulated);
        }
        // SAFETY: `mshv_hvcall_native_probe` has no preconditions; it only reads state that
        // Hyper-V initialisation set up at boot.
        let ret = unsafe { shim::mshv_hvcall_native_probe() };
        match ret {
            0 => {
                pr_info!("backend: native (Hyper-V root or L1VH partition)\n");
                Ok(Self::Native)
            }
            r if r == EOPNOTSUPP.to_errno() => {
                pr_err!("Hyper-V does not offer device domains (HV_DEVICE_DOMAIN_AVAILABLE)\n");
                Err(EOPNOTSUPP)
            }
            _ => {
                pr_err!(
                    "not an MSHV root or L1VH partition; load with simulate=1 to test on the simulated hypervisor\n"
                );
                Err(ENODEV)
            }
        }
    }
}

/// Module state.
#[pin_data]
struct HvCall {
    /// `mshv_hvcall/backend` in debugfs.
    #[pin]
    backend: File<Backend>,
    _debugfs: Dir,
}

impl kernel::InPlaceModule for HvCall {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let debugfs = Dir::new(c"mshv_hvcall");
        try_pin_init!(Self {
            backend <- debugfs.read_callback_file(
                c"backend",
                Backend::select()?,
                &|b: &Backend, f| writeln!(f, "{}", b.name())
            ),
            _debugfs: debugfs,
        })
    }
}

#[kunit_tests(mshv_hvcall_abi)]
mod tests {
    use super::hvpt::errno;
    use super::hvpt::hypercall::{CallCode, Control, HvResult, HvStatus, MAX_REPS};

    #[test]
    fn control_word_layout() {
        let c = Control::rep(CallCode::MAP_DEVICE_GPA_PAGES, 507, 0);
        assert_eq!(c.map(|c| c.encode()), Ok(0xb3 | (507 << 32)));
        let c = Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, MAX_REPS, 4094);
        assert_eq!(
            c.map(|c| c.encode()),
            Ok(0xb4 | (0xfff << 32) | (0xffe << 48))
        );
    }

    #[test]
    fn rep_count_cannot_overflow() {
        assert!(Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, MAX_REPS + 1, 0).is_err());
    }

    #[test]
    fn control_word_decodes_what_it_encodes() {
        for count in [1u16, 2, 507, 4095] {
            for start in [0u16, count / 2, count - 1] {
                let c = Control::rep(CallCode::UNMAP_DEVICE_GPA_PAGES, count, start);
                assert!(c.is_ok());
                if let Ok(c) = c {
                    assert_eq!(Control::decode(c.encode()), Ok(c));
                }
            }
        }
    }

    #[test]
    fn result_decoding() {
        let r = HvResult::new(HvStatus::INSUFFICIENT_MEMORY, 12);
        assert_eq!(r.reps_completed(), 12);
        assert!(r.status().needs_memory());
        assert_eq!(r.to_result(), Err(errno::ENOMEM));
        assert_eq!(
            HvResult::from_raw(u64::MAX).to_result(),
            Err(errno::EOPNOTSUPP)
        );
    }
}
