//! The split engine: read a stream, write a RAIT set.
//!
//! Layout: [`super`] (Amanda's RAIT, spec §3.3–3.5). Rows are processed in batches (`BATCH`
//! rows per `writev` per volume) from one input buffer and one parity buffer allocated up
//! front: no allocation per record.

use std::fmt;
use std::io::{self, IoSlice, Read};

use super::meta::{can_carry_line, FirstBlock, HeaderKind, Length, Meta, Trailer};
use super::{tag, Geometry, VolumeOut, TAG_LEN};
use crate::blockio::read_full;
use crate::parity::{Codec, ParityError};

/// Rows per batch: 32 rows of 32 KiB per volume = 1 MiB per `writev`.
pub const BATCH: usize = 32;

/// What split could not do.
#[derive(Debug)]
pub enum SplitError {
    Input(io::Error),
    Output { volume: usize, err: io::Error },
    Parity(ParityError),
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::Input(e) => write!(f, "reading the input: {e}"),
            SplitError::Output { volume, err } => write!(f, "volume {volume}: {err}"),
            SplitError::Parity(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SplitError {}

/// What split wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSummary {
    pub header: HeaderKind,
    /// The stream starts like an Amanda header but it could not be kept as one (text not
    /// ending in a newline, bytes after its NUL, or no room for the line): it was striped as
    /// data, so Amanda cannot read this set.
    pub header_striped: bool,
    pub payload: u64,
    pub rows: u64,
}

/// Split `input` over `outs` (one per volume, parity volumes last) with geometry `geo` and
/// set identity `set`.
pub fn split<R: Read>(
    input: &mut R,
    outs: &mut [VolumeOut],
    geo: &Geometry,
    set: u64,
) -> Result<SplitSummary, SplitError> {
    assert_eq!(outs.len(), geo.volumes, "one output per volume");
    let (n, d, m, c) = (geo.volumes, geo.data(), geo.parity, geo.block);
    let row = geo.row_bytes();
    let mut codec = Codec::new(d, m, c).map_err(SplitError::Parity)?;
    let mut inbuf = vec![0u8; (BATCH * row).max(geo.header_size)];
    let mut parbuf = vec![0u8; BATCH * m * c];
    let mut tags = vec![0u8; if geo.sums { BATCH * n * TAG_LEN } else { 0 }];

    // The first block: an Amanda header is kept whole, anything else is payload.
    let hs = geo.header_size;
    let got = read_full(input, &mut inbuf[..hs]).map_err(SplitError::Input)?;
    let amanda = got == hs && can_carry_line(&inbuf[..hs]);
    let header_striped = !amanda && super::looks_like_header(&inbuf[..got]);
    let header_block = if amanda {
        Some(inbuf[..hs].to_vec())
    } else {
        None
    };
    let mut carry = if amanda { 0 } else { got };
    let header = if amanda {
        HeaderKind::Amanda
    } else {
        HeaderKind::None
    };
    let meta_for = |child: usize, len: Length| Meta {
        set,
        child,
        geometry: *geo,
        header,
        len,
    };
    for (i, out) in outs.iter_mut().enumerate() {
        let len = if out.seekable() {
            Length::Incomplete
        } else {
            Length::Trailer
        };
        let block = FirstBlock::build(header_block.as_deref(), &meta_for(i, len));
        out.write_block(&block)
            .map_err(|err| SplitError::Output { volume: i, err })?;
    }

    let mut payload = 0u64;
    let mut rows_done = 0u64;
    loop {
        let want = BATCH * row;
        let got = carry + read_full(input, &mut inbuf[carry..want]).map_err(SplitError::Input)?;
        carry = 0;
        if got == 0 {
            break;
        }
        payload += got as u64;
        let rows = got.div_ceil(row);
        inbuf[got..rows * row].fill(0);
        for r in 0..rows {
            codec
                .encode_row(
                    &inbuf[r * row..(r + 1) * row],
                    &mut parbuf[r * m * c..(r + 1) * m * c],
                )
                .map_err(SplitError::Parity)?;
        }
        if geo.sums {
            for r in 0..rows {
                for i in 0..n {
                    let shard = shard_of(&inbuf, &parbuf, r, i, d, m, c);
                    let t = tag(set, rows_done + r as u64, i, shard);
                    tags[(r * n + i) * TAG_LEN..][..TAG_LEN].copy_from_slice(&t);
                }
            }
        }
        for (i, out) in outs.iter_mut().enumerate() {
            // one small vector per volume per batch (not per record)
            let mut parts: Vec<IoSlice<'_>> = Vec::with_capacity(rows * 2);
            for r in 0..rows {
                parts.push(IoSlice::new(shard_of(&inbuf, &parbuf, r, i, d, m, c)));
                if geo.sums {
                    parts.push(IoSlice::new(&tags[(r * n + i) * TAG_LEN..][..TAG_LEN]));
                }
            }
            let per = if geo.sums { 2 } else { 1 };
            out.write_records(&parts, per)
                .map_err(|err| SplitError::Output { volume: i, err })?;
        }
        rows_done += rows as u64;
        if got < want {
            break;
        }
    }

    for (i, out) in outs.iter_mut().enumerate() {
        let r = if out.seekable() {
            let block = FirstBlock::build(
                header_block.as_deref(),
                &meta_for(i, Length::Known(payload)),
            );
            out.rewrite_first(&block)
        } else {
            let t = Trailer {
                set,
                child: i,
                records: rows_done,
                len: payload,
            };
            out.write_block(&t.render(geo.record_len()))
                .and_then(|_| out.flush())
        };
        r.map_err(|err| SplitError::Output { volume: i, err })?;
    }
    Ok(SplitSummary {
        header,
        header_striped,
        payload,
        rows: rows_done,
    })
}

/// Shard `i` of batch row `r`: a slice of the input row, or of the parity buffer.
fn shard_of<'a>(
    inbuf: &'a [u8],
    parbuf: &'a [u8],
    r: usize,
    i: usize,
    d: usize,
    m: usize,
    c: usize,
) -> &'a [u8] {
    if i < d {
        &inbuf[r * d * c + i * c..][..c]
    } else {
        &parbuf[r * m * c + (i - d) * c..][..c]
    }
}
