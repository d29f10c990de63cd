// SPDX-License-Identifier: GPL-2.0

//! Linux errno values used by the shared code.
//!
//! The shared code cannot name `kernel::error::code`, so it reports errors as these positive
//! numbers (`include/uapi/asm-generic/errno-base.h` and `errno.h`); the kernel glue turns them
//! into `kernel::error::Error` with `Error::from_errno(-e)`.

/// A positive Linux errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// Operation not permitted.
pub const EPERM: Errno = Errno(1);
/// No such file or directory (no such object).
pub const ENOENT: Errno = Errno(2);
/// I/O error.
pub const EIO: Errno = Errno(5);
/// No such device or address (no such attribute).
pub const ENXIO: Errno = Errno(6);
/// Argument list too long (too many entries).
pub const E2BIG: Errno = Errno(7);
/// Out of memory.
pub const ENOMEM: Errno = Errno(12);
/// Permission denied.
pub const EACCES: Errno = Errno(13);
/// Bad address.
pub const EFAULT: Errno = Errno(14);
/// Device or resource busy.
pub const EBUSY: Errno = Errno(16);
/// Object exists.
pub const EEXIST: Errno = Errno(17);
/// Cross-device link: for direct attach, a mapping that disagrees with the guest's memory.
pub const EXDEV: Errno = Errno(18);
/// No such device.
pub const ENODEV: Errno = Errno(19);
/// Invalid argument.
pub const EINVAL: Errno = Errno(22);
/// Inappropriate ioctl for device.
pub const ENOTTY: Errno = Errno(25);
/// No space left (no free identifiers).
pub const ENOSPC: Errno = Errno(28);
/// Numerical result out of range.
pub const ERANGE: Errno = Errno(34);
/// No data available (the platform has no answer).
pub const ENODATA: Errno = Errno(61);
/// Value too large for defined data type.
pub const EOVERFLOW: Errno = Errno(75);
/// File descriptor in bad state (the object is not in a state that takes the request).
pub const EBADFD: Errno = Errno(77);
/// Operation not supported.
pub const EOPNOTSUPP: Errno = Errno(95);
