//! walarchive — PostgreSQL `archive_command` / `restore_command` that never loses a segment.
//!
//! Subcommands: `push` (archive_command), `fetch` (restore_command), `cleanup`
//! (archive_cleanup_command, pg_archivecleanup's rules), `list`, `verify`.
//! Exit codes follow spec `shared/specs/pg-wal-archive.md` §1.3 and §2.2–2.3: push exits 1 on
//! every failure (usage errors and panics included; ≥126 would kill the archiver); fetch
//! exits 0 ok, 1 only when the archive is readable and does not hold the file, and 255 for
//! anything else (usage errors and panics included), so that PostgreSQL stops recovery
//! instead of promoting early.

mod admin;
mod archive;
mod fetch;
mod prefetch;
mod push;
mod spool;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};

use crate::common::{Failure, Sigpipe, Tool};

/// fetch's exit code for anything but "absent" (spec §2.3).
pub const FETCH_FAIL: u8 = 255;

fn archive_arg() -> Arg {
    Arg::new("archive")
        .long("archive")
        .short('a')
        .value_name("DIR")
        .required(true)
        .value_parser(value_parser!(std::path::PathBuf))
        .help("Archive directory (must exist)")
}

pub fn command() -> Command {
    Command::new("walarchive")
        .about("PostgreSQL WAL archiving that is atomic, durable, LZ4-compressed and BLAKE3-verified")
        .long_about(
            "walarchive is the archive_command, restore_command and archive_cleanup_command of a \
             PostgreSQL server. push writes each file under a temporary name, fsyncs it, renames it \
             into place and fsyncs the directory before it exits 0; it checks the WAL page header \
             against the name and the cluster's system identifier, and never overwrites a file. \
             fetch decompresses, verifies the BLAKE3 checksum and the header, and tells \"not in the \
             archive\" (exit 1) from every other failure (exit 255). Archived files are plain LZ4 \
             frames named NAME-BLAKE3HEX.lz4, readable with lz4 and b3sum alone.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("push")
                .about("Archive one file (archive_command = 'walarchive push %p %f --archive DIR')")
                .arg(Arg::new("path").required(true).value_name("PATH").help("File to archive (%p)"))
                .arg(Arg::new("name").required(true).value_name("NAME").help("Its WAL file name (%f)"))
                .arg(archive_arg())
                .arg(
                    Arg::new("compress")
                        .long("compress")
                        .value_name("METHOD")
                        .value_parser(["lz4", "none"])
                        .default_value("lz4")
                        .help("Compression of segments; history and backup files are stored as they are"),
                )
                .arg(
                    Arg::new("level")
                        .long("level")
                        .value_name("N")
                        .value_parser(value_parser!(i32).range(-64..=12))
                        .allow_negative_numbers(true)
                        .default_value("1")
                        .help("LZ4 level: 1 = fast LZ4, -N = fast LZ4 with acceleration N (as lz4 --fast=N: faster, larger), 2-12 = LZ4 HC"),
                )
                .arg(
                    Arg::new("group-read")
                        .long("group-read")
                        .action(ArgAction::SetTrue)
                        .help("Create files 0640 and directories 0750 (default 0600 and 0700)"),
                )
                .arg(
                    Arg::new("system-id")
                        .long("system-id")
                        .value_name("ID")
                        .value_parser(value_parser!(u64))
                        .help("Refuse segments of any other cluster, even in a new archive"),
                )
                .arg(
                    Arg::new("accept-magic")
                        .long("accept-magic")
                        .value_name("HEX")
                        .value_parser(parse_magic)
                        .help("Accept this WAL page magic although it is not a known release (e.g. 0xD121)"),
                )
                .arg(
                    Arg::new("ahead")
                        .long("ahead")
                        .value_name("N")
                        .value_parser(value_parser!(u16).range(0..=256))
                        .default_value("0")
                        .help("Also push up to N following segments marked .ready in pg_wal/archive_status, in parallel; PostgreSQL's later call for an unchanged one is confirmed from a record in pg_wal/.walarchive-spool (see PUSHING AHEAD)"),
                )
                .arg(
                    Arg::new("threads")
                        .long("threads")
                        .value_name("N")
                        .value_parser(value_parser!(u16).range(1..=64))
                        .help("Compression threads (default: one per CPU)"),
                ),
        )
        .subcommand(
            Command::new("fetch")
                .about("Restore one file (restore_command = 'walarchive fetch %f %p --archive DIR')")
                .arg(Arg::new("name").required(true).value_name("NAME").help("WAL file name wanted (%f)"))
                .arg(Arg::new("path").required(true).value_name("PATH").help("Where to write it (%p)"))
                .arg(archive_arg())
                .arg(
                    Arg::new("prefetch")
                        .long("prefetch")
                        .value_name("N")
                        .value_parser(value_parser!(u16).range(0..=64))
                        .default_value("0")
                        .help("After a segment, decode and verify the next N segments in the background into pg_wal/.walarchive-prefetch; PostgreSQL's call for one re-verifies it and gets it by a rename (see PREFETCH)"),
                )
                .arg(
                    Arg::new("prefetch-worker")
                        .long("prefetch-worker")
                        .action(ArgAction::SetTrue)
                        .hide(true),
                ),
        )
        .subcommand(
            Command::new("cleanup")
                .about("Remove files older than a cutoff, as pg_archivecleanup (archive_cleanup_command, %r)")
                .arg(archive_arg())
                .arg(
                    Arg::new("cutoff")
                        .required(true)
                        .value_name("OLDESTKEPTWALFILE")
                        .help("Oldest file to keep: a segment, .partial or .backup name (%r)"),
                )
                .arg(
                    Arg::new("dry-run")
                        .short('n')
                        .long("dry-run")
                        .action(ArgAction::SetTrue)
                        .help("Print the paths that would be removed, remove nothing"),
                )
                .arg(
                    Arg::new("clean-backup-history")
                        .short('b')
                        .long("clean-backup-history")
                        .action(ArgAction::SetTrue)
                        .help("Also remove backup history files older than the cutoff"),
                ),
        )
        .subcommand(
            Command::new("list")
                .about("Show timelines, first/last segment, gaps, sizes and compression ratio")
                .arg(archive_arg())
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print JSON")),
        )
        .subcommand(
            Command::new("verify")
                .about("Check every file's checksum and header, gaps per timeline, and history files")
                .arg(archive_arg())
                .arg(
                    crate::common::verbose_arg(),
                ),
        )
}

