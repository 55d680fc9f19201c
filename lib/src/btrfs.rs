//! btrfs read-only subvolume snapshots by path: recognise a subvolume, snapshot it next to
//! itself or elsewhere on the same filesystem, delete a snapshot.
//!
//! A btrfs snapshot is atomic for the whole subvolume and needs no freeze (a freeze would
//! make it hang, specs/snapshots.md §1); it does not descend into nested subvolumes. A
//! subvolume root is a directory on a filesystem with `BTRFS_SUPER_MAGIC` whose inode
//! number is 256 (`BTRFS_FIRST_FREE_OBJECTID`). Spec: `specs/snapshots.md` §6.

use std::fmt;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::sys::btrfs;

/// `BTRFS_SUPER_MAGIC` (statfs f_type).
pub const SUPER_MAGIC: i64 = 0x9123_683E;
/// Inode number of every subvolume root.
pub const FIRST_FREE_OBJECTID: u64 = 256;

/// A failed btrfs operation on `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtrfsError {
    pub path: PathBuf,
    pub what: &'static str,
    pub errno: Errno,
}

impl fmt::Display for BtrfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            self.what,
            self.errno.desc()
        )
    }
}

impl std::error::Error for BtrfsError {}

fn err(path: &Path, what: &'static str, errno: Errno) -> BtrfsError {
    BtrfsError {
        path: path.to_path_buf(),
        what,
        errno,
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// True when `path` is on a btrfs filesystem.
pub fn is_btrfs(path: &Path) -> Result<bool, BtrfsError> {
    let st = nix::sys::statfs::statfs(path).map_err(|e| err(path, "statfs failed", e))?;
    Ok(st.filesystem_type().0 as i64 == SUPER_MAGIC)
}

/// True when `path` is the root of a btrfs subvolume.
pub fn is_subvolume(path: &Path) -> Result<bool, BtrfsError> {
    let m = std::fs::metadata(path).map_err(|e| err(path, "stat failed", io_errno(&e)))?;
    Ok(m.is_dir() && m.ino() == FIRST_FREE_OBJECTID && is_btrfs(path)?)
}

fn split(path: &Path) -> Result<(PathBuf, &std::ffi::OsStr), BtrfsError> {
    let name = path
        .file_name()
        .ok_or_else(|| err(path, "no final name", Errno::EINVAL))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Snapshot subvolume `src` as `dest` (which must not exist, on the same filesystem),
/// read-only when `readonly`.
pub fn snapshot(src: &Path, dest: &Path, readonly: bool) -> Result<(), BtrfsError> {
    let s = File::open(src).map_err(|e| err(src, "cannot open", io_errno(&e)))?;
    let (parent, name) = split(dest)?;
    let p = File::open(&parent).map_err(|e| err(&parent, "cannot open", io_errno(&e)))?;
    btrfs::snap_create(p.as_fd(), s.as_fd(), name.as_bytes(), readonly)
        .map_err(|e| err(dest, "snapshot failed", e))
}

/// Delete the subvolume (snapshot) at `path`.
pub fn delete(path: &Path) -> Result<(), BtrfsError> {
    let (parent, name) = split(path)?;
    let p = File::open(&parent).map_err(|e| err(&parent, "cannot open", io_errno(&e)))?;
    btrfs::snap_destroy(p.as_fd(), name.as_bytes()).map_err(|e| err(path, "delete failed", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_btrfs_paths_are_not_subvolumes() {
        assert!(!is_subvolume(Path::new("/proc")).unwrap());
        assert_eq!(
            is_subvolume(Path::new("/nonexistent/x")).unwrap_err().errno,
            Errno::ENOENT
        );
    }

    #[test]
    fn snapshot_of_a_missing_source_names_it() {
        let e = snapshot(Path::new("/nonexistent/src"), Path::new("/tmp/x"), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/src: cannot open: No such file or directory"
        );
    }
}
