//! `fsfreeze` driven as a binary, as root, on loop-mounted ext4, XFS and btrfs made here,
//! side by side with util-linux `fsfreeze` (spec `snapshots.md` §1, §8; issue 4).
//!
//! "Frozen" is shown the way the spec asks: a writer (`dd conv=fsync`) sits in state `D` and
//! does not finish; "thawed" by that writer finishing. Never a synchronous wait on a writer.

#[path = "fsfreeze_loop/mod.rs"]
mod fsloop;
mod util;

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fsloop::{wait_for, writable_within, writer_blocks, LoopFs, KINDS};

const PROBE: Duration = Duration::from_millis(300);
const SOON: Duration = Duration::from_secs(5);
/// Issue 4: after a SIGKILL or a timeout, writable again within 1 second.
const WITHIN: Duration = Duration::from_secs(1);

fn ours() -> Command {
    Command::new(util::bin("fsfreeze"))
}

fn theirs() -> Command {
    Command::new("fsfreeze")
}

fn out(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn")
}

/// The subset of regex the case file uses: `^`, `$`, `.`, `.*` and `\x` (literal x).
fn matches(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Tok {
        Lit(char),
        Any,
        AnyRun,
    }
    let (anchored, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) if !p.ends_with('\\') => (true, p),
        _ => (false, p),
    };
    let mut toks = Vec::new();
    let mut it = p.chars().peekable();
    while let Some(c) = it.next() {
        toks.push(match c {
            '\\' => Tok::Lit(it.next().expect("dangling backslash")),
            '.' if it.peek() == Some(&'*') => {
                it.next();
                Tok::AnyRun
            }
            '.' => Tok::Any,
            c => Tok::Lit(c),
        });
    }
    fn here(toks: &[Tok], t: &[char], end: bool) -> bool {
        match toks.split_first() {
            None => !end || t.is_empty(),
            Some((Tok::AnyRun, rest)) => (0..=t.len()).any(|k| here(rest, &t[k..], end)),
            Some((tok, rest)) => {
                !t.is_empty()
                    && match tok {
                        Tok::Lit(c) => t[0] == *c,
                        _ => true,
                    }
                    && here(rest, &t[1..], end)
            }
        }
    }
    let t: Vec<char> = text.chars().collect();
    if anchored {
        here(&toks, &t, end)
    } else {
        (0..=t.len()).any(|k| here(&toks, &t[k..], end))
    }
}

#[test]
fn the_tiny_matcher() {
    assert!(matches("^a.c$", "abc"));
    assert!(!matches("^a.c$", "abcd"));
    assert!(matches("b\\(c", "ab(cd"));
    assert!(matches("^$", ""));
    assert!(!matches("x", "abc"));
    assert!(matches("^a.*c$", "abbbc") && matches("^a.*c$", "ac") && !matches("^a.*c$", "acb"));
    assert!(matches(
        " ms \\(freeze .* ms, thaw .* ms\\)$",
        "x 1 ms (freeze 2 ms, thaw 3 ms)"
    ));
}

/// First stderr line (without the newline).
fn line1(o: &Output) -> String {
    util::stderr(o).lines().next().unwrap_or("").to_string()
}

#[test]
fn usage_and_errno_matrix_side_by_side_with_util_linux() {
    if !util::require(
        "root (FIFREEZE on tmpfs answers EPERM otherwise)",
        util::is_root(),
    ) || !util::require("util-linux fsfreeze", util::have("fsfreeze"))
    {
        return;
    }
    let cases = std::fs::read_to_string(util::fixture("fsfreeze/usage.cases")).unwrap();
    let mut n = 0;
    for line in cases
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "bad case line {line:?}");
        let want: i32 = f[0].parse().unwrap();
        let args: Vec<&str> = if f[3] == "-" {
            vec![]
        } else {
            f[3].split_whitespace().collect()
        };
        let o = out(ours().args(&args));
        let err = util::stderr(&o);
        assert_eq!(
            util::status_code(&o),
            want,
            "fsfreeze {args:?}: exit; stderr {err:?}"
        );
        assert!(
            matches(f[2], err.lines().next().unwrap_or("")),
            "fsfreeze {args:?}: stderr {err:?} !~ {}",
            f[2]
        );
        assert!(o.stdout.is_empty(), "fsfreeze {args:?}: nothing on stdout");
        if f[1] != "-" {
            let t = out(theirs().args(&args));
            assert_eq!(
                util::status_code(&t),
                f[1].parse::<i32>().unwrap(),
                "util-linux {args:?}: {}",
                util::stderr(&t)
            );
            if f[1] == f[0] {
                assert!(
                    line1(&o).starts_with(&line1(&t)),
                    "ours {:?} vs util-linux {:?}",
                    line1(&o),
                    line1(&t)
                );
            }
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} cases");
}

