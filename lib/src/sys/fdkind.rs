//! What an open file descriptor is: regular file, block device, tape, pipe...
//!
//! Record I/O and the tools behave differently on each: a regular file can be rewritten at
//! the end (header fix-up), a block device may use O_DIRECT, a tape takes one record per
//! write and needs a filemark. A character device is a tape only if it answers MTIOCGET.

use std::os::fd::BorrowedFd;

use nix::sys::stat::{fstat, SFlag};

/// The kind of object behind a file descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    Regular,
    BlockDevice,
    /// A character device that answers MTIOCGET.
    Tape,
    /// Any other character device (`/dev/null`, a terminal...).
    CharDevice,
    Fifo,
    Socket,
    Directory,
    Other,
}

impl FdKind {
    /// True when `lseek` works and the bytes can be read again.
    pub fn is_seekable(self) -> bool {
        matches!(self, FdKind::Regular | FdKind::BlockDevice)
    }
}

/// Classify `fd` by `fstat`, and by MTIOCGET for character devices.
pub fn fd_kind(fd: BorrowedFd<'_>) -> nix::Result<FdKind> {
    let st = fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    Ok(match fmt {
        SFlag::S_IFREG => FdKind::Regular,
        SFlag::S_IFBLK => FdKind::BlockDevice,
        SFlag::S_IFCHR => {
            if super::mtio::tape_status(fd).is_ok() {
                FdKind::Tape
            } else {
                FdKind::CharDevice
            }
        }
        SFlag::S_IFIFO => FdKind::Fifo,
        SFlag::S_IFSOCK => FdKind::Socket,
        SFlag::S_IFDIR => FdKind::Directory,
        _ => FdKind::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn kinds() {
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert_eq!(fd_kind(f.as_fd()).unwrap(), FdKind::Regular);
        let n = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(fd_kind(n.as_fd()).unwrap(), FdKind::CharDevice);
        let (r, _w) = std::io::pipe().unwrap();
        assert_eq!(fd_kind(r.as_fd()).unwrap(), FdKind::Fifo);
        let d = std::fs::File::open("/").unwrap();
        assert_eq!(fd_kind(d.as_fd()).unwrap(), FdKind::Directory);
    }
}
