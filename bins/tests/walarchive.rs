//! walarchive against real WAL files (fixtures written by PostgreSQL 15) and real peers:
//! stock `lz4`, `b3sum`, `pg_archivecleanup`, a size-limited tmpfs, a non-root user.
//! The PostgreSQL end-to-end runs are in `walarchive_pg.rs`.

mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lampvault::wal::store::{self, decode_stored, ArchiveInfo, StoredName, TEMP_PREFIX};
use util::{bin, fixture, require, sh, status_code, stderr, Scratch};

const SEG9: &str = "000000010000000000000009";
const SEG6: &str = "000000010000000000000006";
const SEG0A: &str = "00000001000000000000000A";
const TL2_0A: &str = "00000002000000000000000A";
const PARTIAL: &str = "000000010000000000000015.partial";
const BACKUP: &str = "000000010000000000000006.00000028.backup";
const SYSID_A: &str = "7711763586823575507";

/// Decompress the fixtures of cluster A (and B) into `dir`, under their WAL names.
fn unpack(dir: &Path) {
    for (sub, names) in [
        ("pg15-16mib", &[SEG6, SEG9, SEG0A, TL2_0A, PARTIAL][..]),
        (
            "pg15-1mib",
            &["00000001000000000000001C", "00000001000000000000001D"][..],
        ),
    ] {
        for n in names {
            util::unxz(&fixture(&format!("wal/{sub}/{n}.xz")), &dir.join(n));
        }
    }
    for n in [BACKUP, "00000002.history", "00000003.history"] {
        fs::copy(fixture(&format!("wal/pg15-16mib/{n}")), dir.join(n)).unwrap();
    }
}

struct Env {
    s: Scratch,
    src: PathBuf,
    arch: PathBuf,
}

fn env(tag: &str) -> Env {
    let s = Scratch::new(tag);
    let src = s.path("src");
    let arch = s.path("arch");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&arch).unwrap();
    unpack(&src);
    Env { s, src, arch }
}

fn wa(args: &[&str]) -> Output {
    spawn_wa(args).wait_with_output().expect("run walarchive")
}

