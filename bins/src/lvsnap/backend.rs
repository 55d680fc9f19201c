//! The four snapshot backends and how lvsnap picks one from what ORIGIN is.
//!
//! * `btrfs`: ORIGIN is a btrfs subvolume; a read-only snapshot (SNAP_CREATE_V2) named
//!   NAME in the destination directory (default: ORIGIN's parent).
//! * `reflink`: ORIGIN is a directory on XFS (reflink=1) or btrfs; a FICLONE copy of the
//!   tree at DEST/NAME. Atomic per file only: use `--hold` for consistency.
//! * `lvm`: ORIGIN is an LVM logical volume; LVM's own `lvcreate -s` / `lvremove` /
//!   `lvextend` so LVM's metadata stays the truth (LVM suspends with lockfs = freezes).
//! * `dm`: ORIGIN is a device-mapper device that is not an LV; raw dm snapshot through our
//!   ioctls with a COW device the user names (see `dmsnap.rs`).
//!
//! Spec: `specs/snapshots.md` §4–§7; the refusals come from its measured traps.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lvm,
    Dm,
    Btrfs,
    Reflink,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lvm => "lvm",
            Kind::Dm => "dm",
            Kind::Btrfs => "btrfs",
            Kind::Reflink => "reflink",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "lvm" => Some(Kind::Lvm),
            "dm" => Some(Kind::Dm),
            "btrfs" => Some(Kind::Btrfs),
            "reflink" => Some(Kind::Reflink),
            _ => None,
        }
    }
    /// Block-device backends (sizes, COW, watch).
    pub fn is_block(self) -> bool {
        matches!(self, Kind::Lvm | Kind::Dm)
    }
}

/// `MAJ:MIN` of a block device path.
pub fn block_devno(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    if !m.file_type().is_block_device() {
        return None;
    }
    Some((libc::major(m.rdev()), libc::minor(m.rdev())))
}

/// The dm name and uuid of a block device, if it is a device-mapper device.
pub fn dm_name_uuid(path: &Path) -> Option<(String, String)> {
    let (ma, mi) = block_devno(path)?;
    let base = PathBuf::from(format!("/sys/dev/block/{ma}:{mi}/dm"));
    let name = std::fs::read_to_string(base.join("name"))
        .ok()?
        .trim()
        .to_string();
    let uuid = std::fs::read_to_string(base.join("uuid"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Some((name, uuid))
}

/// Pick the backend for ORIGIN (`--backend auto`).
pub fn detect(origin: &Path) -> Result<Kind, Failure> {
    let o = origin.display();
    let m = std::fs::metadata(origin).map_err(|e| Failure::io(o.to_string(), &e))?;
    if m.file_type().is_block_device() {
        return match dm_name_uuid(origin) {
            Some((_, uuid)) if uuid.starts_with("LVM-") => Ok(Kind::Lvm),
            Some(_) => Ok(Kind::Dm),
            None => Err(Failure::failed(format!(
                "{o}: not a device-mapper or LVM device: a block device can only be snapshotted when its filesystem is mounted through device-mapper"
            ))),
        };
    }
    if m.is_dir() {
        return match lampvault::btrfs::is_subvolume(origin) {
            Ok(true) => Ok(Kind::Btrfs),
            Ok(false) => Ok(Kind::Reflink),
            Err(e) => Err(Failure::failed(e.to_string())),
        };
    }
    Err(Failure::failed(format!(
        "{o}: not a block device, btrfs subvolume or directory"
    )))
}

/// Run an external tool (LVM), returning stdout; failure = its last stderr line.
pub fn run_tool(prog: &str, args: &[&str]) -> Result<String, Failure> {
    let out = Command::new(prog)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .map_err(|e| Failure::io(prog, &e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("failed")
            .to_string();
        return Err(Failure::failed(format!("{prog}: {last}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `(vg, lv)` of an LVM logical volume device.
pub fn lvm_names(dev: &Path) -> Result<(String, String), Failure> {
    let out = run_tool(
        "lvs",
        &[
            "--noheadings",
            "-o",
            "vg_name,lv_name",
            &dev.to_string_lossy(),
        ],
    )?;
    let mut w = out.split_whitespace();
    match (w.next(), w.next()) {
        (Some(vg), Some(lv)) => Ok((vg.to_string(), lv.to_string())),
        _ => Err(Failure::failed(format!(
            "{}: not an LVM logical volume",
            dev.display()
        ))),
    }
}

/// What `status` reports.
pub struct Status {
    pub state: String,
    pub percent: Option<f64>,
    pub size: Option<u64>,
}

/// LVM snapshot status from `lvs`: attr char 5 `I` = invalid (COW overflowed).
pub fn lvm_status(vg_lv: &str) -> Result<Status, Failure> {
    let out = run_tool(
        "lvs",
        &[
            "--noheadings",
            "--nosuffix",
            "--units",
            "b",
            "-o",
            "lv_attr,snap_percent,lv_size",
            "--separator",
            ",",
            vg_lv,
        ],
    )?;
    let f: Vec<&str> = out.trim().split(',').map(str::trim).collect();
    let attr = f.first().copied().unwrap_or("");
    let state = match attr.chars().nth(4) {
        Some('I') => "invalid",
        Some('a') => "active",
        Some('-') => "inactive",
        _ => "unknown",
    };
    let percent = f.get(1).and_then(|s| s.parse::<f64>().ok());
    let size = f
        .get(2)
        .and_then(|s| s.parse::<f64>().ok())
        .map(|v| v as u64);
    let percent = if state == "invalid" {
        Some(100.0)
    } else {
        percent
    };
    Ok(Status {
        state: state.into(),
        percent,
        size,
    })
}

/// A snapshot size: bytes, or percent of the origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Bytes(u64),
    Percent(u32),
}

pub fn parse_size(s: &str) -> Result<Size, String> {
    if let Some(p) = s.strip_suffix('%') {
        let n: u32 = p
            .parse()
            .map_err(|_| format!("invalid size '{s}': expected e.g. 50M or 15%"))?;
        if n == 0 || n > 100 {
            return Err(format!("invalid size '{s}': percent must be 1-100"));
        }
        return Ok(Size::Percent(n));
    }
    let n = crate::common::parse_size(s)?;
    if n < 1 << 20 {
        return Err(format!("invalid size '{s}': too small (at least 1M)"));
    }
    Ok(Size::Bytes(n))
}

/// Percent argument `70%` (or `70`), 1..=100 (extend-by may exceed 100 up to 1000).
pub fn parse_percent(s: &str, max: u32) -> Result<u32, String> {
    let n: u32 = s
        .strip_suffix('%')
        .unwrap_or(s)
        .parse()
        .map_err(|_| format!("invalid percent '{s}'"))?;
    if n == 0 || n > max {
        return Err(format!("invalid percent '{s}': must be 1-{max}"));
    }
    Ok(n)
}
