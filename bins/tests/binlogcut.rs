//! binlogcut against real binlogs (fixtures/binlog, see its README) and the real peer
//! mariadb-binlog; the server round trips (MariaDB sandbox) are in `binlogcut_server.rs`.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use util::{bin, fixture, require, sh, status_code, stderr, Scratch};

fn cut() -> Command {
    let mut c = Command::new(bin("binlogcut"));
    c.env("TZ", "UTC");
    c
}

fn run(args: &[&str]) -> Output {
    cut().args(args).output().unwrap()
}

fn f(rel: &str) -> String {
    fixture(&format!("binlog/{rel}")).display().to_string()
}

fn have_peer() -> bool {
    require("mariadb-binlog", util::have("mariadb-binlog"))
}

/// `mariadb-binlog` with `--no-defaults` and `--local-load` in the target's tmp directory: the
/// peer writes the data of every LOAD DATA event it decodes to a file there (by default into
/// /tmp, where the suite left hundreds of SQL_LOAD_MB-* files behind). One fixed directory,
/// so the paths printed in the SQL are the same for a cut and its source.
fn peer() -> Command {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mariadb-binlog-local-load");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Command::new("mariadb-binlog");
    c.arg("--no-defaults")
        .arg(format!("--local-load={}", dir.display()));
    c
}

/// mariadb-binlog's SQL for `args`, minus what legitimately differs between a cut and its
/// source: `#` comment lines (positions, times, event headers) and the FDE's BINLOG block
/// (the cut clears the in-use flag). Returns (exit code, text).
fn peer_sql(args: &[&str]) -> (i32, String) {
    let o = peer().args(args).env("TZ", "UTC").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = String::new();
    let mut skip_block = false;
    let mut after_fde = false;
    for l in text.lines() {
        if skip_block {
            if l.starts_with("'/*!*/;") {
                skip_block = false;
            }
            continue;
        }
        if l.starts_with('#') {
            if l.contains("Start: binlog v 4") {
                after_fde = true;
            } else if l.starts_with("# at ") {
                after_fde = false;
            }
            continue;
        }
        if after_fde && l.starts_with("BINLOG '") {
            skip_block = true;
            continue;
        }
        if after_fde && l == "ROLLBACK/*!*/;" {
            continue;
        }
        if is_session_state(l) {
            continue;
        }
        let l = without_load_counter(l);
        out.push_str(&l);
        out.push('\n');
    }
    (status_code(&o), out)
}

/// Session state mariadb-binlog prints only when it changes, and again at each new file.
fn is_session_state(l: &str) -> bool {
    const STATE: &[&str] = &[
        "DELIMITER ",
        "SET @@session.",
        "SET TIMESTAMP=",
        "use `",
        "/*!\\C ",
        "/*M!100101 SET @@session.skip_parallel_replication",
        "/*M!100001 SET @@session.gtid_domain_id",
        "/*M!100001 SET @@session.server_id",
        "/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE",
        "/*!40019 SET @@session.max_delayed_threads",
        "/*!50003 SET ",
        "ROLLBACK /* added by mysqlbinlog */",
        "/*!100001 SET @@SESSION.",
    ];
    STATE.iter().any(|p| l.starts_with(p))
}

/// `l` with the peer's per-run counter in LOAD DATA temp file names replaced.
fn without_load_counter(l: &str) -> String {
    match l.find("SQL_LOAD_MB-") {
        Some(i) => {
            let end = l[i..].find('\'').map(|e| i + e).unwrap_or(l.len());
            format!("{}SQL_LOAD_MB-N{}", &l[..i], &l[end..])
        }
        None => l.to_string(),
    }
}

/// Equal texts, or a panic showing the first differing line (not megabytes of base64).
fn assert_same(got: &str, want: &str, ctx: &str) {
    if got == want {
        return;
    }
    let g: Vec<&str> = got.lines().collect();
    let w: Vec<&str> = want.lines().collect();
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    let around = |v: &[&str]| v[i.saturating_sub(3)..(i + 3).min(v.len())].join("\n");
    panic!("{ctx}: decoded SQL differs at line {i} ({} vs {} lines)\n--- cut:\n{}\n--- peer on the original:\n{}", g.len(), w.len(), around(&g), around(&w));
}

fn gunzip_sakila(s: &Scratch) -> String {
    let out = s.path("sakila.bin");
    let o = sh(&format!(
        "gzip -dc '{}' > '{}'",
        f("mysql/mysql-bin.sakila.gz"),
        out.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    out.display().to_string()
}

/// Every fixture: verify's exit code and first stderr line as the README says.
#[test]
fn verify_every_fixture() {
    let cases: &[(&str, i32, &str)] = &[
        ("damaged/binlog_before_20574.bin", 1, "offset 296: encrypted MariaDB binary log"),
        ("damaged/binlog_truncated_event.000001", 3, "offset 4: truncated event header: 10 of 19 bytes"),
        ("damaged/binlog_truncated_prev_gtid_event.000001", 0, "in use (live, or the server crashed): unfinished last event: offset 120"),
        ("damaged/bug11747416_32228_binlog.000001", 0, "in use (live, or the server crashed): unfinished last event: offset 316: truncated event: size 65567 but only 7876 bytes left"),
        ("damaged/mdev-39404-binlog.000001", 3, "offset 256: CRC32 mismatch: stored 00000000, computed 04e0a427"),
        ("mysql/trunc_binlog.000001", 1, "offset 4: binary log format v1/v3"),
        ("mysql/binlog_old_version_4_1.000001", 1, "offset 4: binary log format v1/v3"),
        ("mysql/mysql-bin.sakila.gz", 1, "offset 0: not a binary log file"),
    ];
    for (rel, code, msg) in cases {
        let o = run(&["verify", &f(rel)]);
        assert_eq!(status_code(&o), *code, "{rel}: {}", stderr(&o));
        let want = format!("binlogcut: {}: {msg}", f(rel));
        assert!(
            stderr(&o).starts_with(&want),
            "{rel}: got {:?}, want prefix {want:?}",
            stderr(&o)
        );
    }
    // --strict turns the unfinished live file into exit 4
    let o = run(&[
        "verify",
        "--strict",
        &f("damaged/bug11747416_32228_binlog.000001"),
    ]);
    assert_eq!(status_code(&o), 4, "{}", stderr(&o));
    // every other fixture is clean: no output, exit 0
    let dirs = [
        "mysql",
        "mariadb",
        "mariadb-pitr/row-crc32/binlogs",
        "mariadb-pitr/stmt-none/binlogs",
    ];
    let mut n = 0;
    for d in dirs {
        for e in std::fs::read_dir(fixture(&format!("binlog/{d}"))).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("{d}/{}", p.file_name().unwrap().to_str().unwrap());
            if cases.iter().any(|c| c.0 == rel) {
                continue;
            }
            let o = run(&["verify", p.to_str().unwrap()]);
            assert_eq!(status_code(&o), 0, "{rel}: {}", stderr(&o));
            assert!(
                o.stdout.is_empty() && o.stderr.is_empty(),
                "{rel}: {}",
                stderr(&o)
            );
            n += 1;
        }
    }
    assert!(n >= 27, "{n} clean fixtures");
}

fn binlog_fixtures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in [
        "mysql",
        "mariadb",
        "mariadb-pitr/row-crc32/binlogs",
        "mariadb-pitr/stmt-none/binlogs",
    ] {
        for e in std::fs::read_dir(fixture(&format!("binlog/{d}"))).unwrap() {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_str().unwrap().to_string();
            if n.ends_with(".gz")
                || n.starts_with("trunc_binlog")
                || n.starts_with("binlog_old_version")
            {
                continue;
            }
            v.push(p);
        }
    }
    v
}

