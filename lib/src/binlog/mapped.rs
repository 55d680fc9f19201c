//! Getting a binlog file's bytes: a read-only memory map for closed files, a plain read for
//! everything else.
//!
//! Why the split (STYLE.md, ripgrep `searcher/mmap.rs`): a mapped file that shrinks under us
//! raises SIGBUS. A *closed* binlog (FDE in-use flag clear) is never written again by the
//! server, so it is mapped; a file whose FDE says "in use" (live, or crashed) may still be
//! appended to or truncated by crash recovery, so it is read into memory, as are pipes and
//! stdin.

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

/// Read all of `r` (stdin, a pipe).
pub fn read_all(mut r: impl Read) -> io::Result<Bytes> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(Bytes::Owned(v))
}

/// The bytes of `file`: mapped when it is a regular, closed binlog; read otherwise.
/// `populate` pre-faults the whole map in one call (MAP_POPULATE): faster when every byte
/// will be read (verify), slower when most of the file is hopped over (a window cut).
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
    let map = unsafe {
        let mut o = memmap2::MmapOptions::new();
        if populate {
            o.populate();
        }
        o.map(&file)?
    };
    Ok(Bytes::Mapped(map))
}