#[test]
fn help_goes_to_stdout_with_an_example() {
    for args in [&["--help"][..], &["run", "--help"]] {
        let o = out(ours().args(args));
        assert_eq!(util::status_code(&o), 0);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains("fsfreeze run") && s.contains("Examples:"), "{s}");
        assert!(o.stderr.is_empty());
    }
}

#[test]
fn freeze_twice_is_ebusy_thaw_twice_is_einval_like_util_linux() {
    // util-linux tests/ts/fsfreeze/fsfreeze: freeze, freeze again -> EBUSY, thaw, thaw -> EINVAL.
    if !util::require("util-linux fsfreeze", util::have("fsfreeze")) {
        return;
    }
    for kind in KINDS {
        let Some(fs) = LoopFs::new(kind) else { return };
        let m = fs.mnt.display().to_string();
        // Each step is done by one tool and repeated by the other on the same state.
        for (first_ours, tool_order) in [
            (true, "ours then util-linux"),
            (false, "util-linux then ours"),
        ] {
            let run = |which_ours: bool, flag: &str| -> Output {
                if which_ours {
                    out(ours().arg(flag).arg(&fs.mnt))
                } else {
                    out(theirs().arg(flag).arg(&fs.mnt))
                }
            };
            let f1 = run(first_ours, "-f");
            assert_eq!(
                util::status_code(&f1),
                0,
                "{kind} {tool_order}: {}",
                util::stderr(&f1)
            );
            assert!(f1.stderr.is_empty(), "silent on success");
            let (blocked, mut w) = writer_blocks(&fs, "w", PROBE);
            assert!(blocked, "{kind}: a writer blocks (state D) while frozen");
            let o = run(true, "-f");
            let t = run(false, "-f");
            assert_eq!(
                (util::status_code(&o), util::status_code(&t)),
                (1, 1),
                "{kind}: second freeze"
            );
            assert_eq!(
                line1(&t),
                format!("fsfreeze: {m}: freeze failed: Device or resource busy")
            );
            assert_eq!(
                line1(&o),
                format!("fsfreeze: {m}: freeze failed: Device or resource busy (already frozen)")
            );
            assert_eq!(
                wait_for(&mut w, Duration::ZERO),
                None,
                "{kind}: writer still blocked"
            );
            let u1 = run(!first_ours, "-u");
            assert_eq!(util::status_code(&u1), 0, "{kind}: {}", util::stderr(&u1));
            assert!(u1.stderr.is_empty());
            assert_eq!(
                wait_for(&mut w, SOON),
                Some(true),
                "{kind}: writer completes after thaw"
            );
            let o = run(true, "-u");
            let t = run(false, "-u");
            assert_eq!(
                (util::status_code(&o), util::status_code(&t)),
                (1, 1),
                "{kind}: second thaw"
            );
            assert_eq!(
                line1(&t),
                format!("fsfreeze: {m}: unfreeze failed: Invalid argument")
            );
            assert_eq!(
                line1(&o),
                format!("fsfreeze: {m}: unfreeze failed: Invalid argument (not frozen)")
            );
        }
    }
}

#[test]
fn freeze_and_thaw_print_times_with_v() {
    let Some(fs) = LoopFs::new("ext4") else {
        return;
    };
    let o = out(ours().args(["-v", "-f"]).arg(&fs.mnt));
    assert_eq!(util::status_code(&o), 0);
    assert!(
        matches(
            &format!("^fsfreeze: {}: frozen \\(freeze took ", fs.mnt.display()),
            &line1(&o)
        ),
        "{}",
        line1(&o)
    );
    let o = out(ours().args(["-u", "-v"]).arg(&fs.mnt));
    assert_eq!(util::status_code(&o), 0);
    assert!(line1(&o).contains(": thawed (thaw took "), "{}", line1(&o));
}

