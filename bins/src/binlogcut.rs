//! `binlogcut`: cut MySQL/MariaDB binary logs by time, position or GTID — binary in, binary
//! out, CRC-checked, at transaction boundaries; `list` and `verify` to find cut points and
//! check files.
//!
//! Options and their meaning follow mysqlbinlog/mariadb-binlog (spec
//! `shared/specs/mysql-binlog.md` §8, §11); the rules live in `lampvault::binlog::select`.
//! Exit codes: 0 ok, 1 failed (unreadable, not a binlog, encrypted), 2 usage, 3 damaged
//! input, 4 unfinished (in-use) file with `--strict`.

mod cut;
mod input;
mod list;
mod opts;
mod verify;

use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};

use lampvault::binlog::Window;

use crate::common::{Failure, Sigpipe, Tool};

fn files_arg() -> Arg {
    Arg::new("FILE")
        .help("Binary log files in order ('-' = stdin)")
        .num_args(1..)
        .required(true)
        .action(ArgAction::Append)
}

fn strict_arg() -> Arg {
    Arg::new("strict")
        .long("strict")
        .action(ArgAction::SetTrue)
        .help(
            "Treat a file in use (live or crashed) that ends inside an event as an error (exit 4)",
        )
}

pub fn command() -> Command {
    Command::new("binlogcut")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Cut MySQL/MariaDB binary logs by time, position or GTID, at transaction boundaries")
        .long_about(
            "Write the selected transactions of the given binary logs, in order, as ONE valid binary log \
             (magic, a format description event, then the events, byte for byte with their CRC32) that \
             mysqlbinlog/mariadb-binlog read and replay. Options and their meaning are mysqlbinlog's, \
             but a window never splits a transaction: a transaction is kept or dropped whole, decided \
             on its commit time (the largest event timestamp in it). Every CRC32 of the output is \
             checked first; nothing is written when the input is damaged inside the window.",
        )
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .arg(
            Arg::new("start-datetime")
                .long("start-datetime")
                .value_name("DATETIME")
                .help("Start with the first transaction committed at or after DATETIME ('YYYY-MM-DD HH:MM:SS', local time zone; TZ=UTC works); everything after it is kept, as mysqlbinlog"),
        )
        .arg(
            Arg::new("stop-datetime")
                .long("stop-datetime")
                .value_name("DATETIME")
                .help("Stop before the first transaction committed at or after DATETIME (local time zone); later transactions with older timestamps are left out, as mysqlbinlog, with a warning"),
        )
        .arg(
            Arg::new("start-position")
                .long("start-position")
                .short('j')
                .value_name("N|GTIDS")
                .help("Byte offset of an event in the first file to start at (a position inside a transaction starts at the next one); or MariaDB GTIDs D-S-N[,...]: start after them (exclusive), in every file"),
        )
        .arg(
            Arg::new("stop-position")
                .long("stop-position")
                .value_name("N|GTIDS")
                .help("Byte offset in the last file: keep transactions whose events all start before N; or MariaDB GTIDs D-S-N[,...]: stop after them (inclusive)"),
        )
        .arg(
            Arg::new("include-gtids")
                .long("include-gtids")
                .value_name("SET")
                .help("Keep only the transactions of this MySQL GTID set (UUID:1-5:7,...)"),
        )
        .arg(
            Arg::new("exclude-gtids")
                .long("exclude-gtids")
                .value_name("SET")
                .help("Leave out the transactions of this MySQL GTID set"),
        )
        .arg(
            Arg::new("server-id")
                .long("server-id")
                .value_name("ID")
                .value_parser(clap::value_parser!(u32))
                .help("Keep only the transactions written by the server with this server_id"),
        )
        .arg(
            Arg::new("database")
                .long("database")
                .short('d')
                .value_name("DB")
                .help("Keep only the transactions of database DB: statements by their default database (USE), row changes by their table's database, as mysqlbinlog; a transaction that also changes another database is refused unless --force (see NOTES)"),
        )
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .visible_alias("result-file")
                .short_alias('r')
                .value_name("OUT")
                .help("Write the cut to OUT ('-' = stdout, the default); removed again on failure"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help("Cut across damage: copy events with bad CRCs, skip the rest of a file that cannot be walked, skip Incident events, copy unknown event types; with --database, keep a transaction that also changes other databases (or is compressed) whole (each with a warning)"),
        )
        .arg(strict_arg())
        .arg(
            crate::common::verbose_arg(),
        )
        .arg(files_arg())
        .subcommand(
            Command::new("list")
                .about("One line per transaction (or per event): file, start, end, time, GTID, size, event types, statement")
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("One JSON object per line"))
                .arg(Arg::new("events").long("events").action(ArgAction::SetTrue).help("One line per event instead of per transaction"))
                .arg(
                    Arg::new("grep")
                        .long("grep")
                        .value_name("REGEX")
                        .help("Only transactions/events whose statement text (Query, Annotate_rows, Rows_query) matches REGEX"),
                )
                .arg(strict_arg())
                .arg(files_arg()),
        )
        .subcommand(
            Command::new("verify")
                .about("Check the structure and every CRC32 of each file; exit 3 on damage, naming the first bad event's offset")
                .arg(strict_arg())
                .arg(
                    Arg::new("verbose")
                        .short('v')
                        .long("verbose")
                        .action(ArgAction::SetTrue)
                        .help("One summary line per file on stderr"),
                )
                .arg(files_arg()),
        )
}

