//! Getting a binlog file's bytes: a read-only memory map for closed files, a plain read for
//! everything else.
//!
//! Why the split (STYLE.md, ripgrep `searcher/mmap.rs`): a mapped file that shrinks under us
//! raises SIGBUS. A *closed* binlog (FDE in-use flag clear) is never written again by the
//! server, so it is mapped; a file whose FDE says "in use" (live, or crashed) may still be
//! appended to or truncated by crash recovery, so it is read into memory, as are pipes and
//! stdin.
//!
//! Page tables cost time per 4 KiB page mapped (and again to unmap at exit), so nothing is
//! pre-faulted wholesale: `verify`'s walkers ask for the chunk just ahead of them
//! (MADV_POPULATE_READ) and give back what they left behind (MADV_DONTNEED, harmless on
//! this shared read-only map), each in its own thread — the [`Pager`] trait; the hop only
//! gives back the segments it has hopped whole (see `hop`).

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::fs::FileExt;

use memmap2::Mmap;

use super::reader::{COMMON_HEADER_LEN, FLAG_IN_USE, IN_USE_BYTE, MAGIC};

/// The bytes of one input.
pub enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Page-table management for walks over a file's bytes: walkers call `populate` just ahead
/// of what they read and `release` for what they have left behind. Neither may change the
/// bytes; both are hints (no-ops for read bytes).
pub trait Pager: Sync {
    fn populate(&self, offset: u64, len: u64);
    fn release(&self, offset: u64, len: u64);
}

/// A [`Pager`] that does nothing.
pub struct NoPager;

impl Pager for NoPager {
    fn populate(&self, _: u64, _: u64) {}
    fn release(&self, _: u64, _: u64) {}
}

impl Pager for Bytes {
    fn populate(&self, offset: u64, len: u64) {
        Bytes::populate(self, offset, len)
    }
    fn release(&self, offset: u64, len: u64) {
        Bytes::release(self, offset, len)
    }
}

impl Bytes {
    /// Drop the page-table entries of `offset..offset + len` (already read, not needed
    /// again soon); later reads still work, they fault the pages back in.
    pub fn release(&self, offset: u64, len: u64) {
        if let Bytes::Mapped(m) = self {
            let end = offset.saturating_add(len).min(m.len() as u64);
            if offset < end {
                // SAFETY: MADV_DONTNEED on this shared, read-only file mapping only drops
                // page-table entries: the next access maps the same page-cache page again,
                // so every slice of the map keeps its bytes (the file is a closed binlog,
                // see `load`). It moves the unmapping work from exit (one thread) to the
                // walker threads.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        offset as usize,
                        (end - offset) as usize,
                    )
                };
            }
        }
    }

    /// Ask for the pages of `offset..offset + len` to be mapped now (MADV_POPULATE_READ,
    /// Linux 6.9+ — see `sys::mapsource::populate_read_is_safe`; silently nothing elsewhere,
    /// or for read bytes), so that the reads that follow do not fault page by page. Only
    /// what is about to be read is asked for: mapping (and, at exit, unmapping) pages costs
    /// time per page.
    pub fn populate(&self, offset: u64, len: u64) {
        if let Bytes::Mapped(m) = self {
            let end = offset.saturating_add(len).min(m.len() as u64);
            if offset < end {
                crate::sys::mapsource::populate(m, offset as usize, (end - offset) as usize);
            }
        }
    }
}

/// Read all of `r` (stdin, a pipe).
pub fn read_all(mut r: impl Read) -> io::Result<Bytes> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(Bytes::Owned(v))
}

/// The bytes of `file`: mapped when it is a regular, closed binlog; read otherwise.
/// `populate` pre-faults the whole map in one call (MADV_POPULATE_READ): faster when every
/// byte will be read (list), slower when most of the file is hopped over (a window cut).
pub fn load(file: File, populate: bool) -> io::Result<Bytes> {
    let md = file.metadata()?;
    if !md.is_file() || md.len() == 0 {
        return read_all(file);
    }
    let mut head = [0u8; 4 + COMMON_HEADER_LEN];
    let n = file.read_at(&mut head, 0)?;
    let closed =
        n == head.len() && head[..4] == MAGIC && u16::from(head[IN_USE_BYTE]) & FLAG_IN_USE == 0;
    if !closed {
        return read_all(file);
    }
    // SAFETY: the map is read-only and private to this process; the file is a closed binlog
    // (in-use flag clear), which the server never modifies again. If someone truncates it
    // anyway, access past the new end raises SIGBUS, as documented above.
    let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
    if populate {
        // MADV_POPULATE_READ where it is safe, not MAP_POPULATE: on kernels before 6.9 both
        // retry an unreadable page forever (see `sys::mapsource::populate_read_is_safe`).
        crate::sys::mapsource::populate(&map, 0, map.len());
    }
    Ok(Bytes::Mapped(map))
}
