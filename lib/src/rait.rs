//! The RAIT layout: how a stream is cut into stripe rows and spread over N volumes, and the
//! few bytes raitstripe adds so that `join` is byte-exact while Amanda still reads the set.
//!
//! Spec: `../shared/specs/amanda-media.md` §3 (Amanda 3.5.1 `device-src/rait-device.c`).
//! With `parity == 1` the data bytes are exactly Amanda's:
//! * `data = volumes - parity` data volumes; a row is `data × block` bytes of the stream; data
//!   volume `i` gets the contiguous slice `row[i·block .. (i+1)·block]`;
//! * the parity volume (the LAST one) gets the XOR of the slices; with two volumes that is a
//!   copy (mirror);
//! * the last row is zero-padded, so every volume holds whole blocks;
//! * when the stream starts with an Amanda header (`AMANDA: `/`NETDUMP: ` in a
//!   `header_size`-byte block), that block is copied onto every volume and only the payload
//!   after it is striped.
//!
//! raitstripe's extras never touch those bytes (see [`meta`]): the first block of every
//! volume carries one text line `RAITSTRIPE ...` placed in the NUL padding of the Amanda
//! header (Amanda's parser ignores unknown lines; spec §1.6 rule 7), or, for a stream without
//! an Amanda header, a first block of its own. It names the set, the volume's place, the
//! geometry and the exact payload length, rewritten at the end on seekable volumes; a volume
//! that cannot be rewritten (pipe, tape) ends with one trailer record holding the length.
//! `--checksums` appends an 8-byte tag to every record (not Amanda-compatible).
//! Reed-Solomon sets (`parity >= 2`) use the same layout with the last `parity` volumes.

pub mod join;
pub mod meta;
pub mod split;
mod volume;

pub use meta::{FirstBlock, HeaderKind, Length, Meta, MetaError, Trailer};
pub use volume::VolumeOut;

use std::fmt;

/// Amanda's header block and default child block: 32 KiB (`DISK_BLOCK_BYTES`).
pub const AMANDA_BLOCK: usize = 32 * 1024;

/// Bytes of the per-record tag in `--checksums` mode: CRC-32C (LE u32) then the record
/// number's low 32 bits (LE u32).
pub const TAG_LEN: usize = 8;

/// Smallest block and header size accepted: room for the metadata line and the trailer.
pub const MIN_BLOCK: usize = 512;
/// Largest block and header size accepted (keeps buffers sane for hostile metadata).
pub const MAX_BLOCK: usize = 16 << 20;
/// Most volumes in a set.
pub const MAX_VOLUMES: usize = 255;

/// A geometry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    Volumes(usize),
    Parity { volumes: usize, parity: usize },
    Block(usize),
    HeaderSize(usize),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Volumes(n) => write!(f, "{n} volumes: need 2 to {MAX_VOLUMES}"),
            LayoutError::Parity { volumes, parity } => {
                write!(f, "{parity} parity volumes out of {volumes}: need at least 1, and at least one data volume")
            }
            LayoutError::Block(b) => {
                write!(
                    f,
                    "block size {b}: must be even and between {MIN_BLOCK} and {MAX_BLOCK}"
                )
            }
            LayoutError::HeaderSize(b) => {
                write!(
                    f,
                    "header size {b}: must be between {MIN_BLOCK} and {MAX_BLOCK}"
                )
            }
        }
    }
}

impl std::error::Error for LayoutError {}

/// The shape of a set: how many volumes, how many of them parity, the child block size, the
/// size of the first block (Amanda header or ours), and whether records carry a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub volumes: usize,
    pub parity: usize,
    pub block: usize,
    pub header_size: usize,
    pub sums: bool,
}

impl Geometry {
    pub fn new(
        volumes: usize,
        parity: usize,
        block: usize,
        header_size: usize,
        sums: bool,
    ) -> Result<Geometry, LayoutError> {
        if !(2..=MAX_VOLUMES).contains(&volumes) {
            return Err(LayoutError::Volumes(volumes));
        }
        if parity == 0 || parity >= volumes {
            return Err(LayoutError::Parity { volumes, parity });
        }
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block) || !block.is_multiple_of(2) {
            return Err(LayoutError::Block(block));
        }
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&header_size) {
            return Err(LayoutError::HeaderSize(header_size));
        }
        Ok(Geometry {
            volumes,
            parity,
            block,
            header_size,
            sums,
        })
    }

    /// Data volumes per row.
    pub fn data(&self) -> usize {
        self.volumes - self.parity
    }

    /// Stream bytes per row: `data × block` (Amanda's RAIT block size).
    pub fn row_bytes(&self) -> usize {
        self.data() * self.block
    }

    /// Bytes per record on a volume: the block, plus the tag with `--checksums`.
    pub fn record_len(&self) -> usize {
        self.block + if self.sums { TAG_LEN } else { 0 }
    }

    /// Rows needed for `payload` bytes (the last one zero-padded).
    pub fn rows_for(&self, payload: u64) -> u64 {
        payload.div_ceil(self.row_bytes() as u64)
    }

    /// Byte offset of record `row` on a volume.
    pub fn record_offset(&self, row: u64) -> u64 {
        self.header_size as u64 + row * self.record_len() as u64
    }
}

/// Does this block start like an Amanda header? (`AMANDA: ` or `NETDUMP: `, spec §1.6;
/// the rule lives in [`crate::amanda::looks_like_header`].)
pub fn looks_like_header(first_bytes: &[u8]) -> bool {
    crate::amanda::looks_like_header(first_bytes)
}

/// The tag of record `row` on volume `child` of set `set` with contents `data`.
pub fn tag(set: u64, row: u64, child: usize, data: &[u8]) -> [u8; TAG_LEN] {
    let mut salt = [0u8; 17];
    salt[..8].copy_from_slice(&set.to_le_bytes());
    salt[8..16].copy_from_slice(&row.to_le_bytes());
    salt[16] = child as u8;
    let crc = crc32c::crc32c_append(crc32c::crc32c(data), &salt);
    let mut t = [0u8; TAG_LEN];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(row as u32).to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_limits() {
        let g = Geometry::new(3, 1, AMANDA_BLOCK, AMANDA_BLOCK, false).unwrap();
        assert_eq!(g.row_bytes(), 65536);
        assert_eq!(g.rows_for(100_000), 2);
        assert_eq!(g.rows_for(0), 0);
        assert_eq!(g.record_offset(2), 32768 * 3);
        assert_eq!(
            Geometry::new(1, 1, 512, 512, false),
            Err(LayoutError::Volumes(1))
        );
        assert!(Geometry::new(3, 3, 512, 512, false).is_err());
        assert!(Geometry::new(3, 0, 512, 512, false).is_err());
        assert!(Geometry::new(3, 1, 513, 512, false).is_err());
        assert!(Geometry::new(3, 1, 256, 512, false).is_err());
        assert!(Geometry::new(3, 1, 512, 100, false).is_err());
        assert_eq!(
            Geometry::new(3, 1, 512, 512, true).unwrap().record_len(),
            520
        );
    }

    #[test]
    fn tags_bind_position() {
        let t = tag(1, 2, 0, b"abc");
        assert_ne!(t, tag(1, 3, 0, b"abc"));
        assert_ne!(t, tag(1, 2, 1, b"abc"));
        assert_ne!(t, tag(9, 2, 0, b"abc"));
        assert_ne!(t, tag(1, 2, 0, b"abd"));
        assert_eq!(&t[4..], &2u32.to_le_bytes());
    }
}
