//! lvsnap's lvm and dm backends, which need device-mapper: run inside QEMU guests booting
//! Debian's stock kernel (`scripts/vmtest`, guest scripts `scripts/vmtest.d/lvsnap.sh` and
//! `lvsnap-mariadb.sh`; two VMs, one after the other, ~2 minutes in all).
//! First VM (~1.5 minutes under TCG): XFS LV with a writer, `exec --freeze`
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

use std::path::Path;

#[test]
fn lvm_and_dm_backends_in_a_vm() {
    if !util::can_run_vm() {
        return;
    }
    let out = util::run_vm(
        |c| {
            c.args(["-t", "400", "-b"])
                .arg(util::bin("lvsnap"))
                .args(["-d", "2G", "-d", "1G", "-d", "128M"])
                .arg(util::script("vmtest.d/lvsnap.sh"));
        },
        "lvsnap vm: all checks passed",
    );
    // Sanity: the checks really ran.
    assert!(
        out.lines().filter(|l| l.starts_with("ok:")).count() >= 60,
        "{out}"
    );
}

/// MariaDB on an XFS LV in the guest (`--hostroot`: the host's mariadbd), an insert loop
/// into an InnoDB and a MyISAM table, `lvsnap create --hold scripts/hold-mysql` (lock only
/// around LVM's suspend): a server started on the snapshot finds MyISAM clean and both
/// tables contiguous and equal (±1 statement).
#[test]
fn mariadb_on_lvm_with_the_lock_around_the_suspend_only() {
    if !util::can_run_vm() || !util::require("mariadbd", Path::new("/usr/sbin/mariadbd").exists()) {
        return;
    }
    let out = util::run_vm(
        |c| {
            c.args(["-H", "-m", "2048", "-t", "300", "-d", "2G"])
                // The programs go in with -b (guest /usr/local/bin) and are named by PATH:
                // the guest's /tmp is its own tmpfs, so host paths under /tmp (a clone
                // there) are not visible in the chroot.
                .arg("-b")
                .arg(util::bin("lvsnap"))
                .arg("-b")
                .arg(util::script("mariadb-sandbox"))
                .arg("-b")
                .arg(util::script("hold-mysql"))
                .arg(util::script("vmtest.d/lvsnap-mariadb.sh"))
                .args(["lvsnap", "mariadb-sandbox", "hold-mysql"]);
        },
        "lvsnap mariadb vm: all checks passed",
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok:")).count(),
        8,
        "{out}"
    );
    for l in out.lines().filter(|l| l.starts_with("MARIADB")) {
        eprintln!("{l}");
    }
}
