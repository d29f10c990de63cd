// SPDX-License-Identifier: GPL-2.0

//! Runner self-test module: provokes, on request, one kind of failure that the VM test runner
//! must report.
//!
//! Loaded only by `tools/testing/selftests/mshv-passthru/plans/runner-selftest.plan`, once per
//! provocation, with `mode=N`:
//!
//! | mode | provocation                                               |
//! |------|-----------------------------------------------------------|
//! | 0    | none (its KUnit suite still has one deliberately failing case) |
//! | 1    | `WARN_ON`                                                 |
//! | 2    | `BUG` (through a Rust panic), last in a plan              |
//! | 3    | KASAN out-of-bounds write                                 |
//! | 4    | UBSAN array index out of bounds                           |
//! | 5    | lockdep: AB-BA lock order                                 |
//! | 7    | an RCU stall (12 s with preemption off)                   |
//! | 8    | fail to load (`-EINVAL` from init)                        |
//!
//! Leaks are provoked with the kernel's own `samples/kmemleak/kmemleak-test.c` instead: kmemleak
//! found a stale reference to every object this module leaked, so it never reported them.

use kernel::{new_mutex, prelude::*, sync::Mutex};

module! {
    type: RedTest,
    name: "mshv_pt_redtest",
    authors: ["mshv-passthru developers"],
    description: "Test-only: provokes failures for the VM runner's self-test",
    license: "GPL",
    params: {
        mode: u32 {
            default: 0,
            description: "Which failure to provoke at load (see the module doc)",
        },
    },
}

mod c {
    extern "C" {
        pub(super) fn mshv_pt_redtest_ubsan();
        pub(super) fn mshv_pt_redtest_kasan();
        pub(super) fn mshv_pt_redtest_rcu_stall(seconds: u32);
    }
}

#[pin_data]
struct Pair {
    #[pin]
    a: Mutex<u32>,
    #[pin]
    b: Mutex<u32>,
}

fn lock_inversion() -> Result {
    let pair = KBox::pin_init(
        pin_init!(Pair {
            a <- new_mutex!(0),
            b <- new_mutex!(0),
        }),
        GFP_KERNEL,
    )?;
    {
        let _a = pair.a.lock();
        let _b = pair.b.lock();
    }
    {
        let _b = pair.b.lock();
        let _a = pair.a.lock();
    }
    Ok(())
}

struct RedTest;

impl kernel::Module for RedTest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mode = module_parameters::mode.value();
        pr_info!("provoking failure mode {}\n", mode);
        match mode {
            1 => {
                kernel::warn_on!(true);
            }
            2 => panic!("mshv_pt_redtest: deliberate BUG"),
            // SAFETY: the helper has no preconditions; its out-of-bounds write is the point.
            3 => unsafe { c::mshv_pt_redtest_kasan() },
            // SAFETY: no preconditions.
            4 => unsafe { c::mshv_pt_redtest_ubsan() },
            5 => lock_inversion()?,
            // 12 s of jiffies: the detector reports after 3 s (the plan's
            // timeout) + 5 s (CONFIG_PROVE_RCU's delay), see the helper.
            // SAFETY: no preconditions; it spins with preemption disabled.
            7 => unsafe { c::mshv_pt_redtest_rcu_stall(12) },
            8 => return Err(EINVAL),
            _ => {}
        }
        Ok(RedTest)
    }
}

#[kunit_tests(mshv_pt_redtest)]
mod tests {
    #[test]
    fn passes() {
        assert_eq!(1 + 1, 2);
    }

    #[test]
    fn fails_on_purpose() {
        assert_eq!(1 + 1, 3);
    }
}
