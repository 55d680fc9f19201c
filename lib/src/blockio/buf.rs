//! A page-aligned buffer from an anonymous memory map.
//!
//! O_DIRECT needs buffers aligned to the device's logical block size; a page (4096) is
//! enough for every device. An anonymous map gives that alignment without `unsafe`
//! allocation code, and is zero-filled.

use std::io;

use memmap2::MmapMut;

pub struct AlignedBuf {
    map: MmapMut,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed, page-aligned buffer of `len` bytes (`len` > 0).
    pub fn new(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "record size 0"));
        }
        Ok(AlignedBuf {
            map: MmapMut::map_anon(len)?,
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.map[..self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}
