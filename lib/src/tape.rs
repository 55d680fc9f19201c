//! Tape control: positioning, filemarks, block size and status over MTIOCTOP / MTIOCGET.
//!
//! A device is a tape when it answers MTIOCGET; every operation on anything else is a
//! [`TapeError::NotATape`]. No tape drive exists on the machines this is tested on: the
//! ioctl numbers are unit-tested against `<linux/mtio.h>` (see `sys::mtio`), and this
//! module is kept to one small function per operation.

use std::fmt;
use std::os::fd::BorrowedFd;

use crate::sys::mtio::{self, op};

/// A tape operation that failed.
#[derive(Debug)]
pub enum TapeError {
    /// The file descriptor does not answer MTIOCGET.
    NotATape,
    /// The drive refused `what` with `errno`.
    Op {
        what: &'static str,
        errno: nix::Error,
    },
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::NotATape => write!(f, "not a tape device"),
            TapeError::Op { what, errno } => write!(f, "{what} failed: {}", errno.desc()),
        }
    }
}

impl std::error::Error for TapeError {}

/// The drive state MTIOCGET reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeStatus {
    /// File number (0 = first file), -1 when unknown.
    pub file: i32,
    /// Block number inside the file, -1 when unknown.
    pub block: i32,
    /// Block size in bytes (0 = variable), from `mt_dsreg`.
    pub block_size: u32,
    /// Generic status bits (`GMT_*`).
    pub gstat: u64,
}

/// `mt_dsreg` bits: block size in the low 24 bits (`MT_ST_BLKSIZE_MASK`).
const MT_ST_BLKSIZE_MASK: i64 = 0x00ff_ffff;

/// True when `fd` is a tape device.
pub fn is_tape(fd: BorrowedFd<'_>) -> bool {
    mtio::tape_status(fd).is_ok()
}

/// The drive's status; [`TapeError::NotATape`] on anything else.
pub fn status(fd: BorrowedFd<'_>) -> Result<TapeStatus, TapeError> {
    let st = mtio::tape_status(fd).map_err(|_| TapeError::NotATape)?;
    Ok(TapeStatus {
        file: st.mt_fileno,
        block: st.mt_blkno,
        block_size: (st.mt_dsreg as i64 & MT_ST_BLKSIZE_MASK) as u32,
        gstat: st.mt_gstat as u64,
    })
}

fn run(fd: BorrowedFd<'_>, what: &'static str, o: i16, count: i32) -> Result<(), TapeError> {
    if !is_tape(fd) {
        return Err(TapeError::NotATape);
    }
    mtio::tape_op(fd, o, count).map_err(|errno| TapeError::Op { what, errno })
}

/// Rewind to the beginning of the tape.
pub fn rewind(fd: BorrowedFd<'_>) -> Result<(), TapeError> {
    run(fd, "rewind", op::MTREW, 1)
}

/// Skip forward over `n` filemarks (to the start of the file after them).
pub fn fsf(fd: BorrowedFd<'_>, n: i32) -> Result<(), TapeError> {
    run(fd, "forward space file", op::MTFSF, n)
}

/// Skip backward over `n` filemarks.
pub fn bsf(fd: BorrowedFd<'_>, n: i32) -> Result<(), TapeError> {
    run(fd, "backward space file", op::MTBSF, n)
}

/// Write `n` filemarks.
pub fn weof(fd: BorrowedFd<'_>, n: i32) -> Result<(), TapeError> {
    run(fd, "write filemark", op::MTWEOF, n)
}

/// Go to the end of recorded data (to append).
pub fn eom(fd: BorrowedFd<'_>) -> Result<(), TapeError> {
    run(fd, "seek to end of data", op::MTEOM, 1)
}

/// Set the drive's block size (0 = variable).
pub fn set_block_size(fd: BorrowedFd<'_>, bytes: i32) -> Result<(), TapeError> {
    run(fd, "set block size", op::MTSETBLK, bytes)
}

/// Position at the start of file `n` (0 = first): rewind, then skip `n` filemarks.
pub fn goto_file(fd: BorrowedFd<'_>, n: i32) -> Result<(), TapeError> {
    rewind(fd)?;
    if n > 0 {
        fsf(fd, n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn every_operation_on_a_non_tape_says_so() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = f.as_fd();
        assert!(!is_tape(fd));
        for r in [
            rewind(fd),
            fsf(fd, 1),
            bsf(fd, 1),
            weof(fd, 1),
            eom(fd),
            set_block_size(fd, 32768),
            goto_file(fd, 2),
        ] {
            assert_eq!(r.unwrap_err().to_string(), "not a tape device");
        }
        assert_eq!(status(fd).unwrap_err().to_string(), "not a tape device");
    }
}