/// Cutting a whole fixture (no window) gives a binlog that verifies clean and that
/// mariadb-binlog decodes to the same SQL as the original.
#[test]
fn whole_cut_of_every_fixture_decodes_like_the_original() {
    if !have_peer() {
        return;
    }
    let s = Scratch::new("blc-whole");
    let mut files = binlog_fixtures();
    files.push(PathBuf::from(gunzip_sakila(&s)));
    for p in files {
        let src = p.to_str().unwrap();
        let out = s.path("cut.bin");
        let _ = std::fs::remove_file(&out);
        let o = run(&["-o", out.to_str().unwrap(), src]);
        // the Incident fixture is refused (exit 3) unless --force
        if src.ends_with("bug40482-bin.000001") {
            assert_eq!(status_code(&o), 3, "{}", stderr(&o));
            assert!(stderr(&o).contains("incident event"), "{}", stderr(&o));
            assert!(!out.exists());
            continue;
        }
        assert_eq!(status_code(&o), 0, "{src}: {}", stderr(&o));
        let v = run(&["verify", "--strict", out.to_str().unwrap()]);
        assert_eq!(
            status_code(&v),
            0,
            "{src}: cut does not verify: {}",
            stderr(&v)
        );
        let (pc, want) = peer_sql(&[src]);
        let (oc, got) = peer_sql(&[
            "--verify-binlog-checksum",
            "--skip-force-if-open",
            out.to_str().unwrap(),
        ]);
        if pc != 0 {
            // MySQL 8 Transaction_payload / tagged GTIDs: the peer cannot decode either file
            assert_ne!(oc, 0, "{src}");
            continue;
        }
        if oc != 0 {
            // the original is in use, so the peer took its read error as EOF; on the closed
            // cut the same MySQL 8 event type the peer cannot decode is an error
            let e = peer().arg(out.to_str().unwrap()).output().unwrap();
            assert!(
                stderr(&e).contains("Found incompatible MySQL 8.0"),
                "{src}: mariadb-binlog rejects the cut: {}",
                stderr(&e)
            );
            continue;
        }
        assert_same(&got, &want, src);
    }
}

/// The same window on the original (mariadb-binlog) and on our cut gives the same SQL,
/// where the peer's per-event rule and our per-transaction rule agree.
#[test]
fn windows_decode_like_the_peer() {
    if !have_peer() {
        return;
    }
    let s = Scratch::new("blc-win");
    let row = |n: u8| {
        f(&format!(
            "mariadb-pitr/row-crc32/binlogs/mysql-bin.00000{n}"
        ))
    };
    let stmt = |n: u8| {
        f(&format!(
            "mariadb-pitr/stmt-none/binlogs/mysql-bin.00000{n}"
        ))
    };
    let windows: Vec<Vec<String>> = vec![
        vec!["--stop-datetime=2026-11-24 15:24:17".into(), row(1), row(2)],
        vec![
            "--start-datetime=2026-11-24 15:24:17".into(),
            row(1),
            row(2),
        ],
        vec!["--stop-position=7841".into(), row(1), row(2)],
        vec!["--stop-position=0-1-25".into(), row(1), row(2)],
        vec![
            "--start-position=0-1-20".into(),
            "--stop-position=0-1-25".into(),
            row(1),
            row(2),
        ],
        vec!["--start-position=2792".into(), row(2)],
        vec!["--stop-position=0-1-25".into(), stmt(1), stmt(2)],
        vec![
            "--stop-datetime=2026-11-24 15:24:29".into(),
            stmt(1),
            stmt(2),
        ],
        vec![
            "--start-datetime=2026-11-24 15:24:00".into(),
            "--stop-datetime=2026-11-24 15:24:12".into(),
            row(1),
        ],
        // MySQL 5.7, anonymous GTIDs, 14 hours of transactions
        vec![
            "--start-datetime=2018-05-04 11:14:22".into(),
            "--stop-datetime=2018-05-04 11:23:21".into(),
            f("mysql/mysql-bin.checksum-crc32"),
        ],
        // MariaDB 10.0, 1381 groups whose timestamps often go backwards
        vec![
            "--start-datetime=2014-04-11 10:02:09".into(),
            "--stop-datetime=2014-04-11 10:06:14".into(),
            f("mariadb/mdev6020-mysql-bin.000001"),
        ],
        vec![
            "--start-position=0-1-700".into(),
            "--stop-position=0-1-1380".into(),
            f("mariadb/mdev6020-mysql-bin.000001"),
        ],
        vec![
            "--stop-position=259842".into(),
            f("mariadb/mdev6020-mysql-bin.000001"),
        ],
    ];
    for w in windows {
        let args: Vec<&str> = w.iter().map(String::as_str).collect();
        let out = s.path("w.bin");
        let mut a = vec!["-o", out.to_str().unwrap()];
        a.extend(&args);
        let o = run(&a);
        assert_eq!(status_code(&o), 0, "{w:?}: {}", stderr(&o));
        let (pc, want) = peer_sql(&args);
        assert_eq!(pc, 0, "{w:?}");
        let (oc, got) = peer_sql(&["--verify-binlog-checksum", out.to_str().unwrap()]);
        assert_eq!(oc, 0, "{w:?}");
        assert_same(&got, &want, &format!("{w:?}"));
    }
}

