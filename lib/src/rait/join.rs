//! The join engine: read a RAIT set (ours or Amanda's), check every row, rebuild what is lost
//! or damaged, and write the stream (`join`), only report (`verify`) or write lost volumes
//! again (`rebuild`).
//!
//! Rules (spec `amanda-media.md` §3.6, and what Amanda gets wrong there):
//! * a volume missing from the start, unreadable, or that ends or fails in the middle is
//!   rebuilt from parity from the very record where it stopped — never 32 KiB of wrong data;
//! * a complete row is checked against its parity (as Amanda does); a mismatch that cannot be
//!   pinned to one volume stops `join` (unless trusted) rather than guess;
//! * with `--checksums` a record whose tag does not match is treated as lost, so the damage
//!   is located and repaired;
//! * nothing is trusted for sizes: the buffers come from the validated geometry
//!   ([`super::MAX_BLOCK`]), so hostile volumes cannot ask for huge allocations.
//!
//! Buffers: one per volume, `(batch + 2)` records (about 2 MiB), allocated once; shard `i` of batch row `j`
//! is `bufs[i][j·record..][..block]`, and rebuilt shards are written into the same place.

use std::fmt;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};

use super::meta::{FirstBlock, Length, Meta, MetaError, Trailer};
use super::volume::write_all_vectored;
use super::{tag, Geometry, LayoutError, VolumeOut, AMANDA_BLOCK, TAG_LEN};
use crate::parity::{Codec, ParityError};

/// Rows per batch.
pub const BATCH: usize = 32;

/// One volume of the set as given to join.
pub enum Source {
    /// Named `missing` by the user.
    Missing,
    /// An input, possibly failing, read through once (a pipe, a tape).
    Read(Box<dyn Read>),
    /// An input that can seek (a file, a block device): a record it cannot read is rebuilt
    /// from parity and the volume is read on after it, as md does with a bad sector —
    /// up to [`MAX_UNREADABLE`] records, then the volume is given up from there.
    Seekable(Box<dyn ReadSeek>),
}

/// Read + Seek, for [`Source::Seekable`].
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// Unreadable records skipped per volume before join gives the volume up (a dying device
/// whose every read fails would otherwise be retried record by record to its end).
pub const MAX_UNREADABLE: usize = 64;

/// A volume being read: through once, or with the ability to skip an unreadable record.
enum Reader {
    Stream(Box<dyn Read>),
    Seekable(Box<dyn ReadSeek>),
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Stream(r) => r.read(buf),
            Reader::Seekable(r) => r.read(buf),
        }
    }
}

impl Reader {
    /// Go to byte `pos` of the volume; `false` for a stream or when seeking fails.
    fn skip_to(&mut self, pos: u64) -> bool {
        match self {
            Reader::Stream(_) => false,
            Reader::Seekable(r) => r.seek(SeekFrom::Start(pos)).is_ok(),
        }
    }
}

/// How join runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinOptions {
    /// The child block size the user asked for (`None`: what the volumes say, or 32 KiB).
    pub block: Option<usize>,
    /// Size of the first block of every volume (`None`: what raitstripe's line says, else
    /// 32 KiB).
    pub header_size: Option<usize>,
    /// Write the data volumes' bytes when the parity disagrees and the culprit is unknown.
    pub trust_data: bool,
}

/// Something worth telling the user; the stream stays exact unless the event says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The volume is missing (named `missing` or unreadable when opened): rebuilt throughout.
    Missing { volume: usize, cause: String },
    /// Record `record` of a seekable volume could not be read (`cause`): rebuilt from
    /// parity; the volume is read on after it.
    Unreadable {
        volume: usize,
        record: u64,
        offset: u64,
        cause: String,
    },
    /// The volume stopped at `record` (truncated, read error): rebuilt from there on.
    Ended {
        volume: usize,
        record: u64,
        offset: u64,
        cause: String,
    },
    /// A record's checksum does not match: rebuilt from the others.
    BadChecksum {
        volume: usize,
        record: u64,
        offset: u64,
    },
    /// Reed-Solomon found the one record that made the row inconsistent and rebuilt it.
    Located {
        volume: usize,
        record: u64,
        offset: u64,
    },
    /// The row's parity does not match and no volume can be blamed.
    ParityMismatch { record: u64, offset: u64 },
    /// More volumes are lost in this row than there are parity volumes.
    Unrecoverable { record: u64, lost: Vec<usize> },
}

