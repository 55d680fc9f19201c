//! lvsnap on real loop-mounted filesystems: btrfs snapshots, reflink copies on XFS
//! (reflink=1), refusals on ext4, the hold protocol, faults (SIGKILL / SIGTERM at each step)
//! and bad input. The lvm and dm backends run in a VM: `tests/lvsnap_vm.rs`.
//! Needs root (loop devices, mounts); skips loudly otherwise (fails under CI=true).

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::{bin, require, Scratch};

/// A loop-mounted filesystem, torn down on drop.
struct LoopFs {
    mnt: PathBuf,
    dev: String,
    _scratch: Scratch,
}

impl LoopFs {
    fn new(kind: &str) -> Option<LoopFs> {
        LoopFs::sized(kind, if kind == "xfs" { "320M" } else { "256M" })
    }
    fn sized(kind: &str, size: &str) -> Option<LoopFs> {
        let mkfs = format!("mkfs.{kind}");
        if !require("root (loop mounts)", util::is_root())
            || !require(
                &mkfs,
                util::have(&mkfs) || Path::new(&format!("/usr/sbin/{mkfs}")).exists(),
            )
        {
            return None;
        }
        let s = Scratch::new(&format!("lvsnap-{kind}"));
        let img = s.path("fs.img");
        let mnt = s.path("mnt");
        std::fs::create_dir(&mnt).unwrap();
        assert!(Command::new("truncate")
            .args(["-s", size])
            .arg(&img)
            .status()
            .unwrap()
            .success());
        let mut dev = String::new();
        for _ in 0..20 {
            let o = Command::new("losetup")
                .args(["-f", "--show"])
                .arg(&img)
                .output()
                .unwrap();
            if o.status.success() {
                dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!dev.is_empty(), "losetup failed");
        let args: Vec<&str> = match kind {
            "xfs" => vec!["-q", "-f", "-m", "reflink=1"],
            "btrfs" => vec!["-q", "-f"],
            _ => vec!["-q", "-F"],
        };
        let o = Command::new(&mkfs).args(&args).arg(&dev).output().unwrap();
        assert!(o.status.success(), "{mkfs}: {}", util::stderr(&o));
        assert!(Command::new("mount")
            .arg(&dev)
            .arg(&mnt)
            .status()
            .unwrap()
            .success());
        Some(LoopFs {
            mnt,
            dev,
            _scratch: s,
        })
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // Anything lvsnap mounted below us first.
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            let m = self.mnt.to_string_lossy().to_string();
            for l in mi.lines().rev() {
                if let Some(p) = l.split(' ').nth(4) {
                    if p.starts_with(&m) && p != m {
                        let _ = Command::new("umount").arg(p).status();
                    }
                }
            }
        }
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// lvsnap with its own state directory.
struct Lv {
    state: Scratch,
}

impl Lv {
    fn new() -> Lv {
        Lv {
            state: Scratch::new("lvsnap-state"),
        }
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin("lvsnap"));
        c.env("LVSNAP_STATE_DIR", &self.state.0);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn list(&self) -> String {
        String::from_utf8(self.run(&["list"]).stdout).unwrap()
    }
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {}: {}",
        util::status_code(o),
        util::stderr(o)
    );
}

/// A path as a `&str` that lives as long as the test (leaked: tests are short).
fn s(p: &Path) -> &'static str {
    Box::leak(p.to_str().unwrap().to_string().into_boxed_str())
}

