//! Device-mapper through its control node `/dev/mapper/control`, without libdevmapper:
//! version check, create / load / suspend / resume / status / remove / list, and the
//! `snapshot` target's status line.
//!
//! Invariants: every request carries version `{4, MIN_MINOR, 0}` (the kernel refuses a
//! minor above its own); target specs are packed with `next` a multiple of 8 (Linux 6.5+
//! rejects anything else); replies flagged BUFFER_FULL are retried with a buffer twice as
//! large, from 16 KiB as libdm does; `event_nr` is 0 (no udev cookie), so `/dev/mapper/NAME`
//! nodes are created by [`ensure_node`]. Tables are loaded into the inactive slot and take
//! effect on resume. Spec: `specs/snapshots.md` §3 and §4.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::sys::dm::{dm_ioctl, flag, Cmd, DmBuf, DmTargetSpec, HEADER_SIZE, SPEC_SIZE};

/// The control node.
pub const CONTROL: &str = "/dev/mapper/control";
/// The minor version we ask for: 4.0 has every command used here.
pub const MIN_MINOR: u32 = 0;
const START_BUF: usize = 16 * 1024;
const MAX_BUF: usize = 16 * 1024 * 1024;

/// A device-mapper failure, naming the command and device.
#[derive(Debug)]
pub enum DmError {
    /// `/dev/mapper/control` could not be opened (no device-mapper in this kernel, not root).
    Open(std::io::Error),
    /// The kernel refused `cmd` on `name`.
    Ioctl {
        cmd: &'static str,
        name: String,
        errno: nix::errno::Errno,
    },
    /// A device name or uuid longer than the kernel's field (127/128 bytes) or with a NUL.
    BadName(String),
    /// A target parameter string containing a NUL, or a target type over 15 bytes.
    BadTarget(String),
    /// The kernel's reply does not parse (offset in the payload).
    BadReply { cmd: &'static str, offset: usize },
    /// Creating `/dev/mapper/NAME` failed.
    Node {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmError::Open(e) => write!(f, "cannot open {CONTROL}: {}", errno_desc(e)),
            DmError::Ioctl { cmd, name, errno } if name.is_empty() => {
                write!(f, "{cmd} failed: {}", errno.desc())
            }
            DmError::Ioctl { cmd, name, errno } => {
                write!(f, "{name}: {cmd} failed: {}", errno.desc())
            }
            DmError::BadName(n) => write!(f, "invalid device-mapper name {n:?}"),
            DmError::BadTarget(t) => write!(f, "invalid target {t:?}"),
            DmError::BadReply { cmd, offset } => write!(
                f,
                "{cmd}: malformed kernel reply at payload offset {offset}"
            ),
            DmError::Node { path, errno } => {
                write!(f, "{}: mknod failed: {}", path.display(), errno.desc())
            }
        }
    }
}

impl std::error::Error for DmError {}

fn errno_desc(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(c) => nix::errno::Errno::from_raw(c).desc().to_string(),
        None => e.to_string(),
    }
}

/// One line of a table: `start length type params` (sectors of 512 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub start: u64,
    pub length: u64,
    pub kind: String,
    pub params: String,
}

impl Target {
    pub fn new(start: u64, length: u64, kind: &str, params: impl Into<String>) -> Target {
        Target {
            start,
            length,
            kind: kind.to_string(),
            params: params.into(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.start, self.length, self.kind, self.params
        )
    }
}

/// What DM_DEV_STATUS (and most replies) say about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevInfo {
    pub name: String,
    pub uuid: String,
    pub major: u32,
    pub minor: u32,
    pub open_count: i32,
    pub event_nr: u32,
    pub target_count: u32,
    pub flags: u32,
}

