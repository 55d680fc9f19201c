//! Start writeback of a file range early (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that
//! the final `fsync` of a file written block by block has little left to flush: the disk
//! works while the next block is still being compressed. Not a durability barrier — callers
//! still fsync. Linux only; elsewhere a no-op.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Ask the kernel to begin writing `len` bytes at `offset` of `fd` to disk, without waiting.
/// Errors are returned but are harmless to ignore (the later fsync is what counts).
pub fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let (Ok(off), Ok(n)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return Ok(());
        };
        // SAFETY: sync_file_range only reads its integer arguments; `fd` is a valid open
        // descriptor borrowed for the duration of the call.
        let r =
            unsafe { libc::sync_file_range(fd.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (fd, offset, len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn starts_writeback_on_a_regular_file() {
        let p = std::env::temp_dir().join(format!("lv-writeback-{}", std::process::id()));
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&[7u8; 65536]).unwrap();
        start_writeback(f.as_fd(), 0, 65536).unwrap();
        f.sync_all().unwrap();
        std::fs::remove_file(&p).unwrap();
    }
}
