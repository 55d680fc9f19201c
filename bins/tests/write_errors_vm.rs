//! Write errors of a real device reach every writer's exit status. In a QEMU guest (this
//! machine's kernel has no device-mapper; `scripts/vmtest`), device-mapper's error target
//! covers exactly the free blocks of a fresh ext4, so only new data fail, and only at
//! writeback: what a program learns solely from fsync (`scripts/vmtest.d/write-errors.sh`).
//! walarchive push exits 1 with the cause and no final name (lz4 and uncompressed), fetch
//! exits 255 and leaves no %p; mediahdr write/payload -o, raitstripe split/rebuild and
//! binlogcut -o exit 1 with the cause and leave no partial output (a failed split leaves a
//! set that join refuses). Before their outputs were fsynced, mediahdr write and raitstripe
//! split exited 0 there; a walarchive whose flush-behind thread shared the writer's open
//! file description (a dup) exited 0 over lost data too (both checked by hand).

mod util;

use std::process::Command;

use util::{bin, fixture, require, Scratch};

const SEG9: &str = "000000010000000000000009";
const SEG0A: &str = "00000001000000000000000A";
const BINLOG: &str = "binlog/mariadb/mdev6020-mysql-bin.000001";

#[test]
fn write_errors_of_a_real_device_reach_every_writers_exit_status() {
    if !require("root", util::is_root())
        || !require("qemu-system-x86_64", util::have("qemu-system-x86_64"))
    {
        return;
    }
    let s = Scratch::new("write-errors-vm");
    for n in [SEG9, SEG0A] {
        let xz = fixture(&format!("wal/pg15-16mib/{n}.xz"));
        let out = Command::new("xz").arg("-dc").arg(&xz).output().expect("xz");
        assert!(out.status.success(), "xz -dc {}", xz.display());
        std::fs::write(s.path(n), out.stdout).unwrap();
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