/// Why join stopped.
#[derive(Debug)]
pub enum JoinError {
    FirstBlock {
        volume: usize,
        err: MetaError,
    },
    Truncated {
        volume: usize,
        got: usize,
        want: usize,
    },
    NoVolume,
    Count {
        given: usize,
        volumes: usize,
    },
    OtherSet {
        volume: usize,
        set: u64,
        first: usize,
        first_set: u64,
    },
    Position {
        volume: usize,
        child: usize,
    },
    Differs {
        volume: usize,
        first: usize,
        what: &'static str,
    },
    BlockSize {
        given: usize,
        stored: usize,
    },
    Incomplete {
        volume: usize,
    },
    Layout(LayoutError),
    TooManyLost {
        record: u64,
        lost: Vec<usize>,
        parity: usize,
    },
    ParityMismatch {
        record: u64,
        offset: u64,
    },
    NoEnd {
        rows: u64,
    },
    Output(io::Error),
    /// Writing volume `volume` being rebuilt (`rebuild`).
    Rebuilt {
        volume: usize,
        err: io::Error,
    },
    Parity(ParityError),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::FirstBlock { volume, err } => write!(f, "volume {volume}: {err}"),
            JoinError::Truncated { volume, got, want } => {
                write!(f, "volume {volume}: truncated in its first block ({got} of {want} bytes)")
            }
            JoinError::NoVolume => write!(f, "no volume could be read"),
            JoinError::Count { given, volumes } => {
                write!(f, "{given} volumes given but the set has {volumes} (name lost ones 'missing')")
            }
            JoinError::OtherSet { volume, set, first, first_set } => write!(
                f,
                "volume {volume} belongs to set {set:016x}, volume {first} to set {first_set:016x}: volumes of different sets"
            ),
            JoinError::Position { volume, child } => {
                write!(f, "volume {volume} is volume {child} of its set: volumes given in the wrong order")
            }
            JoinError::Differs { volume, first, what } => {
                write!(f, "volume {volume} and volume {first} differ in {what}: volumes of different sets")
            }
            JoinError::BlockSize { given, stored } => {
                write!(f, "wrong block size: {given} given, the volumes were written with {stored}")
            }
            JoinError::Incomplete { volume } => write!(f, "volume {volume}: split did not finish (length never written)"),
            JoinError::Layout(e) => write!(f, "{e}"),
            JoinError::TooManyLost { record, lost, parity } => write!(
                f,
                "record {record}: volumes {} lost, only {parity} parity volume(s): unrecoverable",
                lost.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
            ),
            JoinError::ParityMismatch { record, offset } => write!(
                f,
                "record {record} (volume offset {offset}): parity mismatch, cannot tell which volume is wrong (use --checksums sets, verify, or --trust-data)"
            ),
            JoinError::NoEnd { rows } => {
                write!(f, "no volume has its end record after {rows} records: every volume is truncated")
            }
            JoinError::Output(e) => write!(f, "writing the output: {e}"),
            JoinError::Rebuilt { volume, err } => write!(f, "writing rebuilt volume {volume}: {err}"),
            JoinError::Parity(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Payload bytes written (or checked); with an Amanda set that has no length, whole rows.
    pub payload: u64,
    pub rows: u64,
    /// The set keeps no exact length (Amanda's own set): the output includes the padding.
    pub padded: bool,
    /// Records rebuilt from parity (missing volumes, checksum failures, located errors).
    pub rebuilt_records: u64,
    /// Volumes that were missing or stopped early.
    pub lost_volumes: Vec<usize>,
    /// Records whose checksum failed, that Reed-Solomon located, or that could not be read.
    pub damaged_records: u64,
    /// Rows that could not be made right.
    pub unrecoverable_rows: u64,
}

enum End {
    Known(u64),
    Trailer,
    Eof,
}

/// An opened set, ready to run.
pub struct Set {
    geo: Geometry,
    set: u64,
    meta: Option<Meta>,
    header: Option<Vec<u8>>,
    end: End,
    readers: Vec<Option<Reader>>,
    /// Where each volume's records begin (its first block's size).
    bases: Vec<u64>,
    lost: Vec<usize>,
    events: Vec<Event>,
    trust: bool,
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

impl Set {
    /// Read every volume's first block and check that they form one set.
    pub fn open(sources: Vec<Source>, opts: &JoinOptions) -> Result<Set, JoinError> {
        let hs = opts.header_size.unwrap_or(AMANDA_BLOCK);
        if !(super::MIN_BLOCK..=super::MAX_BLOCK).contains(&hs) {
            return Err(JoinError::Layout(LayoutError::HeaderSize(hs)));
        }
        let n = sources.len();
        let mut readers: Vec<Option<Reader>> = Vec::with_capacity(n);
        let mut bases: Vec<u64> = vec![0; n];
        let mut firsts: Vec<Option<FirstBlock>> = Vec::with_capacity(n);
        let mut events = Vec::new();
        let mut lost = Vec::new();
        for (i, s) in sources.into_iter().enumerate() {
            let mut r = match s {
                Source::Missing => {
                    events.push(Event::Missing {
                        volume: i,
                        cause: "given as missing".into(),
                    });
                    lost.push(i);
                    readers.push(None);
                    firsts.push(None);
                    continue;
                }
                Source::Read(r) => Reader::Stream(r),
                Source::Seekable(r) => Reader::Seekable(r),
            };
            let mut block = vec![0u8; hs];
            let (mut got, mut err) = read_up_to(&mut r, &mut block);
            // Unless told, the first block is as long as raitstripe's line says.
            let size = match (
                opts.header_size,
                FirstBlock::stated_header_size(&block[..got]),
            ) {
                (None, Some(stated)) => stated,
                _ => hs,
            };
            if err.is_none() && size > got && got == hs {
                block.resize(size, 0);
                let (more, e) = read_up_to(&mut r, &mut block[hs..]);
                got += more;
                err = e;
            }
            if let Some(e) = err {
                events.push(Event::Missing {
                    volume: i,
                    cause: format!("unreadable: {e}"),
                });
                lost.push(i);
                readers.push(None);
                firsts.push(None);
                continue;
            }
            if got < size {
                return Err(JoinError::Truncated {
                    volume: i,
                    got,
                    want: size,
                });
            }
            if got > size {
                // read past a smaller first block: give the records back
                let rest = block[size..got].to_vec();
                r = match r {
                    Reader::Seekable(mut f) => match f.seek(SeekFrom::Start(size as u64)) {
                        Ok(_) => Reader::Seekable(f),
                        Err(_) => Reader::Stream(Box::new(io::Cursor::new(rest).chain(f))),
                    },
                    Reader::Stream(s) => Reader::Stream(Box::new(io::Cursor::new(rest).chain(s))),
                };
            }
            bases[i] = size as u64;
            block.truncate(size);
            let fb = FirstBlock::parse(&block)
                .map_err(|err| JoinError::FirstBlock { volume: i, err })?;
            readers.push(Some(r));
            firsts.push(Some(fb));
        }
        let Some(first) = firsts.iter().position(|f| f.is_some()) else {
            return Err(JoinError::NoVolume);
        };
        let f0 = firsts[first].clone().unwrap();
        if let Some(m) = &f0.meta {
            if m.geometry.volumes != n {
                return Err(JoinError::Count {
                    given: n,
                    volumes: m.geometry.volumes,
                });
            }
        }
        for (i, f) in firsts.iter().enumerate() {
            let Some(f) = f else { continue };
            match (&f0.meta, &f.meta) {
                (Some(a), Some(b)) => {
                    if a.set != b.set {
                        return Err(JoinError::OtherSet {
                            volume: i,
                            set: b.set,
                            first,
                            first_set: a.set,
                        });
                    }
                    if a.geometry != b.geometry || a.header != b.header {
                        return Err(JoinError::Differs {
                            volume: i,
                            first,
                            what: "geometry",
                        });
                    }
                    if b.child != i {
                        return Err(JoinError::Position {
                            volume: i,
                            child: b.child,
                        });
                    }
                    if let (Length::Known(x), Length::Known(y)) = (a.len, b.len) {
                        if x != y {
                            return Err(JoinError::Differs {
                                volume: i,
                                first,
                                what: "length",
                            });
                        }
                    }
                }
                (None, None) => {}
                _ => {
                    return Err(JoinError::Differs {
                        volume: i,
                        first,
                        what: "metadata (one is raitstripe's, one is not)",
                    })
                }
            }
            if f.amanda != f0.amanda {
                return Err(JoinError::Differs {
                    volume: i,
                    first,
                    what: "header",
                });
            }
        }
        let (geo, set, end) =
            match &f0.meta {
                Some(m) => {
                    if let Some(b) = opts.block {
                        if b != m.geometry.block {
                            return Err(JoinError::BlockSize {
                                given: b,
                                stored: m.geometry.block,
                            });
                        }
                    }
                    let metas = firsts.iter().flatten().filter_map(|f| f.meta.as_ref());
                    let mut end = End::Trailer;
                    for (i, mm) in firsts.iter().enumerate().filter_map(|(i, f)| {
                        f.as_ref().and_then(|f| f.meta.as_ref()).map(|m| (i, m))
                    }) {
                        if mm.len == Length::Incomplete {
                            return Err(JoinError::Incomplete { volume: i });
                        }
                    }
                    for mm in metas {
                        if let Length::Known(p) = mm.len {
                            end = End::Known(p);
                        }
                    }
                    (m.geometry, m.set, end)
                }
                None => {
                    // Amanda's own set: the children's header says the child block size in its
                    // restore line (`dd if=<tape> bs=32k skip=1`, spec §1.3), when it is known.
                    let stated = f0.amanda.as_deref().and_then(restore_line_block_size);
                    let block = match (opts.block, stated) {
                        (Some(b), Some(st)) if b != st => {
                            return Err(JoinError::BlockSize {
                                given: b,
                                stored: st,
                            })
                        }
                        (Some(b), _) => b,
                        (None, Some(st)) => st,
                        (None, None) => AMANDA_BLOCK,
                    };
                    let geo = Geometry::new(
                        n,
                        1,
                        block,
                        f0.amanda.as_ref().map_or(hs, |h| h.len()),
                        false,
                    )
                    .map_err(JoinError::Layout)?;
                    (geo, 0, End::Eof)
                }
            };
        if lost.len() > geo.parity {
            return Err(JoinError::TooManyLost {
                record: 0,
                lost,
                parity: geo.parity,
            });
        }
        Ok(Set {
            geo,
            set,
            meta: f0.meta,
            header: f0.amanda,
            end,
            readers,
            bases,
            lost,
            events,
            trust: opts.trust_data,
        })
    }

    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The stream's header block (written first by join), if it has one.
    pub fn header(&self) -> Option<&[u8]> {
        self.header.as_deref()
    }

