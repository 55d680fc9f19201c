//! Backend operations lvsnap performs on one snapshot: make, remove, status, mount,
//! unmount. Each `make_*` leaves nothing behind when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::backend::{self, Kind, Size, Status};
use super::state::Record;
use crate::common::Failure;

/// Where a path-based snapshot goes: DEST/NAME (DEST defaults to ORIGIN's parent).
pub fn path_target(origin: &Path, dest: Option<&Path>, name: &str) -> Result<PathBuf, Failure> {
    let dir = match dest {
        Some(d) => d.to_path_buf(),
        None => {
            let abs =
                std::fs::canonicalize(origin).map_err(|e| Failure::io(origin.display(), &e))?;
            abs.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"))
        }
    };
    let p = dir.join(name);
    if std::fs::symlink_metadata(&p).is_ok() {
        return Err(Failure::failed(format!("{}: already exists", p.display())));
    }
    Ok(p)
}

/// Take the snapshot. Returns (snapshot location, extra).
pub fn make(
    kind: Kind,
    origin: &Path,
    rec: &Record,
    size: Option<Size>,
    frozen: bool,
    lvm: Option<&(String, String)>,
) -> Result<(Option<String>, Option<Duration>), Failure> {
    match kind {
        Kind::Btrfs => {
            lampvault::btrfs::snapshot(origin, Path::new(&rec.snapshot), true)
                .map_err(|e| Failure::failed(e.to_string()))?;
            Ok((None, None))
        }
        Kind::Reflink => {
            let dest = Path::new(&rec.snapshot);
            match lampvault::reflink::copy_tree(origin, dest) {
                Ok(_) => Ok((None, None)),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(dest);
                    Err(Failure::failed(e.to_string()))
                }
            }
        }
        Kind::Lvm => {
            let (args, vg_lv) = lvcreate_args(origin, rec, size, lvm)?;
            // LVM suspends the origin with lockfs inside lvcreate: that is the freeze, and
            // lvcreate's duration is an upper bound of it.
            let t0 = Instant::now();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            backend::run_tool("lvcreate", &args)?;
            Ok((Some(vg_lv), Some(t0.elapsed())))
        }
        Kind::Dm => super::dmsnap::make_with(origin, rec, frozen).map(|(e, d)| (e, Some(d))),
    }
}

/// `lvcreate` arguments for an lvm snapshot of `origin`, and the `VG/NAME` it makes.
pub fn lvcreate_args(
    origin: &Path,
    rec: &Record,
    size: Option<Size>,
    lvm: Option<&(String, String)>,
) -> Result<(Vec<String>, String), Failure> {
    // Resolved by the caller before the lock is taken: `lvs` costs as much as a good part
    // of lvcreate itself.
    let (vg, lv) = match lvm {
        Some((vg, lv)) => (vg.clone(), lv.clone()),
        None => backend::lvm_names(origin)?,
    };
    let size_arg = match size {
        Some(Size::Bytes(b)) => vec!["-L".to_string(), format!("{b}b")],
        Some(Size::Percent(p)) => vec!["-l".to_string(), format!("{p}%ORIGIN")],
        None => {
            return Err(Failure::usage(
                "lvm: --size is required (e.g. --size 50M or --size 15%)",
            ))
        }
    };
    // `--monitor n`: registering with dmeventd is slow and would happen inside the lock
    // window; `after_release` registers the snapshot afterwards.
    let mut args: Vec<String> = ["-q", "-y", "--monitor", "n", "-s", "-n", &rec.name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(size_arg);
    args.push(format!("{vg}/{lv}"));
    Ok((args, format!("{vg}/{}", rec.name)))
}

/// Remove the snapshot (tolerates one that is already gone).
pub fn remove(rec: &Record) -> Result<(), Failure> {
    let kind = Kind::parse(&rec.backend).ok_or_else(|| {
        Failure::failed(format!("{}: unknown backend '{}'", rec.name, rec.backend))
    })?;
    let p = Path::new(&rec.snapshot);
    match kind {
        Kind::Btrfs => {
            if std::fs::symlink_metadata(p).is_err() {
                return Ok(());
            }
            if !lampvault::btrfs::is_subvolume(p).unwrap_or(false) {
                return Err(Failure::failed(format!(
                    "{}: not a btrfs subvolume; not removing it",
                    p.display()
                )));
            }
            lampvault::btrfs::delete(p).map_err(|e| Failure::failed(e.to_string()))
        }
        Kind::Reflink => match std::fs::remove_dir_all(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Failure::io(p.display(), &e)),
            _ => Ok(()),
        },
        Kind::Lvm => {
            let Some(vg_lv) = rec.extra.as_deref() else {
                return Ok(());
            };
            if backend::run_tool("lvs", &["--noheadings", "-o", "lv_name", vg_lv]).is_err() {
                return Ok(());
            }
            backend::run_tool("lvremove", &["-q", "-f", vg_lv]).map(drop)
        }
        Kind::Dm => super::dmsnap::remove(rec),
    }
}

