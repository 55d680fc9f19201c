//! One output volume: whole records written with `writev` (a batch of rows per system call),
//! or one `write(2)` per record on a tape, where each write is one tape block.
//!
//! A volume on a regular file or block device is made durable before split or rebuild
//! reports success: its data are fsynced before the first block is rewritten with the
//! set's length (what marks a volume finished), and that block is fsynced too — a write
//! error that the kernel only reports at writeback (a failing disk) fails the command
//! instead of being lost after exit 0. Data are flushed behind the writer as they come
//! ([`FlushEvery`]), so the final fsync has little left to do. (`--no-sync` turns this off.)

use std::fs::File;
use std::io::{self, IoSlice, Seek, SeekFrom, Write};

use crate::sys::writeback::FlushEvery;

/// An output volume being written by split or rebuild.
pub struct VolumeOut {
    file: File,
    seekable: bool,
    tape: bool,
    /// one record, for tapes with `--checksums` (data and tag must be one block)
    scratch: Vec<u8>,
    /// fsync before success (unless turned off with [`VolumeOut::sync`])
    sync: bool,
    /// flushes written data of a durable volume behind the writer
    behind: FlushEvery,
}

impl VolumeOut {
    /// `seekable`: the first block can be rewritten at the end (regular file, block device).
    /// `tape`: every record must be a single `write(2)`.
    pub fn new(file: File, seekable: bool, tape: bool) -> VolumeOut {
        VolumeOut {
            file,
            seekable,
            tape,
            scratch: Vec::new(),
            sync: true,
            behind: FlushEvery::default(),
        }
    }

    /// `false`: never fsync this volume (the caller's `--no-sync`).
    pub fn sync(mut self, sync: bool) -> VolumeOut {
        self.sync = sync;
        self
    }

    /// Is this volume fsynced (a regular file or block device, not a pipe or tape)?
    fn durable(&self) -> bool {
        self.sync && self.seekable && !self.tape
    }

    fn written(&mut self, n: usize) {
        if self.durable() {
            self.behind.wrote(&self.file, n);
        }
    }

    /// fsync a durable volume (after the flushing thread has ended).
    fn sync_now(&mut self) -> io::Result<()> {
        self.behind.stop();
        if self.durable() {
            self.file.sync_all()?;
        }
        Ok(())
    }

    /// The volume's file metadata (to tell two paths naming one file apart).
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    pub fn seekable(&self) -> bool {
        self.seekable
    }

    /// Write one whole block (first block, trailer) as one write.
    pub fn write_block(&mut self, block: &[u8]) -> io::Result<()> {
        write_once_or_all(&mut self.file, block, self.tape)?;
        self.written(block.len());
        Ok(())
    }

    /// Write records given as `parts`, `per_record` consecutive slices making one record.
    pub fn write_records(&mut self, parts: &[IoSlice<'_>], per_record: usize) -> io::Result<()> {
        if self.tape {
            for rec in parts.chunks(per_record) {
                if rec.len() == 1 {
                    write_once_or_all(&mut self.file, &rec[0], true)?;
                } else {
                    self.scratch.clear();
                    for p in rec {
                        self.scratch.extend_from_slice(p);
                    }
                    write_once_or_all(&mut self.file, &self.scratch, true)?;
                }
            }
            return Ok(());
        }
        write_all_vectored(&mut self.file, parts)?;
        self.written(parts.iter().map(|p| p.len()).sum());
        Ok(())
    }

    /// The end of a seekable volume: fsync what was written, rewrite the first block in
    /// place (the finished volume's metadata), fsync again.
    pub fn rewrite_first(&mut self, block: &[u8]) -> io::Result<()> {
        self.sync_now()?;
        let end = self.file.stream_position()?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(block)?;
        self.file.seek(SeekFrom::Start(end))?;
        self.sync_now()
    }

    /// The end of a volume written through: flush, and fsync a durable one.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.sync_now()
    }
}

fn write_once_or_all(f: &mut File, buf: &[u8], tape: bool) -> io::Result<()> {
    if !tape {
        return f.write_all(buf);
    }
    loop {
        match f.write(buf) {
            Ok(n) if n == buf.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write of a tape block: {n} of {} bytes", buf.len()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `writev` until every byte of `parts` is written (at most 1024 slices per call, IOV_MAX).
pub(crate) fn write_all_vectored<W: Write + ?Sized>(
    f: &mut W,
    parts: &[IoSlice<'_>],
) -> io::Result<()> {
    let mut i = 0;
    let mut skip = 0usize; // bytes of parts[i] already written
    while i < parts.len() {
        if skip > 0 {
            f.write_all(&parts[i][skip..])?;
            i += 1;
            skip = 0;
            continue;
        }
        let end = (i + 1024).min(parts.len());
        let n = match f.write_vectored(&parts[i..end]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            let l = parts[i].len();
            if left >= l {
                left -= l;
                i += 1;
            } else {
                skip = left;
                left = 0;
            }
        }
    }
    Ok(())
}
