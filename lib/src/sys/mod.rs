//! The only place with `unsafe`: ioctls, signal dispositions and file-descriptor kinds.
//!
//! Each submodule wraps one kernel interface in safe functions. Request codes are declared
//! with nix's ioctl macros (never as hand-typed hex) and each has a unit test against the
//! value the kernel header gives.

pub mod btrfs;
pub mod dm;
pub mod fdkind;
pub mod freeze;
pub mod ioctltrace;
pub mod localtime;
pub mod mapsource;
pub mod mtio;
pub mod prefetch;
pub mod signals;
pub mod termsig;
pub mod time;
pub mod watchdog;
pub mod writeback;
