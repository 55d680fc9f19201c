//! Make the final `fsync` of a file written piece by piece cheap: start the writeback of each
//! range early (`sync_file_range(SYNC_FILE_RANGE_WRITE)`; the disk works while the next
//! piece is still being made), and flush what was written to stable storage on a thread
//! behind the writer ([`SyncBehind`]). Neither is a durability barrier — callers still
//! fsync, and only that fsync's result counts. Linux only; elsewhere a no-op.

use std::fs::File;
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

/// A thread that fdatasyncs a file whenever new data were written to it since its last
/// fdatasync, so that the device flushes the early blocks while later ones are still being
/// produced: the final fsync then has only the tail to flush. (Here an fsync costs time in
/// proportion to the data not yet flushed, ~0.45 ms per MiB, even when writeback is done:
/// the virtual disk's cache flush.) Only an optimisation: the owner still fsyncs at the end.
///
/// The thread uses its own open file description (a reopen through `/proc/self/fd`), not a
/// dup: writeback errors are reported once per description (errseq), so a background
/// fdatasync that saw an error must not consume it before the owner's final fsync.
#[derive(Debug)]
pub struct SyncBehind {
    wrote: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    fd: std::os::fd::RawFd,
}

impl SyncBehind {
    /// Start the thread for `file` (None where it cannot be reopened, e.g. no /proc: then
    /// the final fsync does all the work, as without it).
    pub fn start(file: &File) -> Option<SyncBehind> {
        let own = File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        let fd = own.as_raw_fd();
        let (wrote, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sync-behind".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    let _ = own.sync_data();
                }
            })
            .ok()?;
        Some(SyncBehind { wrote, thread, fd })
    }

    /// Data were written: flush them (and whatever else came meanwhile) soon.
    pub fn wrote(&self) {
        let _ = self.wrote.send(());
    }

    /// The thread's descriptor (open while the thread runs; for tests).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.fd
    }

    /// Wait for the fdatasync in flight, if any, and end the thread.
    pub fn stop(self) {
        drop(self.wrote);
        let _ = self.thread.join();
    }
}

/// A [`SyncBehind`] started at a file's first write and asked to flush whenever `every`
/// more bytes were written (1: after every write; [`FLUSH_EVERY`] by default, for files
/// written in small records).
#[derive(Debug)]
pub struct FlushEvery {
    behind: Option<SyncBehind>,
    unflushed: u64,
    every: u64,
}

/// Bytes written between two requests to the flushing thread of a default [`FlushEvery`].
pub const FLUSH_EVERY: u64 = 8 << 20;

impl Default for FlushEvery {
    fn default() -> FlushEvery {
        FlushEvery::bytes(FLUSH_EVERY)
    }
}

impl FlushEvery {
    /// Ask for a flush whenever `every` more bytes were written.
    pub fn bytes(every: u64) -> FlushEvery {
        FlushEvery {
            behind: None,
            unflushed: 0,
            every: every.max(1),
        }
    }

    /// `n` more bytes were written to `file`.
    pub fn wrote(&mut self, file: &File, n: usize) {
        self.unflushed += n as u64;
        if self.unflushed >= self.every {
            self.unflushed = 0;
            if self.behind.is_none() {
                self.behind = SyncBehind::start(file);
            }
            if let Some(b) = &self.behind {
                b.wrote();
            }
        }
    }

    /// End the flushing thread (waiting for its fdatasync in flight), before the final fsync.
    pub fn stop(&mut self) {
        if let Some(b) = self.behind.take() {
            b.stop();
        }
    }

    /// The flushing thread's descriptor, once it runs (for tests).
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        self.behind.as_ref().map(SyncBehind::fd)
    }
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
