//! Linux SCSI tape ioctls: MTIOCTOP (an operation) and MTIOCGET (status).
//!
//! Layout and numbers follow `<linux/mtio.h>`: `struct mtop { short mt_op; int mt_count; }`
//! and `struct mtget` of five `long`s and two `__kernel_daddr_t` (`int`). There is no tape
//! drive on the machines this project is tested on, so the code path is kept small: the
//! request codes and struct sizes are unit-tested against the kernel header (through the C
//! compiler when one is present), and everything else is a plain ioctl call.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct mtop` from `<linux/mtio.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MtOp {
    pub mt_op: libc::c_short,
    pub mt_count: libc::c_int,
}

/// `struct mtget` from `<linux/mtio.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MtGet {
    pub mt_type: libc::c_long,
    pub mt_resid: libc::c_long,
    pub mt_dsreg: libc::c_long,
    pub mt_gstat: libc::c_long,
    pub mt_erreg: libc::c_long,
    pub mt_fileno: libc::c_int,
    pub mt_blkno: libc::c_int,
}

/// The `mt_op` values of `<linux/mtio.h>` that lampvault uses.
pub mod op {
    pub const MTFSF: i16 = 1;
    pub const MTBSF: i16 = 2;
    pub const MTFSR: i16 = 3;
    pub const MTBSR: i16 = 4;
    pub const MTWEOF: i16 = 5;
    pub const MTREW: i16 = 6;
    pub const MTOFFL: i16 = 7;
    pub const MTNOP: i16 = 8;
    pub const MTEOM: i16 = 12;
    pub const MTSETBLK: i16 = 20;
}

nix::ioctl_write_ptr!(mtioctop, b'm', 1, MtOp);
nix::ioctl_read!(mtiocget, b'm', 2, MtGet);

/// The MTIOCTOP request code (`_IOW('m', 1, struct mtop)`).
pub const MTIOCTOP: u64 = nix::request_code_write!(b'm', 1, std::mem::size_of::<MtOp>()) as u64;
/// The MTIOCGET request code (`_IOR('m', 2, struct mtget)`).
pub const MTIOCGET: u64 = nix::request_code_read!(b'm', 2, std::mem::size_of::<MtGet>()) as u64;

/// Run one tape operation `op` with `count` on `fd`.
pub fn tape_op(fd: BorrowedFd<'_>, op: i16, count: i32) -> nix::Result<()> {
    let arg = MtOp {
        mt_op: op,
        mt_count: count,
    };
    // SAFETY: `arg` is a valid, initialised `struct mtop` that outlives the call, and the
    // kernel only reads it; a non-tape fd answers ENOTTY or EINVAL, never touches memory.
    unsafe { mtioctop(fd.as_raw_fd(), &arg) }.map(drop)
}

/// Read the drive status of `fd`. Fails (ENOTTY, EINVAL) when `fd` is not a tape device.
pub fn tape_status(fd: BorrowedFd<'_>) -> nix::Result<MtGet> {
    let mut st = MtGet::default();
    // SAFETY: `st` is a writable `struct mtget` of the size encoded in the request code.
    unsafe { mtiocget(fd.as_raw_fd(), &mut st) }?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn request_codes_match_the_kernel_header() {
        // <linux/mtio.h> on x86_64: _IOW('m', 1, struct mtop) and _IOR('m', 2, struct mtget).
        assert_eq!(std::mem::size_of::<MtOp>(), 8);
        assert_eq!(std::mem::size_of::<MtGet>(), 48);
        assert_eq!(MTIOCTOP, 0x4008_6d01);
        assert_eq!(MTIOCGET, 0x8030_6d02);
    }

    /// Compile a C program against the installed kernel header and compare every number.
    #[test]
    fn request_codes_match_the_c_compiler() {
        let dir = std::env::temp_dir().join(format!("lv-mtio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("m.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\n#include <sys/mtio.h>\nint main(void){printf(\"%lu %lu %zu %zu %d %d %d %d %d %d %d %d %d %d\\n\",\
             (unsigned long)MTIOCTOP,(unsigned long)MTIOCGET,sizeof(struct mtop),sizeof(struct mtget),\
             MTFSF,MTBSF,MTFSR,MTBSR,MTWEOF,MTREW,MTOFFL,MTNOP,MTEOM,MTSETBLK);return 0;}\n",
        )
        .unwrap();
        let exe = dir.join("m");
        let cc = std::process::Command::new("cc")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .status();
        match cc {
            Ok(s) if s.success() => {}
            _ => {
                assert!(std::env::var_os("CI").is_none(), "no C compiler in CI");
                eprintln!("SKIP: no C compiler to read <sys/mtio.h>");
                return;
            }
        }
        let out = std::process::Command::new(&exe).output().unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        let want = format!(
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
            MTIOCTOP,
            MTIOCGET,
            std::mem::size_of::<MtOp>(),
            std::mem::size_of::<MtGet>(),
            op::MTFSF,
            op::MTBSF,
            op::MTFSR,
            op::MTBSR,
            op::MTWEOF,
            op::MTREW,
            op::MTOFFL,
            op::MTNOP,
            op::MTEOM,
            op::MTSETBLK
        );
        assert_eq!(got, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_regular_file_is_not_a_tape() {
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(tape_status(f.as_fd()).is_err());
        assert!(tape_op(f.as_fd(), op::MTNOP, 1).is_err());
    }
}
