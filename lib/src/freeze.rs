//! Filesystem freeze and thaw (FIFREEZE / FITHAW), from a path to its mount point, and a
//! freeze guarded by a watchdog process.
//!
//! Spec: `shared/specs/snapshots.md` §1–2. The traps it measured shape this module:
//! - the kernel ties a freeze to nothing: a process that dies while holding one leaves the
//!   filesystem frozen, and every writer in uninterruptible sleep. [`FrozenGuard`] thaws on
//!   drop (unwinding included), and [`GuardedFreeze`] hands the thaw to a separate watchdog
//!   process that thaws even after SIGKILL of its owner;
//! - a frozen filesystem can be unmounted and stays frozen with no path left to it, so the
//!   fds used to thaw are opened before freezing, and the watchdog keeps them (and thus the
//!   mount busy) for as long as it holds a freeze;
//! - nothing here writes to a frozen filesystem: no temporary files, no logs on it;
//! - path → mount uses `statx`'s mount id, not `st_dev` (btrfs subvolumes have their own).
//!
//! Use from another tool (lvsnap):
//! ```no_run
//! use lampvault::freeze;
//! # fn main() -> Result<(), freeze::FreezeError> {
//! // Which filesystem holds the datadir, and where is it mounted?
//! let m = freeze::mount_point_of("/var/lib/mysql".as_ref())?;
//! // Simple: thawed when `g` is dropped (not if the process is SIGKILLed).
//! let g = freeze::freeze(&m.mount_point)?;
//! let held = g.thaw()?; // or drop(g)
//! // Robust: a watchdog process thaws after 30 s, or when this process dies.
//! let t = freeze::Target::open(&m.mount_point)?;
//! let mut w = freeze::GuardedFreeze::spawn(vec![t], freeze::WatchdogOptions::new(std::time::Duration::from_secs(30)))?;
//! w.freeze_all()?;
//! // ... take the snapshot ...
//! for r in w.thaw_all() {
//!     if let Some(e) = r.error() { return Err(e); } // the thaw failed: still frozen?
//!     eprintln!("{}: frozen {:?}", r.path.display(), r.frozen);
//! }
//! # let _ = held; Ok(()) }
//! ```

pub mod mountinfo;
mod watchdog;

pub use watchdog::{FreezeReport, GuardedFreeze, ThawCause, WatchdogEvent, WatchdogOptions};

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::sys::freeze::{fifreeze, fithaw, statx_fd, statx_path};
pub use mountinfo::MountEntry;

/// Everything that can go wrong; `Display` gives util-linux's wording plus a hint, e.g.
/// `/mnt: freeze failed: Device or resource busy (already frozen)`.
#[derive(Debug)]
pub enum FreezeError {
    /// The path could not be opened (util-linux: `cannot open PATH: ...`).
    Open { path: PathBuf, errno: Errno },
    /// The path is not a directory (util-linux refuses those too).
    NotADirectory { path: PathBuf },
    /// The path is a directory inside a filesystem, not where one is mounted.
    NotAMountPoint { path: PathBuf, mount_point: PathBuf },
    /// FIFREEZE failed.
    Freeze { path: PathBuf, errno: Errno },
    /// FITHAW failed.
    Thaw { path: PathBuf, errno: Errno },
    /// `/proc/self/mountinfo` could not be read or has no line for the path's mount.
    Mountinfo { path: PathBuf, detail: String },
    /// Two targets are the same filesystem (freezing it twice would fail with EBUSY).
    SameFilesystem { path: PathBuf, other: PathBuf },
    /// The watchdog process could not be started or stopped answering.
    Watchdog { detail: String },
}

impl FreezeError {
    /// The errno behind this error, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            FreezeError::Open { errno, .. }
            | FreezeError::Freeze { errno, .. }
            | FreezeError::Thaw { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

fn freeze_hint(e: Errno) -> &'static str {
    match e {
        Errno::EBUSY => " (already frozen)",
        Errno::EOPNOTSUPP => " (this filesystem type cannot be frozen)",
        Errno::EPERM => " (freezing needs CAP_SYS_ADMIN)",
        _ => "",
    }
}

fn thaw_hint(e: Errno) -> &'static str {
    match e {
        Errno::EINVAL => " (not frozen)",
        Errno::EPERM => " (thawing needs CAP_SYS_ADMIN)",
        _ => "",
    }
}