#[test]
fn not_a_mount_point_is_refused_where_util_linux_freezes_the_parent() {
    if !util::require("util-linux fsfreeze", util::have("fsfreeze")) {
        return;
    }
    let Some(fs) = LoopFs::new("xfs") else { return };
    std::fs::create_dir_all(fs.path("sub")).unwrap();
    let o = out(ours().arg("-f").arg(fs.path("sub")));
    assert_eq!(util::status_code(&o), 1);
    assert_eq!(
        line1(&o),
        format!(
            "fsfreeze: {}: not a mount point (the filesystem holding it is mounted on {})",
            fs.path("sub").display(),
            fs.mnt.display()
        )
    );
    assert!(writable_within(&fs, "a", SOON), "our refusal froze nothing");
    // util-linux freezes the filesystem holding the directory; our -u accepts the same path.
    let t = out(theirs().arg("-f").arg(fs.path("sub")));
    assert_eq!(util::status_code(&t), 0);
    let (blocked, mut w) = writer_blocks(&fs, "b", PROBE);
    assert!(blocked);
    let o = out(ours().arg("-u").arg(fs.path("sub")));
    assert_eq!(util::status_code(&o), 0, "{}", util::stderr(&o));
    assert_eq!(wait_for(&mut w, SOON), Some(true));
    // run refuses it too, without running COMMAND.
    let o = out(ours()
        .arg("run")
        .arg(fs.path("sub"))
        .args(["--", "sh", "-c", "echo ran"]));
    assert_eq!(util::status_code(&o), 125);
    assert!(o.stdout.is_empty());
    assert!(line1(&o).contains("not a mount point"), "{}", line1(&o));
}

#[test]
fn eperm_without_cap_sys_admin_side_by_side() {
    if !util::require("setpriv", util::have("setpriv"))
        || !util::require("util-linux fsfreeze", util::have("fsfreeze"))
    {
        return;
    }
    let Some(fs) = LoopFs::new("ext4") else {
        return;
    };
    let nobody = |prog: &Path, flag: &str| {
        out(Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(prog)
            .arg(flag)
            .arg(&fs.mnt))
    };
    let fsf = std::path::PathBuf::from(
        String::from_utf8(out(Command::new("sh").args(["-c", "command -v fsfreeze"])).stdout)
            .unwrap()
            .trim(),
    );
    for flag in ["-f", "-u"] {
        let o = nobody(&util::bin("fsfreeze"), flag);
        let t = nobody(&fsf, flag);
        assert_eq!(
            (util::status_code(&o), util::status_code(&t)),
            (1, 1),
            "{flag}: {} / {}",
            util::stderr(&o),
            util::stderr(&t)
        );
        assert!(
            line1(&t).ends_with("failed: Operation not permitted"),
            "{}",
            line1(&t)
        );
        assert!(
            line1(&o).starts_with(&line1(&t)),
            "{} vs {}",
            line1(&o),
            line1(&t)
        );
        assert!(line1(&o).ends_with("needs CAP_SYS_ADMIN)"), "{}", line1(&o));
    }
    assert!(writable_within(&fs, "a", SOON));
}

#[test]
fn run_freezes_during_command_and_passes_its_status() {
    if !util::require("util-linux fsfreeze", util::have("fsfreeze")) {
        return;
    }
    for kind in KINDS {
        let Some(fs) = LoopFs::new(kind) else { return };
        // Inside COMMAND, util-linux's freeze must find the filesystem already frozen.
        let o = out(ours()
            .arg("run")
            .arg(&fs.mnt)
            .args([
                "--",
                "sh",
                "-c",
                "fsfreeze -f \"$0\" 2>/dev/null; echo inner=$?; exit 7",
            ])
            .arg(&fs.mnt));
        assert_eq!(util::status_code(&o), 7, "{kind}: {}", util::stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "inner=1\n",
            "{kind}: frozen while COMMAND ran"
        );
        assert!(
            o.stderr.is_empty(),
            "{kind}: silent without -v: {}",
            util::stderr(&o)
        );
        assert!(
            writable_within(&fs, "after", SOON),
            "{kind}: thawed after COMMAND"
        );
        // COMMAND killed by a signal: 128+N.
        let o = out(ours()
            .arg("run")
            .arg(&fs.mnt)
            .args(["--", "sh", "-c", "kill -9 $$"]));
        assert_eq!(util::status_code(&o), 137, "{kind}");
        assert!(writable_within(&fs, "after2", SOON));
    }
}

