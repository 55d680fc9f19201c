//! A read-only map of a source file that nobody may shrink while it is read, with SIGBUS
//! turned into a clean failure exit.
//!
//! Why: reading a 16 MiB WAL segment with `read()` copies it out of the page cache into
//! fresh (page-faulted, zeroed) buffers; a map lets the hasher and the compressors read the
//! page cache directly. The catch (ripgrep `searcher/mmap.rs`, `binlog/mapped.rs`): if the
//! file is truncated while mapped, touching a page past the new end raises SIGBUS. For
//! walarchive's source this is a broken contract (PostgreSQL never modifies a completed
//! segment while `archive_command` runs on it), but instead of dying by a signal (which
//! makes PostgreSQL's archiver restart) [`exit_on_sigbus`] installs a handler that writes
//! one message and exits with the given code — exactly what a `read()` that came up short
//! does (push exits 1). The process dies with nothing half-done visible: final names are
//! only ever created by rename after fsync; temporary files of a dead writer are swept by
//! the next writer (`durable::remove_stale_temp`).

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};

pub use memmap2::Mmap;
use memmap2::{Advice, MmapOptions};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static MSG: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static MSG_LEN: AtomicUsize = AtomicUsize::new(0);
static CODE: AtomicI32 = AtomicI32::new(1);

extern "C" fn on_sigbus(_: libc::c_int) {
    let p = MSG.load(Ordering::Acquire);
    let n = MSG_LEN.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: `p`/`n` come from a `&'static [u8]` stored by `exit_on_sigbus`; write(2)
        // and _exit(2) are async-signal-safe.
        unsafe { libc::write(2, p as *const libc::c_void, n) };
    }
    // SAFETY: _exit is async-signal-safe and never returns; no Rust state is touched.
    unsafe { libc::_exit(CODE.load(Ordering::Acquire)) };
}

/// From now on SIGBUS (a mapped file shrank under us, or one of its pages could not be
/// read: an I/O error) writes `msg` to stderr and exits the
/// process with `code` immediately (no destructors run).
pub fn exit_on_sigbus(msg: &'static [u8], code: i32) -> nix::Result<()> {
    MSG_LEN.store(msg.len(), Ordering::Release);
    MSG.store(msg.as_ptr() as *mut u8, Ordering::Release);
    CODE.store(code, Ordering::Release);
    let act = SigAction::new(
        SigHandler::Handler(on_sigbus),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only loads atomics and calls async-signal-safe functions.
    unsafe { sigaction(Signal::SIGBUS, &act) }.map(drop)
}

/// Map the first `len` bytes of `file` read-only.
///
/// The caller promises that the file is not truncated while the map is used, or has
/// called [`exit_on_sigbus`] so that a truncation ends the process cleanly. Content
/// changed in place shows through the map, as it would through a later `read()`.
pub fn map_source(file: &File, len: u64) -> io::Result<Mmap> {
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
    // SAFETY: read-only private map; truncation is handled as documented above (SIGBUS
    // → `exit_on_sigbus`'s clean exit); in-place changes are seen like a read would see them.
    unsafe { MmapOptions::new().len(len).map(file) }
}

/// Fault in `len` bytes at `offset` of `map` in one call (MADV_POPULATE_READ), so that the
/// readers of that range take no page faults; a hint, errors ignored; nothing where
/// [`populate_read_is_safe`] says no.
pub fn populate(map: &Mmap, offset: usize, len: usize) {
    if populate_read_is_safe() {
        let _ = map.advise_range(Advice::PopulateRead, offset, len);
    }
}

/// Whether MADV_POPULATE_READ returns when a page cannot be read. Before Linux 6.9 it retries
/// such a page forever (at 100 % system time until a signal kills the process) where a
/// read() fails with EIO and a touch of the map raises SIGBUS: fixed by "mm/madvise: make
/// MADV_POPULATE_(READ|WRITE) handle VM_FAULT_RETRY properly" (March 2024, Linux 6.9).
/// Seen here on Debian 12's 6.1 with a file over device-mapper's error target
/// (scripts/vmtest.d/read-errors.sh). Older kernels, or an unknown version, get plain page
/// faults instead: slower, but a bad block then ends in SIGBUS, which callers turn into a
/// clean exit ([`exit_on_sigbus`]).
pub fn populate_read_is_safe() -> bool {
    static SAFE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SAFE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| kernel_version(&r))
            .is_some_and(|v| v >= (6, 9))
    })
}

/// `(major, minor)` of a kernel release string such as `6.1.0-48-amd64` or `6.18.44-fc`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::Command;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.1.0-48-amd64\n"), Some((6, 1)));
        assert_eq!(kernel_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(kernel_version("6.9"), Some((6, 9)));
        assert_eq!(kernel_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(kernel_version("garbage"), None);
        assert!(kernel_version("6.8.12").unwrap() < (6, 9));
        assert!(kernel_version("6.10.1").unwrap() >= (6, 9));
    }

    const CHILD: &str = "LV_MAPSOURCE_SIGBUS_CHILD";

    /// Run by `truncation_exits_cleanly` in a child process: map, truncate, touch.
    #[test]
    fn sigbus_child() {
        let Some(p) = std::env::var_os(CHILD) else {
            return;
        };
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.write_all(&[5u8; 65536]).unwrap();
        exit_on_sigbus(b"mapsource-test: shrank\n", 3).unwrap();
        let m = map_source(&f, 65536).unwrap();
        assert_eq!(m[40000], 5);
        f.set_len(4096).unwrap();
        let x = std::hint::black_box(&m[..])[40000];
        panic!("no SIGBUS (read {x})");
    }

    /// A mapped file truncated under the reader: the process exits with the chosen code and
    /// message instead of dying by SIGBUS.
    #[test]
    fn truncation_exits_cleanly() {
        let p = std::env::temp_dir().join(format!("lv-mapsource-{}", std::process::id()));
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sys::mapsource::tests::sigbus_child",
                "--nocapture",
            ])
            .env(CHILD, &p)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&p);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "stderr: {err}");
        assert!(err.contains("mapsource-test: shrank"), "stderr: {err}");
    }

    #[test]
    fn maps_and_populates() {
        let p = std::env::temp_dir().join(format!("lv-mapsource-m-{}", std::process::id()));
        std::fs::write(&p, (0..100_000u32).map(|i| i as u8).collect::<Vec<_>>()).unwrap();
        let f = File::open(&p).unwrap();
        let m = map_source(&f, 100_000).unwrap();
        populate(&m, 4096, 50_000);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(m.len(), 100_000);
        assert_eq!(m[99_999], (99_999u32 % 256) as u8);
    }
}