fn parse_magic(s: &str) -> Result<u16, String> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u16::from_str_radix(h, 16)
        .map_err(|_| format!("invalid page magic '{s}': expected hex such as 0xD110"))
}

fn run(m: &ArgMatches) -> Result<u8, Failure> {
    match m.subcommand() {
        Some(("push", a)) => push::run(a),
        Some(("fetch", a)) => fetch::run(a),
        Some(("cleanup", a)) => admin::cleanup(a),
        Some(("list", a)) => admin::list(a),
        Some(("verify", a)) => admin::verify(a),
        _ => Err(Failure::usage("a subcommand is required")),
    }
}

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let sub = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or("")
        .to_string();
    // Usage errors too must keep the contract: push → 1, fetch → 255 (an exit 2 from fetch
    // would read as "file missing" and end recovery early).
    let fail_code = match sub.as_str() {
        "push" => Some(1),
        "fetch" => Some(FETCH_FAIL),
        _ => None,
    };
    if let Some(code) = fail_code {
        if let Err(e) = command().try_get_matches_from(&args) {
            if e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(code);
            }
        }
    }
    Tool {
        name: "walarchive",
        sigpipe: Sigpipe::Default,
        internal_error_code: fail_code.unwrap_or(1),
    }
    .main(command(), run)
}