impl fmt::Display for FreezeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreezeError::Open { path, errno } => {
                write!(f, "cannot open {}: {}", path.display(), strerror(*errno))
            }
            FreezeError::NotADirectory { path } => {
                write!(f, "{}: is not a directory", path.display())
            }
            FreezeError::NotAMountPoint { path, mount_point } => write!(
                f,
                "{}: not a mount point (the filesystem holding it is mounted on {})",
                path.display(),
                mount_point.display()
            ),
            FreezeError::Freeze { path, errno } => {
                write!(
                    f,
                    "{}: freeze failed: {}{}",
                    path.display(),
                    strerror(*errno),
                    freeze_hint(*errno)
                )
            }
            FreezeError::Thaw { path, errno } => {
                write!(
                    f,
                    "{}: unfreeze failed: {}{}",
                    path.display(),
                    strerror(*errno),
                    thaw_hint(*errno)
                )
            }
            FreezeError::Mountinfo { path, detail } => write!(f, "{}: {}", path.display(), detail),
            FreezeError::SameFilesystem { path, other } => {
                write!(
                    f,
                    "{}: same filesystem as {}",
                    path.display(),
                    other.display()
                )
            }
            FreezeError::Watchdog { detail } => write!(f, "watchdog: {detail}"),
        }
    }
}

impl std::error::Error for FreezeError {}

/// The C library's text for `e` ("Operation not supported"), as util-linux prints it; nix's
/// own table words some codes differently (EOPNOTSUPP).
pub fn strerror(e: Errno) -> String {
    let s = io::Error::from_raw_os_error(e as i32).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The mount that holds a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Where the filesystem is mounted (the directory to freeze).
    pub mount_point: PathBuf,
    /// True when the path given *is* that mount point.
    pub is_mount_point: bool,
    /// The whole mountinfo line.
    pub entry: MountEntry,
}

fn read_mountinfo(path: &Path) -> Result<Vec<MountEntry>, FreezeError> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| mountinfo::parse(&t))
        .map_err(|e| FreezeError::Mountinfo {
            path: path.to_owned(),
            detail: format!(
                "cannot read /proc/self/mountinfo: {}",
                strerror(errno_of(&e))
            ),
        })
}

fn resolve(path: &Path, id: crate::sys::freeze::MountIdentity) -> Result<MountInfo, FreezeError> {
    let entries = read_mountinfo(path)?;
    let found = match id.mnt_id {
        Some(mid) => mountinfo::by_id(&entries, mid).cloned(),
        None => {
            let canon = std::fs::canonicalize(path).map_err(|e| FreezeError::Open {
                path: path.to_owned(),
                errno: errno_of(&e),
            })?;
            mountinfo::by_dev_and_prefix(&entries, id.dev, &canon).cloned()
        }
    };
    let entry = found.ok_or_else(|| FreezeError::Mountinfo {
        path: path.to_owned(),
        detail: format!(
            "no line for its mount in /proc/self/mountinfo (mount id {:?})",
            id.mnt_id
        ),
    })?;
    let is_mount_point = match id.mount_root {
        Some(r) => r,
        None => std::fs::canonicalize(path)
            .map(|c| c == entry.mount_point)
            .unwrap_or(false),
    };
    Ok(MountInfo {
        mount_point: entry.mount_point.clone(),
        is_mount_point,
        entry,
    })
}

/// The mount that holds `path` (symlinks followed): its mount point, and whether `path` is
/// that mount point. Uses `statx(STATX_MNT_ID)` and `/proc/self/mountinfo`. Reads only: safe
/// to call on a frozen filesystem.
pub fn mount_point_of(path: &Path) -> Result<MountInfo, FreezeError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| FreezeError::Open {
        path: path.to_owned(),
        errno: Errno::EINVAL,
    })?;
    let id = statx_path(&c).map_err(|errno| FreezeError::Open {
        path: path.to_owned(),
        errno,
    })?;
    resolve(path, id)
}

/// Open `path` read-only and check it is a directory (util-linux's checks, in its order).
fn open_dir(path: &Path) -> Result<(File, crate::sys::freeze::MountIdentity), FreezeError> {
    let file = File::open(path).map_err(|e| FreezeError::Open {
        path: path.to_owned(),
        errno: errno_of(&e),
    })?;
    let id = statx_fd(file.as_fd()).map_err(|errno| FreezeError::Open {
        path: path.to_owned(),
        errno,
    })?;
    if !id.is_dir {
        return Err(FreezeError::NotADirectory {
            path: path.to_owned(),
        });
    }
    Ok((file, id))
}