pub const MAN_TAIL: &str = r#".SH "EXIT STATUS"
.TP
0
Success (also when a file in use ends inside an event, without \fB\-\-strict\fR).
.TP
1
Failure: unreadable file, not a binary log, encrypted binary log, pre\-v4 (MySQL 4.x) format, write error; with \fB\-\-database\fR, a transaction that changes DB and another database or is compressed (without \fB\-\-force\fR).
.TP
2
Usage error (bad option, bad datetime, position, GTID or database name).
.TP
3
Damaged input: CRC32 mismatch, impossible event size, truncated closed file, Incident or unknown event inside the window (cut and list), or damage found by \fBverify\fR.
.TP
4
With \fB\-\-strict\fR: a file in use (live, or its server crashed) ends inside an event.
.SH NOTES
Differences from mysqlbinlog, on purpose: windows select whole transactions, never parts;
a position inside an event is an error naming the nearest event starts; the output is a
binary log, not SQL; CRC32s are always checked. Positions in the output keep their original
values (mysqlbinlog prints them as \fIend_log_pos\fR). MariaDB encrypted binlogs and MySQL
encrypted binlogs are refused (read them through the server). MySQL 8 compressed
transactions (Transaction_payload) are copied whole, never decompressed.
\fB--server-id\fR keeps a transaction when its first event comes from that server
(mysqlbinlog tests each event; a transaction's events all carry its server's id); as with
mysqlbinlog, another server's transaction still opens a \fB--start-datetime\fR window and
ends a \fB--stop-datetime\fR one.
.PP
\fB--database\fR=\fIDB\fR uses mysqlbinlog's rule to say which database an event belongs
to: a statement (Query event) belongs to its \fIdefault\fR database, the one selected by
\fBUSE\fR when it ran, whatever databases its text names (\fBUSE a; INSERT INTO b.t\fR
belongs to \fIa\fR; a statement run without a default database belongs to none); a row
change belongs to the database of its table (Table_map event). BEGIN, COMMIT, ROLLBACK,
SAVEPOINT and XA statements, GTID, Xid, Intvar, Rand, User_var and Annotate_rows events
belong to no database. mysqlbinlog then prints event by event, so it prints the GTID and
BEGIN/COMMIT of other databases' transactions as empty transactions and only DB's
statements of a transaction that changes several databases. A cut keeps or drops whole
transactions: one whose changes are all DB's (or that has none) is kept, one with none of
DB's is left out. The XA COMMIT or XA ROLLBACK of an XA transaction goes with its prepared
part (paired by XID): left out when that was left out (mysqlbinlog prints an empty
XA START ... XA PREPARE instead). A transaction that changes DB \fIand\fR another database is refused
(exit 1, naming its offsets and GTID): keeping it would also replay the other database's
changes, dropping it would lose DB's; with \fB--force\fR it is kept whole, with a warning.
A MySQL 8 compressed transaction (Transaction_payload) is never decompressed to cut, so its
database cannot be known: refused the same way, kept whole with \fB--force\fR. Old
LOAD DATA events (MySQL 4.x/5.0 Load, Create_file) are treated alike.
.PP
Speed: with only datetime bounds, the part of a file before the window is crossed by
reading event headers alone, on several threads at once (a thread starts mid-file at an
event whose \fIlog_pos\fR matches its offset, and its work counts only if the thread before
it lands exactly there), so the result is the same as reading every event; only the
window's events are grouped and CRC-checked. Closed files are memory-mapped chunk by chunk
just ahead of where they are read.
.SH EXAMPLES
Restore up to just before a mistake made at 12:00:00 UTC:
.PP
.nf
TZ=UTC binlogcut \-\-stop\-datetime='2026\-05\-01 12:00:00' mysql\-bin.0000* | mariadb\-binlog \- | mariadb
.fi
.PP
Find the DROP TABLE, then cut just before it (position in the last file named):
.PP
.nf
binlogcut list \-\-grep 'DROP TABLE' mysql\-bin.000007
binlogcut \-\-stop\-position=7841 \-o cut.bin mysql\-bin.00000[1\-7]
.fi
.PP
Only the transactions of database \fIshop\fR, up to a point in time:
.PP
.nf
TZ=UTC binlogcut \-d shop \-\-stop\-datetime='2026\-05\-01 12:00:00' mysql\-bin.0000* > shop.bin
.fi
.PP
Up to and including MariaDB GTID 0\-1\-25; check a directory of binlogs:
.PP
.nf
binlogcut \-\-stop\-position=0\-1\-25 mysql\-bin.0000* > cut.bin
binlogcut verify /var/lib/mysql/mysql\-bin.[0\-9]*
.fi
"#;

