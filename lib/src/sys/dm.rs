//! Device-mapper control ioctls: `struct dm_ioctl`, `struct dm_target_spec` and the
//! `_IOWR(0xFD, nr, struct dm_ioctl)` request codes of `<linux/dm-ioctl.h>`.
//!
//! Every command is `ioctl(control_fd, CMD, buf)` where `buf` starts with a `dm_ioctl`
//! header (312 bytes, 8-aligned) whose `data_size` covers the whole buffer, followed by a
//! command-specific payload at `data_start`. [`DmBuf`] owns such a buffer as `u64` words so
//! the header is always aligned, and is the only way to view its bytes as a header: the
//! safe API in `crate::dm` packs and parses payloads through byte slices. Layout and
//! numbers: `specs/snapshots.md` §3.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct dm_ioctl` from `<linux/dm-ioctl.h>` (312 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DmIoctl {
    pub version: [u32; 3],
    pub data_size: u32,
    pub data_start: u32,
    pub target_count: u32,
    pub open_count: i32,
    pub flags: u32,
    pub event_nr: u32,
    pub padding: u32,
    pub dev: u64,
    pub name: [u8; 128],
    pub uuid: [u8; 129],
    pub data: [u8; 7],
}

/// `struct dm_target_spec` (40 bytes), followed in the buffer by a NUL-terminated string.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DmTargetSpec {
    pub sector_start: u64,
    pub length: u64,
    pub status: i32,
    pub next: u32,
    pub target_type: [u8; 16],
}

/// Size of the header; payloads start here.
pub const HEADER_SIZE: usize = std::mem::size_of::<DmIoctl>();
/// Size of one target spec record before its parameter string.
pub const SPEC_SIZE: usize = std::mem::size_of::<DmTargetSpec>();

/// The command numbers (`nr` of `_IOWR(0xFD, nr, struct dm_ioctl)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cmd {
    Version = 0,
    ListDevices = 2,
    DevCreate = 3,
    DevRemove = 4,
    DevSuspend = 6,
    DevStatus = 7,
    DevWait = 8,
    TableLoad = 9,
    TableClear = 10,
    TableDeps = 11,
    TableStatus = 12,
    ListVersions = 13,
}

/// `DM_*_FLAG` values (`<linux/dm-ioctl.h>`).
pub mod flag {
    pub const READONLY: u32 = 1 << 0;
    pub const SUSPEND: u32 = 1 << 1;
    pub const PERSISTENT_DEV: u32 = 1 << 3;
    pub const STATUS_TABLE: u32 = 1 << 4;
    pub const ACTIVE_PRESENT: u32 = 1 << 5;
    pub const INACTIVE_PRESENT: u32 = 1 << 6;
    pub const BUFFER_FULL: u32 = 1 << 8;
    pub const SKIP_BDGET: u32 = 1 << 9;
    pub const SKIP_LOCKFS: u32 = 1 << 10;
    pub const NOFLUSH: u32 = 1 << 11;
    pub const QUERY_INACTIVE_TABLE: u32 = 1 << 12;
    pub const UEVENT_GENERATED: u32 = 1 << 13;
    pub const UUID: u32 = 1 << 14;
}

const DM_IOCTL: u8 = 0xfd;

nix::ioctl_readwrite!(dm_version, DM_IOCTL, 0, DmIoctl);
nix::ioctl_readwrite!(dm_list_devices, DM_IOCTL, 2, DmIoctl);
nix::ioctl_readwrite!(dm_dev_create, DM_IOCTL, 3, DmIoctl);
nix::ioctl_readwrite!(dm_dev_remove, DM_IOCTL, 4, DmIoctl);
nix::ioctl_readwrite!(dm_dev_suspend, DM_IOCTL, 6, DmIoctl);
nix::ioctl_readwrite!(dm_dev_status, DM_IOCTL, 7, DmIoctl);
nix::ioctl_readwrite!(dm_dev_wait, DM_IOCTL, 8, DmIoctl);
nix::ioctl_readwrite!(dm_table_load, DM_IOCTL, 9, DmIoctl);
nix::ioctl_readwrite!(dm_table_clear, DM_IOCTL, 10, DmIoctl);
nix::ioctl_readwrite!(dm_table_deps, DM_IOCTL, 11, DmIoctl);
nix::ioctl_readwrite!(dm_table_status, DM_IOCTL, 12, DmIoctl);
nix::ioctl_readwrite!(dm_list_versions, DM_IOCTL, 13, DmIoctl);

/// The request code of `cmd`, as the kernel header computes it.
pub const fn request_code(cmd: Cmd) -> u32 {
    nix::request_code_readwrite!(DM_IOCTL, cmd as u8, HEADER_SIZE) as u32
}

/// An 8-aligned dm ioctl buffer: header plus `payload` bytes of room.
pub struct DmBuf {
    words: Vec<u64>,
}

impl DmBuf {
    /// A zeroed buffer of at least `len` bytes (rounded up to 8, never below the header),
    /// with `data_size = len` and `data_start = HEADER_SIZE`.
    pub fn new(len: usize) -> DmBuf {
        let len = len.max(HEADER_SIZE).div_ceil(8) * 8;
        let mut b = DmBuf {
            words: vec![0u64; len / 8],
        };
        let h = b.header_mut();
        h.data_size = len as u32;
        h.data_start = HEADER_SIZE as u32;
        b
    }

    /// Whole buffer length in bytes.
    pub fn len(&self) -> usize {
        self.words.len() * 8
    }