fn btrfs_with_data() -> Option<LoopFs> {
    let fs = LoopFs::new("btrfs")?;
    let o = Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(fs.p("data"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", util::stderr(&o));
    std::fs::write(fs.p("data/f"), b"version 1").unwrap();
    std::fs::create_dir(fs.p("data/sub")).unwrap();
    std::fs::write(fs.p("data/sub/g"), vec![7u8; 100_000]).unwrap();
    Some(fs)
}

#[test]
fn btrfs_snapshot_is_readonly_listed_and_removed() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    let o = lv.run(&["create", s(&fs.p("data")), "--name", "s1", "--json"]);
    ok(&o);
    assert!(o.stderr.is_empty(), "nothing on stderr on success");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["backend"], "btrfs");
    assert_eq!(j["snapshot"], s(&fs.p("s1")));
    assert!(j["snapshot_ms"].as_f64().unwrap() > 0.0);
    assert!(j["lock_held_ms"].is_null() && j["frozen_ms"].is_null());
    std::fs::write(fs.p("data/f"), b"version 2").unwrap();
    assert_eq!(std::fs::read(fs.p("s1/f")).unwrap(), b"version 1");
    assert_eq!(std::fs::read(fs.p("s1/sub/g")).unwrap(), vec![7u8; 100_000]);
    let e = std::fs::write(fs.p("s1/new"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "a read-only snapshot");
    assert!(lampvault::btrfs::is_subvolume(&fs.p("s1")).unwrap());
    let list = lv.list();
    assert_eq!(
        list,
        format!(
            "s1\tbtrfs\tactive\t{}\t{}\t-\n",
            s(&fs.p("data")),
            s(&fs.p("s1"))
        )
    );
    let st = lv.run(&["status", "s1", "--json"]);
    ok(&st);
    let j: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(j["state"], "active");
    // Name clash: refused, the first one untouched.
    let o = lv.run(&["create", s(&fs.p("data")), "--name", "s1"]);
    assert_eq!(util::status_code(&o), 1);
    assert_eq!(
        util::stderr(&o),
        format!("lvsnap: {}: already exists\n", s(&fs.p("s1")))
    );
    ok(&lv.run(&["remove", "s1"]));
    assert!(!fs.p("s1").exists());
    assert_eq!(lv.list(), "");
    let o = lv.run(&["remove", "s1"]);
    assert_eq!(
        util::stderr(&o),
        "lvsnap: s1: no such snapshot (see lvsnap list)\n"
    );
    assert_eq!(util::status_code(&o), 1);
    // A plain directory on btrfs (not a subvolume): btrfs file clones (reflink backend).
    let o = lv.run(&[
        "create",
        s(&fs.p("data/sub")),
        "--name",
        "r1",
        "--dest",
        s(&fs.mnt),
        "--json",
    ]);
    ok(&o);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["backend"], "reflink");
    assert_eq!(std::fs::read(fs.p("r1/g")).unwrap(), vec![7u8; 100_000]);
    ok(&lv.run(&["remove", "r1"]));
    assert!(!fs.p("r1").exists());
}