#[test]
fn run_writer_blocks_until_command_ends() {
    let Some(fs) = LoopFs::new("xfs") else { return };
    let mut child = ours()
        .arg("run")
        .arg(&fs.mnt)
        .args(["--", "sh", "-c", "echo ready; read x; true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "ready\n");
    let (blocked, mut w) = writer_blocks(&fs, "w", PROBE);
    assert!(blocked, "writer blocks while COMMAND runs");
    // The watchdog holds the mount point open: the frozen filesystem cannot be unmounted.
    let um = out(Command::new("umount").arg(&fs.mnt));
    assert!(!um.status.success(), "umount must fail while frozen by run");
    drop(child.stdin.take()); // COMMAND's read gets EOF and it exits
    assert!(child.wait().unwrap().success());
    assert_eq!(
        wait_for(&mut w, SOON),
        Some(true),
        "writer completes after COMMAND ends"
    );
}

#[test]
fn run_with_two_filesystems_thaws_in_reverse_and_reports_ms() {
    let (Some(a), Some(b)) = (LoopFs::new("ext4"), LoopFs::new("btrfs")) else {
        return;
    };
    let o = out(ours()
        .args(["run", "-v"])
        .arg(&a.mnt)
        .arg(&b.mnt)
        .args(["--", "sleep", "0.1"]));
    assert_eq!(util::status_code(&o), 0, "{}", util::stderr(&o));
    let err = util::stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    for (line, fs) in lines.iter().zip([&b, &a]) {
        let prefix = format!("fsfreeze: {}: frozen for ", fs.mnt.display());
        assert!(line.starts_with(&prefix), "{line}");
        let ms: f64 = line[prefix.len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(ms >= 100.0, "frozen across COMMAND's 100 ms: {line}");
        assert!(
            matches(" ms \\(freeze .* ms, thaw .* ms\\)$", line),
            "{line}"
        );
    }
    assert!(writable_within(&a, "x", SOON) && writable_within(&b, "x", SOON));
}

#[test]
fn run_failure_thaws_those_already_frozen_and_skips_command() {
    let Some(a) = LoopFs::new("ext4") else { return };
    let marker = util::Scratch::new("fsfreeze-marker");
    let m = marker.path("ran");
    let o = out(ours()
        .arg("run")
        .arg(&a.mnt)
        .arg("/dev/shm")
        .args(["--", "touch"])
        .arg(&m));
    assert_eq!(util::status_code(&o), 125);
    assert_eq!(line1(&o), "fsfreeze: /dev/shm: freeze failed: Operation not supported (this filesystem type cannot be frozen)");
    assert!(!m.exists(), "COMMAND must not run");
    assert!(
        writable_within(&a, "x", SOON),
        "the first filesystem was thawed"
    );
    // The same filesystem twice is refused before anything is frozen.
    let o = out(ours()
        .arg("run")
        .arg(&a.mnt)
        .arg(&a.mnt)
        .args(["--", "true"]));
    assert_eq!(util::status_code(&o), 125);
    assert!(
        line1(&o).ends_with(&format!("same filesystem as {}", a.mnt.display())),
        "{}",
        line1(&o)
    );
    // COMMAND not found / not executable: thawed, 127 / 126.
    let o = out(ours()
        .arg("run")
        .arg(&a.mnt)
        .args(["--", "/nonexistent-lv-cmd"]));
    assert_eq!(util::status_code(&o), 127);
    assert_eq!(
        line1(&o),
        "fsfreeze: /nonexistent-lv-cmd: No such file or directory"
    );
    let o = out(ours().arg("run").arg(&a.mnt).args(["--", "/etc/passwd"]));
    assert_eq!(util::status_code(&o), 126);
    assert_eq!(line1(&o), "fsfreeze: /etc/passwd: Permission denied");
    assert!(writable_within(&a, "y", SOON));
}

/// A tiny deterministic generator for "random moments" (seed printed for reproduction).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn seed() -> u64 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {s}");
    s
}

fn killpg(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

#[test]
fn sigkill_of_fsfreeze_at_random_moments_thaws_within_1s_50_times() {
    let fss: Vec<LoopFs> = KINDS.iter().filter_map(|k| LoopFs::new(k)).collect();
    if fss.len() < KINDS.len() {
        return;
    }
    let mut rng = Lcg(seed());
    let log = util::Scratch::new("fsfreeze-kill");
    for i in 0..50 {
        let fs = &fss[i % fss.len()];
        let mut child = ours()
            .arg("run")
            .arg(&fs.mnt)
            .args(["--", "sleep", "30"])
            .process_group(0)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(log.path(&format!("stderr{i}"))).unwrap())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.next(250));
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let st = child.wait().unwrap();
        let log_text: String = (0..=i)
            .map(|k| {
                format!(
                    "[{k}] {}",
                    std::fs::read_to_string(log.path(&format!("stderr{k}"))).unwrap_or_default()
                )
            })
            .collect();
        if st.signal() != Some(9) {
            let _ = Command::new("sh").args(["-c", "ps -eo pid,ppid,stat,wchan:30,etimes,args | grep -v ' ps ' | grep -E 'fsfreeze|sleep|dd '"]).status();
        }
        assert_eq!(
            st.signal(),
            Some(9),
            "round {i}: {st:?}, stderr {log_text:?}"
        );
        let ok = writable_within(fs, &format!("k{i}"), WITHIN);
        killpg(child.id());
        assert!(
            ok,
            "round {i} ({}, killed after {delay:?}): not writable within 1 s",
            fs.kind
        );
    }
}

#[test]
fn timeout_thaws_and_stops_command_50_times() {
    let fss: Vec<LoopFs> = KINDS.iter().filter_map(|k| LoopFs::new(k)).collect();
    if fss.len() < KINDS.len() {
        return;
    }
    let mut rng = Lcg(seed());
    for i in 0..50 {
        let fs = &fss[i % fss.len()];
        let ms = 50 + rng.next(200);
        let start = Instant::now();
        let o = out(ours()
            .args(["run", "-v", "--timeout", &format!("{ms}ms")])
            .arg(&fs.mnt)
            .args(["--", "sleep", "30"]));
        let took = start.elapsed();
        assert_eq!(
            util::status_code(&o),
            124,
            "round {i}: {}",
            util::stderr(&o)
        );
        let err = util::stderr(&o);
        assert!(
            err.contains(&format!(
                "fsfreeze: timeout after {ms}ms: filesystems thawed, sleep stopped"
            )),
            "{err}"
        );
        let frozen: f64 = err
            .split(": frozen for ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no -v line: {err}"));
        assert!(
            frozen >= ms as f64,
            "round {i}: frozen {frozen} ms < timeout {ms} ms"
        );
        assert!(
            took < Duration::from_millis(ms) + WITHIN,
            "round {i}: fsfreeze returned after {took:?} (timeout {ms} ms)"
        );
        assert!(
            writable_within(fs, &format!("t{i}"), WITHIN),
            "round {i}: not writable after the timeout"
        );
    }
}

