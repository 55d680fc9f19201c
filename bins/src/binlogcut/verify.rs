//! `binlogcut verify`: walk every event of each file and check framing and every CRC32.
//! Clean files print nothing (`-v`: one summary line each). Damage: `FILE: offset N: cause`
//! and exit 3. A file in use (live, or its server crashed) that ends inside an event is
//! reported as such, not as damage, with exit 0 (4 with `--strict`).

use lampvault::binlog::{Binlog, Checksum, ErrorKind};

use super::input::{self, warn, EXIT_DAMAGED, EXIT_UNFINISHED};
use crate::common::Failure;

pub struct VerifyArgs {
    pub files: Vec<String>,
    pub strict: bool,
    pub verbose: bool,
}

pub fn run(a: VerifyArgs) -> Result<u8, Failure> {
    input::check_stdin_once(&a.files)?;
    let mut code = 0u8;
    let mut note = |c: u8, msg: String| {
        eprintln!("binlogcut: {msg}");
        // the exit code is the worst seen: 1 (unreadable) > 3 (damage) > 4 (unfinished) > 0
        let rank = |c: u8| match c {
            0 => 0,
            EXIT_UNFINISHED => 1,
            EXIT_DAMAGED => 2,
            _ => 3,
        };
        if rank(c) > rank(code) {
            code = c;
        }
    };
    for f in &a.files {
        let inp = match input::load(f, false) {
            Ok(i) => i,
            Err(e) => {
                note(e.code, e.msg);
                continue;
            }
        };
        let b = match Binlog::open(&inp.bytes) {
            Ok(b) => b,
            Err(e) => {
                let fl = input::failure(f, &e);
                note(fl.code, fl.msg);
                continue;
            }
        };
        let len = b.len();
        let (n, bad) =
            lampvault::binlog::verify::verify_all_paged(&b, input::threads(), &inp.bytes);
        match bad {
            None => {
                if a.verbose {
                    let crc = match b.format.checksum {
                        Checksum::Crc32 => "every CRC32 checked",
                        Checksum::Off => "binlog_checksum=NONE",
                        Checksum::NotAware => "no checksums (server before 5.6.1/MariaDB 5.3)",
                    };
                    let live = if b.in_use {
                        ", in use (live, or not closed properly)"
                    } else {
                        ""
                    };
                    warn(format_args!(
                        "{f}: ok: {n} events, {len} bytes, {crc}{live}"
                    ));
                }
            }
            Some(e) if e.kind == ErrorKind::MariadbEncrypted => note(1, format!("{f}: {e}")),
            Some(e) => {
                // a live file's last event may be half written; a CRC error in an event that
                // ends exactly at the end of an in-use file is the same case
                let tail = e.is_truncation()
                    || matches!(e.kind, ErrorKind::Crc { .. }) && {
                        let at = e.offset as usize;
                        let size =
                            u32::from_le_bytes(inp.bytes[at + 9..at + 13].try_into().unwrap())
                                as u64;
                        e.offset + size == len
                    };
                if b.in_use && tail {
                    let c = if a.strict { EXIT_UNFINISHED } else { 0 };
                    let msg = format!(
                        "{f}: in use (live, or the server crashed): unfinished last event: {e}; {n} complete events before it"
                    );
                    if c == 0 {
                        warn(msg);
                    } else {
                        note(c, msg);
                    }
                } else {
                    note(EXIT_DAMAGED, format!("{f}: {e}"));
                }
            }
        }
    }
    Ok(code)
}