    /// True for a set written by raitstripe (exact length known).
    pub fn has_metadata(&self) -> bool {
        self.meta.is_some()
    }

    /// Run the set. `out`: where the stream goes (`None` = verify only). `rebuild`: volumes to
    /// write again, by index. `on_event` hears about everything unusual, in order.
    /// `verify` mode (out = None) counts damage instead of stopping on it where it can.
    pub fn run(
        mut self,
        mut out: Option<&mut dyn Write>,
        rebuild: &mut [(usize, VolumeOut)],
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Summary, JoinError> {
        let verify = out.is_none();
        let geo = self.geo;
        let (n, d, m, c) = (geo.volumes, geo.data(), geo.parity, geo.block);
        let rec = geo.record_len();
        let row_bytes = geo.row_bytes() as u64;
        let mut sum = Summary {
            lost_volumes: self.lost.clone(),
            padded: matches!(self.end, End::Eof),
            ..Summary::default()
        };
        for e in self.events.drain(..) {
            on_event(&e);
        }
        let mut codec = Codec::new(d, m, c).map_err(JoinError::Parity)?;
        let hold = if matches!(self.end, End::Trailer) {
            2
        } else {
            0
        };
        // about 2 MiB per volume per batch, whatever the block size (bounded by MAX_BLOCK)
        let batch = ((2 << 20) / rec).clamp(1, BATCH);
        let cap = (batch + hold) * rec;
        let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; cap]).collect();
        let mut have = vec![0usize; n];
        let mut eof = vec![false; n];
        let mut errs: Vec<Option<String>> = vec![None; n];
        // records of the batch buffer that could not be read (seekable volumes), per volume
        let mut bad: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut unreadable = vec![0usize; n];
        let mut usable = vec![0usize; n];
        let mut present = vec![false; n];
        let mut total: Option<u64> = match self.end {
            End::Known(p) => Some(geo.rows_for(p)),
            _ => None,
        };
        let mut length: Option<u64> = match self.end {
            End::Known(p) => Some(p),
            _ => None,
        };

