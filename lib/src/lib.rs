//! lampvault: what the six lampvault tools share.
//!
//! This crate never sees argv, never prints and never exits: it returns typed errors that
//! name the offset or value at fault, and the tools in `bins/` turn them into
//! `tool: context: cause` lines and exit codes.
//!
//! * [`sys`] — every `unsafe` line of the project: ioctls, signal dispositions, fd kinds.
//! * [`blockio`] — fixed-size record I/O over files, pipes, block devices and tapes.
//! * [`tape`] — tape positioning and status (MTIOCTOP / MTIOCGET).
//! * [`freeze`] — FIFREEZE/FITHAW, path → mount point, a watchdog-guarded freeze.
//! * [`wal`] — PostgreSQL WAL names, page headers, history files, LZ4 frames (walarchive).
//! * [`durable`] — temp file + fsync + rename + directory fsync.
//! * [`binlog`] — MySQL/MariaDB binary logs: reader, transaction groups, cut windows.
//! * [`dm`] — device-mapper control ioctls and snapshot status (lvsnap).
//! * [`btrfs`], [`reflink`] — btrfs snapshots and FICLONE tree copies (lvsnap).
//! * [`amanda`] — Amanda's 32 KiB media file header, as pure functions over bytes.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod amanda;
pub mod binlog;
pub mod blockio;
pub mod btrfs;
pub mod dm;
pub mod durable;
pub mod freeze;
pub mod parity;
pub mod rait;
pub mod reflink;
pub mod sys;
pub mod tape;
pub mod wal;