#[test]
fn btrfs_refusals_change_nothing() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--name", "x", "--freeze", "MNT"], 2, "lvsnap: --freeze cannot be used with the btrfs backend: a btrfs snapshot hangs on a frozen filesystem; use --hold for consistency\n"),
        (&["--name", "x", "--size", "50M"], 2, "lvsnap: --size applies to the lvm backend only, not btrfs\n"),
        (&["--name", "-bad"], 2, ""),
        (&["--name", "a/b"], 2, "lvsnap: invalid snapshot name 'a/b': use 1-64 of A-Z a-z 0-9 . _ + - (not starting with - or .)\n"),
        (&["--name", "x", "--cow", "/dev/null"], 2, "lvsnap: --cow applies to the dm backend only, not btrfs\n"),
        (&["--name", "x", "--cow-spare", "/dev/null"], 2, "lvsnap: --cow-spare applies to the dm backend only, not btrfs\n"),
        (&["--name", "x", "--hold", "echo READY; cat", "--hold-mode", "sometimes"], 2, ""),
    ];
    for (args, code, err) in cases {
        let mut a = vec!["create", s(&fs.p("data"))];
        a.extend(
            args.iter()
                .map(|x| if *x == "MNT" { s(&fs.mnt) } else { x }),
        );
        let o = lv.run(&a);
        assert_eq!(util::status_code(&o), *code, "{a:?}: {}", util::stderr(&o));
        if !err.is_empty() {
            assert_eq!(util::stderr(&o), *err, "{a:?}");
        }
    }
    // A directory on btrfs that is not a subvolume.
    let o = lv.run(&[
        "create",
        s(&fs.p("data/sub")),
        "--name",
        "x",
        "--backend",
        "btrfs",
    ]);
    assert_eq!(
        util::stderr(&o),
        format!("lvsnap: {}: not a btrfs subvolume\n", s(&fs.p("data/sub")))
    );
    // Not a device, subvolume or directory.
    let o = lv.run(&["create", s(&fs.p("data/f")), "--name", "x"]);
    assert_eq!(
        util::stderr(&o),
        format!(
            "lvsnap: {}: not a block device, btrfs subvolume or directory\n",
            s(&fs.p("data/f"))
        )
    );
    let o = lv.run(&["create", "/nonexistent", "--name", "x"]);
    assert_eq!(
        util::stderr(&o),
        "lvsnap: /nonexistent: No such file or directory\n"
    );
    // Not root.
    if util::have("setpriv") {
        let mut o = lv.cmd();
        o.args(["create", s(&fs.p("data")), "--name", "x"]);
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(o.get_program())
            .args(o.get_args());
        c.env("LVSNAP_STATE_DIR", &lv.state.0);
        let out = c.output().unwrap();
        assert_eq!(util::status_code(&out), 1);
        assert_eq!(util::stderr(&out), "lvsnap: must be run as root\n");
    }
    let names: Vec<_> = std::fs::read_dir(&fs.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["data"]);
    assert_eq!(lv.list(), "");
}

fn sha(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn reflink_copy_on_xfs_shares_extents_and_keeps_content() {
    let Some(fs) = LoopFs::new("xfs") else { return };
    let lv = Lv::new();
    std::fs::create_dir_all(fs.p("db/sub")).unwrap();
    let o = Command::new("dd")
        .args(["if=/dev/urandom", "bs=1M", "count=32", "status=none"])
        .arg(format!("of={}", s(&fs.p("db/big"))))
        .status()
        .unwrap();
    assert!(o.success());
    std::fs::write(fs.p("db/sub/small"), b"row 1\n").unwrap();
    std::os::unix::fs::symlink("sub/small", fs.p("db/link")).unwrap();
    let before = sha(&fs.p("db/big"));
    let df = |p: &Path| nix::sys::statvfs::statvfs(p).unwrap().blocks_free();
    let free0 = df(&fs.mnt);
    let o = lv.run(&[
        "create",
        s(&fs.p("db")),
        "--name",
        "copy",
        "--hold",
        "echo READY; cat >/dev/null",
        "--json",
    ]);
    ok(&o);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["backend"], "reflink");
    assert!(j["lock_held_ms"].as_f64().unwrap() >= j["snapshot_ms"].as_f64().unwrap());
    // 32 MiB copied, but (almost) no new blocks: the extents are shared.
    let used = free0.saturating_sub(df(&fs.mnt))
        * nix::sys::statvfs::statvfs(&fs.mnt).unwrap().fragment_size();
    assert!(used < 4 << 20, "reflink copy used {used} bytes");
    assert_eq!(sha(&fs.p("copy/big")), before);
    assert_eq!(
        std::fs::read_link(fs.p("copy/link")).unwrap(),
        Path::new("sub/small")
    );
    std::fs::write(fs.p("db/sub/small"), b"row 2\n").unwrap();
    assert_eq!(std::fs::read(fs.p("copy/sub/small")).unwrap(), b"row 1\n");
    ok(&lv.run(&["remove", "copy"]));
    assert!(!fs.p("copy").exists());
}

#[test]
fn reflink_on_ext4_is_refused_and_leaves_nothing() {
    let Some(fs) = LoopFs::new("ext4") else {
        return;
    };
    let lv = Lv::new();
    std::fs::create_dir_all(fs.p("db")).unwrap();
    std::fs::write(fs.p("db/a"), b"x").unwrap();
    let o = lv.run(&["create", s(&fs.p("db")), "--name", "c"]);
    assert_eq!(util::status_code(&o), 1);
    assert_eq!(util::stderr(&o), format!("lvsnap: {}: reflink failed: Operation not supported (no reflink on this filesystem: use XFS with reflink=1 or btrfs)\n", s(&fs.p("c/a"))));
    assert!(!fs.p("c").exists());
    assert_eq!(lv.list(), "");
}

