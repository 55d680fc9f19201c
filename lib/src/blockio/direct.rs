//! O_DIRECT output for block devices, with dd's rule for the unaligned tail.
//!
//! O_DIRECT writes must be aligned in address, length and offset. The record writer keeps
//! its buffer page-aligned and records a multiple of 512; the last record of a stream may
//! be short, so — as GNU dd does for `oflag=direct` — O_DIRECT is switched off with
//! `fcntl(F_SETFL)` before an unaligned write, and the write then goes through the page
//! cache.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Alignment every O_DIRECT write must keep (the largest common logical block size).
const ALIGN: usize = 4096;

/// A file opened with O_DIRECT that falls back to buffered I/O for an unaligned write.
pub struct DirectFile {
    file: File,
    direct: bool,
}

/// Open `path` for writing with O_DIRECT (no create, no truncate: it is meant for devices).
pub fn open_direct(path: &Path) -> io::Result<DirectFile> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    Ok(DirectFile { file, direct: true })
}

impl DirectFile {
    fn leave_direct(&mut self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
        fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_DIRECT))?;
        self.direct = false;
        Ok(())
    }

    pub fn is_direct(&self) -> bool {
        self.direct
    }

    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for DirectFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.direct
            && (!data.len().is_multiple_of(ALIGN)
                || !(data.as_ptr() as usize).is_multiple_of(ALIGN))
        {
            self.leave_direct()?;
        }
        self.file.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