fn start_ready(
    fs: &LoopFs,
    extra: &[&str],
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = ours()
        .arg("run")
        .args(extra)
        .arg(&fs.mnt)
        .args(["--", "sh", "-c", "echo ready; exec sleep 30 2>/dev/null"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "ready\n");
    (child, r)
}

#[test]
fn sigint_and_sigterm_thaw_then_reraise() {
    let Some(fs) = LoopFs::new("ext4") else {
        return;
    };
    for sig in ["INT", "TERM", "HUP"] {
        let (child, _r) = start_ready(&fs, &["-v"]);
        let pid = child.id();
        let (blocked, mut w) = writer_blocks(&fs, "w", PROBE);
        assert!(blocked);
        Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let want = match sig {
            "INT" => 2,
            "TERM" => 15,
            _ => 1,
        };
        assert_eq!(o.status.signal(), Some(want), "{sig}: dies by the signal");
        assert!(
            util::stderr(&o).contains(": frozen for "),
            "{sig}: thawed and reported first: {}",
            util::stderr(&o)
        );
        assert_eq!(
            wait_for(&mut w, SOON),
            Some(true),
            "{sig}: writer completes"
        );
        killpg(pid);
    }
}

#[test]
fn sigkill_of_the_watchdog_makes_fsfreeze_thaw_itself() {
    let Some(fs) = LoopFs::new("btrfs") else {
        return;
    };
    let (child, _r) = start_ready(&fs, &[]);
    let pid = child.id();
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let wd: Vec<&str> = kids
        .split_whitespace()
        .filter(|k| {
            std::fs::read_to_string(format!("/proc/{k}/comm"))
                .map(|c| c.trim() == "fsfreeze")
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(wd.len(), 1, "one watchdog child: {kids}");
    Command::new("kill")
        .args(["-KILL", wd[0]])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(util::status_code(&o), 125, "{}", util::stderr(&o));
    assert_eq!(
        line1(&o),
        "fsfreeze: the watchdog process died: filesystems thawed early, sh stopped"
    );
    assert!(writable_within(&fs, "x", WITHIN));
    killpg(pid);
}

#[test]
fn orphaned_watchdog_says_what_it_thawed() {
    let Some(fs) = LoopFs::new("xfs") else { return };
    let (mut child, _r) = start_ready(&fs, &[]);
    let mut err = child.stderr.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut err, &mut s).unwrap(); // EOF once the watchdog exits
    assert!(
        matches(
            &format!(
                "^fsfreeze: {}: watchdog: owner process died; thawed after .* ms$",
                fs.mnt.display()
            ),
            s.trim_end()
        ),
        "{s:?}"
    );
    assert!(writable_within(&fs, "x", WITHIN));
    killpg(child.id());
}

#[test]
fn closed_stderr_does_not_kill_run_while_frozen() {
    // SIGPIPE stays ignored: -v lines to a closed pipe must not stop the thaw or change the
    // exit status.
    let Some(fs) = LoopFs::new("ext4") else {
        return;
    };
    let o = util::sh(&format!(
        "set +e; {} run -v {} -- sh -c 'sleep 0.2; exit 3' 2>&1 >/dev/null | true; echo \"${{PIPESTATUS[0]}}\"",
        util::bin("fsfreeze").display(),
        fs.mnt.display()
    ));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "3",
        "{}",
        util::stderr(&o)
    );
    assert!(writable_within(&fs, "x", SOON));
    // The timeout's message to a closed stderr: still exit 124, still thawed.
    let o = util::sh(&format!(
        "set +e; {} run -v --timeout 100ms {} -- sleep 5 2>&1 >/dev/null | true; echo \"${{PIPESTATUS[0]}}\"",
        util::bin("fsfreeze").display(),
        fs.mnt.display()
    ));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "124",
        "{}",
        util::stderr(&o)
    );
    assert!(writable_within(&fs, "y", SOON));
}

