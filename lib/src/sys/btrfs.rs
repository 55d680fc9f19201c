//! btrfs subvolume snapshot ioctls and FICLONE (reflink) from `<linux/btrfs.h>` and
//! `<linux/fs.h>`.
//!
//! * `BTRFS_IOC_SNAP_CREATE_V2` = `_IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)`, issued on
//!   the destination parent directory with `fd` = the source subvolume and
//!   `BTRFS_SUBVOL_RDONLY` for a read-only snapshot (what `btrfs subvolume snapshot -r` does).
//! * `BTRFS_IOC_SNAP_DESTROY` = `_IOW(0x94, 15, struct btrfs_ioctl_vol_args)`, on the parent.
//! * `FICLONE` = `_IOW(0x94, 9, int)`: `ioctl(dest, FICLONE, src)` shares all extents.
//!
//! Both vol_args structs are 4096 bytes; names are NUL-terminated and at most 4039 (v2) or
//! 4087 bytes. Spec: `specs/snapshots.md` §6, §7.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
pub struct VolArgs {
    pub fd: i64,
    pub name: [u8; 4088],
}

/// `struct btrfs_ioctl_vol_args_v2` (the 32-byte union kept as `unused`, the name union
/// as `name`).
#[repr(C)]
pub struct VolArgsV2 {
    pub fd: i64,
    pub transid: u64,
    pub flags: u64,
    pub unused: [u64; 4],
    pub name: [u8; 4040],
}

/// `BTRFS_SUBVOL_RDONLY`.
pub const SUBVOL_RDONLY: u64 = 1 << 1;

nix::ioctl_write_ptr!(btrfs_snap_create_v2, 0x94, 23, VolArgsV2);
nix::ioctl_write_ptr!(btrfs_snap_destroy, 0x94, 15, VolArgs);
nix::ioctl_write_int!(ficlone, 0x94, 9);

pub const BTRFS_IOC_SNAP_CREATE_V2: u32 =
    nix::request_code_write!(0x94, 23, std::mem::size_of::<VolArgsV2>()) as u32;
pub const BTRFS_IOC_SNAP_DESTROY: u32 =
    nix::request_code_write!(0x94, 15, std::mem::size_of::<VolArgs>()) as u32;
pub const FICLONE: u32 =
    nix::request_code_write!(0x94, 9, std::mem::size_of::<libc::c_int>()) as u32;

fn copy_name(dst: &mut [u8], name: &[u8]) -> nix::Result<()> {
    if name.is_empty() || name.len() >= dst.len() || name.contains(&0) {
        return Err(nix::errno::Errno::ENAMETOOLONG);
    }
    dst[..name.len()].copy_from_slice(name);
    Ok(())
}

/// Snapshot subvolume `src` as `parent/name`, read-only when `readonly`.
pub fn snap_create(
    parent: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    name: &[u8],
    readonly: bool,
) -> nix::Result<()> {
    let mut a = Box::new(VolArgsV2 {
        fd: src.as_raw_fd() as i64,
        transid: 0,
        flags: if readonly { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; 4040],
    });
    copy_name(&mut a.name, name)?;
    // SAFETY: `a` is a fully initialised vol_args_v2 of the size in the request code that
    // outlives the call; the kernel only reads it (memdup_user).
    unsafe { btrfs_snap_create_v2(parent.as_raw_fd(), &*a) }.map(drop)
}

/// Delete subvolume `parent/name`.
pub fn snap_destroy(parent: BorrowedFd<'_>, name: &[u8]) -> nix::Result<()> {
    let mut a = Box::new(VolArgs {
        fd: 0,
        name: [0; 4088],
    });
    copy_name(&mut a.name, name)?;
    // SAFETY: as in `snap_create`, for struct btrfs_ioctl_vol_args.
    unsafe { btrfs_snap_destroy(parent.as_raw_fd(), &*a) }.map(drop)
}

/// Make `dest` share all of `src`'s extents (reflink). EOPNOTSUPP on filesystems without
/// reflink (ext4, XFS reflink=0), EXDEV across filesystems.
pub fn clone_file(dest: BorrowedFd<'_>, src: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: FICLONE takes the source fd by value; no memory is passed.
    unsafe {
        ficlone(
            dest.as_raw_fd(),
            src.as_raw_fd() as nix::sys::ioctl::ioctl_param_type,
        )
    }
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn request_codes_match_the_kernel_header() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
        assert_eq!(std::mem::offset_of!(VolArgsV2, name), 56);
        assert_eq!(BTRFS_IOC_SNAP_CREATE_V2, 0x5000_9417);
        assert_eq!(BTRFS_IOC_SNAP_DESTROY, 0x5000_940F);
        assert_eq!(FICLONE, 0x4004_9409);
    }

    #[test]
    fn names_are_checked() {
        let f = std::fs::File::open("/").unwrap();
        assert_eq!(
            snap_destroy(f.as_fd(), b""),
            Err(nix::errno::Errno::ENAMETOOLONG)
        );
        assert_eq!(
            snap_destroy(f.as_fd(), &[b'a'; 5000]),
            Err(nix::errno::Errno::ENAMETOOLONG)
        );
        assert_eq!(
            snap_destroy(f.as_fd(), b"a\0b"),
            Err(nix::errno::Errno::ENAMETOOLONG)
        );
    }
}