#[test]
fn exec_runs_the_command_on_the_snapshot_and_always_removes_it() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    let mnt = fs.p("view");
    std::fs::create_dir(&mnt).unwrap();
    let o = lv.run(&["exec", s(&fs.p("data")), "--name", "e1", "--mount", s(&mnt), "--", "sh", "-c", "cat \"$LVSNAP_MOUNT/f\"; echo \" $LVSNAP_NAME\"; touch \"$LVSNAP_MOUNT/w\" 2>/dev/null || echo ro"]);
    ok(&o);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "version 1 e1\nro\n");
    assert!(!fs.p("e1").exists());
    assert_eq!(lv.list(), "");
    // A failing command: exit 4, still cleaned up.
    let o = lv.run(&["exec", s(&fs.p("data")), "--", "sh", "-c", "exit 7"]);
    assert_eq!(util::status_code(&o), 4);
    assert_eq!(util::stderr(&o), "lvsnap: sh: exited with status 7\n");
    assert_eq!(lv.list(), "");
    assert_eq!(
        std::fs::read_dir(&fs.mnt).unwrap().count(),
        2,
        "only data and view remain"
    );
    // Data through a pipe that closes early: the command sees EPIPE, lvsnap still cleans.
    let o = util::sh(&format!(
        "LVSNAP_STATE_DIR={} {} exec {} -- sh -c 'cat \"$LVSNAP_MOUNT/sub/g\"' | head -c1 | wc -c",
        s(&lv.state.0),
        s(&bin("lvsnap")),
        s(&fs.p("data"))
    ));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1");
    assert_eq!(lv.list(), "");
}

#[test]
fn hold_failures_undo_everything() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    let data = s(&fs.p("data")).to_string();
    let o = lv.run(&[
        "create",
        &data,
        "--name",
        "h",
        "--hold",
        "echo connecting; exit 3",
    ]);
    assert_eq!(util::status_code(&o), 1);
    assert_eq!(util::stderr(&o), "connecting\nlvsnap: hold command 'echo connecting; exit 3' exited with status 3 before printing READY\n");
    let o = lv.run(&[
        "create",
        &data,
        "--name",
        "h",
        "--hold",
        "sleep 5",
        "--hold-timeout",
        "1",
    ]);
    assert_eq!(
        util::stderr(&o),
        "lvsnap: hold command 'sleep 5': no READY within 1 s\n"
    );
    let o = lv.run(&[
        "create",
        &data,
        "--name",
        "h",
        "--hold",
        "echo READY; cat >/dev/null; echo unlock failed >&2; exit 5",
    ]);
    assert_eq!(util::status_code(&o), 1);
    assert_eq!(util::stderr(&o), "unlock failed\nlvsnap: hold command 'echo READY; cat >/dev/null; echo unlock failed >&2; exit 5' failed on release: status 5\n");
    assert!(!fs.p("h").exists(), "snapshot of a failed hold removed");
    assert_eq!(lv.list(), "");
}

/// Start lvsnap paused at `step` (test hook), wait until it says so.
fn start_paused(lv: &Lv, args: &[&str], step: &str) -> Child {
    let mut c = lv
        .cmd()
        .args(args)
        .env("LVSNAP_TEST_PAUSE", step)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = c.stderr.take().unwrap();
    let mut got = Vec::new();
    let t = Instant::now();
    use std::io::Read;
    let mut b = [0u8; 1];
    while t.elapsed() < Duration::from_secs(20)
        && !String::from_utf8_lossy(&got).contains(&format!("paused at {step}\n"))
    {
        if err.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        got.push(b[0]);
    }
    assert!(
        String::from_utf8_lossy(&got).contains(&format!("paused at {step}")),
        "never paused: {}",
        String::from_utf8_lossy(&got)
    );
    c
}