impl DevInfo {
    pub fn suspended(&self) -> bool {
        self.flags & flag::SUSPEND != 0
    }
    pub fn active_table(&self) -> bool {
        self.flags & flag::ACTIVE_PRESENT != 0
    }
    pub fn inactive_table(&self) -> bool {
        self.flags & flag::INACTIVE_PRESENT != 0
    }
    /// `MAJ:MIN`, the way tables name devices.
    pub fn devno(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }
}

/// How to suspend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Suspend {
    /// Do not freeze the filesystem on the device (DM_SKIP_LOCKFS_FLAG): the caller froze it.
    pub skip_lockfs: bool,
    /// Do not flush queued I/O (DM_NOFLUSH_FLAG).
    pub noflush: bool,
}

/// An open control node.
pub struct Control {
    file: File,
}

fn put_str(dst: &mut [u8], s: &str) -> Result<(), DmError> {
    if s.len() >= dst.len() || s.as_bytes().contains(&0) {
        return Err(DmError::BadName(s.to_string()));
    }
    dst.fill(0);
    dst[..s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

fn get_str(src: &[u8]) -> String {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    String::from_utf8_lossy(&src[..end]).into_owned()
}

fn cmd_name(cmd: Cmd) -> &'static str {
    match cmd {
        Cmd::Version => "DM_VERSION",
        Cmd::ListDevices => "DM_LIST_DEVICES",
        Cmd::DevCreate => "DM_DEV_CREATE",
        Cmd::DevRemove => "DM_DEV_REMOVE",
        Cmd::DevSuspend => "DM_DEV_SUSPEND",
        Cmd::DevStatus => "DM_DEV_STATUS",
        Cmd::DevWait => "DM_DEV_WAIT",
        Cmd::TableLoad => "DM_TABLE_LOAD",
        Cmd::TableClear => "DM_TABLE_CLEAR",
        Cmd::TableDeps => "DM_TABLE_DEPS",
        Cmd::TableStatus => "DM_TABLE_STATUS",
        Cmd::ListVersions => "DM_LIST_VERSIONS",
    }
}

fn info_of(buf: &DmBuf) -> DevInfo {
    let h = buf.header();
    DevInfo {
        name: get_str(&h.name),
        uuid: get_str(&h.uuid),
        major: libc::major(h.dev as libc::dev_t),
        minor: libc::minor(h.dev as libc::dev_t),
        open_count: h.open_count,
        event_nr: h.event_nr,
        target_count: h.target_count,
        flags: h.flags,
    }
}

/// Pack `targets` as the DM_TABLE_LOAD payload: each a 40-byte spec then its NUL-terminated
/// parameters, `next` rounded up to 8.
pub fn pack_table(targets: &[Target]) -> Result<Vec<u8>, DmError> {
    let mut out = Vec::new();
    for t in targets {
        if t.kind.is_empty()
            || t.kind.len() > 15
            || t.kind.contains('\0')
            || t.params.contains('\0')
        {
            return Err(DmError::BadTarget(t.to_string()));
        }
        let rec = (SPEC_SIZE + t.params.len() + 1).div_ceil(8) * 8;
        let base = out.len();
        out.resize(base + rec, 0);
        let spec = DmTargetSpec {
            sector_start: t.start,
            length: t.length,
            status: 0,
            next: rec as u32,
            target_type: [0; 16],
        };
        out[base..base + 8].copy_from_slice(&spec.sector_start.to_ne_bytes());
        out[base + 8..base + 16].copy_from_slice(&spec.length.to_ne_bytes());
        out[base + 20..base + 24].copy_from_slice(&spec.next.to_ne_bytes());
        out[base + 24..base + 24 + t.kind.len()].copy_from_slice(t.kind.as_bytes());
        out[base + SPEC_SIZE..base + SPEC_SIZE + t.params.len()]
            .copy_from_slice(t.params.as_bytes());
    }
    Ok(out)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Parse a DM_TABLE_STATUS reply payload of `count` targets. On output `next` counts from
/// the start of the payload (the first spec), not from the current spec.
pub fn parse_targets(payload: &[u8], count: u32) -> Result<Vec<Target>, DmError> {
    // A field cut off by the end of the payload is reported at the end.
    let bad = |offset: usize| DmError::BadReply {
        cmd: "DM_TABLE_STATUS",
        offset: offset.min(payload.len()),
    };
    let mut out = Vec::new();
    let mut off = 0usize;
    for i in 0..count {
        let start = u64_at(payload, off).ok_or(bad(off))?;
        let length = u64_at(payload, off + 8).ok_or(bad(off + 8))?;
        let next = u32_at(payload, off + 20).ok_or(bad(off + 20))? as usize;
        let kind = get_str(payload.get(off + 24..off + 40).ok_or(bad(off + 24))?);
        let rest = payload.get(off + SPEC_SIZE..).ok_or(bad(off + SPEC_SIZE))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(bad(off + SPEC_SIZE))?;
        let params = String::from_utf8_lossy(&rest[..end]).into_owned();
        out.push(Target {
            start,
            length,
            kind,
            params,
        });
        if i + 1 < count {
            if next <= off || next >= payload.len() {
                return Err(bad(off + 20));
            }
            off = next;
        }
    }
    Ok(out)
}

/// Parse a DM_LIST_DEVICES payload: records `{dev u64, next u32, name}` where `next` is the
/// offset from this record to the next (0 = last). Returns (name, major, minor).
pub fn parse_name_list(payload: &[u8]) -> Result<Vec<(String, u32, u32)>, DmError> {
    let bad = |offset: usize| DmError::BadReply {
        cmd: "DM_LIST_DEVICES",
        offset: offset.min(payload.len()),
    };
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        let dev = u64_at(payload, off).ok_or(bad(off))?;
        if dev == 0 && off == 0 {
            // An empty list: the kernel leaves a zeroed record.
            return Ok(out);
        }
        let next = u32_at(payload, off + 8).ok_or(bad(off + 8))? as usize;
        let name = get_str(payload.get(off + 12..).ok_or(bad(off + 12))?);
        out.push((
            name,
            libc::major(dev as libc::dev_t),
            libc::minor(dev as libc::dev_t),
        ));
        if next == 0 {
            return Ok(out);
        }
        off += next;
    }
}

impl Control {
    /// Open `/dev/mapper/control` read-write (root only).
    pub fn open() -> Result<Control, DmError> {
        Control::open_path(Path::new(CONTROL))
    }

    pub fn open_path(path: &Path) -> Result<Control, DmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(DmError::Open)?;
        Ok(Control { file })
    }

    fn buf(name: &str, len: usize) -> Result<DmBuf, DmError> {
        let mut b = DmBuf::new(len);
        let h = b.header_mut();
        h.version = [4, MIN_MINOR, 0];
        put_str(&mut h.name, name)?;
        Ok(b)
    }

    fn call(&self, cmd: Cmd, name: &str, buf: &mut DmBuf) -> Result<(), DmError> {
        dm_ioctl(self.file.as_fd(), cmd, buf).map_err(|errno| DmError::Ioctl {
            cmd: cmd_name(cmd),
            name: name.to_string(),
            errno,
        })
    }

    /// Issue a command that returns a payload, growing the buffer on BUFFER_FULL.
    fn call_growing(&self, cmd: Cmd, name: &str, flags: u32) -> Result<DmBuf, DmError> {
        let mut len = START_BUF;
        loop {
            let mut b = Control::buf(name, len)?;
            b.header_mut().flags = flags;
            self.call(cmd, name, &mut b)?;
            if b.header().flags & flag::BUFFER_FULL == 0 || len >= MAX_BUF {
                return Ok(b);
            }
            len *= 2;
        }
    }

    fn payload(buf: &DmBuf, cmd: Cmd) -> Result<&[u8], DmError> {
        let h = buf.header();
        let (start, end) = (h.data_start as usize, h.data_size as usize);
        if start < HEADER_SIZE || end > buf.len() || start > end {
            return Err(DmError::BadReply {
                cmd: cmd_name(cmd),
                offset: 0,
            });
        }
        Ok(&buf.bytes()[start..end])
    }

    /// The kernel's device-mapper interface version, e.g. `[4, 47, 0]`.
    pub fn version(&self) -> Result<[u32; 3], DmError> {
        let mut b = Control::buf("", HEADER_SIZE)?;
        self.call(Cmd::Version, "", &mut b)?;
        Ok(b.header().version)
    }

    /// Create device `name` (with `uuid` when not empty) with no table yet.
    pub fn create(&self, name: &str, uuid: &str) -> Result<DevInfo, DmError> {
        let mut b = Control::buf(name, HEADER_SIZE)?;
        put_str(&mut b.header_mut().uuid, uuid)?;
        self.call(Cmd::DevCreate, name, &mut b)?;
        Ok(info_of(&b))
    }

    /// Load `targets` into the inactive table slot of `name` (read-only when `readonly`).
    pub fn load(&self, name: &str, targets: &[Target], readonly: bool) -> Result<DevInfo, DmError> {
        let payload = pack_table(targets)?;
        let mut b = Control::buf(name, HEADER_SIZE + payload.len())?;
        b.bytes_mut()[HEADER_SIZE..HEADER_SIZE + payload.len()].copy_from_slice(&payload);
        let h = b.header_mut();
        h.target_count = targets.len() as u32;
        h.data_size = (HEADER_SIZE + payload.len()) as u32;
        if readonly {
            h.flags |= flag::READONLY;
        }
        self.call(Cmd::TableLoad, name, &mut b)?;
        Ok(info_of(&b))
    }

    /// Drop the inactive table of `name`.
    pub fn clear(&self, name: &str) -> Result<DevInfo, DmError> {
        let mut b = Control::buf(name, HEADER_SIZE)?;
        self.call(Cmd::TableClear, name, &mut b)?;
        Ok(info_of(&b))
    }

    /// Suspend `name`: with lockfs (the default) this freezes the filesystem on it.
    pub fn suspend(&self, name: &str, how: Suspend) -> Result<DevInfo, DmError> {
        let mut b = Control::buf(name, HEADER_SIZE)?;
        let h = b.header_mut();
        h.flags = flag::SUSPEND;
        if how.skip_lockfs {
            h.flags |= flag::SKIP_LOCKFS;
        }
        if how.noflush {
            h.flags |= flag::NOFLUSH;
        }
        self.call(Cmd::DevSuspend, name, &mut b)?;
        Ok(info_of(&b))
    }

    /// Resume `name`, swapping in its inactive table if one is loaded.
    pub fn resume(&self, name: &str) -> Result<DevInfo, DmError> {
        let mut b = Control::buf(name, HEADER_SIZE)?;
        self.call(Cmd::DevSuspend, name, &mut b)?;
        Ok(info_of(&b))
    }

    /// Information on `name`; `None` when no such device (ENXIO).
    pub fn info(&self, name: &str) -> Result<Option<DevInfo>, DmError> {
        let mut b = Control::buf(name, HEADER_SIZE)?;
        match self.call(Cmd::DevStatus, name, &mut b) {
            Ok(()) => Ok(Some(info_of(&b))),
            Err(DmError::Ioctl {
                errno: nix::errno::Errno::ENXIO,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Per-target status lines of the active table of `name`.
    pub fn status(&self, name: &str) -> Result<(DevInfo, Vec<Target>), DmError> {
        self.targets(name, 0)
    }

    /// The active table of `name` as loaded.
    pub fn table(&self, name: &str) -> Result<(DevInfo, Vec<Target>), DmError> {
        self.targets(name, flag::STATUS_TABLE)
    }

    fn targets(&self, name: &str, flags: u32) -> Result<(DevInfo, Vec<Target>), DmError> {
        let b = self.call_growing(Cmd::TableStatus, name, flags)?;
        let info = info_of(&b);
        let t = parse_targets(Control::payload(&b, Cmd::TableStatus)?, info.target_count)?;
        Ok((info, t))
    }

    /// Wait until the event counter of `name` differs from `event_nr` (e.g. a snapshot
    /// became invalid). Blocks; interrupted by signals.
    pub fn wait_event(&self, name: &str, event_nr: u32) -> Result<DevInfo, DmError> {
        let mut b = Control::buf(name, START_BUF)?;
        b.header_mut().event_nr = event_nr;
        self.call(Cmd::DevWait, name, &mut b)?;
        Ok(info_of(&b))
    }

    /// Remove device `name`.
    pub fn remove(&self, name: &str) -> Result<(), DmError> {
        let mut b = Control::buf(name, HEADER_SIZE)?;
        self.call(Cmd::DevRemove, name, &mut b)
    }

    /// Every device: (name, major, minor).
    pub fn list(&self) -> Result<Vec<(String, u32, u32)>, DmError> {
        let b = self.call_growing(Cmd::ListDevices, "", 0)?;
        parse_name_list(Control::payload(&b, Cmd::ListDevices)?)
    }
}

/// Make `/dev/mapper/NAME` a block node for `info`'s device unless it already is one (no
/// udev here: see the module doc). Returns the path.
pub fn ensure_node(info: &DevInfo) -> Result<PathBuf, DmError> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = Path::new("/dev/mapper").join(&info.name);
    let want = libc::makedev(info.major, info.minor);
    if let Ok(m) = std::fs::metadata(&path) {
        if m.file_type().is_block_device() && m.rdev() == want {
            return Ok(path);
        }
        let _ = std::fs::remove_file(&path);
    }
    mknod(&path, SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), want).map_err(|errno| {
        DmError::Node {
            path: path.clone(),
            errno,
        }
    })?;
    Ok(path)
}

/// Remove `/dev/mapper/NAME` if present.
pub fn remove_node(name: &str) {
    let _ = std::fs::remove_file(Path::new("/dev/mapper").join(name));
}

/// The state of a `snapshot` target, from its status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// `<allocated>/<total> <metadata>` sectors (allocated and total include metadata).
    Active {
        allocated: u64,
        total: u64,
        metadata: u64,
    },
    /// The COW filled up from origin writes: the snapshot is lost.
    Invalid,
    /// A `PO` store filled from writes to the snapshot: still readable.
    Overflow,
    MergeFailed,
    Unknown,
}

/// A snapshot status line that does not parse; `offset` is the byte where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusParseError {
    pub text: String,
    pub offset: usize,
}

