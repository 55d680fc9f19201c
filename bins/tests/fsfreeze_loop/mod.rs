//! Loop-mounted ext4 / XFS / btrfs filesystems made by the fsfreeze tests themselves
//! (spec `snapshots.md` §8.1): a sparse image in /var/tmp, `losetup`, `mkfs.*`, `mount`.
//! Dropping a [`LoopFs`] thaws it first (a frozen filesystem survives its umount), then
//! unmounts, detaches and deletes — also when the test panicked.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util;

pub const KINDS: [&str; 3] = ["ext4", "xfs", "btrfs"];

pub struct LoopFs {
    pub kind: &'static str,
    pub dir: PathBuf,
    pub img: PathBuf,
    pub dev: String,
    pub mnt: PathBuf,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// True when loop filesystems can be made here (root, losetup, mkfs.<kind>); otherwise skip
/// loudly, or fail under CI.
pub fn available(kind: &str) -> bool {
    util::require("root (loop mounts, FIFREEZE)", util::is_root())
        && util::require("losetup", util::have("losetup"))
        && util::require(&format!("mkfs.{kind}"), util::have(&format!("mkfs.{kind}")))
        && util::require("/dev/loop-control", Path::new("/dev/loop-control").exists())
}

impl LoopFs {
    /// Make and mount a fresh filesystem of `kind`; `None` when skipped (see [`available`]).
    pub fn new(kind: &'static str) -> Option<LoopFs> {
        if !available(kind) {
            return None;
        }
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(format!(
            "/var/tmp/lv-fsfreeze-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join(format!("{kind}.img"));
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        // XFS needs >= 300 MB; sparse files cost nothing until written.
        let size: u64 = if kind == "xfs" { 320 << 20 } else { 128 << 20 };
        std::fs::File::create(&img).unwrap().set_len(size).unwrap();
        let mut fs = LoopFs {
            kind,
            dir,
            img,
            dev: String::new(),
            mnt,
        };
        // losetup -f races with parallel tests: retry.
        for attempt in 0.. {
            match run(Command::new("losetup").args(["-f", "--show"]).arg(&fs.img)) {
                Ok(dev) => {
                    fs.dev = dev;
                    break;
                }
                Err(e) if attempt < 10 => {
                    eprintln!("retrying losetup: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{e}"),
            }
        }
        let mkfs = match kind {
            "ext4" => run(Command::new("mkfs.ext4").args(["-q", "-F", &fs.dev])),
            "xfs" => run(Command::new("mkfs.xfs").args(["-q", "-f", &fs.dev])),
            "btrfs" => run(Command::new("mkfs.btrfs").args(["-q", "-f", &fs.dev])),
            _ => panic!("unknown fs {kind}"),
        };
        mkfs.unwrap();
        run(Command::new("mount").arg(&fs.dev).arg(&fs.mnt)).unwrap();
        Some(fs)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // Thaw first: umount of a frozen fs succeeds and leaves it frozen for good.
        if !self.mnt.as_os_str().is_empty() {
            let _ = Command::new("fsfreeze").arg("-u").arg(&self.mnt).output();
            let start = Instant::now();
            loop {
                let r = Command::new("umount").arg(&self.mnt).output();
                if matches!(&r, Ok(o) if o.status.success())
                    || start.elapsed() > Duration::from_secs(10)
                {
                    break;
                }
                let _ = Command::new("fsfreeze").arg("-u").arg(&self.mnt).output();
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).output();
        }
        if !self.dev.is_empty() {
            let _ = Command::new("losetup").arg("-d").arg(&self.dev).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The state letter of `/proc/PID/stat` (`D` = uninterruptible sleep), or None when gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.chars().next()
}

/// Start a writer (`dd ... conv=fsync`) of 4 KiB into `path`, in the background.
pub fn start_writer(path: &Path) -> std::process::Child {
    Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", path.display()))
        .args(["bs=4k", "count=1", "conv=fsync", "status=none"])
        .spawn()
        .expect("dd")
}

/// Wait up to `limit` for `child` to exit; Some(success) or None if still running.
pub fn wait_for(child: &mut std::process::Child, limit: Duration) -> Option<bool> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st.success());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True when a writer to `fs` is blocked: it sits in `D` state and does not finish within
/// `probe`. The writer is returned so the caller can check it completes after the thaw.
pub fn writer_blocks(fs: &LoopFs, name: &str, probe: Duration) -> (bool, std::process::Child) {
    let mut w = start_writer(&fs.path(name));
    let done = wait_for(&mut w, probe);
    let state = proc_state(w.id());
    (done.is_none() && state == Some('D'), w)
}

/// True when a writer to `fs` completes (successfully) within `limit`.
pub fn writable_within(fs: &LoopFs, name: &str, limit: Duration) -> bool {
    let mut w = start_writer(&fs.path(name));
    match wait_for(&mut w, limit) {
        Some(ok) => ok,
        None => {
            // Leave it to finish after the LoopFs drop thaws; do not wait here.
            std::mem::forget(w);
            false
        }
    }
}