        if let (Some(o), Some(h)) = (out.as_deref_mut(), &self.header) {
            o.write_all(h).map_err(JoinError::Output)?;
        }
        for (k, v) in rebuild.iter_mut() {
            let block = self.first_block_for(*k, length, v.seekable());
            v.write_block(&block)
                .map_err(|err| JoinError::Rebuilt { volume: *k, err })?;
        }

        let mut done: u64 = 0;
        loop {
            // Fill every live volume's buffer.
            for i in 0..n {
                let Some(r) = self.readers[i].as_mut() else {
                    continue;
                };
                while !eof[i] && have[i] < cap {
                    let (got, err) = read_up_to(r, &mut bufs[i][have[i]..cap]);
                    have[i] += got;
                    let Some(e) = err else {
                        eof[i] = have[i] < cap;
                        break;
                    };
                    let why = e.raw_os_error().map_or_else(
                        || e.to_string(),
                        |c| crate::freeze::strerror(nix::errno::Errno::from_raw(c)),
                    );
                    // A seekable volume skips the record it cannot read (rebuilt from
                    // parity below) and reads on after it; a stream stops here.
                    let k = have[i] / rec;
                    let record = done + k as u64;
                    if unreadable[i] < MAX_UNREADABLE
                        && r.skip_to(self.bases[i] + (record + 1) * rec as u64)
                    {
                        unreadable[i] += 1;
                        bufs[i][k * rec..(k + 1) * rec].fill(0);
                        have[i] = (k + 1) * rec;
                        bad[i].push(k);
                        sum.damaged_records += 1;
                        on_event(&Event::Unreadable {
                            volume: i,
                            record,
                            offset: geo.record_offset(record),
                            cause: format!("read error: {why}"),
                        });
                        continue;
                    }
                    eof[i] = true;
                    errs[i] = Some(if unreadable[i] >= MAX_UNREADABLE {
                        format!("read error: {why} ({MAX_UNREADABLE} records unreadable: giving the volume up)")
                    } else {
                        format!("read error: {why}")
                    });
                }
            }
            // How many data records each live volume offers; find trailers.
            for i in 0..n {
                usable[i] = 0;
                if self.readers[i].is_none() {
                    continue;
                }
                let avail = have[i] / rec;
                usable[i] = avail;
                if hold > 0 {
                    if eof[i] && errs[i].is_none() && have[i] % rec == 0 && avail >= 1 {
                        if let Ok(t) = Trailer::parse(&bufs[i][(avail - 1) * rec..avail * rec]) {
                            let records = done + (avail - 1) as u64;
                            if t.set == self.set
                                && t.child == i
                                && t.records == records
                                && geo.rows_for(t.len) == records
                            {
                                usable[i] = avail - 1;
                                if total.is_none() {
                                    total = Some(records);
                                    length = Some(t.len);
                                }
                            }
                        }
                    } else if !eof[i] {
                        usable[i] = avail.saturating_sub(hold);
                    }
                }
            }
            let rows = match total {
                Some(t) => (t - done).min(batch as u64) as usize,
                None => usable.iter().copied().max().unwrap_or(0).min(batch),
            };
            if rows == 0 {
                break;
            }
            // Volumes that stop inside this batch are rebuilt from where they stop.
            for i in 0..n {
                if self.readers[i].is_some() && usable[i] < rows {
                    let record = done + usable[i] as u64;
                    let cause = errs[i]
                        .clone()
                        .unwrap_or_else(|| "volume ends early (truncated)".into());
                    on_event(&Event::Ended {
                        volume: i,
                        record,
                        offset: geo.record_offset(record),
                        cause,
                    });
                    sum.lost_volumes.push(i);
                    self.readers[i] = None;
                }
            }
            // Fast path: the same volumes present in every row of the batch and no tags to
            // check: check or rebuild the whole batch in one call (contiguous shards).
            let mut batch_done = false;
            if !geo.sums
                && codec.can_span()
                && (0..n).all(|i| (usable[i] == 0 || usable[i] >= rows) && bad[i].is_empty())
            {
                for i in 0..n {
                    present[i] = usable[i] >= rows;
                }
                let lost = present.iter().filter(|&&p| !p).count();
                if lost == 0 {
                    batch_done = codec
                        .row_consistent(&bufs, 0, rows * c, &present)
                        .map_err(JoinError::Parity)?;
                } else if lost <= m {
                    codec
                        .rebuild(&mut bufs, 0, rows * c, &present)
                        .map_err(JoinError::Parity)?;
                    sum.rebuilt_records += (lost * rows) as u64;
                    batch_done = true;
                }
            }
            for j in 0..rows {
                if batch_done {
                    break;
                }
                let record = done + j as u64;
                let off = j * rec;
                for i in 0..n {
                    present[i] = j < usable[i] && !bad[i].contains(&j);
                }
                if geo.sums {
                    for i in 0..n {
                        if present[i] {
                            let t = tag(self.set, record, i, &bufs[i][off..off + c]);
                            if t[..] != bufs[i][off + c..off + c + TAG_LEN] {
                                present[i] = false;
                                sum.damaged_records += 1;
                                on_event(&Event::BadChecksum {
                                    volume: i,
                                    record,
                                    offset: geo.record_offset(record),
                                });
                            }
                        }
                    }
                }
                let lost: Vec<usize> = (0..n).filter(|&i| !present[i]).collect();
                if lost.len() > m {
                    if verify {
                        sum.unrecoverable_rows += 1;
                        on_event(&Event::Unrecoverable { record, lost });
                        continue;
                    }
                    return Err(JoinError::TooManyLost {
                        record,
                        lost,
                        parity: m,
                    });
                }
                if lost.is_empty() {
                    if !codec
                        .row_consistent(&bufs, off, c, &present)
                        .map_err(JoinError::Parity)?
                    {
                        if let Some(k) = codec
                            .locate_and_repair(&mut bufs, off, &mut present)
                            .map_err(JoinError::Parity)?
                        {
                            sum.damaged_records += 1;
                            sum.rebuilt_records += 1;
                            on_event(&Event::Located {
                                volume: k,
                                record,
                                offset: geo.record_offset(record),
                            });
                        } else {
                            let offset = geo.record_offset(record);
                            if !verify && !self.trust {
                                return Err(JoinError::ParityMismatch { record, offset });
                            }
                            on_event(&Event::ParityMismatch { record, offset });
                            sum.unrecoverable_rows += 1;
                        }
                    }
                } else {
                    codec
                        .rebuild(&mut bufs, off, c, &present)
                        .map_err(JoinError::Parity)?;
                    sum.rebuilt_records += lost.len() as u64;
                }
            }
            // Output.
            if let Some(o) = out.as_deref_mut() {
                let mut parts: Vec<IoSlice<'_>> = Vec::with_capacity(rows * d);
                for j in 0..rows {
                    let record = done + j as u64;
                    let mut left = match length {
                        Some(p) => p.saturating_sub(record * row_bytes).min(row_bytes) as usize,
                        None => row_bytes as usize,
                    };
                    for buf in bufs.iter().take(d) {
                        let take = left.min(c);
                        if take > 0 {
                            parts.push(IoSlice::new(&buf[j * rec..j * rec + take]));
                        }
                        left -= take;
                    }
                }
                write_all_vectored(o, &parts).map_err(JoinError::Output)?;
            }
            for (k, v) in rebuild.iter_mut() {
                let k = *k;
                let mut tags = vec![0u8; rows * TAG_LEN];
                if geo.sums {
                    for j in 0..rows {
                        tags[j * TAG_LEN..][..TAG_LEN].copy_from_slice(&tag(
                            self.set,
                            done + j as u64,
                            k,
                            &bufs[k][j * rec..][..c],
                        ));
                    }
                }
                let mut parts: Vec<IoSlice<'_>> = Vec::with_capacity(rows * 2);
                for j in 0..rows {
                    parts.push(IoSlice::new(&bufs[k][j * rec..][..c]));
                    if geo.sums {
                        parts.push(IoSlice::new(&tags[j * TAG_LEN..][..TAG_LEN]));
                    }
                }
                v.write_records(&parts, if geo.sums { 2 } else { 1 })
                    .map_err(|err| JoinError::Rebuilt { volume: k, err })?;
            }
            // Keep what follows the batch.
            let used = rows * rec;
            for i in 0..n {
                if self.readers[i].is_some() {
                    bufs[i].copy_within(used..have[i], 0);
                    have[i] -= used;
                } else {
                    have[i] = 0;
                }
                bad[i].retain(|&k| k >= rows);
                for k in bad[i].iter_mut() {
                    *k -= rows;
                }
            }
            done += rows as u64;
            if total == Some(done) {
                break;
            }
        }
        if matches!(self.end, End::Trailer) && total.is_none() {
            return Err(JoinError::NoEnd { rows: done });
        }
        sum.rows = done;
        sum.payload = length.unwrap_or(done * row_bytes);
        if let Some(o) = out {
            o.flush().map_err(JoinError::Output)?;
        }
        let known_at_start = matches!(self.end, End::Known(_));
        for (k, v) in rebuild.iter_mut() {
            let r = if self.meta.is_none() || (known_at_start && !v.seekable()) {
                v.flush()
            } else if v.seekable() {
                v.rewrite_first(&self.first_block_for(*k, length, true))
            } else {
                let t = Trailer {
                    set: self.set,
                    child: *k,
                    records: done,
                    len: length.unwrap_or(0),
                };
                v.write_block(&t.render(rec)).and_then(|_| v.flush())
            };
            r.map_err(|err| JoinError::Rebuilt { volume: *k, err })?;
        }
        Ok(sum)
    }

    fn first_block_for(&self, child: usize, length: Option<u64>, seekable: bool) -> Vec<u8> {
        match &self.meta {
            None => self.header.clone().unwrap_or_default(),
            Some(m) => {
                let len = match length {
                    Some(p) => Length::Known(p),
                    None if seekable => Length::Incomplete,
                    None => Length::Trailer,
                };
                let meta = Meta {
                    child,
                    len,
                    ..m.clone()
                };
                FirstBlock::build(self.header.as_deref(), &meta)
            }
        }
    }
}

/// The `bs=<K>k` of an Amanda header's restore line (`\tdd if=<tape> bs=32k skip=1 | ...`),
/// in bytes. Amanda never reads it back, but its RAIT taper writes the child block size there.
pub fn restore_line_block_size(header: &[u8]) -> Option<usize> {
    let text_end = header.iter().position(|&b| b == 0).unwrap_or(header.len());
    let text = &header[..text_end];
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"\tdd if=<tape> "))?;
    let rest = &line[b"\tdd if=<tape> ".len()..];
    let rest = rest.strip_prefix(b"bs=")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 6 || rest.get(digits) != Some(&b'k') {
        return None;
    }
    let k: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some(k * 1024)
}

#[cfg(test)]
mod tests;