impl fmt::Display for StatusParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unparsable snapshot status {:?} at offset {}",
            self.text, self.offset
        )
    }
}

impl std::error::Error for StatusParseError {}

impl SnapshotStatus {
    /// Parse the status text of a `snapshot` target (kernel `snapshot_status()`).
    pub fn parse(text: &str) -> Result<SnapshotStatus, StatusParseError> {
        let t = text.trim();
        match t {
            "Invalid" => return Ok(SnapshotStatus::Invalid),
            "Overflow" => return Ok(SnapshotStatus::Overflow),
            "Merge failed" => return Ok(SnapshotStatus::MergeFailed),
            "Unknown" => return Ok(SnapshotStatus::Unknown),
            _ => {}
        }
        let lead = text.len() - text.trim_start().len();
        let err = |at: usize| StatusParseError {
            text: text.to_string(),
            offset: lead + at,
        };
        let slash = t.find('/').ok_or(err(0))?;
        let allocated: u64 = t[..slash].parse().map_err(|_| err(0))?;
        let rest = &t[slash + 1..];
        let sp = rest.find(' ').ok_or(err(slash + 1 + rest.len()))?;
        let total: u64 = rest[..sp].parse().map_err(|_| err(slash + 1))?;
        let meta_txt = rest[sp + 1..].trim_start();
        let meta_at = t.len() - meta_txt.len();
        let metadata: u64 = meta_txt.parse().map_err(|_| err(meta_at))?;
        if allocated > total || total == 0 {
            return Err(err(0));
        }
        Ok(SnapshotStatus::Active {
            allocated,
            total,
            metadata,
        })
    }

