// SPDX-License-Identifier: GPL-2.0

//! Text commands that control the simulated hypervisor from tests.
//!
//! In the kernel they are written to `/sys/kernel/debug/mshv_hvcall/control`, one command per
//! write (see `Documentation/hv-simulator.rst`):
//!
//! ```text
//! reset
//! stats-reset
//! fault <code|any> <skip> <times> fail <status> <after-reps>
//! fault <code|any> <skip> <times> partial <reps>
//! fault-clear
//! require-deposit <self|partition-id> <pages>
//! partition-create
//! partition-destroy <partition-id>
//! device-add <device-id>
//! device-remove <device-id>
//! domain-create <id>
//! domain-delete <id>
//! ```
//!
//! Numbers are decimal or `0x` hexadecimal. Bad input is `EINVAL` and changes nothing.

use super::abi::PartitionId;
use super::device_id::DeviceId;
use super::errno::{self, Errno};
use super::hypercall::{CallCode, HvStatus};
use super::sim::{Fault, FaultKind, Sim};
use super::storage::Storage;

/// A parsed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Back to a fresh simulator.
    Reset,
    /// Clear statistics.
    StatsReset,
    /// Install a fault.
    Fault(Fault),
    /// Remove the fault.
    FaultClear,
    /// [`Sim::require_deposit`].
    RequireDeposit(PartitionId, u64),
    /// [`Sim::create_partition`].
    PartitionCreate,
    /// [`Sim::destroy_partition`].
    PartitionDestroy(PartitionId),
    /// [`Sim::add_device`].
    DeviceAdd(DeviceId),
    /// [`Sim::remove_device`].
    DeviceRemove(DeviceId),
    /// [`Sim::create_domain`]: a root domain the driver did not create.
    DomainCreate(u32),
    /// [`Sim::delete_domain`].
    DomainDelete(u32),
}

fn number(t: Option<&[u8]>) -> Result<u64, Errno> {
    let t = t.ok_or(errno::EINVAL)?;
    let (digits, radix) = match t {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (t, 10),
    };
    if digits.is_empty() {
        return Err(errno::EINVAL);
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix).ok_or(errno::EINVAL)?;
        v = v
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(errno::ERANGE)?;
    }
    Ok(v)
}

fn small<T: TryFrom<u64>>(t: Option<&[u8]>) -> Result<T, Errno> {
    T::try_from(number(t)?).map_err(|_| errno::ERANGE)
}

fn partition(t: Option<&[u8]>) -> Result<PartitionId, Errno> {
    match t {
        Some(b"self") => Ok(PartitionId::SELF),
        _ => Ok(PartitionId(number(t)?)),
    }
}

fn device(t: Option<&[u8]>) -> Result<DeviceId, Errno> {
    DeviceId::decode(number(t)?).map_err(|_| errno::EINVAL)
}

impl Command {
    /// Parses one command (surrounding whitespace and a trailing newline are ignored).
    pub fn parse(line: &[u8]) -> Result<Self, Errno> {
        let mut it = line
            .split(|c| c.is_ascii_whitespace())
            .filter(|t| !t.is_empty());
        let cmd = match it.next().ok_or(errno::EINVAL)? {
            b"reset" => Self::Reset,
            b"stats-reset" => Self::StatsReset,
            b"fault-clear" => Self::FaultClear,
            b"partition-create" => Self::PartitionCreate,
            b"partition-destroy" => Self::PartitionDestroy(partition(it.next())?),
            b"device-add" => Self::DeviceAdd(device(it.next())?),
            b"device-remove" => Self::DeviceRemove(device(it.next())?),
            b"domain-create" => Self::DomainCreate(small(it.next())?),
            b"domain-delete" => Self::DomainDelete(small(it.next())?),
            b"require-deposit" => {
                let p = partition(it.next())?;
                Self::RequireDeposit(p, number(it.next())?)
            }
            b"fault" => {
                let code = match it.next() {
                    Some(b"any") => None,
                    t => Some(CallCode(small(t)?)),
                };
                let skip = small(it.next())?;
                let times = small(it.next())?;
                let kind = match it.next() {
                    Some(b"fail") => FaultKind::Fail {
                        status: HvStatus(small(it.next())?),
                        after_reps: small(it.next())?,
                    },
                    Some(b"partial") => FaultKind::Partial {
                        reps: small(it.next())?,
                    },
                    _ => return Err(errno::EINVAL),
                };
                if times == 0 {
                    return Err(errno::EINVAL);
                }
                Self::Fault(Fault {
                    code,
                    skip,
                    times,
                    kind,
                })
            }
            _ => return Err(errno::EINVAL),
        };
        if it.next().is_some() {
            return Err(errno::EINVAL);
        }
        Ok(cmd)
    }

    /// Applies the command; pages the simulator gives back go to `give_back`.
    pub fn apply<A: Storage>(
        self,
        sim: &mut Sim<A>,
        give_back: &mut dyn FnMut(u64),
    ) -> Result<(), Errno> {
        match self {
            Self::Reset => sim.reset(give_back),
            Self::StatsReset => {
                sim.reset_stats();
                Ok(())
            }
            Self::Fault(f) => {
                sim.set_fault(Some(f));
                Ok(())
            }
            Self::FaultClear => {
                sim.set_fault(None);
                Ok(())
            }
            Self::RequireDeposit(p, n) => sim.require_deposit(p, n),
            Self::PartitionCreate => sim.create_partition().map(|_| ()),
            Self::PartitionDestroy(p) => sim.destroy_partition(p).map(|_| ()),
            Self::DeviceAdd(d) => sim.add_device(d),
            Self::DeviceRemove(d) => sim.remove_device(d),
            Self::DomainCreate(id) => sim.create_domain(id),
            Self::DomainDelete(id) => sim.delete_domain(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(Command::parse(b"reset\n"), Ok(Command::Reset));
        assert_eq!(
            Command::parse(b" fault 0xb3 1 2 fail 0xb 100\n"),
            Ok(Command::Fault(Fault {
                code: Some(CallCode::MAP_DEVICE_GPA_PAGES),
                skip: 1,
                times: 2,
                kind: FaultKind::Fail {
                    status: HvStatus::INSUFFICIENT_MEMORY,
                    after_reps: 100
                },
            }))
        );
        assert_eq!(
            Command::parse(b"fault any 0 1 partial 7"),
            Ok(Command::Fault(Fault {
                code: None,
                skip: 0,
                times: 1,
                kind: FaultKind::Partial { reps: 7 },
            }))
        );
        assert_eq!(
            Command::parse(b"require-deposit self 40"),
            Ok(Command::RequireDeposit(PartitionId::SELF, 40))
        );
        assert_eq!(
            Command::parse(b"domain-create 7"),
            Ok(Command::DomainCreate(7))
        );
        assert_eq!(
            Command::parse(b"domain-delete 0x7"),
            Ok(Command::DomainDelete(7))
        );
        assert_eq!(
            Command::parse(b"device-add 0x4000000000000300"),
            DeviceId::decode(0x4000_0000_0000_0300)
                .map(Command::DeviceAdd)
                .map_err(|_| errno::EINVAL)
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &b""[..],
            b"resett",
            b"reset now",
            b"fault 0xb3 1 0 partial 3",
            b"fault 0xb3 1 1 explode",
            b"fault 0x1ffff 0 1 partial 1",
            b"fault 0xb3 0 1 partial 0x10000",
            b"require-deposit self",
            b"require-deposit self 99999999999999999999999",
            b"device-add 0x8000000000000000",
            b"device-add 12z",
        ] {
            assert!(
                Command::parse(bad).is_err(),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }
}
