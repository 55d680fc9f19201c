//! Filesystem freeze ioctls (FIFREEZE / FITHAW) and `statx` mount identity.
//!
//! Numbers follow `<linux/fs.h>`: `FIFREEZE = _IOWR('X', 119, int)` and
//! `FITHAW = _IOWR('X', 120, int)` (0xC0045877 / 0xC0045878; `XFS_IOC_FREEZE`/`THAW` are the
//! same numbers). The kernel never reads the int argument, so it is passed by value as 0, as
//! util-linux does (spec `snapshots.md` §1). Both act on the superblock of whatever inode the
//! fd refers to: any directory or file of the filesystem works.
//!
//! `statx(STATX_MNT_ID)` gives the mount id (field 1 of `/proc/self/mountinfo`) and
//! `STATX_ATTR_MOUNT_ROOT` says whether the path is a mount point — the way to map a path to
//! its mount that also works on btrfs, whose subvolumes have their own anonymous `st_dev`
//! (spec §2).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

nix::ioctl_write_int_bad!(
    fifreeze_raw,
    nix::request_code_readwrite!(b'X', 119, std::mem::size_of::<libc::c_int>())
);
nix::ioctl_write_int_bad!(
    fithaw_raw,
    nix::request_code_readwrite!(b'X', 120, std::mem::size_of::<libc::c_int>())
);

/// The FIFREEZE request code (`_IOWR('X', 119, int)`).
pub const FIFREEZE: u64 =
    nix::request_code_readwrite!(b'X', 119, std::mem::size_of::<libc::c_int>()) as u64;
/// The FITHAW request code (`_IOWR('X', 120, int)`).
pub const FITHAW: u64 =
    nix::request_code_readwrite!(b'X', 120, std::mem::size_of::<libc::c_int>()) as u64;

/// Freeze the filesystem that holds `fd`. EBUSY: already frozen; EOPNOTSUPP: this filesystem
/// type cannot be frozen; EPERM: no CAP_SYS_ADMIN.
///
/// This function makes no allocation and only issues one system call, so it may be called in
/// a child between `fork` and `_exit` (the watchdog does).
pub fn fifreeze(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: the argument is an int passed by value that the kernel ignores; a fd that does
    // not support the request answers ENOTTY/EOPNOTSUPP and no memory is shared.
    unsafe { fifreeze_raw(fd.as_raw_fd(), 0) }.map(drop)
}

/// Thaw the filesystem that holds `fd`. EINVAL: it was not frozen. Same async-signal
/// safety as [`fifreeze`].
pub fn fithaw(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: as for `fifreeze`: an ignored int by value, no memory shared with the kernel.
    unsafe { fithaw_raw(fd.as_raw_fd(), 0) }.map(drop)
}

/// What `statx` says about a path's mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountIdentity {
    /// `stx_mnt_id`, or `None` when the kernel did not fill it (Linux < 5.8).
    pub mnt_id: Option<u64>,
    /// `STATX_ATTR_MOUNT_ROOT` (only meaningful when the kernel reports it supported).
    pub mount_root: Option<bool>,
    /// `st_dev` as (major, minor).
    pub dev: (u32, u32),
    /// True for a directory.
    pub is_dir: bool,
}

/// `statx` of `path` (following symlinks) or of `fd` itself when `path` is empty.
fn statx_raw(dirfd: libc::c_int, path: &CStr, flags: libc::c_int) -> nix::Result<MountIdentity> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let mask = libc::STATX_TYPE | libc::STATX_MNT_ID;
    // SAFETY: `path` is NUL-terminated and outlives the call; `st` is a writable statx buffer
    // of the size the kernel expects; it was zeroed, so reading it is defined even for fields
    // the kernel leaves alone.
    let rc = unsafe { libc::statx(dirfd, path.as_ptr(), flags, mask, st.as_mut_ptr()) };
    if rc != 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: zero-initialised above and filled by a successful statx.
    let st = unsafe { st.assume_init() };
    let root_attr = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok(MountIdentity {
        mnt_id: (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id),
        mount_root: (st.stx_attributes_mask & root_attr != 0)
            .then_some(st.stx_attributes & root_attr != 0),
        dev: (st.stx_dev_major, st.stx_dev_minor),
        is_dir: u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR,
    })
}

/// Mount identity of the path `path` (symlinks followed).
pub fn statx_path(path: &CStr) -> nix::Result<MountIdentity> {
    statx_raw(libc::AT_FDCWD, path, 0)
}

/// Mount identity of the open file `fd`.
pub fn statx_fd(fd: BorrowedFd<'_>) -> nix::Result<MountIdentity> {
    statx_raw(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn request_codes_match_the_kernel_header() {
        // <linux/fs.h>: #define FIFREEZE _IOWR('X', 119, int), FITHAW _IOWR('X', 120, int).
        assert_eq!(FIFREEZE, 0xC004_5877);
        assert_eq!(FITHAW, 0xC004_5878);
    }

    /// Compile a C program against the installed header and compare both numbers.
    #[test]
    fn request_codes_match_the_c_compiler() {
        let dir = std::env::temp_dir().join(format!("lv-freeze-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("f.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\n#include <linux/fs.h>\n\
             int main(void){printf(\"%lu %lu\\n\",(unsigned long)FIFREEZE,(unsigned long)FITHAW);return 0;}\n",
        )
        .unwrap();
        let exe = dir.join("f");
        let cc = std::process::Command::new("cc")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .status();
        if !matches!(cc, Ok(s) if s.success()) {
            let _ = std::fs::remove_dir_all(&dir);
            assert!(std::env::var_os("CI").is_none(), "no C compiler in CI");
            eprintln!("SKIP: no C compiler to read <linux/fs.h>");
            return;
        }
        let out = std::process::Command::new(&exe).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{FIFREEZE} {FITHAW}\n")
        );
    }

    #[test]
    fn statx_sees_the_root_mount() {
        let root = statx_path(c"/").unwrap();
        assert!(root.is_dir);
        assert_eq!(root.mount_root, Some(true));
        let f = std::fs::File::open("/").unwrap();
        assert_eq!(statx_fd(f.as_fd()).unwrap(), root);
        let proc_self = statx_path(c"/proc/self").unwrap();
        assert_ne!(proc_self.mnt_id, root.mnt_id);
    }

    #[test]
    fn freezing_proc_is_refused() {
        // procfs has no freeze support: EOPNOTSUPP as root, EPERM otherwise; never success.
        let f = std::fs::File::open("/proc").unwrap();
        let e = fifreeze(f.as_fd()).unwrap_err();
        assert!(
            matches!(e, nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::EPERM),
            "{e}"
        );
        let e = fithaw(f.as_fd()).unwrap_err();
        assert!(
            matches!(e, nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM),
            "{e}"
        );
    }
}