/// Spec §7: 0-1-22 (a lock waiter, timestamp :14) is written after 0-1-21 (:15). A stop at
/// :15 drops both, as mariadb-binlog does, and says so.
#[test]
fn timestamps_going_backwards() {
    let row2 = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let row1 = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000001");
    let o = run(&["--stop-datetime=2026-11-24 15:24:15", &row1, &row2]);
    assert_eq!(status_code(&o), 0);
    let e = stderr(&o);
    assert!(
        e.contains(
            "later transaction(s) from offset 1003 on have timestamps before --stop-datetime"
        ),
        "{e}"
    );
    let s = Scratch::new("blc-back");
    let out = s.path("c.bin");
    std::fs::write(&out, &o.stdout).unwrap();
    let l = run(&["list", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&l.stdout);
    assert!(
        text.lines().last().unwrap().contains("\t0-1-20\t"),
        "{text}"
    );
    if have_peer() {
        let (_, peer) = peer_sql(&["--stop-datetime=2026-11-24 15:24:15", &row1, &row2]);
        assert!(
            peer.contains("gtid_seq_no=20")
                && !peer.contains("gtid_seq_no=21")
                && !peer.contains("gtid_seq_no=22")
        );
        // a start at :15 keeps the older waiter too (everything after the start point)
        let o = run(&["--start-datetime=2026-11-24 15:24:15", &row2]);
        std::fs::write(&out, &o.stdout).unwrap();
        let (_, got) = peer_sql(&[out.to_str().unwrap()]);
        let (_, want) = peer_sql(&["--start-datetime=2026-11-24 15:24:15", &row2]);
        assert!(got.contains("gtid_seq_no=22"));
        assert_same(&got, &want, "start 15:24:15");
    }
}

#[test]
fn list_groups_events_json_grep() {
    let row2 = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let o = run(&["list", "--grep", "^DELETE FROM blog", &row2]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{row2}\t7841\t12596\t2026-11-24 15:24:17\t0-1-26\t4755\tGtid,Annotate_rows,Table_map,Delete_rows_v1,Xid\tDELETE FROM blog.comments\n")
    );
    let o = run(&["list", "--json", &row2]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[5]["gtid"], "0-1-26");
    assert_eq!(lines[5]["start"], 7841);
    assert_eq!(lines[5]["timestamp"], 1795533857);
    // tiles: each group starts where the previous ended
    for w in lines.windows(2) {
        assert_eq!(w[0]["end"], w[1]["start"]);
    }
    let o = run(&["list", "--events", "--json", &row2]);
    let ev: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ev[0]["type"], "Format_desc");
    assert_eq!(ev[0]["offset"], 4);
    assert!(ev
        .iter()
        .any(|e| e["type"] == "Gtid" && e["gtid"] == "0-1-26" && e["offset"] == 7841));
    assert_eq!(ev.last().unwrap()["type"], "Stop");
    // MySQL: GTIDs as UUID:N, Transaction_payload kept in one group
    let o = run(&["list", &f("mysql/transaction_compression.000001")]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Transaction_payload"));
    let o = run(&["list", "--grep", "(", &row2]);
    assert_eq!(status_code(&o), 2);
}

#[test]
fn mysql_gtid_sets() {
    let src = f("mysql/binlog_56_gtid_reserved_word.000001");
    let l = run(&["list", "--json", &src]);
    let gtids: Vec<String> = String::from_utf8_lossy(&l.stdout)
        .lines()
        .map(|x| {
            serde_json::from_str::<serde_json::Value>(x).unwrap()["gtid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(gtids.len() >= 3, "{gtids:?}");
    let (uuid, first) = gtids[0].split_once(':').unwrap();
    let s = Scratch::new("blc-gtidset");
    let out = s.path("c.bin");
    let kept = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["-o", out.to_str().unwrap()];
        a.extend(args);
        a.push(&src);
        let o = run(&a);
        assert_eq!(status_code(&o), 0, "{}", stderr(&o));
        let l = run(&["list", "--json", out.to_str().unwrap()]);
        String::from_utf8_lossy(&l.stdout)
            .lines()
            .map(|x| {
                serde_json::from_str::<serde_json::Value>(x).unwrap()["gtid"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let inc = format!("{}:{first}", uuid.to_uppercase());
    assert_eq!(kept(&["--include-gtids", &inc]), vec![gtids[0].clone()]);
    let exc = format!("{uuid}:{first}");
    assert_eq!(kept(&["--exclude-gtids", &exc]), gtids[1..].to_vec());
    let o = run(&["--include-gtids", "nope:1", &src]);
    assert_eq!(status_code(&o), 2);
    assert_eq!(
        stderr(&o),
        "binlogcut: --include-gtids: bad server UUID 'nope' in GTID set\n"
    );
}

fn copy_to(s: &Scratch, rel: &str) -> PathBuf {
    let p = s.path(Path::new(rel).file_name().unwrap().to_str().unwrap());
    std::fs::copy(fixture(&format!("binlog/{rel}")), &p).unwrap();
    p
}

#[test]
fn corruption_is_named_and_refused_unless_forced() {
    let s = Scratch::new("blc-corrupt");
    let p = copy_to(&s, "mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let mut d = std::fs::read(&p).unwrap();
    let ps = p.to_str().unwrap();
    // the event holding byte 10000 (inside the Delete_rows of 0-1-26)
    let l = run(&["list", "--events", "--json", ps]);
    let bad = String::from_utf8_lossy(&l.stdout)
        .lines()
        .map(|x| serde_json::from_str::<serde_json::Value>(x).unwrap())
        .find(|e| e["offset"].as_u64().unwrap() <= 10000 && 10000 < e["end"].as_u64().unwrap())
        .unwrap()["offset"]
        .as_u64()
        .unwrap();
    assert!(bad > 7841 && bad < 12596);
    d[10000] ^= 0x55;
    std::fs::write(&p, &d).unwrap();
    let o = run(&["verify", ps]);
    assert_eq!(status_code(&o), 3);
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!("binlogcut: {ps}: offset {bad}: CRC32 mismatch")),
        "{e}"
    );
    // cutting across it: refused, nothing written
    let out = s.path("c.bin");
    let o = run(&["-o", out.to_str().unwrap(), ps]);
    assert_eq!(status_code(&o), 3);
    assert!(
        stderr(&o).contains(&format!("offset {bad}: CRC32 mismatch"))
            && stderr(&o).contains("--force")
    );
    assert!(!out.exists());
    // a window before it is fine
    let o = run(&["--stop-position=7841", ps]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    // --force copies it with a warning
    let o = run(&["--force", ps]);
    assert_eq!(status_code(&o), 0);
    assert!(stderr(&o).contains("copied anyway (--force)"));
    // an impossible size in a closed file: damage
    let mut d2 = std::fs::read(fixture(
        "binlog/mariadb-pitr/row-crc32/binlogs/mysql-bin.000002",
    ))
    .unwrap();
    d2[7841 + 9..7841 + 13].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
    std::fs::write(&p, &d2).unwrap();
    let o = run(&["verify", ps]);
    assert_eq!(status_code(&o), 3);
    assert!(
        stderr(&o).contains("offset 7841: truncated event: size 4294967295"),
        "{}",
        stderr(&o)
    );
    d2[7841 + 9..7841 + 13].copy_from_slice(&5u32.to_le_bytes());
    std::fs::write(&p, &d2).unwrap();
    let o = run(&["verify", ps]);
    assert!(
        stderr(&o).contains("offset 7841: impossible event size 5"),
        "{}",
        stderr(&o)
    );
    let o = run(&[ps]);
    assert_eq!(status_code(&o), 3);
}

#[test]
fn truncated_empty_and_foreign_files() {
    let s = Scratch::new("blc-trunc");
    let src = std::fs::read(fixture(
        "binlog/mariadb-pitr/row-crc32/binlogs/mysql-bin.000002",
    ))
    .unwrap();
    let t = s.path("trunc.bin");
    std::fs::write(&t, &src[..8000]).unwrap();
    let ts = t.to_str().unwrap();
    let o = run(&["verify", ts]);
    assert_eq!(status_code(&o), 3);
    assert_eq!(
        stderr(&o),
        format!("binlogcut: {ts}: offset 7989: truncated event header: 11 of 19 bytes\n")
    );
    // the same bytes as a live file (in-use flag set): not damage
    let mut live = src[..8000].to_vec();
    live[21] |= 1;
    std::fs::write(&t, &live).unwrap();
    let o = run(&["verify", ts]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    let z = s.path("zero.bin");
    std::fs::write(&z, b"").unwrap();
    let o = run(&["verify", z.to_str().unwrap()]);
    assert_eq!(status_code(&o), 1);
    assert_eq!(
        stderr(&o),
        format!(
            "binlogcut: {}: offset 0: empty file, not a binary log\n",
            z.display()
        )
    );
    let o = run(&[z.to_str().unwrap()]);
    assert_eq!(status_code(&o), 1);
    let o = run(&["list", &f("README.md")]);
    assert_eq!(status_code(&o), 1);
    assert!(stderr(&o).ends_with("offset 0: not a binary log file (no fe 62 69 6e magic)\n"));
    let o = run(&[&f("damaged/binlog_before_20574.bin")]);
    assert_eq!(status_code(&o), 1);
    assert!(stderr(&o).contains("encrypted MariaDB binary log"));
    let enc = s.path("enc.bin");
    std::fs::write(&enc, b"\xfdbin\x01rest").unwrap();
    let o = run(&["verify", enc.to_str().unwrap()]);
    assert_eq!(status_code(&o), 1);
    assert!(stderr(&o).contains("encrypted MySQL binary log"));
    let o = run(&["/nonexistent/x"]);
    assert_eq!(
        stderr(&o),
        "binlogcut: /nonexistent/x: No such file or directory\n"
    );
    // a live (in-use) file whose last event is incomplete: cut up to it, with a warning
    let live = f("damaged/bug11747416_32228_binlog.000001");
    let o = run(&[&live]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("file in use (live, or the server crashed), treated as its end"));
    let o = run(&["--strict", &live]);
    assert_eq!(status_code(&o), 4);
}

#[test]
fn positions_inside_events_are_errors() {
    let row2 = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let o = run(&["--stop-position=7842", &row2]);
    assert_eq!(status_code(&o), 1);
    assert_eq!(
        stderr(&o),
        format!("binlogcut: {row2}: --stop-position 7842 is inside an event: the nearest events start at 7841 and 7883\n")
    );
    let o = run(&["--start-position=99999999", &row2]);
    assert_eq!(status_code(&o), 1);
    assert!(stderr(&o).contains("past the end of the file"));
    // start inside a group (its Annotate_rows at 7883): starts at the next group
    let o = run(&["--start-position=7883", &row2]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    let s = Scratch::new("blc-pos");
    let out = s.path("c.bin");
    std::fs::write(&out, &o.stdout).unwrap();
    assert!(
        stderr(&o).contains(
            "--start-position 7883 is inside the transaction at 7841..12596: starting at 12596"
        ),
        "{}",
        stderr(&o)
    );
    let l = run(&["list", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&l.stdout)
        .lines()
        .next()
        .unwrap()
        .contains("\t0-1-27\t"));
}

#[test]
fn usage_errors() {
    let row2 = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let cases: &[(&[&str], &str)] = &[
        (&["--stop-datetime=yesterday"], "binlogcut: --stop-datetime: bad datetime 'yesterday' (want 'YYYY-MM-DD HH:MM:SS', local time)\n"),
        (&["--start-position=12x"], "binlogcut: --start-position: '12x' is neither a byte offset nor a GTID list (D-S-N)\n"),
        (&["--stop-position=0-1"], "binlogcut: --stop-position: bad GTID '0-1' (want domain-server-seq, e.g. 0-1-53)\n"),
        (&["-", "-"], "binlogcut: '-' (stdin) can be named only once\n"),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        if !a.contains(&"-") {
            a.push(&row2);
        }
        let o = run(&a);
        assert_eq!(status_code(&o), 2, "{args:?}");
        assert_eq!(stderr(&o), *want, "{args:?}");
    }
    let o = run(&[]);
    assert_eq!(status_code(&o), 2);
    let o = run(&["--help"]);
    assert_eq!(status_code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--stop-datetime"));
    // the output may not be an input
    let s = Scratch::new("blc-same");
    let p = copy_to(&s, "mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let o = run(&["-o", p.to_str().unwrap(), p.to_str().unwrap()]);
    assert_eq!(status_code(&o), 2);
    assert_eq!(std::fs::read(&p).unwrap().len(), 13880);
}

/// Files of different checksum settings in one cut: each keeps its own FDE, and the
/// in-use flag is cleared in the output.
#[test]
fn mixed_inputs_and_stdin() {
    let s = Scratch::new("blc-mixed");
    let out = s.path("c.bin");
    let o = run(&[
        "-o",
        out.to_str().unwrap(),
        &f("mariadb-pitr/stmt-none/binlogs/mysql-bin.000001"),
        &f("mariadb/mariadb-bin.000001"),
    ]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    let l = run(&["list", "--events", "--json", out.to_str().unwrap()]);
    let ev: Vec<serde_json::Value> = String::from_utf8_lossy(&l.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fdes: Vec<_> = ev.iter().filter(|e| e["type"] == "Format_desc").collect();
    assert_eq!(fdes.len(), 2);
    assert!(fdes.iter().all(|e| e["flags"].as_u64().unwrap() & 1 == 0));
    assert_eq!(
        status_code(&run(&["verify", "--strict", out.to_str().unwrap()])),
        0
    );
    if have_peer() {
        // two servers' GTID sequences: the peer's strict GTID order check must be off
        let (c, _) = peer_sql(&[
            "--verify-binlog-checksum",
            "--skip-force-if-open",
            "--skip-gtid-strict-mode",
            out.to_str().unwrap(),
        ]);
        assert_eq!(c, 0);
    }
    // stdin, and `-o -`
    let src = fixture("binlog/mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    let o = sh(&format!("TZ=UTC '{}' --stop-position=0-1-25 -o - - < '{}' | cmp - <(TZ=UTC '{}' --stop-position=0-1-25 '{}')",
        bin("binlogcut").display(), src.display(), bin("binlogcut").display(), src.display()));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A data mover dies by SIGPIPE like dd when its reader goes away.
#[test]
fn head_c1() {
    let s = Scratch::new("blc-head");
    let sak = gunzip_sakila(&s);
    let o = sh(&format!(
        "set +e; '{}' '{sak}' | head -c1 | od -An -tx1; echo \"status ${{PIPESTATUS[0]}}\"",
        bin("binlogcut").display()
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" fe"), "{out}");
    assert!(out.contains("status 141"), "{out}");
}

/// Datetimes are local time, as mysqlbinlog's: the same instant named in another zone
/// gives the same cut, and the peer agrees in that zone.
#[test]
fn datetime_is_local_time() {
    let row = |n: u8| {
        f(&format!(
            "mariadb-pitr/row-crc32/binlogs/mysql-bin.00000{n}"
        ))
    };
    let utc = run(&["--stop-datetime=2026-11-24 15:24:17", &row(1), &row(2)]);
    let berlin = Command::new(bin("binlogcut"))
        .env("TZ", "Europe/Berlin")
        .args(["--stop-datetime=2026-11-24 16:24:17", &row(1), &row(2)])
        .output()
        .unwrap();
    assert_eq!(status_code(&berlin), 0);
    assert_eq!(utc.stdout, berlin.stdout);
    let early = Command::new(bin("binlogcut"))
        .env("TZ", "Europe/Berlin")
        .args(["--stop-datetime=2026-11-24 15:24:17", &row(1), &row(2)])
        .output()
        .unwrap();
    assert!(
        early.stdout.len() < 300,
        "an hour earlier in Berlin: before every transaction"
    );
}

/// Incident events and unknown event types inside the window are refused unless --force.
#[test]
fn incident_and_unknown_types() {
    let inc = f("mysql/bug40482-bin.000001");
    let o = run(&[&inc]);
    assert_eq!(status_code(&o), 3);
    assert_eq!(
        stderr(&o),
        format!("binlogcut: {inc}: offset 106: incident event: the server lost changes here (use --force to cut past it)\n")
    );
    let o = run(&["--force", &inc]);
    assert_eq!(status_code(&o), 0);
    assert!(stderr(&o).contains("offset 106: warning: incident event skipped (--force)"));
    // no checksums in this file, so a changed type code is still well framed
    let s = Scratch::new("blc-unknown");
    let p = copy_to(&s, "mariadb-pitr/stmt-none/binlogs/mysql-bin.000002");
    let mut d = std::fs::read(&p).unwrap();
    d[411 + 4] = 200; // the Query at 411 becomes type 200
    std::fs::write(&p, &d).unwrap();
    let ps = p.to_str().unwrap();
    let o = run(&[ps]);
    assert_eq!(status_code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("offset 411: unknown event type 200 (use --force to copy it)"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--stop-position=373", ps]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    let l = run(&["list", ps]);
    assert!(String::from_utf8_lossy(&l.stdout)
        .contains("\t373\t547\t2026-11-24 15:24:27\t0-1-21\t174\tGtid,Unknown,Xid"));
}

/// `-o` naming a device: written to, never synced or removed (a failed cut removes only a
/// regular output file).
#[test]
fn output_to_devices() {
    use std::os::unix::fs::FileTypeExt;
    let src = f("mariadb/mariadb-bin.000001");
    let o = run(&["-o", "/dev/null", &src]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    if Path::new("/dev/full").exists() {
        let o = run(&["-o", "/dev/full", &src]);
        assert_eq!(status_code(&o), 1);
        assert_eq!(
            stderr(&o),
            "binlogcut: /dev/full: No space left on device\n"
        );
        assert!(std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device());
    }
}

/// CRC-32 (IEEE, reflected), as binlog trailers use.
fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// `copies` copies of a fixture's events after its FDE, each copy's timestamps moved on by
/// `shift` seconds more than the last, log_pos rewritten to the new offsets and CRCs
/// recomputed (`alt_server`: every odd copy written by server_id 2): a long, well-formed binlog (megabytes, so the cut hops with several chains
/// and checks CRCs on several threads).
fn stretch(rel: &str, copies: u32, shift: u32, alt_server: bool) -> Vec<u8> {
    use lampvault::binlog::Binlog;
    let d = std::fs::read(f(rel)).unwrap();
    let b = Binlog::open(&d).unwrap();
    let crc = b.format.has_crc();
    // (offset, size, file-level control event: Stop, Rotate, Gtid_list, Binlog_checkpoint,
    // kept in the first copy only, and Stop/Rotate not at all)
    let events: Vec<(usize, usize, u8)> = b
        .events(false)
        .skip(1)
        .map(|e| e.unwrap())
        .map(|e| (e.offset as usize, e.raw.len(), e.type_code()))
        .filter(|e| e.2 != 3 && e.2 != 4)
        .collect();
    let mut out = d[..b.after_fde() as usize].to_vec();
    for k in 0..copies {
        for &(at, n, code) in &events {
            if k > 0 && matches!(code, 161 | 163 | 35) {
                continue;
            }
            let start = out.len();
            out.extend_from_slice(&d[at..at + n]);
            let ev = &mut out[start..];
            let ts = u32::from_le_bytes(ev[0..4].try_into().unwrap()) + k * shift;
            ev[0..4].copy_from_slice(&ts.to_le_bytes());
            ev[13..17].copy_from_slice(&((start + n) as u32).to_le_bytes());
            if alt_server && k % 2 == 1 {
                ev[5..9].copy_from_slice(&2u32.to_le_bytes());
            }
            if code == 162 {
                // MariaDB Gtid: seq_no must keep rising (the peer checks the order)
                let seq =
                    u64::from_le_bytes(ev[19..27].try_into().unwrap()) + u64::from(k) * 100_000;
                ev[19..27].copy_from_slice(&seq.to_le_bytes());
            }
            if crc {
                let c = crc32(&ev[..n - 4]);
                ev[n - 4..].copy_from_slice(&c.to_le_bytes());
            }
        }
    }
    out
}

/// Big files: the multi-chain hop and the threaded CRC check give what the peer gives.
#[test]
fn big_files_cut_like_the_peer() {
    if !have_peer() {
        return;
    }
    let s = Scratch::new("blc-big");
    // mdev6020: 9 minutes of 10.0 groups whose timestamps often go backwards, no CRC;
    // the pitr row file: CRC32, a lock waiter
    let cases = [
        ("mariadb/mdev6020-mysql-bin.000001", 40, 600, 1397210229u32),
        (
            "mariadb-pitr/row-crc32/binlogs/mysql-bin.000002",
            1500,
            60,
            1795533850,
        ),
    ];
    for (rel, copies, shift, base) in cases {
        let big = s.path("big.bin");
        std::fs::write(&big, stretch(rel, copies, shift, false)).unwrap();
        let bs = big.to_str().unwrap();
        let o = run(&["verify", bs]);
        assert_eq!(status_code(&o), 0, "{rel}: {}", stderr(&o));
        let at = |secs: u32| {
            let o = sh(&format!("TZ=UTC date -u -d @{} '+%F %T'", base + secs));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        let mid = copies * shift / 2;
        let windows = [
            vec![
                format!("--start-datetime={}", at(mid)),
                // a quarter of the file: checked on several threads
                format!("--stop-datetime={}", at(mid + copies * shift / 4)),
            ],
            vec![format!("--start-datetime={}", at((copies - 1) * shift + 5))],
            vec![
                format!("--start-datetime={}", at(mid + 7)),
                format!("--stop-datetime={}", at(mid + 2)),
            ],
        ];
        for w in windows {
            let out = s.path("w.bin");
            let mut a: Vec<&str> = vec!["-o", out.to_str().unwrap()];
            a.extend(w.iter().map(String::as_str));
            a.push(bs);
            let o = run(&a);
            assert_eq!(status_code(&o), 0, "{rel} {w:?}: {}", stderr(&o));
            let mut pa: Vec<&str> = w.iter().map(String::as_str).collect();
            pa.push(bs);
            let (pc, want) = peer_sql(&pa);
            assert_eq!(pc, 0, "{rel} {w:?}");
            let (oc, got) = peer_sql(&["--verify-binlog-checksum", out.to_str().unwrap()]);
            assert_eq!(oc, 0, "{rel} {w:?}");
            assert!(
                want.len() > 100 || w.len() == 2,
                "{rel} {w:?}: empty window"
            );
            assert_same(&got, &want, &format!("{rel} {w:?}"));
        }
    }
    // two damaged events inside a 10 MB window: the first is named; --force reports both,
    // in file order, whichever thread checked them
    let big = s.path("big.bin");
    let mut d = std::fs::read(&big).unwrap();
    let (x, y) = (d.len() / 3 + 5, d.len() * 2 / 3 + 5);
    d[x] ^= 0x40;
    d[y] ^= 0x40;
    std::fs::write(&big, &d).unwrap();
    let bs = big.to_str().unwrap();
    let o = run(&["verify", bs]);
    assert_eq!(status_code(&o), 3);
    let first = stderr(&o)
        .split("offset ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap()
        .to_string();
    let o = run(&[bs]);
    assert_eq!(status_code(&o), 3);
    assert!(
        stderr(&o).contains(&format!("offset {first}: CRC32 mismatch")),
        "{}",
        stderr(&o)
    );
    let o = run(&["--force", bs]);
    assert_eq!(status_code(&o), 0);
    let offs: Vec<u64> = stderr(&o)
        .lines()
        .filter(|l| l.contains("copied anyway"))
        .map(|l| {
            l.split("offset ")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(offs.len(), 2, "{}", stderr(&o));
    assert_eq!(offs[0].to_string(), first);
    assert!(offs[0] < x as u64 && offs[1] < y as u64 && offs[1] > x as u64);
}

/// --server-id keeps one server's transactions, as mariadb-binlog --server-id does (also
/// combined with a datetime window).
#[test]
fn server_id_like_the_peer() {
    if !have_peer() {
        return;
    }
    let s = Scratch::new("blc-sid");
    let two = s.path("two.bin");
    std::fs::write(
        &two,
        stretch(
            "mariadb-pitr/row-crc32/binlogs/mysql-bin.000002",
            6,
            60,
            true,
        ),
    )
    .unwrap();
    let ts = two.to_str().unwrap();
    for w in [
        vec!["--server-id=2"],
        vec!["--server-id=1"],
        vec!["--server-id=3"],
        vec![
            "--server-id=2",
            "--start-datetime=2026-11-24 15:25:15",
            "--stop-datetime=2026-11-24 15:28:20",
        ],
    ] {
        let out = s.path("w.bin");
        let mut a = vec!["-o", out.to_str().unwrap()];
        a.extend(&w);
        a.push(ts);
        let o = run(&a);
        assert_eq!(status_code(&o), 0, "{w:?}: {}", stderr(&o));
        let mut pa = w.clone();
        pa.push(ts);
        let (pc, want) = peer_sql(&pa);
        assert_eq!(pc, 0, "{w:?}");
        let (oc, got) = peer_sql(&["--verify-binlog-checksum", out.to_str().unwrap()]);
        assert_eq!(oc, 0, "{w:?}");
        assert_same(&got, &want, &format!("{w:?}"));
        let n = run(&["list", out.to_str().unwrap()]);
        let kept = String::from_utf8_lossy(&n.stdout).lines().count();
        match w[0] {
            "--server-id=3" => assert_eq!(kept, 0),
            _ => assert!(kept > 0, "{w:?}"),
        }
    }
    let o = run(&["--server-id=x", ts]);
    assert_eq!(status_code(&o), 2);
}

/// mariadb-binlog's SQL for `args`, split by the transaction groups `groups` (start, end) of
/// the file it reads: each line goes to the group holding the event of the last `# at N`;
/// lines of control events and the preamble are dropped. Same normalisation as `peer_sql`.
fn peer_sql_by_group(args: &[&str], groups: &[(u64, u64)]) -> (i32, Vec<String>) {
    let o = peer().args(args).env("TZ", "UTC").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = vec![String::new(); groups.len()];
    let mut cur: Option<usize> = None;
    for l in text.lines() {
        if let Some(n) = l.strip_prefix("# at ") {
            let n: u64 = n.trim().parse().unwrap();
            cur = groups.iter().position(|&(s, e)| s <= n && n < e);
            continue;
        }
        let Some(g) = cur else { continue };
        if l.starts_with('#') {
            continue;
        }
        if is_session_state(l) {
            continue;
        }
        out[g].push_str(&without_load_counter(l));
        out[g].push('\n');
    }
    (status_code(&o), out)
}

/// (start, end) of every transaction group of `file`, from `binlogcut list --json`.
fn group_ranges(file: &str) -> Vec<(u64, u64)> {
    let o = run(&["list", "--json", file]);
    assert_eq!(status_code(&o), 0, "list {file}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "transaction")
        .map(|v| (v["start"].as_u64().unwrap(), v["end"].as_u64().unwrap()))
        .collect()
}

/// A group's decoded text holds a change (not only GTID, BEGIN/COMMIT, Intvar/User_var...):
/// what the peer leaves of another database's transaction is such an empty shell.
fn has_data(text: &str) -> bool {
    const SHELL: &[&str] = &[
        "/*M!100001 SET @@session.gtid_seq_no=",
        "SET @@SESSION.GTID_NEXT",
        "/*!50718 SET TRANSACTION ISOLATION",
        "/*!80001 SET @@session.original_commit_timestamp",
        "/*!80014 SET @@session.original_server_version",
        "/*!80014 SET @@session.immediate_server_version",
        "START TRANSACTION",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "/*!*/;",
        "SET INSERT_ID=",
        "SET LAST_INSERT_ID=",
        "SET @@RAND_SEED",
        "SET @`",
    ];
    text.lines()
        .any(|l| !l.trim().is_empty() && !SHELL.iter().any(|p| l.starts_with(p)))
}

/// `binlogcut -d DB` of `file` against `mariadb-binlog --database=DB` of it, group by group:
/// * a group the peer prints whole (same text as without --database) with changes: kept,
///   and decoded from the cut it is the same text;
/// * a group of which the peer prints only the shell (GTID, BEGIN/COMMIT, SET INSERT_ID...)
///   while it has changes: dropped (the expected difference: the peer prints empty
///   transactions, the cut leaves them out);
/// * a group without changes at all: kept (the peer prints it whole too);
/// * a group of which the peer prints part (mixed databases): the cut is refused (exit 1,
///   naming the group's offset), and with --force it is kept WHOLE (expected difference:
///   the peer's text lacks the other databases' statements).
///
/// Returns (groups kept, dropped, mixed).
fn database_cut_like_peer(s: &Scratch, file: &str, db: &str) -> (usize, usize, usize) {
    let ctx = format!("-d {db} {file}");
    let groups = group_ranges(file);
    let (c1, all) = peer_sql_by_group(&[file], &groups);
    let dbarg = format!("--database={db}");
    let (c2, mine) = peer_sql_by_group(&[&dbarg, file], &groups);
    assert_eq!((c1, c2), (0, 0), "{ctx}");
    let mut want = Vec::new();
    let (mut dropped, mut mixed) = (0, 0);
    let mut first_mixed = None;
    for (k, (a, m)) in all.iter().zip(&mine).enumerate() {
        if a == m {
            want.push(a.clone());
        } else if !has_data(m) {
            assert!(has_data(a), "{ctx}: group {k}");
            dropped += 1;
        } else {
            mixed += 1;
            first_mixed.get_or_insert(groups[k].0);
            want.push(a.clone());
        }
    }
    let out = s.path("db.bin");
    let outs = out.to_str().unwrap();
    let _ = std::fs::remove_file(&out);
    let o = run(&["-d", db, "-o", outs, file]);
    if let Some(at) = first_mixed {
        assert_eq!(status_code(&o), 1, "{ctx}: a mixed group must be refused");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("transaction at {at}..")) && e.contains("--force"),
            "{ctx}: {e}"
        );
        assert!(!out.exists(), "{ctx}: nothing written on refusal");
        let o = run(&["-d", db, "--force", "-o", outs, file]);
        assert_eq!(status_code(&o), 0, "{ctx}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).matches("kept whole (--force)").count(),
            mixed,
            "{ctx}: one warning per mixed group"
        );
    } else {
        assert_eq!(status_code(&o), 0, "{ctx}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{ctx}");
    }
    let cut_groups = group_ranges(outs);
    let (c3, got) = peer_sql_by_group(&["--verify-binlog-checksum", outs], &cut_groups);
    assert_eq!(c3, 0, "{ctx}");
    assert_eq!(got.len(), want.len(), "{ctx}: groups kept");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_same(g, w, &format!("{ctx}: kept group {k}"));
    }
    (want.len(), dropped, mixed)
}

#[test]
fn database_like_the_peer() {
    if !have_peer() {
        return;
    }
    let s = Scratch::new("blc-db");
    let crc = f("mysql/mysql-bin.checksum-crc32");
    let none = f("mysql/mysql-bin.checksum-none");
    let stmt = f("mysql/binlog_transaction.000001");
    let load = f("mysql/ver_5_1_23.001");
    let save = f("mysql/binlog_savepoint.000001");
    let prow = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000001");
    let pstmt = f("mariadb-pitr/stmt-none/binlogs/mysql-bin.000002");
    // (file, db, expected (kept, dropped, mixed)): row events by Table_map (4 databases),
    // statements by default database, Intvar/User_var/LOAD DATA, savepoints, MariaDB GTIDs
    let cases: &[(&str, &str)] = &[
        (&crc, "auth"),
        (&crc, "simu_file_dev"),
        (&crc, "menkor_dev"),
        (&crc, "nosuchdb"),
        (&none, "account_db"),
        (&none, "meeteam_file_storage"),
        (&stmt, "test"),
        (&stmt, "mysql"),
        (&load, "test"),
        (&load, "other"),
        (&save, "test"),
        (&save, "db1"),
        (&prow, "blog"),
        (&prow, "zzz"),
        (&pstmt, "blog"),
    ];
    let mut totals = (0, 0, 0);
    for (file, db) in cases {
        let (k, d, m) = database_cut_like_peer(&s, file, db);
        eprintln!("-d {db} {file}: kept {k}, dropped {d}, mixed {m}");
        totals = (totals.0 + k, totals.1 + d, totals.2 + m);
        if *db == "nosuchdb" || *db == "zzz" {
            assert_eq!(m, 0);
        }
    }
    // the cases really cover keeping, dropping and mixed groups
    assert!(
        totals.0 > 20 && totals.1 > 20 && totals.2 >= 3,
        "{totals:?}"
    );
}

#[test]
fn database_refusals_and_usage() {
    let comp = f("mysql/transaction_compression.000001");
    let o = run(&["-d", "test", comp.as_str()]);
    assert_eq!(status_code(&o), 1);
    let e = stderr(&o);
    assert!(
        e.contains("Transaction_payload event at 274") && e.contains("--force"),
        "{e}"
    );
    assert!(o.stdout.is_empty());
    // --force: kept whole, with a warning; the cut is the whole file's transactions
    let o = run(&["-d", "test", "--force", comp.as_str()]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("kept whole (--force)"),
        "{}",
        stderr(&o)
    );
    let all = run(&[comp.as_str()]);
    assert_eq!(o.stdout, all.stdout);
    let row2 = f("mariadb-pitr/row-crc32/binlogs/mysql-bin.000002");
    for a in [vec!["-d", ""], vec!["--database="], vec!["--database"]] {
        let mut a = a.clone();
        a.push(&row2);
        let o = run(&a);
        assert_eq!(status_code(&o), 2, "{a:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
    let long = "x".repeat(256);
    let o = run(&["-d", &long, &row2]);
    assert_eq!(status_code(&o), 2);
}

/// A full disk under `-o FILE`: exit 1 with the cause, and no partial cut left under the
/// name (a later `mariadb-binlog FILE | mysql` would replay half a window). Permissions:
/// an unreadable input and an unwritable output directory are clear errors, exit 1.
#[test]
fn full_disk_and_permissions() {
    if !require("root (tmpfs mount, runuser)", util::is_root()) {
        return;
    }
    let s = Scratch::new("bc-full");
    let mnt = s.path("small");
    let _disk = util::Tmpfs::mount(&mnt, "128k");
    let src = f("mariadb/mdev6020-mysql-bin.000001"); // 516 kB
    let out = mnt.join("cut.bin");
    let o = run(&["-o", out.to_str().unwrap(), &src]);
    assert_eq!(status_code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("binlogcut: {}: No space left on device\n", out.display())
    );
    assert!(!out.exists(), "partial cut left on a full disk");
    // a small cut still fits
    let small = f("mariadb/mariadb-bin.000001");
    let o = run(&["-o", out.to_str().unwrap(), &small]);
    assert_eq!(status_code(&o), 0, "{}", stderr(&o));
    assert!(out.exists());

    // as an unprivileged user: an unreadable input, an unwritable output directory
    std::fs::set_permissions(&s.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let exe = s.path("binlogcut");
    std::fs::copy(bin("binlogcut"), &exe).unwrap();
    let secret = s.path("secret.bin");
    std::fs::copy(&small, &secret).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let nobody = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&exe)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap()
    };
    for args in [
        vec![secret.to_str().unwrap()],
        vec!["verify", secret.to_str().unwrap()],
        vec!["list", secret.to_str().unwrap()],
    ] {
        let o = nobody(&args);
        assert_eq!(status_code(&o), 1, "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("binlogcut: {}: Permission denied\n", secret.display()),
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = nobody(&["-o", out.to_str().unwrap(), &small]);
    assert_eq!(status_code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("binlogcut: {}: Permission denied", out.display())),
        "{}",
        stderr(&o)
    );
}