pub fn status(rec: &Record) -> Result<Status, Failure> {
    let kind = Kind::parse(&rec.backend).ok_or_else(|| {
        Failure::failed(format!("{}: unknown backend '{}'", rec.name, rec.backend))
    })?;
    if rec.state != "ready" {
        let state = if rec.owner_alive() {
            "creating"
        } else {
            "incomplete"
        };
        return Ok(Status {
            state: state.into(),
            percent: None,
            size: None,
        });
    }
    match kind {
        Kind::Btrfs | Kind::Reflink => {
            let present = std::fs::symlink_metadata(&rec.snapshot).is_ok();
            Ok(Status {
                state: if present { "active" } else { "missing" }.into(),
                percent: None,
                size: None,
            })
        }
        Kind::Lvm => backend::lvm_status(rec.extra.as_deref().unwrap_or("")),
        Kind::Dm => super::dmsnap::status(rec),
    }
}

/// True when `dir` is a mount point in this namespace.
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(dir) else {
        return false;
    };
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon
        .to_string_lossy()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    mi.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Mount the snapshot read-only at `dir`: a read-only bind mount for path backends, the
/// block device (`nouuid` for XFS, whose snapshot carries the origin's UUID) otherwise.
pub fn mount(rec: &Record, dir: &Path) -> Result<(), Failure> {
    use nix::mount::{mount, MsFlags};
    let kind = Kind::parse(&rec.backend).unwrap_or(Kind::Reflink);
    if !dir.is_dir() {
        return Err(Failure::failed(format!(
            "{}: mount point is not a directory",
            dir.display()
        )));
    }
    if kind.is_block() {
        let xfs = Command::new("blkid")
            .args(["-o", "value", "-s", "TYPE", &rec.snapshot])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "xfs")
            .unwrap_or(false);
        let opts = if xfs { "ro,nouuid" } else { "ro" };
        let out = Command::new("mount")
            .args(["-o", opts, &rec.snapshot])
            .arg(dir)
            .output()
            .map_err(|e| Failure::io("mount", &e))?;
        if !out.status.success() {
            let e = String::from_utf8_lossy(&out.stderr);
            return Err(Failure::failed(format!(
                "{}: mount failed: {}",
                dir.display(),
                e.trim()
            )));
        }
        return Ok(());
    }
    let src = Path::new(&rec.snapshot);
    let ctx = |e: nix::errno::Errno| {
        Failure::failed(format!("{}: mount failed: {}", dir.display(), e.desc()))
    };
    mount(Some(src), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(ctx)?;
    if let Err(e) = mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    ) {
        let _ = nix::mount::umount(dir);
        return Err(ctx(e));
    }
    Ok(())
}

pub fn umount(dir: &Path) -> Result<(), Failure> {
    nix::mount::umount(dir)
        .map_err(|e| Failure::failed(format!("{}: umount failed: {}", dir.display(), e.desc())))
}

/// Work that can wait until writers run again: for lvm, register the new snapshot with
/// dmeventd (LVM's own autoextend, when lvm.conf enables it). Failures only warn.
pub fn after_release(kind: Kind, rec: &Record) {
    if kind == Kind::Lvm {
        if let Some(vg_lv) = rec.extra.as_deref() {
            if let Err(f) = backend::run_tool("lvchange", &["-q", "--monitor", "y", vg_lv]) {
                eprintln!(
                    "lvsnap: {}: warning: dmeventd monitoring not enabled: {}",
                    rec.name, f.msg
                );
            }
        }
    }
}