#[test]
fn read_only_mount_freezes_as_a_no_op_like_util_linux() {
    // Spec §1: on a read-only mount the freeze succeeds and the state is "frozen".
    if !util::require("util-linux fsfreeze", util::have("fsfreeze")) {
        return;
    }
    let Some(fs) = LoopFs::new("ext4") else {
        return;
    };
    let ro = out(Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.mnt));
    assert!(ro.status.success(), "{}", util::stderr(&ro));
    for (a, b) in [(true, false), (false, true)] {
        let tool = |o: bool| if o { ours() } else { theirs() };
        let codes: Vec<i32> = [(a, "-f"), (b, "-f"), (b, "-u"), (a, "-u")]
            .iter()
            .map(|(o, flag)| util::status_code(&out(tool(*o).arg(flag).arg(&fs.mnt))))
            .collect();
        assert_eq!(
            codes,
            [0, 1, 0, 1],
            "freeze, freeze (EBUSY), thaw, thaw (EINVAL); ours first: {a}"
        );
    }
}

#[test]
fn lazy_unmount_while_frozen_still_gets_thawed() {
    // Spec §1: a frozen filesystem can be unmounted (here lazily, as the watchdog keeps it
    // busy) and stays frozen with no path to it. The watchdog thaws through its own fd, so
    // mounting the device again gives a writable filesystem.
    let Some(fs) = LoopFs::new("xfs") else { return };
    let mut child = ours()
        .arg("run")
        .arg(&fs.mnt)
        .args(["--", "sh", "-c", "echo ready; read x; true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut l = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut l)
        .unwrap();
    assert_eq!(l, "ready\n");
    let um = out(Command::new("umount").arg("-l").arg(&fs.mnt));
    assert!(um.status.success(), "lazy umount: {}", util::stderr(&um));
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", util::stderr(&o));
    let m = out(Command::new("mount").arg(&fs.dev).arg(&fs.mnt));
    assert!(m.status.success(), "remount: {}", util::stderr(&m));
    assert!(
        writable_within(&fs, "after", SOON),
        "the superblock was thawed through the watchdog's fd"
    );
}