fn wait_for_file(p: &Path) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sigkill_at_each_step_releases_the_lock_and_leaves_a_listed_snapshot() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    let view = fs.p("view");
    std::fs::create_dir(&view).unwrap();
    for (i, step) in ["held", "snapshot", "mounted"].iter().enumerate() {
        let name = format!("k{i}");
        let released = fs.mnt.join(format!("released-{step}"));
        let hold = format!("echo READY; cat >/dev/null; touch {}", s(&released));
        let mut args = vec!["create", s(&fs.p("data")), "--name", &name, "--hold", &hold];
        if *step == "mounted" {
            args.extend(["--mount", s(&view)]);
        }
        let mut c = start_paused(&lv, &args, step);
        c.kill().unwrap();
        c.wait().unwrap();
        if *step != "mounted" {
            assert!(
                wait_for_file(&released),
                "{step}: the hold command saw stdin close"
            );
        }
        let list = lv.list();
        assert!(
            list.starts_with(&format!("{name}\tbtrfs\tincomplete\t")),
            "{step}: {list}"
        );
        if *step == "mounted" {
            let o = lv.run(&["remove", &name]);
            assert_eq!(
                util::stderr(&o),
                format!("lvsnap: {name}: mounted on {} (use --umount)\n", s(&view))
            );
            ok(&lv.run(&["remove", &name, "--umount"]));
        } else {
            ok(&lv.run(&["remove", &name]));
        }
        assert!(!fs.p(&name).exists());
        assert_eq!(lv.list(), "");
    }
}

#[test]
fn sigterm_undoes_in_reverse_then_dies_by_the_signal() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    let view = fs.p("view");
    std::fs::create_dir(&view).unwrap();
    for step in ["held", "snapshot", "mounted"] {
        let released = fs.mnt.join(format!("released-{step}"));
        let hold = format!("echo READY; cat >/dev/null; touch {}", s(&released));
        let mut args = vec!["create", s(&fs.p("data")), "--name", "t", "--hold", &hold];
        if step == "mounted" {
            args.extend(["--mount", s(&view)]);
        }
        let mut c = start_paused(&lv, &args, step);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = c.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM), "{step}");
        if step != "mounted" {
            assert!(
                released.exists(),
                "{step}: lock released before lvsnap died"
            );
        }
        assert!(!fs.p("t").exists(), "{step}: snapshot removed");
        assert_eq!(lv.list(), "", "{step}");
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mi.contains(s(&view)), "{step}: unmounted");
    }
}

#[test]
fn watch_and_rollback_refuse_path_backends() {
    let Some(fs) = btrfs_with_data() else { return };
    let lv = Lv::new();
    ok(&lv.run(&["create", s(&fs.p("data")), "--name", "w"]));
    let o = lv.run(&["watch", "w", "--once"]);
    assert_eq!(util::status_code(&o), 2);
    assert_eq!(
        util::stderr(&o),
        "lvsnap: w: btrfs snapshots share space with their origin: nothing to watch\n"
    );
    let o = lv.run(&["rollback", "w"]);
    assert_eq!(util::status_code(&o), 2);
    let o = lv.run(&["watch", "w", "--extend-at", "0%"]);
    assert_eq!(util::status_code(&o), 2);
    ok(&lv.run(&["remove", "w"]));
}

