//! `lampvault::freeze` (the module lvsnap calls) on real loop-mounted ext4, XFS and btrfs:
//! path → mount point, the thaw-on-drop guard, and the watchdog-guarded freeze.

#[path = "fsfreeze_loop/mod.rs"]
mod fsloop;
mod util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fsloop::{writable_within, writer_blocks, LoopFs, KINDS};
use lampvault::freeze::{
    self, FreezeError, GuardedFreeze, Target, ThawCause, WatchdogEvent, WatchdogOptions,
};
use nix::errno::Errno;

const PROBE: Duration = Duration::from_millis(300);
const SOON: Duration = Duration::from_secs(5);

#[test]
fn mount_point_of_a_deep_path_and_of_the_mount_point() {
    for kind in KINDS {
        let Some(fs) = LoopFs::new(kind) else { return };
        std::fs::create_dir_all(fs.path("a/b")).unwrap();
        let m = freeze::mount_point_of(&fs.path("a/b")).unwrap();
        assert_eq!(m.mount_point, fs.mnt, "{kind}");
        assert!(!m.is_mount_point, "{kind}");
        assert_eq!(m.entry.fstype, kind);
        let m = freeze::mount_point_of(&fs.mnt).unwrap();
        assert!(m.is_mount_point, "{kind}");
        match Target::open_mount_point(&fs.path("a/b")) {
            Err(FreezeError::NotAMountPoint { mount_point, .. }) => assert_eq!(mount_point, fs.mnt),
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[test]
fn btrfs_subvolume_resolves_to_its_mount_not_its_st_dev() {
    // Subvolumes have their own anonymous st_dev (spec §2): matching st_dev would fail here.
    let Some(fs) = LoopFs::new("btrfs") else {
        return;
    };
    let out = Command::new("btrfs")
        .args(["subvolume", "create"])
        .arg(fs.path("vol"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::stderr(&out));
    std::fs::create_dir_all(fs.path("vol/datadir")).unwrap();
    let m = freeze::mount_point_of(&fs.path("vol/datadir")).unwrap();
    assert_eq!(m.mount_point, fs.mnt);
    // Freezing through the subvolume freezes the whole filesystem.
    let g = freeze::freeze(&fs.path("vol")).unwrap();
    let (blocked, mut w) = writer_blocks(&fs, "f", PROBE);
    assert!(blocked, "writer to the top-level volume blocks");
    g.thaw().unwrap();
    assert_eq!(fsloop::wait_for(&mut w, SOON), Some(true));
}

#[test]
fn guard_thaws_on_drop_and_reports_errnos() {
    for kind in KINDS {
        let Some(fs) = LoopFs::new(kind) else { return };
        {
            let _g = freeze::freeze(&fs.mnt).unwrap();
            let e = freeze::freeze(&fs.mnt).unwrap_err();
            assert_eq!(e.errno(), Some(Errno::EBUSY), "{kind}");
            assert!(
                e.to_string()
                    .ends_with("freeze failed: Device or resource busy (already frozen)"),
                "{e}"
            );
            let (blocked, mut w) = writer_blocks(&fs, "f", PROBE);
            assert!(blocked, "{kind}: writer blocks while frozen");
            drop(_g);
            assert_eq!(
                fsloop::wait_for(&mut w, SOON),
                Some(true),
                "{kind}: writer finishes after drop"
            );
        }
        let e = freeze::thaw(&fs.mnt).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
        assert!(
            e.to_string()
                .ends_with("unfreeze failed: Invalid argument (not frozen)"),
            "{e}"
        );
        assert!(writable_within(&fs, "g", SOON));
    }
}

#[test]
fn guarded_freeze_thaws_in_reverse_and_reports_times() {
    let (Some(a), Some(b)) = (LoopFs::new("ext4"), LoopFs::new("xfs")) else {
        return;
    };
    let ts = vec![
        Target::open_mount_point(&a.mnt).unwrap(),
        Target::open_mount_point(&b.mnt).unwrap(),
    ];
    freeze::check_distinct(&ts).unwrap();
    let mut g = GuardedFreeze::spawn(ts, WatchdogOptions::new(Duration::from_secs(60))).unwrap();
    g.freeze_all().unwrap();
    // The watchdog holds the mounts busy: umount fails while it holds the freeze.
    let um = Command::new("umount").arg(&a.mnt).output().unwrap();
    assert!(
        !um.status.success(),
        "umount of a mount held by the watchdog must fail"
    );
    let (blocked, mut w) = writer_blocks(&b, "f", PROBE);
    assert!(blocked);
    assert!(g.check().is_none());
    let reports = g.thaw_all();
    assert_eq!(fsloop::wait_for(&mut w, SOON), Some(true));
    let paths: Vec<&Path> = reports.iter().map(|r| r.path.as_path()).collect();
    assert_eq!(paths, [b.mnt.as_path(), a.mnt.as_path()], "reverse order");
    for r in &reports {
        assert!(r.error().is_none() && r.thaw_errno.is_none(), "{r:?}");
        assert_eq!(r.cause, ThawCause::Asked);
        assert!(
            r.frozen >= PROBE.min(r.frozen) && r.frozen >= r.freeze_call,
            "{r:?}"
        );
    }
    assert!(
        reports[1].frozen >= PROBE,
        "a was frozen across the whole writer probe: {:?}",
        reports[1]
    );
}

#[test]
fn guarded_freeze_failure_thaws_the_ones_already_frozen() {
    let Some(a) = LoopFs::new("btrfs") else {
        return;
    };
    let ts = vec![
        Target::open(&a.mnt).unwrap(),
        Target::open(Path::new("/dev/shm")).unwrap(),
    ];
    let mut g = GuardedFreeze::spawn(ts, WatchdogOptions::new(Duration::from_secs(60))).unwrap();
    let e = g.freeze_all().unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EOPNOTSUPP), "{e}");
    assert!(matches!(g.finished(), Some(WatchdogEvent::Thawed)));
    assert!(writable_within(&a, "f", SOON));
    let reports = g.thaw_all();
    assert_eq!(reports.len(), 1);
}

#[test]
fn guarded_freeze_times_out() {
    let Some(a) = LoopFs::new("ext4") else { return };
    let mut g = GuardedFreeze::spawn(
        vec![Target::open(&a.mnt).unwrap()],
        WatchdogOptions::new(Duration::from_millis(200)),
    )
    .unwrap();
    g.freeze_all().unwrap();
    let start = std::time::Instant::now();
    while g.check().is_none() {
        assert!(start.elapsed() < SOON, "timeout never fired");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(matches!(g.finished(), Some(WatchdogEvent::TimedOut)));
    assert!(writable_within(&a, "f", SOON));
    let r = g.thaw_all();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].cause, ThawCause::Timeout);
    assert!(r[0].frozen >= Duration::from_millis(200), "{:?}", r[0]);
}

#[test]
fn zero_timeout_is_refused() {
    let e = GuardedFreeze::spawn(vec![], WatchdogOptions::new(Duration::ZERO))
        .err()
        .unwrap();
    assert!(e.to_string().contains("timeout"), "{e}");
}
