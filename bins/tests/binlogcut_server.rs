//! binlogcut with a real MariaDB (scripts/mariadb-sandbox): cut → mariadb-binlog → fresh
//! server → compare tables. Two scripted scenarios, each in two binlog formats:
//! * `binlog-pitr-check` on the committed fixtures `fixtures/binlog/mariadb-pitr/*`
//!   (datetime, byte-position and GTID stops; structural check of the cut);
//! * `binlogcut-drop-table-check`: a live server, an erroneous DROP TABLE, cut by
//!   `--stop-datetime` and `--stop-position` of the DROP found with `binlogcut list --grep`;
//! * `binlogcut-database-check`: `--database` cuts of a two-database server replayed.

mod util;

use util::{bin, fixture, require, script, stderr};

fn have_mariadb() -> bool {
    require(
        "MariaDB server (mariadbd) and mariadb-binlog",
        (util::have("mariadbd") || util::have("/usr/sbin/mariadbd"))
            && util::have("mariadb-binlog"),
    )
}

fn run_script(args: &[&str]) {
    let o = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{out}\n{}",
        stderr(&o)
    );
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn pitr_fixture_row_crc32() {
    if !have_mariadb() {
        return;
    }
    let scn = fixture("binlog/mariadb-pitr/row-crc32");
    run_script(&[
        script("binlog-pitr-check").to_str().unwrap(),
        scn.to_str().unwrap(),
        bin("binlogcut").to_str().unwrap(),
    ]);
}

#[test]
fn pitr_fixture_statement_none() {
    if !have_mariadb() {
        return;
    }
    let scn = fixture("binlog/mariadb-pitr/stmt-none");
    run_script(&[
        script("binlog-pitr-check").to_str().unwrap(),
        scn.to_str().unwrap(),
        bin("binlogcut").to_str().unwrap(),
    ]);
}

#[test]
fn drop_table_live_row_crc32() {
    if !have_mariadb() {
        return;
    }
    run_script(&[
        script("binlogcut-drop-table-check").to_str().unwrap(),
        bin("binlogcut").to_str().unwrap(),
        "ROW",
        "CRC32",
    ]);
}

#[test]
fn drop_table_live_statement_none() {
    if !have_mariadb() {
        return;
    }
    run_script(&[
        script("binlogcut-drop-table-check").to_str().unwrap(),
        bin("binlogcut").to_str().unwrap(),
        "STATEMENT",
        "NONE",
    ]);
}

/// `--database`: `scripts/binlogcut-database-check` (two databases, a mixed transaction
/// refused / kept whole with --force, each database's tables restored exactly).
#[test]
fn database_live_row_crc32() {
    if !have_mariadb() {
        return;
    }
    run_script(&[
        script("binlogcut-database-check").to_str().unwrap(),
        bin("binlogcut").to_str().unwrap(),
        "ROW",
        "CRC32",
    ]);
}

#[test]
fn database_live_statement_none() {
    if !have_mariadb() {
        return;
    }
    run_script(&[
        script("binlogcut-database-check").to_str().unwrap(),
        bin("binlogcut").to_str().unwrap(),
        "STATEMENT",
        "NONE",
    ]);
}