/// walarchive started with `args` (paths as strings), stdout and stderr piped.
fn spawn_wa<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Child {
    Command::new(bin("walarchive"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start walarchive")
}

/// `push SRC NAME --archive ARCH EXTRA...`, started.
fn spawn_push(src: &Path, name: &str, arch: &Path, extra: &[&str]) -> std::process::Child {
    let mut a: Vec<&std::ffi::OsStr> = vec![
        "push".as_ref(),
        src.as_ref(),
        name.as_ref(),
        "--archive".as_ref(),
        arch.as_ref(),
    ];
    a.extend(extra.iter().map(std::ffi::OsStr::new));
    spawn_wa(&a)
}

/// `push SRC NAME --archive ARCH EXTRA...`, run to the end.
fn push_to(src: &Path, name: &str, arch: &Path, extra: &[&str]) -> Output {
    spawn_push(src, name, arch, extra)
        .wait_with_output()
        .expect("run walarchive")
}

/// `fetch NAME DEST --archive ARCH`.
fn fetch_from(name: &str, dest: &Path, arch: &Path) -> Output {
    let a: [&std::ffi::OsStr; 5] = [
        "fetch".as_ref(),
        name.as_ref(),
        dest.as_ref(),
        "--archive".as_ref(),
        arch.as_ref(),
    ];
    spawn_wa(&a).wait_with_output().expect("run walarchive")
}

/// SIGKILL `c` after `micros` µs (it may have finished by then) and reap it.
/// Wait for `c` at most `secs` seconds: a walarchive that hangs (PostgreSQL's archiver
/// would wait forever) is killed and fails the test.
fn finish_within(mut c: std::process::Child, secs: u64) -> Output {
    let t0 = std::time::Instant::now();
    while c.try_wait().expect("wait for walarchive").is_none() {
        if t0.elapsed().as_secs() >= secs {
            let _ = c.kill();
            let _ = c.wait();
            panic!("walarchive still running after {secs} s: hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    c.wait_with_output().expect("walarchive output")
}

fn kill_after(mut c: std::process::Child, micros: u64) {
    std::thread::sleep(std::time::Duration::from_micros(micros));
    let _ = c.kill();
    let _ = c.wait();
}

impl Env {
    fn push(&self, name: &str) -> Output {
        self.push_from(&self.src.join(name), name, &[])
    }
    fn push_from(&self, path: &Path, name: &str, extra: &[&str]) -> Output {
        push_to(path, name, &self.arch, extra)
    }
    fn fetch(&self, name: &str, dest: &Path) -> Output {
        fetch_from(name, dest, &self.arch)
    }
    /// Fetch `name` to `dest`: exit 0 and the source's bytes.
    fn fetch_ok(&self, name: &str, dest: &Path) {
        ok(&self.fetch(name, dest));
        assert_eq!(
            fs::read(dest).unwrap(),
            fs::read(self.src.join(name)).unwrap(),
            "{name}"
        );
    }
    fn stored(&self, name: &str) -> Vec<PathBuf> {
        let w = lampvault::wal::WalName::parse(name).unwrap();
        let dir = match w.archive_subdir() {
            Some(d) => self.arch.join(d),
            None => self.arch.clone(),
        };
        let mut v: Vec<PathBuf> = fs::read_dir(&dir)
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| StoredName::entry_is_for(p.file_name().unwrap().to_str().unwrap(), name));
        v
    }
    /// Every file under the archive (recursively), names only, sorted.
    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        walk(&self.arch, &self.arch, &mut out);
        out.sort();
        out
    }
}

/// Every file under `d`, recursively.
fn files_under(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn ok(o: &Output) {
    assert_eq!(status_code(o), 0, "stderr: {}", stderr(o));
    assert_eq!(stderr(o), "", "success must be silent");
}

#[test]
fn push_fetch_round_trip_every_kind() {
    let e = env("rt");
    for n in [
        SEG6,
        BACKUP,
        SEG9,
        SEG0A,
        "00000002.history",
        TL2_0A,
        PARTIAL,
        "00000003.history",
    ] {
        ok(&e.push(n));
        assert_eq!(e.stored(n).len(), 1, "{n}");
        let dest = e.s.path(&format!("out-{n}"));
        ok(&e.fetch(n, &dest));
        assert_eq!(
            fs::read(&dest).unwrap(),
            fs::read(e.src.join(n)).unwrap(),
            "{n}"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(e.stored(n)[0].clone()).unwrap().mode() & 0o777,
            0o600,
            "{n}"
        );
    }
    // Segments are compressed, history and backup files stored as they are.
    assert!(e.stored(SEG9)[0].to_str().unwrap().ends_with(".lz4"));
    assert!(!e.stored("00000002.history")[0]
        .to_str()
        .unwrap()
        .ends_with(".lz4"));
    let info = fs::read_to_string(e.arch.join("walarchive.info")).unwrap();
    assert!(
        info.contains(&format!("system-identifier={SYSID_A}\n")),
        "{info}"
    );
    assert!(info.contains("wal-segment-size=16777216\n"), "{info}");
    // Nothing but final names and the info file: no temporary file left behind.
    assert!(
        e.tree().iter().all(|f| !f.contains(".walarchive-tmp")),
        "{:?}",
        e.tree()
    );
    let v = wa(&["verify", "--archive", e.arch.to_str().unwrap()]);
    // 06, 09, 0A on timeline 1: 07-08 are missing, which verify must report.
    assert_eq!(status_code(&v), 1);
    assert!(
        stderr(&v)
            .contains("timeline 1: missing 000000010000000000000007 .. 000000010000000000000008"),
        "{}",
        stderr(&v)
    );
}

#[test]
fn stock_lz4_and_b3sum_read_the_archive() {
    if !require("lz4", util::have("lz4")) || !require("b3sum", util::have("b3sum")) {
        return;
    }
    let e = env("stock");
    ok(&e.push(SEG9));
    ok(&e.push("00000002.history"));
    let f = e.stored(SEG9)[0].clone();
    let name = f.file_name().unwrap().to_str().unwrap().to_string();
    let hash = name
        .trim_end_matches(".lz4")
        .rsplit('-')
        .next()
        .unwrap()
        .to_string();
    // The check the man page documents, with stock tools only.
    let o = sh(&format!("lz4 -dc '{}' | b3sum --no-names", f.display()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), hash);
    let o = sh(&format!(
        "lz4 -d -c '{}' | cmp - '{}'",
        f.display(),
        e.src.join(SEG9).display()
    ));
    assert!(o.status.success(), "lz4 -d output differs: {}", stderr(&o));
    let h = e.stored("00000002.history")[0].clone();
    let o = sh(&format!("b3sum --no-names '{}'", h.display()));
    assert!(h
        .to_str()
        .unwrap()
        .ends_with(String::from_utf8_lossy(&o.stdout).trim()));
    // And the other way: a frame written by stock lz4 (content checksum, 4 MiB blocks)
    // placed under the right name is read, checked and restored by fetch.
    fs::remove_file(&f).unwrap();
    let o = sh(&format!(
        "lz4 -1 -q -c '{}' > '{}/0000000100000000/{SEG9}-{hash}.lz4'",
        e.src.join(SEG9).display(),
        e.arch.display()
    ));
    assert!(o.status.success());
    let dest = e.s.path("from-stock");
    e.fetch_ok(SEG9, &dest);
}

#[test]
fn repush_identical_ok_different_refused() {
    let e = env("repush");
    ok(&e.push(SEG9));
    let before = e.tree();
    ok(&e.push(SEG9));
    // Same content pushed uncompressed: still the same file, still 0.
    ok(&e.push_from(&e.src.join(SEG9), SEG9, &["--compress", "none"]));
    assert_eq!(e.tree(), before);
    // Different content under an archived name (a byte changed after the header).
    let mut data = fs::read(e.src.join(SEG9)).unwrap();
    data[100_000] ^= 0xff;
    let other = e.s.path("other");
    fs::write(&other, &data).unwrap();
    let o = e.push_from(&other, SEG9, &[]);
    assert_eq!(status_code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "walarchive: {SEG9}: already archived with different content (archived BLAKE3 "
        )),
        "{err}"
    );
    let old = lampvault::wal::store::hex(&lampvault::wal::store::content_hash(
        &fs::read(e.src.join(SEG9)).unwrap(),
    ));
    let new = lampvault::wal::store::hex(&lampvault::wal::store::content_hash(&data));
    assert!(err.contains(&old) && err.contains(&new), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert_eq!(e.tree(), before, "a refused push must touch nothing");
    // A history file of another server that picked the same timeline ID.
    ok(&e.push("00000002.history"));
    let h = e.s.path("h2");
    fs::write(&h, "1\t0/B000000\tno recovery target specified\n").unwrap();
    assert_eq!(status_code(&e.push_from(&h, "00000002.history", &[])), 1);
}

#[test]
fn bad_segments_are_refused() {
    let e = env("bad");
    ok(&e.push(SEG9));
    let data = fs::read(e.src.join(SEG9)).unwrap();
    let data_0a = fs::read(e.src.join(SEG0A)).unwrap();
    let flip = |d: &[u8], at: usize| {
        let mut d = d.to_vec();
        d[at] ^= 1;
        d
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", data_0a[..data_0a.len() - 8192].to_vec(), "file is 16769024 bytes, but its header says segments are 16777216 bytes"),
        ("empty", Vec::new(), "0 bytes is too short for a WAL page header (40 at offset 0)"),
        ("zero page", { let mut d = data_0a.clone(); d[..8192].fill(0); d }, "unknown WAL page magic 0x0000 at offset 0"),
        ("magic", flip(&data_0a, 0), "unknown WAL page magic 0xD111 at offset 0"),
        ("sysid", flip(&data_0a, 24), "system identifier 7711763586823575506 does not match the archive's 7711763586823575507"),
        ("misnamed", data.clone(), "page address 0/9000000 at offset 8 does not match the name (expected 0/A000000)"),
    ];
    for (what, bytes, msg) in cases {
        let p = e.s.path(what);
        fs::write(&p, &bytes).unwrap();
        let o = e.push_from(&p, SEG0A, &[]);
        assert_eq!(status_code(&o), 1, "{what}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("walarchive: {SEG0A}: ")) && err.contains(msg),
            "{what}: {err}"
        );
        assert!(e.stored(SEG0A).is_empty(), "{what}: stored anyway");
    }
    // Another cluster's segment (fixture cluster B) into cluster A's archive.
    let o = e.push("00000001000000000000001C");
    assert_eq!(status_code(&o), 1);
    assert_eq!(
        stderr(&o),
        "walarchive: 00000001000000000000001C: system identifier 7711765119568205069 does not match the archive's 7711763586823575507: a segment of another cluster, refused\n"
    );
    // --system-id guards a fresh archive too.
    let fresh = e.s.path("fresh");
    fs::create_dir(&fresh).unwrap();
    let o = push_to(&e.src.join(SEG9), SEG9, &fresh, &["--system-id", "42"]);
    assert_eq!(status_code(&o), 1);
    assert!(!fresh.join("walarchive.info").exists());
    // A truncated history file (no final newline) and a non-history.
    let h = e.s.path("h");
    fs::write(&h, "1\t0/A000780\tbefore 2026").unwrap();
    let o = e.push_from(&h, "00000002.history", &[]);
    assert_eq!(status_code(&o), 1);
    assert!(
        stderr(&o).contains("not newline-terminated"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn hostile_names_and_usage_keep_the_exit_contract() {
    let e = env("names");
    let victim = e.s.path("victim");
    for name in [
        "../victim",
        "../../etc/passwd",
        "0000000100000000/000000010000000000000009",
        ".history",
        "",
        "RECOVERYXLOG",
        "000000010000000000000009/",
    ] {
        let o = e.push_from(&e.src.join(SEG9), name, &[]);
        assert_eq!(status_code(&o), 1, "push {name:?}");
        assert!(
            stderr(&o).contains("invalid WAL file name"),
            "{}",
            stderr(&o)
        );
        let o = e.fetch(name, &victim);
        assert_eq!(status_code(&o), 255, "fetch {name:?}");
    }
    assert!(!victim.exists());
    assert!(e.tree().is_empty(), "{:?}", e.tree());
    // Usage errors: push 1, fetch 255 (never 2, which PostgreSQL would take as "missing").
    assert_eq!(status_code(&wa(&["push"])), 1);
    assert_eq!(
        status_code(&wa(&["push", "a", SEG9, "--archive", "x", "--level", "99"])),
        1
    );
    assert_eq!(status_code(&wa(&["fetch"])), 255);
    assert_eq!(
        status_code(&wa(&["fetch", SEG9, "x", "--archive", "y", "--bogus"])),
        255
    );
    assert_eq!(status_code(&wa(&["list"])), 2);
    let h = wa(&["--help"]);
    assert_eq!(status_code(&h), 0);
    assert!(String::from_utf8_lossy(&h.stdout).contains("push"));
}

#[test]
fn fetch_missing_is_1_everything_else_255() {
    let e = env("fetch");
    ok(&e.push(SEG9));
    ok(&e.push("00000002.history"));
    let dest = e.s.path("RECOVERYXLOG");
    // Truly absent: 1 and silent (segment in a known and an unknown directory, history).
    for n in [SEG0A, "000000050000000000000001", "00000009.history"] {
        let o = e.fetch(n, &dest);
        assert_eq!(status_code(&o), 1, "{n}: {}", stderr(&o));
        assert_eq!(stderr(&o), "");
        assert!(!dest.exists());
    }
    // Archive missing, or an empty directory (an unmounted mount point): 255.
    let o = fetch_from(SEG9, &dest, &e.s.path("nope"));
    assert_eq!(status_code(&o), 255);
    assert_eq!(
        stderr(&o),
        format!(
            "walarchive: {}: archive: No such file or directory\n",
            e.s.path("nope").display()
        )
    );
    let empty = e.s.path("empty");
    fs::create_dir(&empty).unwrap();
    let o = fetch_from(SEG9, &dest, &empty);
    assert_eq!(status_code(&o), 255);
    assert!(
        stderr(&o).contains("not a walarchive archive"),
        "{}",
        stderr(&o)
    );
    // Corrupt stored file: one bit flipped inside the compressed data.
    let f = e.stored(SEG9)[0].clone();
    let good = fs::read(&f).unwrap();
    let mut bad = good.clone();
    bad[500_000] ^= 0x10;
    fs::write(&f, &bad).unwrap();
    let o = e.fetch(SEG9, &dest);
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    assert!(stderr(&o).contains("is corrupt"), "{}", stderr(&o));
    assert!(!dest.exists(), "no partial %p after a failure");
    // Truncated stored file.
    fs::write(&f, &good[..good.len() / 2]).unwrap();
    let o = e.fetch(SEG9, &dest);
    assert_eq!(status_code(&o), 255);
    assert!(
        stderr(&o).contains("is corrupt: bad LZ4 frame at offset"),
        "{}",
        stderr(&o)
    );
    // A valid frame of the wrong file renamed to the right hash: the header check catches it.
    fs::write(&f, &good).unwrap();
    let h = e.stored("00000002.history")[0].clone();
    let good_h = fs::read(&h).unwrap();
    fs::write(&h, "1\t0/B000000\tx\n").unwrap();
    let o = e.fetch("00000002.history", &dest);
    assert_eq!(status_code(&o), 255);
    assert!(stderr(&o).contains("BLAKE3 mismatch"), "{}", stderr(&o));
    let v = wa(&["verify", "--archive", e.arch.to_str().unwrap()]);
    assert_eq!(status_code(&v), 1);
    assert!(stderr(&v).contains("BLAKE3 mismatch"), "{}", stderr(&v));
    fs::write(&h, good_h).unwrap();
    // A segment is decoded straight into the temporary file next to %p, block by block:
    // failures found late — a damaged last block, a hash that does not match, a header that
    // does not belong to the name — still leave neither %p nor a temporary file.
    let no_temps = |what: &str| {
        let left: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect();
        assert!(left.is_empty(), "{what}: temp files left: {left:?}");
        assert!(!dest.exists(), "{what}: %p written");
    };
    no_temps("bit flip and truncation above");
    let mut bad = good.clone();
    let last = bad.len() - 100; // inside the last block, before the end mark
    bad[last] ^= 0x40;
    fs::write(&f, &bad).unwrap();
    let o = e.fetch(SEG9, &dest);
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    assert!(stderr(&o).contains("is corrupt"), "{}", stderr(&o));
    no_temps("damaged last block");
    // 0A's stored bytes under 09's name (09's hash): decodes fine, the hash does not match
    let f0a = {
        ok(&e.push(SEG0A));
        e.stored(SEG0A)[0].clone()
    };
    fs::write(&f, fs::read(&f0a).unwrap()).unwrap();
    let o = e.fetch(SEG9, &dest);
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    assert!(stderr(&o).contains("BLAKE3 mismatch"), "{}", stderr(&o));
    no_temps("hash mismatch");
    // ...and under a name that carries 0A's hash: the hash matches, the header does not
    let st0a = StoredName::parse(f0a.file_name().unwrap().to_str().unwrap()).unwrap();
    let forged = f.with_file_name(format!("{SEG9}-{}.lz4", store::hex(&st0a.hash)));
    fs::remove_file(&f).unwrap();
    fs::copy(&f0a, &forged).unwrap();
    let o = e.fetch(SEG9, &dest);
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    assert!(stderr(&o).contains("page address"), "{}", stderr(&o));
    no_temps("header of another segment");
    fs::remove_file(&forged).unwrap();
    fs::write(&f, &good).unwrap();
    // Repaired: works again.
    e.fetch_ok(SEG9, &dest);
    let v = wa(&["verify", "--archive", e.arch.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
}

/// Run walarchive as an unprivileged user (root ignores permissions).
fn as_nobody(e: &Env, args: &[&str]) -> Output {
    let exe = e.s.path("walarchive");
    if !exe.exists() {
        fs::copy(bin("walarchive"), &exe).unwrap();
    }
    fs::set_permissions(&e.s.0, fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&exe)
        .args(args)
        .output()
        .expect("runuser")
}

#[test]
fn unreadable_and_unwritable_archives() {
    if !require("root (runuser)", util::is_root()) {
        return;
    }
    let e = env("perm");
    ok(&e.push(SEG9));
    fs::set_permissions(&e.src, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(e.src.join(SEG0A), fs::Permissions::from_mode(0o644)).unwrap();
    let arch = e.arch.to_str().unwrap();
    // Archive owned by root, 0755: nobody cannot write → push 1, clear message.
    let o = as_nobody(
        &e,
        &[
            "push",
            e.src.join(SEG0A).to_str().unwrap(),
            SEG0A,
            "--archive",
            arch,
        ],
    );
    assert_eq!(status_code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // The archive's subdirectory is 0700 root: nobody cannot read it → fetch 255, not 1.
    let out = e.s.path("out");
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let o = as_nobody(
        &e,
        &[
            "fetch",
            SEG0A,
            out.join("x").to_str().unwrap(),
            "--archive",
            arch,
        ],
    );
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // Unreadable source file for push.
    fs::set_permissions(e.src.join(SEG0A), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&e.arch, fs::Permissions::from_mode(0o777)).unwrap();
    let o = as_nobody(
        &e,
        &[
            "push",
            e.src.join(SEG0A).to_str().unwrap(),
            SEG0A,
            "--archive",
            arch,
        ],
    );
    assert_eq!(status_code(&o), 1);
    assert_eq!(
        stderr(&o),
        format!(
            "walarchive: {}: Permission denied\n",
            e.src.join(SEG0A).display()
        )
    );
    // Modes are 0600 / 0640 whatever the umask.
    let o = sh(&format!(
        "umask 000; '{}' push '{}' {SEG0A} --archive '{arch}' && umask 077 && '{}' push '{}' 00000002.history --archive '{arch}' --group-read",
        bin("walarchive").display(),
        e.src.join(SEG0A).display(),
        bin("walarchive").display(),
        e.src.join("00000002.history").display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(&e.stored(SEG0A)[0]).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&e.stored("00000002.history")[0])
            .unwrap()
            .mode()
            & 0o777,
        0o640
    );
}

#[test]
fn full_filesystem_fails_cleanly_then_recovers() {
    if !require("root (tmpfs mount)", util::is_root()) {
        return;
    }
    let e = env("full");
    let mnt = e.s.path("small");
    let disk = util::Tmpfs::mount(&mnt, "20m");
    let a = mnt.to_str().unwrap();
    let push = |n: &str| push_to(&e.src.join(n), n, &mnt, &["--compress", "none"]);
    ok(&push(SEG9));
    let o = push(SEG0A);
    assert_eq!(status_code(&o), 1);
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1);
    let left = sh(&format!("find '{a}' -name '.walarchive-tmp*' | wc -l"));
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "0",
        "temporary file left on a full disk"
    );
    assert!(wa(&["verify", "--archive", a]).status.success());
    let o = fetch_from(SEG0A, &e.s.path("x"), &mnt);
    assert_eq!(status_code(&o), 1, "nothing partial is fetchable");
    // Compressed, the write fails while blocks are still being read and compressed: the
    // push must stop (it once waited forever for the stopped writer), exit 1, leave nothing.
    let tiny = e.s.path("tiny");
    let tiny_disk = util::Tmpfs::mount(&tiny, "1m");
    for _ in 0..10 {
        let o = finish_within(spawn_push(&e.src.join(SEG9), SEG9, &tiny, &[]), 30);
        assert_eq!(status_code(&o), 1, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("No space left on device"),
            "{}",
            stderr(&o)
        );
        let left = sh(&format!(
            "find '{}' -type f | grep -v walarchive.info",
            tiny.display()
        ));
        assert!(
            left.stdout.is_empty(),
            "left on a full disk: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
    drop(tiny_disk);
    // Space returns: the retry succeeds and everything reads back.
    disk.resize("64m");
    ok(&push(SEG0A));
    let dest = e.s.path("back");
    ok(&fetch_from(SEG0A, &dest, &mnt));
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(e.src.join(SEG0A)).unwrap()
    );

    // --ahead on a disk with room for one segment: the batch's workers fill it at once.
    // PostgreSQL's own call exits 0 or 1 (with the cause), nothing partial and no record
    // is left; once space returns, every call succeeds and the archive is right.
    assert!(sh(&format!("rm -rf '{a}'/*")).status.success());
    disk.resize("24m");
    let segs = [SEG6, SEG9, SEG0A, TL2_0A];
    let pg_wal = pg_wal_ready(&e, &segs);
    let none = ["--compress", "none"];
    let mut refused = 0;
    for n in segs {
        let o = push_ahead(&pg_wal, n, &mnt, &none);
        refused += usize::from(status_code(&o) == 1);
        match status_code(&o) {
            0 => {}
            1 => assert!(
                stderr(&o).contains("No space left on device"),
                "{}",
                stderr(&o)
            ),
            c => panic!("{n}: exit {c}: {}", stderr(&o)),
        }
        let stored = archived_copies(&mnt, &pg_wal, false, n);
        for r in fs::read_dir(pg_wal.join(".walarchive-spool"))
            .into_iter()
            .flatten()
        {
            let r = r.unwrap().file_name().into_string().unwrap();
            assert!(stored.contains(&r), "{n}: record for {r}, not archived");
        }
    }
    // 24 MiB hold one 16 MiB segment: at least three of the four calls cannot succeed
    assert!(refused >= 3, "only {refused} calls failed on the full disk");
    disk.resize("128m");
    for n in segs {
        ok(&push_ahead(&pg_wal, n, &mnt, &none));
        let dest = e.s.path(&format!("back-{n}"));
        ok(&wa(&["fetch", n, dest.to_str().unwrap(), "--archive", a]));
        assert_eq!(fs::read(&dest).unwrap(), fs::read(e.src.join(n)).unwrap());
    }
    assert_eq!(archived_copies(&mnt, &pg_wal, false, "after"), segs);
    assert_eq!(spool_records(&pg_wal), 0, "records left");

    // fetch onto a full disk (%p's directory, 4 MiB for a 16 MiB segment): exit 255 with the
    // cause — never 1 ("absent") —, neither %p nor the streamed temporary file left.
    let small = e.s.path("small-pg_wal");
    let _full = util::Tmpfs::mount(&small, "4m");
    let p = small.join("RECOVERYXLOG");
    let o = fetch_from(SEG9, &p, &mnt);
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("walarchive: {}: No space left on device\n", p.display())
    );
    assert_eq!(
        fs::read_dir(&small).unwrap().count(),
        0,
        "left on the full disk"
    );
}

#[test]
fn concurrent_pushes_of_one_segment() {
    let e = env("race");
    ok(&e.push(SEG6)); // records the cluster
    for round in 0..5 {
        let children: Vec<_> = (0..4)
            .map(|_| spawn_push(&e.src.join(SEG9), SEG9, &e.arch, &[]))
            .collect();
        wait_all_ok(children, &format!("round {round}"));
        assert_eq!(e.stored(SEG9).len(), 1);
        fs::remove_file(&e.stored(SEG9)[0]).unwrap();
    }
    // Two different contents at once: exactly one wins, the other is refused.
    let mut data = fs::read(e.src.join(SEG9)).unwrap();
    data[123_456] ^= 1;
    let other = e.s.path("other");
    fs::write(&other, &data).unwrap();
    let a = spawn_push(&e.src.join(SEG9), SEG9, &e.arch, &[]);
    let b = spawn_push(&other, SEG9, &e.arch, &[]);
    let codes =
        [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()].map(|o| status_code(&o));
    let mut sorted = codes;
    sorted.sort();
    assert_eq!(sorted, [0, 1], "{codes:?}");
    assert_eq!(e.stored(SEG9).len(), 1);
}

/// A pg_wal as PostgreSQL leaves it: `segs` copied from the fixtures with their `.ready`
/// markers, and settled (ahead records are only written for sources whose last change is
/// more than 100 ms older than the read).
fn pg_wal_ready(e: &Env, segs: &[&str]) -> PathBuf {
    let pg_wal = e.s.path("pg_wal");
    fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
    for n in segs {
        fs::copy(e.src.join(n), pg_wal.join(n)).unwrap();
        fs::write(pg_wal.join(format!("archive_status/{n}.ready")), b"").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    pg_wal
}

/// PostgreSQL's call for `name` from `pg_wal` into `arch`, with `--ahead 8` and `extra`.
fn push_ahead(pg_wal: &Path, name: &str, arch: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["--ahead", "8"];
    a.extend_from_slice(extra);
    push_to(&pg_wal.join(name), name, arch, &a)
}

/// The segments stored under `arch`, sorted, after checking that each stored file is a
/// complete copy of the file of its name in `pg_wal` and, unless `temps_ok`, that no
/// temporary file is left.
fn archived_copies(arch: &Path, pg_wal: &Path, temps_ok: bool, ctx: &str) -> Vec<String> {
    let mut names = Vec::new();
    for f in files_under(arch) {
        let n = f.file_name().unwrap().to_str().unwrap().to_string();
        if n.starts_with(TEMP_PREFIX) {
            assert!(temps_ok, "{ctx}: temp file left: {n}");
            continue;
        }
        if n == "walarchive.info" {
            continue;
        }
        let st = StoredName::parse(&n).unwrap();
        let bytes = decode_stored(&st, &fs::read(&f).unwrap(), 16 << 20)
            .unwrap_or_else(|err| panic!("{ctx}: partial {}: {err}", f.display()));
        assert_eq!(
            bytes,
            fs::read(pg_wal.join(&n[..24])).unwrap(),
            "{ctx}: {n}"
        );
        names.push(n[..24].to_string());
    }
    names.sort();
    names
}

/// Wait for processes started with piped stderr; each must exit 0.
fn wait_all_ok(children: Vec<std::process::Child>, ctx: &str) {
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(status_code(&o), 0, "{ctx}: {}", stderr(&o));
    }
}

/// The next xorshift64 value of `seed` (random delays that differ from run to run).
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Records left in `pg_wal`'s spool.
fn spool_records(pg_wal: &Path) -> usize {
    fs::read_dir(pg_wal.join(".walarchive-spool")).map_or(0, |d| d.count())
}

/// Two `--ahead` calls whose batches overlap (an archiver restarted while its old call still
/// runs): every segment ends up stored once, right, both calls exit 0, and the later calls
/// of each segment exit 0 and leave no record behind.
#[test]
fn concurrent_ahead_pushes_overlap_safely() {
    let e = env("raceahead");
    let segs = [SEG6, SEG9, SEG0A, TL2_0A];
    let pg_wal = pg_wal_ready(&e, &segs);
    for round in 0..10 {
        let arch = e.s.path(&format!("arch{round}"));
        fs::create_dir(&arch).unwrap();
        let _ = fs::remove_dir_all(pg_wal.join(".walarchive-spool"));
        let children: Vec<_> = [SEG6, SEG9, SEG6]
            .iter()
            .map(|n| spawn_push(&pg_wal.join(n), n, &arch, &["--ahead", "8"]))
            .collect();
        wait_all_ok(children, &format!("round {round}"));
        for n in segs {
            let o = push_ahead(&pg_wal, n, &arch, &[]);
            assert!(o.status.success(), "round {round}: {n}: {}", stderr(&o));
        }
        let ctx = format!("round {round}");
        assert_eq!(archived_copies(&arch, &pg_wal, false, &ctx), segs, "{ctx}");
        assert_eq!(spool_records(&pg_wal), 0, "{ctx}: spool records left");
    }
}

#[test]
fn kill_9_never_leaves_a_partial_final_file() {
    let e = env("kill");
    ok(&e.push(SEG0A)); // records the cluster; 09 + 0A leave no gap for verify
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let mut completed = 0;
    for i in 0..200 {
        xorshift(&mut seed);
        kill_after(
            spawn_push(&e.src.join(SEG9), SEG9, &e.arch, &[]),
            seed % 60_000,
        );
        for f in e.stored(SEG9) {
            let st = StoredName::parse(f.file_name().unwrap().to_str().unwrap()).unwrap();
            let bytes = fs::read(&f).unwrap();
            decode_stored(&st, &bytes, 16 << 20).unwrap_or_else(|err| {
                panic!("iteration {i}: partial final file {}: {err}", f.display())
            });
            completed += 1;
            fs::remove_file(&f).unwrap();
        }
    }
    eprintln!("{completed} of 200 killed pushes had completed");

    // Killed FIRST pushes (walarchive.info, subdirectory and segment written together,
    // one fsync per directory at the end): whatever survives is complete, and the retry
    // succeeds and leaves no temporary file of the killed push behind, root included.
    let fresh = e.s.path("fresh");
    let (mut survived, mut with_temps) = (0, 0);
    for i in 0..60 {
        let _ = fs::remove_dir_all(&fresh);
        fs::create_dir(&fresh).unwrap();
        xorshift(&mut seed);
        kill_after(
            spawn_push(&e.src.join(SEG9), SEG9, &fresh, &[]),
            seed % 80_000,
        );
        let mut temps = 0;
        for f in files_under(&fresh) {
            let n = f.file_name().unwrap().to_str().unwrap().to_string();
            if n.starts_with(TEMP_PREFIX) {
                temps += 1;
            } else if n == "walarchive.info" {
                ArchiveInfo::parse(&fs::read(&f).unwrap())
                    .unwrap_or_else(|err| panic!("iteration {i}: partial info file: {err}"));
                survived += 1;
            } else {
                let st = StoredName::parse(&n).unwrap();
                decode_stored(&st, &fs::read(&f).unwrap(), 16 << 20)
                    .unwrap_or_else(|err| panic!("iteration {i}: partial {}: {err}", f.display()));
            }
        }
        with_temps += usize::from(temps > 0);
        let o = push_to(&e.src.join(SEG9), SEG9, &fresh, &[]);
        ok(&o);
        let left: Vec<PathBuf> = files_under(&fresh)
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(TEMP_PREFIX)
            })
            .collect();
        assert!(
            left.is_empty(),
            "iteration {i}: {temps} temp file(s) after the kill, still there after the retry: {left:?}"
        );
        let back = e.s.path("fresh-back");
        ok(&fetch_from(SEG9, &back, &fresh));
        assert_eq!(
            fs::read(&back).unwrap(),
            fs::read(e.src.join(SEG9)).unwrap()
        );
    }
    eprintln!(
        "{survived} of 60 killed first pushes had recorded walarchive.info, {with_temps} left temp files"
    );
    // The crash state "segment durable, info file not" (filesystems that do not order the
    // two renames): fetch refuses the archive (255, not "absent"), the retry records the
    // info from the same segment and confirms the identical copy.
    fs::remove_file(fresh.join("walarchive.info")).unwrap();
    let back = e.s.path("fresh-back2");
    let o = fetch_from(SEG9, &back, &fresh);
    assert_eq!(status_code(&o), 255, "{}", stderr(&o));
    ok(&push_to(&e.src.join(SEG9), SEG9, &fresh, &[]));
    assert!(fresh.join("walarchive.info").exists());
    ok(&fetch_from(SEG9, &back, &fresh));
    // A retry succeeds, leftovers are temp files only, and the result is right.
    ok(&e.push(SEG9));
    let dest = e.s.path("back");
    e.fetch_ok(SEG9, &dest);
    let s = wa(&["verify", "--archive", e.arch.to_str().unwrap()]);
    assert!(s.status.success(), "{}", stderr(&s));
}

#[test]
fn ahead_records_confirm_only_an_unchanged_source() {
    let e = env("aheadrec");
    // PostgreSQL's segments are complete long before they are archived; records are only
    // written for sources whose last change (ctime) is > 100 ms older than the read.
    let pg_wal = pg_wal_ready(&e, &[SEG6, SEG9, SEG0A, TL2_0A]);
    let rec = |n: &str| pg_wal.join(".walarchive-spool").join(n);
    ok(&e.push_from(&pg_wal.join(SEG6), SEG6, &["--ahead", "8"]));
    assert_eq!(e.stored(SEG9).len(), 1);
    assert_eq!(e.stored(SEG0A).len(), 1);
    assert!(
        rec(SEG9).exists() && rec(SEG0A).exists(),
        "no ahead records"
    );
    assert!(!rec(SEG6).exists());
    // PostgreSQL's call for an unchanged segment pushed ahead: confirmed, record consumed.
    assert!(rec(TL2_0A).exists());
    ok(&e.push_from(&pg_wal.join(TL2_0A), TL2_0A, &["--ahead", "8"]));
    assert!(!rec(TL2_0A).exists());
    assert_eq!(e.stored(TL2_0A).len(), 1);
    // A stray record for a name that is not .ready goes at the next --ahead call.
    fs::write(rec("000000010000000000000001"), b"junk").unwrap();

    // 09 is modified in place after it was pushed ahead — same size, and its mtime set back:
    // the ctime differs, so PostgreSQL's call takes the full path and refuses the content.
    let mtime = fs::metadata(pg_wal.join(SEG9)).unwrap().modified().unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(pg_wal.join(SEG9))
            .unwrap();
        f.seek(SeekFrom::Start(300_000)).unwrap();
        f.write_all(b"X").unwrap();
        f.set_modified(mtime).unwrap();
    }
    let o = e.push_from(&pg_wal.join(SEG9), SEG9, &["--ahead", "8"]);
    assert_eq!(status_code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already archived with different content"),
        "{}",
        stderr(&o)
    );
    assert!(!rec(SEG9).exists(), "a record that failed must be dropped");
    assert!(
        !rec("000000010000000000000001").exists(),
        "stray record kept"
    );
    // The same through a rename of another file over %p (a new inode): refused too...
    let other = pg_wal.join("other");
    let mut d = fs::read(e.src.join(SEG0A)).unwrap();
    d[400_000] ^= 1;
    fs::write(&other, &d).unwrap();
    let saved = fs::read(pg_wal.join(SEG0A)).unwrap();
    let rec0a = fs::read(rec(SEG0A)).unwrap();
    fs::rename(&other, pg_wal.join(SEG0A)).unwrap();
    let o = e.push_from(&pg_wal.join(SEG0A), SEG0A, &[]);
    assert_eq!(status_code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("already archived with different content"));
    // ...and an identical copy under a new inode is confirmed by the full comparison.
    fs::write(rec(SEG0A), &rec0a).unwrap();
    fs::write(&other, &saved).unwrap();
    fs::rename(&other, pg_wal.join(SEG0A)).unwrap();
    ok(&e.push_from(&pg_wal.join(SEG0A), SEG0A, &[]));
    assert!(!rec(SEG0A).exists());

    // An unchanged source is confirmed from its record (which is consumed) — but only while
    // the archive holds the stored file: without it the full path pushes again.
    fs::remove_file(&e.stored(SEG0A)[0]).unwrap();
    fs::write(rec(SEG0A), &rec0a).unwrap();
    ok(&e.push_from(&pg_wal.join(SEG0A), SEG0A, &[]));
    assert_eq!(e.stored(SEG0A).len(), 1, "not pushed again");
    assert!(!rec(SEG0A).exists());
    // A record of another source file (its identity, e.g. copied over from elsewhere) is no
    // proof either: a tampered record fails its check, a foreign one its identity.
    let text = String::from_utf8(rec0a.clone()).unwrap();
    let tampered = text.replacen(&format!(" {SEG0A} "), &format!(" {SEG0A}  "), 1);
    fs::write(rec(SEG0A), tampered).unwrap();
    ok(&e.push_from(&pg_wal.join(SEG0A), SEG0A, &[]));
    assert!(!rec(SEG0A).exists());
    let dest = e.s.path("back");
    e.fetch_ok(SEG0A, &dest);
    e.fetch_ok(SEG9, &dest);
}

#[test]
fn prefetch_keeps_fetch_guarantees() {
    let e = env("prefetch");
    ok(&e.push(SEG9));
    ok(&e.push(SEG0A));
    let pg_wal = e.s.path("pg_wal");
    fs::create_dir_all(&pg_wal).unwrap();
    let dest = pg_wal.join("RECOVERYXLOG");
    let pre = pg_wal.join(".walarchive-prefetch").join(SEG0A);
    let fetch = |name: &str| {
        let _ = fs::remove_file(&dest);
        wa(&[
            "fetch",
            name,
            dest.to_str().unwrap(),
            "--archive",
            e.arch.to_str().unwrap(),
            "--prefetch",
            "4",
        ])
    };
    // The detached worker: wait for its file and for its lock to be free.
    let settle = || {
        for _ in 0..200 {
            if pre.exists() {
                let l = fs::File::open(pg_wal.join(".walarchive-prefetch/.lock")).unwrap();
                if nix::fcntl::Flock::lock(l, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok() {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("0A was not prefetched");
    };
    let want0a = fs::read(e.src.join(SEG0A)).unwrap();
    ok(&fetch(SEG9));
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(e.src.join(SEG9)).unwrap()
    );
    settle();
    // PostgreSQL's call for 0A: served from the prefetched copy (consumed), same bytes.
    ok(&fetch(SEG0A));
    assert_eq!(fs::read(&dest).unwrap(), want0a);
    assert!(!pre.exists(), "prefetched copy not consumed");

    // A damaged prefetched copy is never handed over: the plain path gives the right bytes.
    ok(&fetch(SEG9));
    settle();
    let mut d = fs::read(&pre).unwrap();
    d[5_000_000] ^= 0x40;
    fs::write(&pre, &d).unwrap();
    ok(&fetch(SEG0A));
    assert_eq!(fs::read(&dest).unwrap(), want0a);
    assert!(!pre.exists());

    // The archive decides: once 0A is gone from it, a prefetched copy does not make it
    // "present" — exit 1, as without prefetch, and the copy is removed.
    ok(&fetch(SEG9));
    settle();
    let stored = e.stored(SEG0A);
    let keep = fs::read(&stored[0]).unwrap();
    fs::remove_file(&stored[0]).unwrap();
    let o = fetch(SEG0A);
    assert_eq!(status_code(&o), 1, "{}", stderr(&o));
    assert!(!pre.exists());
    fs::write(&stored[0], keep).unwrap();

    // A push from this pg_wal (recovery is over) removes whatever was prefetched.
    ok(&fetch(SEG9));
    settle();
    fs::copy(e.src.join(SEG9), pg_wal.join(SEG9)).unwrap();
    ok(&e.push_from(&pg_wal.join(SEG9), SEG9, &[]));
    assert!(!pg_wal.join(".walarchive-prefetch").exists());
}

#[test]
fn killed_fetch_leaves_no_temp_for_good() {
    let e = env("killfetch");
    ok(&e.push(SEG9));
    let pg_wal = e.s.path("pg_wal");
    fs::create_dir_all(&pg_wal).unwrap();
    let dest = pg_wal.join("RECOVERYXLOG");
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id());
    let mut with_temps = 0;
    for i in 0..40 {
        xorshift(&mut seed);
        let _ = fs::remove_file(&dest); // as PostgreSQL does before each call
        let c = spawn_wa(&[
            "fetch".as_ref(),
            SEG9.as_ref(),
            dest.as_os_str(),
            "--archive".as_ref(),
            e.arch.as_os_str(),
        ]);
        kill_after(c, seed % 40_000);
        let temps = || {
            fs::read_dir(&pg_wal)
                .unwrap()
                .filter(|d| {
                    d.as_ref()
                        .unwrap()
                        .file_name()
                        .to_str()
                        .unwrap()
                        .starts_with(TEMP_PREFIX)
                })
                .count()
        };
        with_temps += usize::from(temps() > 0);
        if dest.exists() {
            assert_eq!(
                fs::read(&dest).unwrap(),
                fs::read(e.src.join(SEG9)).unwrap(),
                "iteration {i}: partial %p"
            );
        }
        let _ = fs::remove_file(&dest);
        ok(&e.fetch(SEG9, &dest));
        assert_eq!(
            temps(),
            0,
            "iteration {i}: a killed fetch's temp file survived the next fetch"
        );
    }
    eprintln!("{with_temps} of 40 killed fetches left a temp file");
}

#[test]
fn cleanup_matches_pg_archivecleanup() {
    let pgac = "/usr/lib/postgresql/15/bin/pg_archivecleanup";
    if !require("pg_archivecleanup", util::have(pgac)) {
        return;
    }
    let e = env("cleanup");
    let names = [
        SEG6,
        BACKUP,
        SEG9,
        SEG0A,
        "00000002.history",
        TL2_0A,
        PARTIAL,
        "00000003.history",
    ];
    for n in names {
        ok(&e.push(n));
    }
    // The same names as plain files, for the real pg_archivecleanup.
    let plain = e.s.path("plain");
    fs::create_dir(&plain).unwrap();
    for n in names {
        fs::write(plain.join(n), b"").unwrap();
    }
    let cut = TL2_0A;
    let o = Command::new(pgac)
        .args(["-n", plain.to_str().unwrap(), cut])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut theirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            Path::new(l)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    theirs.sort();
    let o = wa(&["cleanup", "-n", "--archive", e.arch.to_str().unwrap(), cut]);
    ok(&o);
    let mut ours: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            StoredName::parse(Path::new(l).file_name().unwrap().to_str().unwrap())
                .unwrap()
                .wal
                .to_string()
        })
        .collect();
    ours.sort();
    assert_eq!(ours, theirs);
    assert_eq!(ours, vec![SEG6.to_string(), SEG9.to_string()]);
    // -n removed nothing; the real run removes exactly those.
    assert_eq!(e.stored(SEG6).len(), 1);
    ok(&wa(&[
        "cleanup",
        "--archive",
        e.arch.to_str().unwrap(),
        cut,
    ]));
    assert!(e.stored(SEG6).is_empty() && e.stored(SEG9).is_empty());
    for n in [
        BACKUP,
        SEG0A,
        "00000002.history",
        TL2_0A,
        PARTIAL,
        "00000003.history",
    ] {
        assert_eq!(e.stored(n).len(), 1, "{n} must stay");
    }
    // -b removes the old backup history file too; a .backup cutoff counts by its segment.
    let o = wa(&[
        "cleanup",
        "-n",
        "-b",
        "--archive",
        e.arch.to_str().unwrap(),
        "00000001000000000000000A.00000028.backup",
    ]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains(BACKUP));
    // Invalid cutoffs: usage error 2, like pg_archivecleanup; missing archive 1.
    let o = wa(&[
        "cleanup",
        "--archive",
        e.arch.to_str().unwrap(),
        "00000002.history",
    ]);
    assert_eq!(status_code(&o), 2);
    assert!(stderr(&o).contains("invalid file name argument"));
    let o = wa(&[
        "cleanup",
        "--archive",
        e.s.path("nope").to_str().unwrap(),
        SEG9,
    ]);
    assert_eq!(status_code(&o), 1);
}

#[test]
fn list_json_and_head_c1() {
    let e = env("list");
    for n in [SEG9, SEG0A, "00000002.history", TL2_0A] {
        ok(&e.push(n));
    }
    let o = wa(&["list", "--json", "--archive", e.arch.to_str().unwrap()]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["system_identifier"], SYSID_A);
    assert_eq!(v["timelines"][0]["first"], SEG9);
    assert_eq!(v["timelines"][0]["last"], SEG0A);
    assert_eq!(v["timelines"][0]["segments"], 2);
    assert_eq!(v["timelines"][1]["timeline"], 2);
    assert!(v["timelines"][0]["ratio"].as_f64().unwrap() > 1.5);
    let o = wa(&["list", "--archive", e.arch.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&format!(
        "timeline 1: {SEG9} .. {SEG0A}, 2 segments, 0 gaps"
    )));
    // Data on stdout, cut short by the reader: dies by SIGPIPE like dd, no message.
    let o = sh(&format!(
        "set +o pipefail; '{}' list --archive '{}' | head -c1",
        bin("walarchive").display(),
        e.arch.display()
    ));
    assert_eq!(o.stdout, b"t");
    assert_eq!(stderr(&o), "");
    ok(&wa(&["verify", "--archive", e.arch.to_str().unwrap()]));
    // A stranger and a misplaced file are reported by verify.
    fs::write(e.arch.join("junk"), b"x").unwrap();
    let o = wa(&["verify", "--archive", e.arch.to_str().unwrap()]);
    assert_eq!(status_code(&o), 1);
    assert!(
        stderr(&o).contains("junk: not a walarchive file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn one_mib_segments() {
    let e = env("1mib");
    ok(&e.push("00000001000000000000001C"));
    ok(&e.push("00000001000000000000001D"));
    let info = fs::read_to_string(e.arch.join("walarchive.info")).unwrap();
    assert!(info.contains("wal-segment-size=1048576"));
    // Cluster A's 16 MiB segment into the 1 MiB archive: refused.
    assert_eq!(status_code(&e.push(SEG9)), 1);
    let d = e.s.path("d");
    ok(&e.fetch("00000001000000000000001D", &d));
    assert_eq!(
        fs::read(&d).unwrap(),
        fs::read(e.src.join("00000001000000000000001D")).unwrap()
    );
    let o = wa(&["list", "--archive", e.arch.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 segments, 0 gaps"));
}

#[test]
fn ahead_pushes_ready_segments_with_the_same_checks() {
    let e = env("ahead");
    // A pg_wal as PostgreSQL leaves it: segments and their .ready markers.
    let pg_wal = e.s.path("pg_wal");
    fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
    for n in [SEG9, SEG0A, "00000001000000000000000B"] {
        let src = if n == "00000001000000000000000B" {
            e.src.join("00000001000000000000001C")
        } else {
            e.src.join(n)
        };
        fs::copy(src, pg_wal.join(n)).unwrap();
        fs::write(
            pg_wal.join("archive_status").join(format!("{n}.ready")),
            b"",
        )
        .unwrap();
    }
    fs::write(pg_wal.join("archive_status/00000002.history.ready"), b"").unwrap();
    let o = e.push_from(&pg_wal.join(SEG9), SEG9, &["--ahead", "8"]);
    ok(&o);
    assert_eq!(e.stored(SEG9).len(), 1);
    assert_eq!(e.stored(SEG0A).len(), 1, "0A was not pushed ahead");
    // 0B holds another cluster's segment (1C of cluster B): refused ahead too (silently),
    // and loudly when PostgreSQL asks for it.
    assert!(e.stored("00000001000000000000000B").is_empty());
    let o = e.push_from(
        &pg_wal.join("00000001000000000000000B"),
        "00000001000000000000000B",
        &["--ahead", "8"],
    );
    assert_eq!(status_code(&o), 1);
    assert!(
        stderr(&o).starts_with("walarchive: 00000001000000000000000B: page address 0/1C00000"),
        "{}",
        stderr(&o)
    );
    // PostgreSQL's call for 0A: confirmed (same content), and still refused if it differed.
    ok(&e.push_from(&pg_wal.join(SEG0A), SEG0A, &["--ahead", "8"]));
    let mut d = fs::read(pg_wal.join(SEG0A)).unwrap();
    d[200_000] ^= 1;
    fs::write(pg_wal.join(SEG0A), &d).unwrap();
    let o = e.push_from(&pg_wal.join(SEG0A), SEG0A, &[]);
    assert_eq!(status_code(&o), 1);
    assert!(stderr(&o).contains("already archived with different content"));
    let dest = e.s.path("back");
    e.fetch_ok(SEG0A, &dest);
    assert!(wa(&["verify", "--archive", e.arch.to_str().unwrap()])
        .status
        .success());
}

/// Push `victim` as SEG9 and, `micros` µs after the start, `disturb` it. The push must end
/// by exit 0 or 1, never a signal; returns its exit code and stderr.
fn push_disturbed(
    e: &Env,
    victim: &Path,
    micros: u64,
    i: usize,
    disturb: impl FnOnce(),
) -> (Option<i32>, String) {
    let c = spawn_push(victim, SEG9, &e.arch, &[]);
    std::thread::sleep(std::time::Duration::from_micros(micros));
    disturb();
    let o = c.wait_with_output().unwrap();
    let (code, err) = (o.status.code(), stderr(&o));
    assert!(
        code == Some(0) || code == Some(1),
        "iteration {i}: push ended by {:?}, stderr: {err}",
        o.status
    );
    (code, err)
}

/// A source truncated or rewritten while push reads it (through its map: SIGBUS territory) — never by
/// PostgreSQL, but it must not end with a signal, a partial final file or a wrong exit 0:
/// exit 0 only with the complete original archived, else exit 1 with a message.
#[test]
fn source_changed_during_push_fails_cleanly() {
    let e = env("trunc");
    ok(&e.push(SEG0A)); // records the cluster
    let orig = fs::read(e.src.join(SEG9)).unwrap();
    let victim = e.s.path("victim");
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id());
    let (mut sigbus, mut archived) = (0, 0);
    for i in 0..30 {
        fs::write(&victim, &orig).unwrap();
        xorshift(&mut seed);
        let (code, err) = push_disturbed(&e, &victim, seed % 12_000, i, || {
            fs::File::options()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len((1 << 20) + 4096)
                .unwrap();
        });
        if err.contains("SIGBUS") {
            sigbus += 1;
        }
        for f in e.stored(SEG9) {
            let st = StoredName::parse(f.file_name().unwrap().to_str().unwrap()).unwrap();
            let back = decode_stored(&st, &fs::read(&f).unwrap(), 16 << 20)
                .unwrap_or_else(|err| panic!("iteration {i}: bad final file: {err}"));
            assert!(back == orig, "iteration {i}: archived bytes differ");
            assert_eq!(code, Some(0), "iteration {i}: archived but exit 1: {err}");
            archived += 1;
            fs::remove_file(&f).unwrap();
        }
    }
    eprintln!("30 truncated pushes: {archived} archived before the truncation, {sigbus} stopped by SIGBUS");

    // Bytes rewritten in place (same size) during the push: whatever is archived must
    // decode to content whose BLAKE3 is the one in its name; a push that saw the change
    // exits 1 and archives nothing.
    let (mut refused, mut kept) = (0, 0);
    for i in 0..20 {
        fs::write(&victim, &orig).unwrap();
        xorshift(&mut seed);
        let (code, err) = push_disturbed(&e, &victim, seed % 8_000, i, || {
            use std::os::unix::fs::FileExt;
            let f = fs::File::options().write(true).open(&victim).unwrap();
            for k in 0..8u64 {
                let at = (1 << 20) + ((seed >> (k * 4)) % 15) * (1 << 20) + 4096 * k;
                f.write_all_at(&[0xA5; 8192], at).unwrap();
            }
        });
        if code == Some(1) {
            refused += 1;
        }
        for f in e.stored(SEG9) {
            let st = StoredName::parse(f.file_name().unwrap().to_str().unwrap()).unwrap();
            decode_stored(&st, &fs::read(&f).unwrap(), 16 << 20)
                .unwrap_or_else(|err| panic!("iteration {i}: stored file fails its hash: {err}"));
            assert_eq!(code, Some(0), "iteration {i}: archived but exit 1: {err}");
            kept += 1;
            fs::remove_file(&f).unwrap();
        }
    }
    eprintln!("20 pushes rewritten in place: {kept} archived (consistent), {refused} refused");
}

/// `--ahead` keeps push's crash guarantees (issue: "tested the same way"): `kill -9` of a
/// call that pushes a batch ahead, at random moments, 60 times. Whatever it left, a final
/// name only ever holds a complete copy of its source, and PostgreSQL's retries — each
/// segment's own call, in order, from its spool record or by the full path — all exit 0,
/// leave one stored copy per segment with the source's bytes, no record and no temp file.
#[test]
fn kill_9_of_ahead_pushes_keeps_the_guarantees() {
    let e = env("killahead");
    let segs = [SEG6, SEG9, SEG0A, TL2_0A];
    let pg_wal = pg_wal_ready(&e, &segs);
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id());
    let (mut with_records, mut stored_at_kill) = (0, 0);
    for i in 0..60 {
        let arch = e.s.path(&format!("arch{i}"));
        fs::create_dir(&arch).unwrap();
        let _ = fs::remove_dir_all(pg_wal.join(".walarchive-spool"));
        xorshift(&mut seed);
        let c = spawn_push(&pg_wal.join(SEG6), SEG6, &arch, &["--ahead", "8"]);
        kill_after(c, seed % 90_000); // SIGKILL
        with_records += usize::from(spool_records(&pg_wal) > 0);
        // what the kill left under final names is complete
        let ctx = format!("iteration {i}");
        stored_at_kill += archived_copies(&arch, &pg_wal, true, &ctx).len();
        // PostgreSQL retries the killed call, then asks for each later segment
        for n in segs {
            let o = push_ahead(&pg_wal, n, &arch, &[]);
            assert!(o.status.success(), "{ctx}: {n}: {}", stderr(&o));
        }
        assert_eq!(archived_copies(&arch, &pg_wal, false, &ctx), segs, "{ctx}");
        assert_eq!(spool_records(&pg_wal), 0, "{ctx}: spool records left");
        // verify agrees: every file's checksum is right; the only finding is the gap the
        // fixtures have (07 and 08 were never there)
        let v = wa(&["verify", "--archive", arch.to_str().unwrap()]);
        let gap = "timeline 1: missing 000000010000000000000007 .. 000000010000000000000008";
        assert!(
            stderr(&v).contains(gap) && stderr(&v).contains(" 1 problem(s) found"),
            "{ctx}: {}",
            stderr(&v)
        );
        fs::remove_dir_all(&arch).unwrap();
    }
    eprintln!(
        "60 killed --ahead calls: {stored_at_kill} segments stored at the kill, {with_records} left spool records"
    );
    assert!(
        with_records > 0,
        "no kill came after a spool record: widen the delays"
    );
}
