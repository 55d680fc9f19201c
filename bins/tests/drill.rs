//! The restore drill (`scripts/drill`, issue 9) end to end with this build's binaries: real
//! MariaDB and PostgreSQL servers, a loop-mounted btrfs, backups through lvsnap, mediahdr and
//! raitstripe, an XFS device image under fsfreeze, PITR through binlogcut and walarchive, the
//! manual dd path. The drill itself checks every table against its state just before the DROP
//! and the app directory and media store byte for byte; here we assert its exit status and report, and that a recovery point past the DROP
//! (DRILL_FAULT=late-target) is caught. Both runs must leave no mount or loop device behind.
//! Needs root, mariadbd, PostgreSQL 15, mkfs.btrfs, mkfs.xfs, lz4; skips loudly otherwise (fails when CI=true).

mod util;

use std::path::Path;
use std::process::{Command, Output};

use util::{bin, require, script, Scratch};

fn peers_present() -> bool {
    require("root (loop mounts, servers)", util::is_root())
        && require(
            "mariadbd",
            Path::new("/usr/sbin/mariadbd").exists() || util::have("mariadbd"),
        )
        && require(
            "PostgreSQL 15",
            Path::new("/usr/lib/postgresql/15/bin/postgres").exists(),
        )
        && require(
            "mkfs.btrfs",
            util::have("mkfs.btrfs") || Path::new("/usr/sbin/mkfs.btrfs").exists(),
        )
        && require(
            "mkfs.xfs",
            util::have("mkfs.xfs") || Path::new("/usr/sbin/mkfs.xfs").exists(),
        )
        && require("lz4", util::have("lz4"))
        && require("mysqldump", util::have("mysqldump"))
        && require("mariadb-binlog", util::have("mariadb-binlog"))
}

fn drill(workdir: &Path, fault: Option<&str>, extra: &[&str]) -> Output {
    let bindir = bin("mediahdr").parent().unwrap().to_path_buf();
    let mut cmd = Command::new(script("drill"));
    cmd.arg("--workdir")
        .arg(workdir)
        .args(extra)
        .env("LAMPVAULT_BIN", &bindir);
    match fault {
        Some(f) => cmd.env("DRILL_FAULT", f),
        None => cmd.env_remove("DRILL_FAULT"),
    };
    cmd.output().expect("run scripts/drill")
}

/// Nothing of the drill may survive it: no mount under the work directory, no loop device on
/// its image, the directory itself removed (we let it create it).
fn assert_cleaned(workdir: &Path) {
    let w = workdir.to_string_lossy().to_string();
    assert!(!workdir.exists(), "{w} left behind");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&w), "mount left behind: {mounts}");
    let loops = Command::new("losetup").arg("-a").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&loops.stdout).contains(&w),
        "loop device left behind"
    );
}

#[test]
fn drill_restores_everything_to_just_before_the_drop_and_catches_a_late_target() {
    if !peers_present() {
        return;
    }
    let s = Scratch::new("drill");

    // the drill as a newcomer runs it (debug binaries instead of a release build)
    let wd = s.path("ok");
    let out = drill(&wd, None, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "drill failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(
            "RPO: rows lost before the incident: 0 (physical 0, logical 0, postgresql 0)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("result: OK"), "{stdout}");
    for what in [
        "ok   MariaDB physical (A + binlogs)",
        "ok   MariaDB logical (B + binlogs)",
        "ok   PostgreSQL (C + WAL PITR)",
        "ok   app directory byte-identical",
        "ok   manual restore (dd + header command + lz4 + tar)",
        "ok   media store (fsfreeze + device image)",
        "ok   walarchive verify",
        "ok   binlogcut verify",
        "ok   raitstripe verify",
    ] {
        assert!(stdout.contains(what), "missing {what:?} in\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("lock held (FLUSH TABLES WITH READ LOCK"),
        "{stdout}"
    );
    assert_cleaned(&wd);

    // a recovery point 3 s after the DROPs replays them: the drill must say so and exit 1,
    // with --json, and still clean up
    let wd = s.path("late");
    let out = drill(&wd, Some("late-target"), &["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.starts_with("{\"result\":\"FAIL\""), "{stdout}");
    assert!(
        !stdout.contains("\"rows_lost_before_incident\":0,"),
        "{stdout}"
    );
    for what in [
        "FAIL MariaDB physical",
        "FAIL MariaDB logical",
        "FAIL PostgreSQL",
        "ok   app directory byte-identical",
    ] {
        assert!(stdout.contains(what), "missing {what:?} in\n{stdout}");
    }
    assert_cleaned(&wd);
}
