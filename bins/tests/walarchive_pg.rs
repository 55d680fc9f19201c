//! walarchive as the archive_command / restore_command of a REAL PostgreSQL 15
//! (`scripts/pg-sandbox`: throwaway clusters run as the non-root user `pgtest`).
//!
//! * the whole PITR cycle: base backup, load, time T, DROP TABLE, more load, restore to T →
//!   the table is back with exactly its rows; the restored server promotes to timeline 2
//!   and keeps archiving into the same archive; verify and list agree;
//! * cleanup with the backup's .backup name removes exactly what pg_archivecleanup removes,
//!   and the base backup still restores afterwards;
//! * a corrupt archived segment stops recovery (FATAL, not promotion);
//! * an archive on a full tmpfs: pushes fail, PostgreSQL keeps the WAL, and once space
//!   returns everything is archived and a restore replays all of it.

mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lampvault::wal::store::StoredName;
use util::{bin, require, script, stderr, Scratch};

struct Sandbox {
    dir: PathBuf,
    port: u16,
}

impl Sandbox {
    fn new(dir: &Path, port: u16) -> Sandbox {
        Sandbox {
            dir: dir.to_path_buf(),
            port,
        }
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(script("pg-sandbox"))
            .args(args)
            .env("PGSB_DIR", &self.dir)
            .env("PGSB_PORT", self.port.to_string())
            .env("PGSB_TIMEOUT", "120")
            .output()
            .expect("pg-sandbox")
    }
    /// Run, require success, return stdout trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "pg-sandbox {args:?} failed:\n{}",
            stderr(&o)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
    fn sql(&self, q: &str) -> String {
        self.ok(&["sql", q])
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::env::var_os("LAMPVAULT_KEEP").is_none() {
            let _ = self.run(&["destroy"]);
        }
    }
}

fn have_pg() -> bool {
    require(
        "PostgreSQL 15 (pg-sandbox)",
        Path::new("/usr/lib/postgresql/15/bin/postgres").exists(),
    ) && require(
        "root (pg-sandbox runs the server as pgtest)",
        util::is_root(),
    )
}

/// Set up a sandbox whose archive_command is walarchive push into `archive`; returns the
/// sandbox and the walarchive path the server uses.
fn primary(dir: &Path, port: u16, archive: &Path, push_extra: &str) -> (Sandbox, String) {
    let sb = Sandbox::new(dir, port);
    let wa = dir.join("bin/walarchive");
    let cmd = format!(
        "{} push %p %f --archive {}{push_extra}",
        wa.display(),
        archive.display()
    );
    sb.ok(&[
        "init",
        "--archive-command",
        &cmd,
        "--set",
        "archive_timeout=0",
    ]);
    fs::copy(bin("walarchive"), &wa).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "pgtest:"])
        .arg(archive)
        .status()
        .unwrap();
    assert!(chown.success());
    sb.ok(&["start"]);
    (sb, wa.display().to_string())
}

fn stored_names(archive: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(archive).unwrap() {
        let p = e.unwrap().path();
        let ents: Vec<PathBuf> = if p.is_dir() {
            fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![p]
        };
        for f in ents {
            if let Some(s) = StoredName::parse(f.file_name().unwrap().to_str().unwrap()) {
                out.push(s.wal.to_string());
            }
        }
    }
    out.sort();
    out
}

fn find_stored(archive: &Path, name: &str) -> PathBuf {
    let w = lampvault::wal::WalName::parse(name).unwrap();
    let d = archive.join(w.archive_subdir().unwrap_or_default());
    fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| StoredName::entry_is_for(p.file_name().unwrap().to_str().unwrap(), name))
        .unwrap_or_else(|| panic!("{name} not archived"))
}

fn wa(args: &[&str]) -> Output {
    Command::new(bin("walarchive")).args(args).output().unwrap()
}