/// MariaDB end to end: an insert loop into an InnoDB and a MyISAM table, `--hold
/// scripts/hold-mysql` (FTWRL in one session) around a btrfs snapshot; the snapshot's
/// datadir starts as a server with MyISAM tables clean (no repair) and both tables holding
/// the same contiguous rows; the lock-held time is reported.
#[test]
fn mariadb_snapshot_under_ftwrl_starts_clean() {
    if !util::is_root()
        || !require("mariadbd", Path::new("/usr/sbin/mariadbd").exists())
        || !require(
            "mkfs.btrfs",
            util::have("mkfs.btrfs") || Path::new("/usr/sbin/mkfs.btrfs").exists(),
        )
    {
        return;
    }
    let Some(fs) = LoopFs::sized("btrfs", "1G") else {
        return;
    };
    let lv = Lv::new();
    let sb = util::script("mariadb-sandbox");
    let hold = util::script("hold-mysql");
    let script = format!(
        r#"
export LVSNAP_STATE_DIR={state}
m={mnt}; SB={sb}
cleanup() {{ [ -n "${{loop:-}}" ] && kill $loop 2>/dev/null; [ -f $m/rw/m.pid ] && kill $(cat $m/rw/m.pid); $SB destroy $m/db >/dev/null 2>&1; sleep 1; }}
trap cleanup EXIT
btrfs -q subvolume create $m/db
eval "$($SB start --dir $m/db --no-binlog)"
$SB sql $m/db "CREATE DATABASE t; CREATE TABLE t.i (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE t.m (id INT PRIMARY KEY) ENGINE=MyISAM;"
( for n in $(seq 1 300000); do echo "INSERT INTO t.i VALUES ($n); INSERT INTO t.m VALUES ($n);"; done | $SB client $m/db >$m/loop.log 2>&1 ) &
loop=$!
sleep 2
{lvsnap} create $m/db --name snap --hold "{hold} --no-defaults -S $MARIADB_SOCKET -uroot" --json
kill $loop 2>/dev/null || {{ echo insert loop ended early; cat $m/loop.log; }} >&2; loop=
btrfs -q subvolume snapshot $m/snap $m/rw
rm -f $m/rw/mysqld.sock $m/rw/mysqld.pid
setsid /usr/sbin/mariadbd --no-defaults --datadir=$m/rw/data --socket=$m/rw/s.sock --skip-networking --user=root --pid-file=$m/rw/m.pid --log-error=$m/rw/err.log --tmpdir=$m/rw/tmp --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
for k in $(seq 120); do mariadb --no-defaults -S $m/rw/s.sock -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
mariadb --no-defaults -S $m/rw/s.sock -uroot -N -B -e "CHECK TABLE t.m; SELECT 'i', COUNT(*), MAX(id) FROM t.i; SELECT 'm', COUNT(*), MAX(id) FROM t.m;"
grep -ci "crashed" $m/rw/err.log || true
{lvsnap} remove snap
# SIGKILL while the lock is held: hold-mysql sees EOF and unlocks; the leftover is listed.
LVSNAP_TEST_PAUSE=snapshot {lvsnap} create $m/db --name k --hold "{hold} --no-defaults -S $MARIADB_SOCKET -uroot" 2>$m/k.err &
k=$!
for i in $(seq 200); do grep -q 'paused at snapshot' $m/k.err && break; sleep 0.05; done
timeout 2 $SB sql $m/db "INSERT INTO t.m VALUES (999999998)" >/dev/null 2>&1 || echo "blocked while held"
kill -9 $k
timeout 20 $SB sql $m/db "INSERT INTO t.m VALUES (999999999)" && echo "writes resume after SIGKILL"
{lvsnap} list | cut -f1,3
{lvsnap} remove k
"#,
        state = s(&lv.state.0),
        mnt = s(&fs.mnt),
        sb = s(&sb),
        hold = s(&hold),
        lvsnap = s(&bin("lvsnap")),
    );
    let o = util::sh(&script);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}\n{}", util::stderr(&o));
    assert!(
        !util::stderr(&o).contains("insert loop ended early"),
        "{}",
        util::stderr(&o)
    );
    let mut lines = out.lines();
    let j: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let held = j["lock_held_ms"].as_f64().expect("lock-held time reported");
    eprintln!(
        "mariadb FTWRL held {held} ms, snapshot {} ms",
        j["snapshot_ms"]
    );
    assert_eq!(lines.next(), Some("t.m\tcheck\tstatus\tOK"), "{out}");
    let row = |l: Option<&str>| -> (u64, u64) {
        let f: Vec<u64> = l
            .unwrap()
            .split('\t')
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        (f[0], f[1])
    };
    let (ni, maxi) = row(lines.next());
    let (nm, maxm) = row(lines.next());
    assert!(ni > 0 && ni == maxi && nm == maxm, "contiguous rows: {out}");
    // The loop inserts into t.i, then t.m: FTWRL can fall between the two.
    assert!(ni == nm || ni == nm + 1, "{out}");
    assert_eq!(lines.next(), Some("0"), "no MyISAM table marked as crashed");
    assert_eq!(lines.next(), Some("blocked while held"), "{out}");
    assert_eq!(lines.next(), Some("writes resume after SIGKILL"), "{out}");
    assert_eq!(lines.next(), Some("k\tincomplete"), "{out}");
    assert_eq!(lv.list(), "");
}

