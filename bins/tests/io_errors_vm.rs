//! I/O errors of a real device reach every tool's exit status.
//!
//! Writes: in a QEMU guest (this
//! machine's kernel has no device-mapper; `scripts/vmtest`), device-mapper's error target
//! covers exactly the free blocks of a fresh ext4, so only new data fail, and only at
//! writeback: what a program learns solely from fsync (`scripts/vmtest.d/write-errors.sh`).
//! walarchive push exits 1 with the cause and no final name (lz4 and uncompressed), fetch
//! exits 255 and leaves no %p; mediahdr write/payload -o, raitstripe split/rebuild and
//! binlogcut -o exit 1 with the cause and leave no partial output (a failed split leaves a
//! set that join refuses). Before their outputs were fsynced, mediahdr write and raitstripe
//! split exited 0 there; a walarchive whose flush-behind thread shared the writer's open
//! file description (a dup) exited 0 over lost data too (both checked by hand).
//!
//! Reads (`scripts/vmtest.d/read-errors.sh`): one block in the middle of a binlog, a WAL
//! segment and a media file made unreadable (error target over it, found with filefrag):
//! binlogcut verify / list / -o, walarchive push and mediahdr payload exit 1 with a message
//! (walarchive fetch of an unreadable archived segment: 255, never "absent"; verify flags it),
//! never die by SIGBUS through their maps, never hang, leave no output. (On the guest's
//! Linux 6.1, MADV_POPULATE_READ and MAP_POPULATE retried such a page forever: binlogcut
//! and walarchive push hung at 100 % system time until killed.)

mod util;

use util::{bin, fixture, require, Scratch};

const SEG9: &str = "000000010000000000000009";
const SEG0A: &str = "00000001000000000000000A";
const BINLOG: &str = "binlog/mariadb/mdev6020-mysql-bin.000001";

#[test]
fn write_errors_of_a_real_device_reach_every_writers_exit_status() {
    if !util::can_run_vm() {
        return;
    }
    let s = Scratch::new("write-errors-vm");
    for n in [SEG9, SEG0A] {
        util::unxz(&fixture(&format!("wal/pg15-16mib/{n}.xz")), &s.path(n));
    }
    let binlog = fixture(BINLOG);
    let out = util::run_vm(
        |c| {
            c.args(["-t", "300"]);
            for b in ["walarchive", "mediahdr", "raitstripe", "binlogcut"] {
                c.arg("-b").arg(bin(b));
            }
            c.arg("-f")
                .arg(s.path(SEG9))
                .arg("-f")
                .arg(s.path(SEG0A))
                .arg("-f")
                .arg(&binlog)
                .args(["-d", "128M"])
                .arg(util::script("vmtest.d/write-errors.sh"))
                .args([SEG9, SEG0A])
                .arg(binlog.file_name().unwrap());
        },
        "write errors vm: all checks passed",
    );
    assert!(
        out.lines().filter(|l| l.starts_with("ok:")).count() >= 24,
        "{out}"
    );
}

#[test]
fn read_errors_of_a_real_device_end_in_a_message_not_a_signal_or_a_hang() {
    if !util::can_run_vm() || !require("filefrag (e2fsprogs)", util::have("filefrag")) {
        return;
    }
    let s = Scratch::new("read-errors-vm");
    util::unxz(
        &fixture(&format!("wal/pg15-16mib/{SEG9}.xz")),
        &s.path(SEG9),
    );
    let binlog = fixture(BINLOG);
    let out = util::run_vm(
        |c| {
            c.args(["-t", "300"]);
            for b in ["walarchive", "mediahdr", "binlogcut"] {
                c.arg("-b").arg(bin(b));
            }
            c.args(["-b", "filefrag", "-f"])
                .arg(s.path(SEG9))
                .arg("-f")
                .arg(&binlog)
                .args(["-d", "64M"])
                .arg(util::script("vmtest.d/read-errors.sh"))
                .arg(SEG9)
                .arg(binlog.file_name().unwrap());
        },
        "read errors vm: all checks passed",
    );
    assert!(
        out.lines().filter(|l| l.starts_with("ok:")).count() >= 18,
        "{out}"
    );
}