#[test]
fn pitr_timeline_switch_cleanup_and_corruption() {
    if !have_pg() {
        return;
    }
    let s = Scratch::new("pgpitr");
    let archive = s.path("walarch");
    fs::create_dir(&archive).unwrap();
    let (sb, w) = primary(&s.0, 55410, &archive, " --ahead 8");
    let fetch = format!(
        "{w} fetch %f %p --archive {} --prefetch 4",
        archive.display()
    );
    let push = format!("{w} push %p %f --archive {}", archive.display());

    sb.ok(&["load", "--segments", "2"]);
    sb.ok(&["basebackup"]);
    sb.sql("create table t as select g as id, md5(g::text) as v from generate_series(1, 10000) g");
    sb.ok(&["load", "--segments", "2"]);
    let want = sb.sql("select md5(string_agg(v, ',' order by id)) from t");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let t = sb.ok(&["now"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    sb.sql("drop table t");
    sb.ok(&["load", "--segments", "2"]);
    sb.ok(&["wait-archived"]);
    let stats = sb.ok(&["archiver-stats"]);
    assert!(stats.contains("failed_count=0"), "{stats}");
    // --ahead's records are all consumed by PostgreSQL's own calls (or dropped): none left
    // once nothing is .ready.
    let spool = s.0.join("primary/pg_wal/.walarchive-spool");
    let left: Vec<_> = fs::read_dir(&spool)
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spool records left behind: {left:?}");

    // Restore to T with walarchive fetch; the copy archives its new timeline with push.
    sb.ok(&[
        "restore",
        "--restore-command",
        &fetch,
        "--target-time",
        &t,
        "--archive-command",
        &push,
    ]);
    let got = sb.ok(&[
        "sql",
        "--instance",
        "restored",
        "select md5(string_agg(v, ',' order by id)) || ' ' || count(*) from t",
    ]);
    assert_eq!(got, format!("{want} 10000"));
    let log = fs::read_to_string(s.path("restored.log")).unwrap();
    assert!(
        log.contains("restored log file"),
        "fetch was not used:\n{log}"
    );
    // Timeline switch: keep archiving on timeline 2.
    sb.ok(&[
        "sql",
        "--instance",
        "restored",
        "insert into t values (0, 'tl2')",
    ]);
    let tl2_seg = sb.ok(&[
        "sql",
        "--instance",
        "restored",
        "select pg_walfile_name(pg_switch_wal())",
    ]);
    assert!(tl2_seg.starts_with("00000002"), "{tl2_seg}");
    sb.ok(&["wait-archived", "--instance", "restored"]);
    let names = stored_names(&archive);
    assert!(names.contains(&"00000002.history".to_string()), "{names:?}");
    assert!(names.contains(&tl2_seg), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".backup")), "{names:?}");
    let v = wa(&["verify", "-v", "--archive", archive.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
    let l = wa(&["list", "--json", "--archive", archive.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap();
    let sysid = sb.sql("select system_identifier from pg_control_system()");
    assert_eq!(j["system_identifier"], sysid.as_str());
    assert_eq!(j["timelines"][1]["timeline"], 2);
    assert_eq!(j["timelines"][0]["gaps"].as_array().unwrap().len(), 0);
    sb.ok(&["stop", "--instance", "restored"]);

    // Cleanup with the base backup's .backup name, compared with pg_archivecleanup.
    let backup = names
        .iter()
        .find(|n| n.ends_with(".backup"))
        .unwrap()
        .clone();
    let mirror = s.path("mirror");
    fs::create_dir(&mirror).unwrap();
    for n in &names {
        fs::write(mirror.join(n), b"").unwrap();
    }
    let o = Command::new("/usr/lib/postgresql/15/bin/pg_archivecleanup")
        .arg(&mirror)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let c = wa(&["cleanup", "--archive", archive.to_str().unwrap(), &backup]);
    assert!(c.status.success(), "{}", stderr(&c));
    let mut theirs: Vec<String> = fs::read_dir(&mirror)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    theirs.sort();
    let after = stored_names(&archive);
    assert_eq!(after, theirs);
    assert!(after.len() < names.len(), "cleanup removed nothing");
    assert!(wa(&["verify", "--archive", archive.to_str().unwrap()])
        .status
        .success());
    // What cleanup kept is enough to restore the base backup to T.
    sb.ok(&[
        "restore",
        "--instance",
        "again",
        "--restore-command",
        &fetch,
        "--target-time",
        &t,
    ]);
    let got = sb.ok(&[
        "sql",
        "--instance",
        "again",
        "select md5(string_agg(v, ',' order by id)) || ' ' || count(*) from t",
    ]);
    assert_eq!(got, format!("{want} 10000"));
    sb.ok(&["stop", "--instance", "again"]);

    // Corrupt the segment after the backup's first one: recovery must stop, not promote.
    let first = &backup[..24];
    let victim = lampvault::wal::WalName::parse(first).unwrap();
    let next = lampvault::wal::WalName::segment_from_segno(
        1,
        victim.segno(16 << 20).unwrap() + 1,
        16 << 20,
    )
    .unwrap()
    .to_string();
    let f = find_stored(&archive, &next);
    let mut bytes = fs::read(&f).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    fs::write(&f, &bytes).unwrap();
    let o = sb.run(&[
        "restore",
        "--instance",
        "broken",
        "--restore-command",
        &fetch,
        "--target-time",
        &t,
    ]);
    assert!(
        !o.status.success(),
        "recovery from a corrupt archive finished:\n{}",
        stderr(&o)
    );
    let log = fs::read_to_string(s.path("broken.log")).unwrap();
    assert!(
        log.contains(&format!("walarchive: {next}: ")) && log.contains("is corrupt"),
        "{log}"
    );
    assert!(log.contains("FATAL"), "{log}");
    assert!(
        !log.contains("selected new timeline ID"),
        "promoted despite corruption:\n{log}"
    );
    assert!(
        !log.contains("database system is ready to accept connections"),
        "{log}"
    );
}

#[test]
fn full_archive_filesystem_then_catch_up() {
    if !have_pg() {
        return;
    }
    let s = Scratch::new("pgfull");
    let archive = s.path("walarch");
    fs::create_dir(&archive).unwrap();
    // Room for three uncompressed 16 MiB segments and a bit.
    let m = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=56m,mode=0755",
            "lvtest-walarchive-pg",
        ])
        .arg(&archive)
        .status()
        .unwrap();
    assert!(m.success());
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(archive.clone());
    let (sb, w) = primary(&s.0, 55420, &archive, " --compress none");
    sb.ok(&["basebackup"]);
    sb.sql("create table t as select g as id, md5(g::text) as v from generate_series(1, 5000) g");
    sb.ok(&["load", "--segments", "4"]);
    let want = sb.sql("select md5(string_agg(v, ',' order by id)) from t");
    // Wait for the archiver to fail on the full filesystem.
    let mut failed = false;
    for _ in 0..150 {
        let st = sb.ok(&["archiver-stats"]);
        if !st.contains("failed_count=0") {
            failed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(failed, "archiving never failed on a full archive");
    let ready = sb.sql("select count(*) from pg_ls_archive_statusdir() where name like '%.ready'");
    assert_ne!(ready, "0", "PostgreSQL must keep the unarchived WAL");
    let log = fs::read_to_string(s.path("primary.log")).unwrap();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(
        log.contains("archive command failed with exit code 1"),
        "{log}"
    );
    // Nothing partial under a final name.
    let v = wa(&["verify", "--archive", archive.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
    // Space returns: everything gets archived and a restore replays all of it.
    let r = Command::new("mount")
        .args(["-o", "remount,size=400m"])
        .arg(&archive)
        .status()
        .unwrap();
    assert!(r.success());
    sb.ok(&["reload"]);
    sb.ok(&["wait-archived"]);
    let v = wa(&["verify", "--archive", archive.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
    let fetch = format!("{w} fetch %f %p --archive {}", archive.display());
    sb.ok(&["restore", "--restore-command", &fetch]);
    let got = sb.ok(&[
        "sql",
        "--instance",
        "restored",
        "select md5(string_agg(v, ',' order by id)) from t",
    ]);
    assert_eq!(got, want);
    let log = fs::read_to_string(s.path("restored.log")).unwrap();
    assert!(!log.contains("FATAL"), "{log}");
}
