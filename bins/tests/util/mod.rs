//! Helpers shared by the integration tests: run the real binaries, find peers, scratch dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Path of one of this package's binaries (built by cargo before integration tests run).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    dir.join(name)
}

/// The project's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// `scripts/<name>`.
pub fn script(name: &str) -> PathBuf {
    root().join("scripts").join(name)
}

/// A fresh scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::var_os("LAMPVAULT_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!(
            "lv-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("LAMPVAULT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A small tmpfs mounted at `dir` (created) for full-disk tests; unmounted when dropped.
/// Needs root.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("lvtest-tmpfs")
            .arg(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "mount tmpfs: {}", stderr(&o));
        Tmpfs(dir.to_path_buf())
    }
    /// Change the size (`mount -o remount,size=`).
    pub fn resize(&self, size: &str) {
        let o = Command::new("mount")
            .arg("-o")
            .arg(format!("remount,size={size}"))
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "remount tmpfs: {}", stderr(&o));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// True when `prog` is found on PATH (or is an existing path).
pub fn have(prog: &str) -> bool {
    if prog.contains('/') {
        return Path::new(prog).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// A peer the test needs. Missing: fail under CI (`CI=true`), otherwise skip loudly.
/// Returns false when the test should return early.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
    {
        panic!("peer missing in CI: {what}");
    }
    eprintln!("SKIP: {what} is not available here");
    false
}

/// True when running as root (loop mounts, freezing, Amanda's user switch).
pub fn is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Run `cmd` with `stdin` bytes; return its output.
pub fn run_with_input(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut si = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let t = std::thread::spawn(move || {
        let _ = si.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    t.join().unwrap();
    out
}

/// Run a shell pipeline with bash (`set -o pipefail`), returning its output.
pub fn sh(script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("set -eo pipefail\n{script}"))
        .output()
        .expect("bash")
}

/// Exit code, or 128+signal like a shell reports it.
pub fn status_code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status
        .code()
        .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The VMs of a test binary run one after the other (and cargo runs the binaries one at a
/// time): two TCG guests at once on a small machine only make both slower.
static VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The kernel the guest boots: Debian 12's 6.1 (where a manual freeze before an LVM
/// snapshot fails, specs/snapshots.md §1).
pub const KERNEL_PKG: &str = "linux-image-6.1.0-48-amd64";

/// Whether a QEMU guest can run here (root, qemu-system-x86_64); `require` rules: skipped
/// locally, failed when CI=true.
pub fn can_run_vm() -> bool {
    require("root", is_root()) && require("qemu-system-x86_64", have("qemu-system-x86_64"))
}

/// `xz -dc XZ > DEST` (fixtures are kept compressed).
pub fn unxz(xz: &Path, dest: &Path) {
    let out = Command::new("xz").arg("-dc").arg(xz).output().expect("xz");
    assert!(out.status.success(), "xz -dc {}", xz.display());
    std::fs::write(dest, out.stdout).unwrap();
}

/// `scripts/vmtest` with the arguments `args` adds (one VM at a time, the pinned kernel):
/// no `FAIL:` line, exit 0 and the script's `passed` line; returns its stdout.
pub fn run_vm(args: impl FnOnce(&mut Command), passed: &str) -> String {
    let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
    let pkg = std::env::var("VMTEST_KERNEL_PKG").unwrap_or_else(|_| KERNEL_PKG.to_string());
    let mut c = Command::new(script("vmtest"));
    args(&mut c);
    let o = c.env("VMTEST_KERNEL_PKG", pkg).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL:")).collect();
    assert!(fails.is_empty(), "{}\n{out}", fails.join("\n"));
    assert_eq!(status_code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(out.contains(passed), "{out}");
    out
}