pub const MAN_TAIL: &str = r#".SH "ARCHIVE LAYOUT"
Segments, partial segments and backup history files live in
\fIDIR\fR/\fITTTTTTTTLLLLLLLL\fR/ (timeline and log id of the name), timeline history files
in \fIDIR\fR itself. Each file is named \fINAME\fR\-\fIBLAKE3\fR[.lz4], where \fIBLAKE3\fR is
the hex BLAKE3 of the \fBuncompressed\fR file. \fB.lz4\fR files are single standard LZ4
frames (independent 1 MiB blocks). \fIDIR\fR/walarchive.info records the cluster's system
identifier, segment size and WAL page magic at the first push. Files being written start
with \fB.walarchive\-tmp.\fR and are never final names.
.PP
Check any file without walarchive:
.PP
.nf
  f=DIR/0000000100000000/000000010000000000000009\-<hash>.lz4
  h=${f##*\-}; h=${h%.lz4}
  [ "$(lz4 \-dc "$f" | b3sum \-\-no\-names)" = "$h" ] && echo OK
.fi
.PP
or restore one by hand with \fBlz4 \-d\fR \fIFILE\fR \fIDEST\fR.
.PP
Temporary files of a push, or of a fetch next to \fIPATH\fR, that was killed are removed by a
later push into the same directory (or fetch to the same \fIPATH\fR) once no process holds
their lock and their writer's pid is gone (or after an hour).
.SH "PUSHING AHEAD"
With \fB\-\-ahead\fR \fIN\fR, push also archives the next \fIN\fR segments that PostgreSQL has
marked \fB.ready\fR in \fBarchive_status\fR next to \fIPATH\fR, in parallel, each with every
check and durable step of a normal push. For each one whose source did not change while it was
read, and whose last change (ctime) lies more than 100 ms before the read, it leaves a record
in \fBpg_wal/.walarchive\-spool/\fINAME\fR holding the source's device, inode, size, mtime and
ctime (nanoseconds) and the stored file's name, which carries the BLAKE3 of the bytes read.
PostgreSQL's own later call for that segment then exits 0 without reading it again only if
\fBfstat\fR of \fIPATH\fR gives the same five values, the record's checksum is right and the
stored file exists in this archive (it is fsynced again); otherwise it removes the record
and takes the full path (read, hash, compare; different content is refused). Why that is
enough: every write, truncate or rename of a file sets its ctime to the current time and no
call can set a ctime to a chosen value, so a changed or replaced file shows a different
ctime or inode. The record is trusted no further than that: a tampered record fails its
checksum, a record of another file fails the identity.
.SH PREFETCH
With \fBfetch \-\-prefetch\fR \fIN\fR, each fetched segment starts a detached worker that
decodes and verifies the next \fIN\fR segments of the timeline into
\fBpg_wal/.walarchive\-prefetch/\fR while PostgreSQL replays. PostgreSQL's call for one of
them never trusts that copy: it must have the segment size, the BLAKE3 named by the archive's
current stored file and a valid header of this cluster; it is then fsynced and renamed to
\fIPATH\fR (and \fIPATH\fR must be the inode that was verified). Anything else removes the copy
and fetches as usual; a name the archive does not hold is "absent" (exit 1) whatever was
prefetched. The first \fBpush\fR from that pg_wal (recovery is over) removes the directory.
It pays where replay leaves a core idle or the archive is slow; on a busy two-core machine
it only moves the work.
.PP
\fB\-\-level\fR \fB\-\fIN\fR is LZ4's acceleration \fIN\fR (as \fBlz4 \-\-fast=\fIN\fR): faster,
larger files; the frames are standard either way.
.SH "EXIT STATUS"
.TP
\fBpush\fR
0 only when the file and its directory entry are durable in the archive, or when the
archive already holds identical content. 1 for every failure: invalid name, unreadable
source, wrong size, header that does not match the name, another cluster's segment
(system identifier), different content already archived under the name, full or
unwritable archive, usage errors, internal errors. PostgreSQL keeps the file and retries.
.TP
\fBfetch\fR
0 when \fIPATH\fR was written completely and its checksum and header verified.
1 when the archive is readable and does not hold \fINAME\fR (the normal end of the
archive; nothing is printed).
255 for anything else: archive missing or unreadable, no walarchive.info, corrupt or
foreign file, I/O error, invalid name or arguments, internal error. PostgreSQL then stops
recovery instead of promoting at the wrong point.
.TP
\fBcleanup\fR, \fBlist\fR, \fBverify\fR
0 ok; 1 failure (verify: at least one problem, each printed on stderr); 2 usage error
(including a cutoff that is not a segment, .partial or .backup name).
.SH EXAMPLES
postgresql.conf:
.PP
.nf
  archive_command = 'walarchive push %p %f \-\-archive /backup/wal'
  restore_command = 'walarchive fetch %f %p \-\-archive /backup/wal'
  archive_cleanup_command = 'walarchive cleanup \-\-archive /backup/wal %r'
.fi
.PP
What would go before a base backup's first segment:
.PP
.nf
  walarchive cleanup \-n \-\-archive /backup/wal 000000010000000000000010.00000028.backup
.fi
.PP
Check every file, gaps and timelines:
.PP
.nf
  walarchive verify \-\-archive /backup/wal && walarchive list \-\-archive /backup/wal
.fi
.SH "SEE ALSO"
pg_archivecleanup(1), lz4(1), b3sum(1)
"#;