    /// Fill in percent (allocated / total, as LVM's `Snap%`), 100 for Invalid/Overflow.
    pub fn percent(&self) -> f64 {
        match *self {
            SnapshotStatus::Active {
                allocated, total, ..
            } => allocated as f64 * 100.0 / total as f64,
            SnapshotStatus::Invalid | SnapshotStatus::Overflow => 100.0,
            _ => 0.0,
        }
    }

    /// A short word: `active`, `invalid`, `overflow`, `merge-failed`, `unknown`.
    pub fn state(&self) -> &'static str {
        match self {
            SnapshotStatus::Active { .. } => "active",
            SnapshotStatus::Invalid => "invalid",
            SnapshotStatus::Overflow => "overflow",
            SnapshotStatus::MergeFailed => "merge-failed",
            SnapshotStatus::Unknown => "unknown",
        }
    }
}

/// The table of a `snapshot-origin` over `origin` (`MAJ:MIN`) of `sectors`.
pub fn origin_table(sectors: u64, origin: &str) -> Vec<Target> {
    vec![Target::new(0, sectors, "snapshot-origin", origin)]
}

/// The table of a persistent `snapshot` of `origin` with exceptions on `cow`, chunks of
/// `chunk_sectors` (LVM uses 8 = 4 KiB).
pub fn snapshot_table(sectors: u64, origin: &str, cow: &str, chunk_sectors: u32) -> Vec<Target> {
    vec![Target::new(
        0,
        sectors,
        "snapshot",
        format!("{origin} {cow} P {chunk_sectors}"),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pack_with_8_aligned_next() {
        let t = vec![
            Target::new(0, 1048576, "snapshot", "253:1 253:2 P 8"),
            Target::new(1048576, 8, "linear", "254:0 2048"),
        ];
        let p = pack_table(&t).unwrap();
        // 40 + 15 + NUL = 56 -> 56; 40 + 10 + NUL = 51 -> 56.
        assert_eq!(p.len(), 56 + 56);
        assert_eq!(u32_at(&p, 20), Some(56));
        assert_eq!(u32_at(&p, 56 + 20), Some(56));
        assert_eq!(u64_at(&p, 8), Some(1048576));
        assert_eq!(&p[24..32], b"snapshot");
        assert_eq!(&p[40..56], b"253:1 253:2 P 8\0");
        assert_eq!(u64_at(&p, 56), Some(1048576));
        let p = pack_table(&[Target::new(0, 8, "zero", "0123456789abcdef")]).unwrap();
        assert_eq!(p.len(), 64, "40 + 16 + NUL rounds up to 64");
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(matches!(
            pack_table(&[Target::new(0, 1, "a-very-long-target-type", "")]),
            Err(DmError::BadTarget(_))
        ));
        assert!(matches!(
            pack_table(&[Target::new(0, 1, "linear", "a\0b")]),
            Err(DmError::BadTarget(_))
        ));
        assert!(matches!(
            pack_table(&[Target::new(0, 1, "", "")]),
            Err(DmError::BadTarget(_))
        ));
    }

    /// A status reply as the kernel lays it out: `next` counted from the first spec.
    fn status_reply(lines: &[(u64, u64, &str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (start, len, kind, params) in lines {
            let base = out.len();
            let rec = (SPEC_SIZE + params.len() + 1).div_ceil(8) * 8;
            out.resize(base + rec, 0);
            out[base..base + 8].copy_from_slice(&start.to_ne_bytes());
            out[base + 8..base + 16].copy_from_slice(&len.to_ne_bytes());
            out[base + 20..base + 24].copy_from_slice(&((base + rec) as u32).to_ne_bytes());
            out[base + 24..base + 24 + kind.len()].copy_from_slice(kind.as_bytes());
            out[base + 40..base + 40 + params.len()].copy_from_slice(params.as_bytes());
        }
        out
    }

    #[test]
    fn status_replies_parse() {
        let p = status_reply(&[
            (0, 1048576, "snapshot", "24/131072 16"),
            (1048576, 8, "linear", ""),
        ]);
        let t = parse_targets(&p, 2).unwrap();
        assert_eq!(t[0], Target::new(0, 1048576, "snapshot", "24/131072 16"));
        assert_eq!(t[1], Target::new(1048576, 8, "linear", ""));
        assert!(matches!(
            parse_targets(&p[..50], 2),
            Err(DmError::BadReply { .. })
        ));
        assert!(matches!(
            parse_targets(&[], 1),
            Err(DmError::BadReply { offset: 0, .. })
        ));
    }

    #[test]
    fn name_lists_parse() {
        let mut p = vec![0u8; 48];
        p[0..8].copy_from_slice(&libc::makedev(253, 1).to_ne_bytes());
        p[8..12].copy_from_slice(&24u32.to_ne_bytes());
        p[12..17].copy_from_slice(b"vg-a\0");
        p[24..32].copy_from_slice(&libc::makedev(253, 2).to_ne_bytes());
        p[36..41].copy_from_slice(b"vg-b\0");
        assert_eq!(
            parse_name_list(&p).unwrap(),
            vec![("vg-a".into(), 253, 1), ("vg-b".into(), 253, 2)]
        );
        assert_eq!(parse_name_list(&[0u8; 16]).unwrap(), vec![]);
        assert!(parse_name_list(&p[..30]).is_err());
    }

    #[test]
    fn snapshot_status_parses() {
        // Measured lines (specs/snapshots.md §4).
        assert_eq!(
            SnapshotStatus::parse("16/262144 16"),
            Ok(SnapshotStatus::Active {
                allocated: 16,
                total: 262144,
                metadata: 16
            })
        );
        let s = SnapshotStatus::parse("57664/65536 16").unwrap();
        assert!((s.percent() - 87.988).abs() < 0.01);
        assert_eq!(SnapshotStatus::parse("0/262144 0").unwrap().percent(), 0.0);
        assert_eq!(
            SnapshotStatus::parse("Invalid"),
            Ok(SnapshotStatus::Invalid)
        );
        assert_eq!(
            SnapshotStatus::parse("Overflow"),
            Ok(SnapshotStatus::Overflow)
        );
        assert_eq!(
            SnapshotStatus::parse("Merge failed"),
            Ok(SnapshotStatus::MergeFailed)
        );
        assert_eq!(SnapshotStatus::Invalid.state(), "invalid");
    }

    #[test]
    fn bad_snapshot_status_names_the_offset() {
        assert_eq!(SnapshotStatus::parse("").unwrap_err().offset, 0);
        assert_eq!(SnapshotStatus::parse("12/x 3").unwrap_err().offset, 3);
        assert_eq!(SnapshotStatus::parse("12/40 z").unwrap_err().offset, 6);
        assert_eq!(SnapshotStatus::parse("12/40").unwrap_err().offset, 5);
        assert!(SnapshotStatus::parse("50/40 1").is_err());
        assert!(SnapshotStatus::parse("0/0 0").is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert!(matches!(
            Control::buf(&"x".repeat(128), HEADER_SIZE),
            Err(DmError::BadName(_))
        ));
        assert!(Control::buf(&"x".repeat(127), HEADER_SIZE).is_ok());
    }

    #[test]
    fn no_device_mapper_is_a_clear_error() {
        let e = Control::open_path(Path::new("/nonexistent/control"))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "cannot open /dev/mapper/control: No such file or directory"
        );
    }
}