    /// Never true: a buffer always holds at least the header.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn header(&self) -> &DmIoctl {
        // SAFETY: `words` is 8-aligned and at least HEADER_SIZE bytes long (`new`), and
        // DmIoctl is plain old data for which every bit pattern is valid.
        unsafe { &*(self.words.as_ptr() as *const DmIoctl) }
    }

    pub fn header_mut(&mut self) -> &mut DmIoctl {
        // SAFETY: as in `header`; the &mut borrow of self makes the view unique.
        unsafe { &mut *(self.words.as_mut_ptr() as *mut DmIoctl) }
    }

    /// All bytes of the buffer (header included).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: a u64 slice reinterpreted as the same number of bytes; u8 has no
        // alignment or validity requirements.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len()) }
    }

    /// All bytes of the buffer, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `bytes`; the &mut borrow makes the view unique.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, len) }
    }
}

/// Issue `cmd` on the control fd with `buf`. The kernel reads `data_size` bytes from the
/// buffer and writes its reply (header and payload) back into it.
pub fn dm_ioctl(ctl: BorrowedFd<'_>, cmd: Cmd, buf: &mut DmBuf) -> nix::Result<()> {
    debug_assert!(buf.header().data_size as usize <= buf.len());
    let fd = ctl.as_raw_fd();
    let p = buf.words.as_mut_ptr() as *mut DmIoctl;
    // SAFETY: `p` points to an 8-aligned, writable buffer of `data_size` bytes starting with
    // a dm_ioctl header; the kernel never reads or writes past `data_size` (dm-ioctl.c
    // copy_params/copy_to_user), and `buf` outlives the call.
    let r = unsafe {
        match cmd {
            Cmd::Version => dm_version(fd, p),
            Cmd::ListDevices => dm_list_devices(fd, p),
            Cmd::DevCreate => dm_dev_create(fd, p),
            Cmd::DevRemove => dm_dev_remove(fd, p),
            Cmd::DevSuspend => dm_dev_suspend(fd, p),
            Cmd::DevStatus => dm_dev_status(fd, p),
            Cmd::DevWait => dm_dev_wait(fd, p),
            Cmd::TableLoad => dm_table_load(fd, p),
            Cmd::TableClear => dm_table_clear(fd, p),
            Cmd::TableDeps => dm_table_deps(fd, p),
            Cmd::TableStatus => dm_table_status(fd, p),
            Cmd::ListVersions => dm_list_versions(fd, p),
        }
    };
    r.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn struct_layout_matches_the_kernel_header() {
        assert_eq!(HEADER_SIZE, 312);
        assert_eq!(std::mem::align_of::<DmIoctl>(), 8);
        assert_eq!(offset_of!(DmIoctl, data_size), 12);
        assert_eq!(offset_of!(DmIoctl, data_start), 16);
        assert_eq!(offset_of!(DmIoctl, target_count), 20);
        assert_eq!(offset_of!(DmIoctl, open_count), 24);
        assert_eq!(offset_of!(DmIoctl, flags), 28);
        assert_eq!(offset_of!(DmIoctl, event_nr), 32);
        assert_eq!(offset_of!(DmIoctl, dev), 40);
        assert_eq!(offset_of!(DmIoctl, name), 48);
        assert_eq!(offset_of!(DmIoctl, uuid), 176);
        assert_eq!(offset_of!(DmIoctl, data), 305);
        assert_eq!(SPEC_SIZE, 40);
        assert_eq!(offset_of!(DmTargetSpec, status), 16);
        assert_eq!(offset_of!(DmTargetSpec, next), 20);
        assert_eq!(offset_of!(DmTargetSpec, target_type), 24);
    }

    #[test]
    fn request_codes_match_the_kernel_header() {
        // _IOWR(0xFD, nr, struct dm_ioctl) = 0xC138FD00 + nr (specs/snapshots.md §3).
        assert_eq!(request_code(Cmd::Version), 0xC138_FD00);
        assert_eq!(request_code(Cmd::ListDevices), 0xC138_FD02);
        assert_eq!(request_code(Cmd::DevCreate), 0xC138_FD03);
        assert_eq!(request_code(Cmd::DevRemove), 0xC138_FD04);
        assert_eq!(request_code(Cmd::DevSuspend), 0xC138_FD06);
        assert_eq!(request_code(Cmd::DevStatus), 0xC138_FD07);
        assert_eq!(request_code(Cmd::DevWait), 0xC138_FD08);
        assert_eq!(request_code(Cmd::TableLoad), 0xC138_FD09);
        assert_eq!(request_code(Cmd::TableClear), 0xC138_FD0A);
        assert_eq!(request_code(Cmd::TableDeps), 0xC138_FD0B);
        assert_eq!(request_code(Cmd::TableStatus), 0xC138_FD0C);
        assert_eq!(request_code(Cmd::ListVersions), 0xC138_FD0D);
    }

    #[test]
    fn buffer_is_aligned_and_sized() {
        let b = DmBuf::new(1000);
        assert_eq!(b.len(), 1000);
        assert_eq!(b.header().data_size, 1000);
        assert_eq!(b.header().data_start, 312);
        let b = DmBuf::new(3);
        assert_eq!(b.len(), 312);
        assert_eq!(b.bytes().as_ptr() as usize % 8, 0);
    }

    #[test]
    fn a_non_dm_fd_is_refused() {
        let f = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let mut b = DmBuf::new(HEADER_SIZE);
        b.header_mut().version = [4, 0, 0];
        assert!(dm_ioctl(f.as_fd(), Cmd::Version, &mut b).is_err());
    }
}