pub fn main() -> ExitCode {
    Tool {
        name: "binlogcut",
        sigpipe: Sigpipe::Default,
        internal_error_code: 1,
    }
    .main(command(), run)
}

fn files(m: &ArgMatches) -> Vec<String> {
    m.get_many::<String>("FILE")
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}

/// What a binlog page that cannot be read (or a file that shrank) says through its map.
const SIGBUS_MSG: &[u8] =
    b"binlogcut: a binlog could not be read through its memory map (an I/O error, or the file shrank): SIGBUS\n";

fn run(m: &ArgMatches) -> Result<u8, Failure> {
    // Closed binlogs are read through a map: a bad block there raises SIGBUS, which must end
    // in a message and exit 1, not in a death by signal.
    let _ = lampvault::sys::mapsource::exit_on_sigbus(SIGBUS_MSG, 1);
    match m.subcommand() {
        Some(("list", s)) => {
            let grep = match s.get_one::<String>("grep") {
                Some(r) => Some(regex::bytes::Regex::new(r).map_err(|e| {
                    Failure::usage(format!(
                        "--grep: {}",
                        e.to_string().lines().last().unwrap_or("bad regex")
                    ))
                })?),
                None => None,
            };
            list::run(list::ListArgs {
                files: files(s),
                json: s.get_flag("json"),
                events: s.get_flag("events"),
                grep,
                strict: s.get_flag("strict"),
            })
        }
        Some(("verify", s)) => verify::run(verify::VerifyArgs {
            files: files(s),
            strict: s.get_flag("strict"),
            verbose: s.get_flag("verbose"),
        }),
        _ => cut::run(cut::CutArgs {
            files: files(m),
            window: window(m)?,
            output: m.get_one::<String>("output").cloned(),
            force: m.get_flag("force"),
            strict: m.get_flag("strict"),
            verbose: m.get_flag("verbose"),
            database: database(m)?,
        }),
    }
}

fn database(m: &ArgMatches) -> Result<Option<String>, Failure> {
    match m.get_one::<String>("database") {
        None => Ok(None),
        Some(d) if d.is_empty() => Err(Failure::usage("--database: empty database name")),
        Some(d) if d.len() > 255 => Err(Failure::usage(format!(
            "--database: '{d}' is longer than a binlog can name (255 bytes)"
        ))),
        Some(d) => Ok(Some(d.clone())),
    }
}

fn window(m: &ArgMatches) -> Result<Window, Failure> {
    let mut w = Window::default();
    let get = |k: &str| m.get_one::<String>(k).map(String::as_str);
    if let Some(s) = get("start-datetime") {
        w.start_time = Some(opts::parse_datetime("--start-datetime", s).map_err(Failure::usage)?);
    }
    if let Some(s) = get("stop-datetime") {
        w.stop_time = Some(opts::parse_datetime("--stop-datetime", s).map_err(Failure::usage)?);
    }
    if let Some(s) = get("start-position") {
        match opts::parse_pos("--start-position", s).map_err(Failure::usage)? {
            opts::Pos::Offset(n) => w.start_pos = Some(n.max(4)),
            opts::Pos::Gtids(g) => w.start_gtids = g,
        }
    }
    if let Some(s) = get("stop-position") {
        match opts::parse_pos("--stop-position", s).map_err(Failure::usage)? {
            opts::Pos::Offset(n) => w.stop_pos = Some(n),
            opts::Pos::Gtids(g) => w.stop_gtids = g,
        }
    }
    if let Some(s) = get("include-gtids") {
        w.include = Some(opts::parse_gtid_set("--include-gtids", s).map_err(Failure::usage)?);
    }
    w.server_id = m.get_one::<u32>("server-id").copied();
    if let Some(s) = get("exclude-gtids") {
        w.exclude = Some(opts::parse_gtid_set("--exclude-gtids", s).map_err(Failure::usage)?);
    }
    Ok(w)
}
