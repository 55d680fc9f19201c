//! lvsnap's lvm and dm backends, which need device-mapper: run inside a QEMU guest booting
//! Debian's stock kernel (`scripts/vmtest`, guest script `scripts/vmtest.d/lvsnap.sh`).
//! One scenario-sized run (~1 minute under TCG): XFS LV with a writer, `exec --freeze`
//! consistent by checksums; `--hold` on lvm: the lock is taken while lvcreate is stopped
//! before its suspend of the origin (origin still linear) and released after the resume
//! (snapshot-origin live), the snapshot is consistent with a writer that writes under that
//! lock, a failing / timing-out hold and SIGKILL while held or while the origin is
//! suspended leave nothing hung, lvcreate failing first never takes the lock, and with
//! ptrace forbidden (Yama) `--hold-mode auto` falls back to `whole`; `watch` extends,
//! overflow -> Invalid, the raw dm backend through our ioctls, and SIGKILL while suspended
//! -> the watchdog resumes the origin; `--cow-spare`: `watch` grows a dm snapshot's COW
//! (NAME-cow reloaded with a segment of the spare) until the spare is used up.
//! The kernel package is pinned (override with VMTEST_KERNEL_PKG) so CI does not drift.

mod util;

use std::process::Command;

/// The kernel the guest boots: Debian 12's 6.1 (where a manual freeze before an LVM
/// snapshot fails, specs/snapshots.md §1).
const KERNEL_PKG: &str = "linux-image-6.1.0-48-amd64";

#[test]
fn lvm_and_dm_backends_in_a_vm() {
    if !util::require("root", util::is_root())
        || !util::require("qemu-system-x86_64", util::have("qemu-system-x86_64"))
    {
        return;
    }
    let pkg = std::env::var("VMTEST_KERNEL_PKG").unwrap_or_else(|_| KERNEL_PKG.to_string());
    let o = Command::new(util::script("vmtest"))
        .args(["-t", "400", "-b"])
        .arg(util::bin("lvsnap"))
        .args(["-d", "2G", "-d", "1G", "-d", "128M"])
        .arg(util::script("vmtest.d/lvsnap.sh"))
        .env("VMTEST_KERNEL_PKG", pkg)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL:")).collect();
    assert!(fails.is_empty(), "{}\n{out}", fails.join("\n"));
    assert_eq!(util::status_code(&o), 0, "{out}\n{}", util::stderr(&o));
    assert!(out.contains("lvsnap vm: all checks passed"), "{out}");
    // Sanity: the checks really ran.
    assert!(
        out.lines().filter(|l| l.starts_with("ok:")).count() >= 60,
        "{out}"
    );
}
