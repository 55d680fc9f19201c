//! Fixed-size record I/O over files, pipes, block devices and tapes.
//!
//! The unit is a record (32 KiB by default, Amanda's `DISK_BLOCK_BYTES` and the `bs=32k` of
//! every restore line). Invariants:
//! * a read fills a whole record unless the input ends: short pipe reads are looped over and
//!   EINTR is retried, as `dd iflag=fullblock` does — except on a tape, where one `read(2)`
//!   is one tape block and looping would merge two blocks;
//! * the LAST record keeps its true length unless padding is asked for, so that
//!   `dd bs=32k skip=1` gives back the exact payload after a header record;
//! * one buffer per reader/writer, allocated once (page-aligned, so it also serves
//!   O_DIRECT): no allocation per record.

mod buf;
mod direct;

pub use buf::AlignedBuf;
pub use direct::{open_direct, DirectFile};

use std::io::{self, ErrorKind, Read, Write};

/// Amanda's header and default record size: 32 KiB.
pub const DEFAULT_RECORD: usize = 32 * 1024;

/// What a reader or writer moved, in dd's terms (`N+M records`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes: u64,
    pub full_records: u64,
    pub partial_records: u64,
}

impl Stats {
    fn count(&mut self, n: usize, size: usize) {
        self.bytes += n as u64;
        if n == size {
            self.full_records += 1;
        } else if n > 0 {
            self.partial_records += 1;
        }
    }
}

/// Read until `buf` is full or the input ends; return how many bytes were read.
/// Short reads are looped over and EINTR is retried.
pub fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// One `read(2)`, EINTR retried: how a tape block is read.
fn read_once<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Reads an input as a sequence of records.
pub struct RecordReader<R> {
    inner: R,
    buf: AlignedBuf,
    size: usize,
    tape: bool,
    stats: Stats,
    done: bool,
}

impl<R: Read> RecordReader<R> {
    /// A reader of `size`-byte records. `size` must be > 0.
    pub fn new(inner: R, size: usize) -> io::Result<Self> {
        Ok(RecordReader {
            inner,
            buf: AlignedBuf::new(size)?,
            size,
            tape: false,
            stats: Stats::default(),
            done: false,
        })
    }

    /// Tape mode: one `read(2)` per record, a zero-length read (filemark) ends the input.
    pub fn tape(mut self, on: bool) -> Self {
        self.tape = on;
        self
    }

    /// The next record: full-size except possibly the last. `None` at the end.
    pub fn next_record(&mut self) -> io::Result<Option<&[u8]>> {
        if self.done {
            return Ok(None);
        }
        let buf = &mut self.buf.as_mut_slice()[..self.size];
        let n = if self.tape {
            read_once(&mut self.inner, buf)?
        } else {
            read_full(&mut self.inner, buf)?
        };
        if n == 0 || (!self.tape && n < self.size) {
            self.done = true;
        }
        if n == 0 {
            return Ok(None);
        }
        self.stats.count(n, self.size);
        Ok(Some(&self.buf.as_slice()[..n]))
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn record_size(&self) -> usize {
        self.size
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Writes a byte stream as records of exactly `size` bytes, the last one short unless
/// padding is asked for. Every `write(2)` to the inner writer is one whole record (what a
/// tape needs); a record is retried until fully written on files and pipes.
pub struct RecordWriter<W: Write> {
    inner: W,
    buf: AlignedBuf,
    size: usize,
    fill: usize,
    pad: bool,
    copy_always: bool,
    tape: bool,
    stats: Stats,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(inner: W, size: usize) -> io::Result<Self> {
        Ok(RecordWriter {
            inner,
            buf: AlignedBuf::new(size)?,
            size,
            fill: 0,
            pad: false,
            copy_always: false,
            tape: false,
            stats: Stats::default(),
        })
    }

    /// Zero-pad the last record to the full record size.
    pub fn pad_last(mut self, on: bool) -> Self {
        self.pad = on;
        self
    }

    /// Always write from the aligned buffer (needed with O_DIRECT).
    pub fn copy_always(mut self, on: bool) -> Self {
        self.copy_always = on;
        self
    }

    /// Tape mode: a short `write(2)` is an error (a tape block cannot be continued).
    pub fn tape(mut self, on: bool) -> Self {
        self.tape = on;
        self
    }

    fn emit(inner: &mut W, rec: &[u8], tape: bool) -> io::Result<()> {
        if !tape {
            return inner.write_all(rec);
        }
        loop {
            match inner.write(rec) {
                Ok(n) if n == rec.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::new(
                        ErrorKind::WriteZero,
                        format!("short write of a tape block: {n} of {} bytes", rec.len()),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Append bytes to the stream.
    pub fn write_bytes(&mut self, mut data: &[u8]) -> io::Result<()> {
        let size = self.size;
        if self.fill > 0 {
            let take = (size - self.fill).min(data.len());
            self.buf.as_mut_slice()[self.fill..self.fill + take].copy_from_slice(&data[..take]);
            self.fill += take;
            data = &data[take..];
            if self.fill == size {
                Self::emit(&mut self.inner, &self.buf.as_slice()[..size], self.tape)?;
                self.stats.count(size, size);
                self.fill = 0;
            }
        }
        if !self.copy_always {
            while data.len() >= size {
                Self::emit(&mut self.inner, &data[..size], self.tape)?;
                self.stats.count(size, size);
                data = &data[size..];
            }
        }
        while !data.is_empty() {
            let take = (size - self.fill).min(data.len());
            self.buf.as_mut_slice()[self.fill..self.fill + take].copy_from_slice(&data[..take]);
            self.fill += take;
            data = &data[take..];
            if self.fill == size {
                Self::emit(&mut self.inner, &self.buf.as_slice()[..size], self.tape)?;
                self.stats.count(size, size);
                self.fill = 0;
            }
        }
        Ok(())
    }

    /// Write the last (short or padded) record and flush. Returns what was written.
    pub fn finish(&mut self) -> io::Result<Stats> {
        if self.fill > 0 {
            let mut n = self.fill;
            if self.pad {
                self.buf.as_mut_slice()[n..self.size].fill(0);
                n = self.size;
            }
            Self::emit(&mut self.inner, &self.buf.as_slice()[..n], self.tape)?;
            self.stats.count(n, self.size);
            self.fill = 0;
        }
        self.inner.flush()?;
        Ok(self.stats)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer. Call [`finish`](Self::finish) first or buffered bytes are lost.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

#[cfg(test)]
mod tests;