/// PostgreSQL end to end: inserts of 1000-row transactions running, `--hold
/// scripts/hold-postgres` (CHECKPOINT, nothing locked) around a btrfs snapshot of the whole
/// cluster directory; a server started on a copy of the snapshot recovers like after a power
/// cut and holds only whole transactions.
#[test]
fn postgres_snapshot_recovers_with_whole_transactions() {
    let pg_ctl = Path::new("/usr/lib/postgresql/15/bin/pg_ctl");
    if !util::is_root() || !require("PostgreSQL 15", pg_ctl.exists() && util::have("psql")) {
        return;
    }
    let Some(fs) = LoopFs::sized("btrfs", "1G") else {
        return;
    };
    let lv = Lv::new();
    std::fs::set_permissions(&fs.mnt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = format!(
        r#"
export LVSNAP_STATE_DIR={state} PGSB_DIR={m}/pg PGSB_PORT=54391
m={m}; PGSB={pgsb}
cleanup() {{ [ -n "${{w:-}}" ] && kill $w 2>/dev/null; runuser -u pgtest -- {pg_ctl} -D $m/rw/primary -m immediate stop >/dev/null 2>&1; $PGSB destroy >/dev/null 2>&1; sleep 0.5; }}
trap cleanup EXIT
btrfs -q subvolume create $m/pg
$PGSB init --archive-command '' >/dev/null
$PGSB start
$PGSB sql "create table t (id serial primary key, v int)"
( while :; do $PGSB sql "insert into t (v) select g from generate_series(1,1000) g" >/dev/null || break; done ) &
w=$!
sleep 2
{lvsnap} create $m/pg --name ps --hold "{hold} -h $m/pg/sock -p $PGSB_PORT -U postgres -d postgres" --json
kill $w; w=
btrfs -q subvolume snapshot $m/ps $m/rw
rm -f $m/rw/primary/postmaster.pid; mkdir -p $m/rw/sock2; chown -R pgtest $m/rw
runuser -u pgtest -- {pg_ctl} -D $m/rw/primary -o "-p 54392 -c unix_socket_directories=$m/rw/sock2" -l $m/rw/log -w start >/dev/null
psql -h $m/rw/sock2 -p 54392 -U postgres -d postgres -Atc "select count(*) % 1000, count(*) > 0 from t"
grep -c "database system was not properly shut down" $m/rw/log || true
{lvsnap} remove ps
"#,
        state = s(&lv.state.0),
        m = s(&fs.mnt),
        pgsb = s(&util::script("pg-sandbox")),
        pg_ctl = s(pg_ctl),
        hold = s(&util::script("hold-postgres")),
        lvsnap = s(&bin("lvsnap")),
    );
    let o = util::sh(&script);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}\n{}", util::stderr(&o));
    let mut lines = out.lines();
    let j: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(j["lock_held_ms"].as_f64().is_some(), "{out}");
    assert_eq!(
        lines.next(),
        Some("0|t"),
        "whole 1000-row transactions only, and some: {out}"
    );
    assert_eq!(
        lines.next(),
        Some("1"),
        "the copy went through crash recovery: {out}"
    );
    assert_eq!(lv.list(), "");
}