/// An open directory on a filesystem to freeze, with its mount. Opening first means no path
/// lookup is needed later, when the filesystem may be frozen or even unmounted.
#[derive(Debug)]
pub struct Target {
    /// The path as the caller gave it (used in messages).
    pub path: PathBuf,
    pub file: File,
    pub mount: MountInfo,
}

impl Target {
    /// Open `path` read-only (as util-linux does); it must be a directory. Any directory of
    /// the filesystem works for the ioctls; see [`Target::open_mount_point`] to insist on
    /// the mount point.
    pub fn open(path: &Path) -> Result<Target, FreezeError> {
        let (file, id) = open_dir(path)?;
        let mount = resolve(path, id)?;
        Ok(Target {
            path: path.to_owned(),
            file,
            mount,
        })
    }

    /// [`Target::open`], refusing a directory that is not a mount point (freezing the
    /// filesystem under `/var/lib/mysql` may mean freezing `/`: say so instead).
    pub fn open_mount_point(path: &Path) -> Result<Target, FreezeError> {
        let t = Target::open(path)?;
        if !t.mount.is_mount_point {
            return Err(FreezeError::NotAMountPoint {
                path: path.to_owned(),
                mount_point: t.mount.mount_point,
            });
        }
        Ok(t)
    }

    /// FIFREEZE on this target.
    pub fn freeze(&self) -> Result<(), FreezeError> {
        fifreeze(self.file.as_fd()).map_err(|errno| FreezeError::Freeze {
            path: self.path.clone(),
            errno,
        })
    }

    /// FITHAW on this target.
    pub fn thaw(&self) -> Result<(), FreezeError> {
        fithaw(self.file.as_fd()).map_err(|errno| FreezeError::Thaw {
            path: self.path.clone(),
            errno,
        })
    }
}

/// Refuse two targets on one filesystem (same superblock device in mountinfo).
pub fn check_distinct(targets: &[Target]) -> Result<(), FreezeError> {
    for (i, t) in targets.iter().enumerate() {
        if let Some(o) = targets[..i]
            .iter()
            .find(|o| o.mount.entry.dev == t.mount.entry.dev)
        {
            return Err(FreezeError::SameFilesystem {
                path: t.path.clone(),
                other: o.path.clone(),
            });
        }
    }
    Ok(())
}

/// A frozen filesystem, thawed when dropped (errors ignored then; call [`FrozenGuard::thaw`]
/// to see them). Does not survive SIGKILL of this process: use [`GuardedFreeze`] for that.
#[derive(Debug)]
pub struct FrozenGuard {
    target: Option<Target>,
    since: Instant,
}

impl FrozenGuard {
    /// The frozen target.
    pub fn target(&self) -> &Target {
        self.target.as_ref().expect("present until thawed")
    }

    /// Thaw now; returns how long the filesystem was frozen (from the start of the freeze).
    pub fn thaw(mut self) -> Result<Duration, FreezeError> {
        let t = self.target.take().expect("present until thawed");
        t.thaw()?;
        Ok(self.since.elapsed())
    }
}

impl Drop for FrozenGuard {
    fn drop(&mut self) {
        if let Some(t) = self.target.take() {
            let _ = t.thaw();
        }
    }
}

/// Freeze the filesystem that holds `path` (a directory; normally its mount point, see
/// [`mount_point_of`]). Errors: [`FreezeError::Open`], `NotADirectory`, `Freeze` (EBUSY
/// already frozen, EOPNOTSUPP unsupported, EPERM no CAP_SYS_ADMIN).
pub fn freeze(path: &Path) -> Result<FrozenGuard, FreezeError> {
    freeze_target(Target::open(path)?)
}

/// Freeze an opened target; see [`freeze`].
pub fn freeze_target(t: Target) -> Result<FrozenGuard, FreezeError> {
    let since = Instant::now();
    t.freeze()?;
    Ok(FrozenGuard {
        target: Some(t),
        since,
    })
}

/// Thaw the filesystem that holds `path` (a directory). EINVAL: it was not frozen.
/// Needs nothing but the path and the ioctl (not `/proc`): a thaw must always be possible.
pub fn thaw(path: &Path) -> Result<(), FreezeError> {
    let (file, _) = open_dir(path)?;
    fithaw(file.as_fd()).map_err(|errno| FreezeError::Thaw {
        path: path.to_owned(),
        errno,
    })
}
