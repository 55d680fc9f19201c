//! `raitstripe`: stripe a stream over N volumes with parity (Amanda's RAIT layout), and read
//! it back — complete, with volumes lost, or with records silently damaged.
//!
//! The layout and the metadata are in `lampvault::rait` (spec `amanda-media.md` §3); this
//! file only parses arguments, opens paths and turns events and errors into stderr lines and
//! exit codes (0 ok, 1 failed, 2 usage, 3 verify found repairable damage, 4 unrecoverable).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use lampvault::rait::join::{Event, JoinError, JoinOptions, Set, Source, Summary};
use lampvault::rait::split::{split, SplitError};
use lampvault::rait::{Geometry, VolumeOut, AMANDA_BLOCK};
use lampvault::sys::fdkind::{fd_kind, FdKind};

use crate::common::{parse_size_arg, Failure, IoContext, Sigpipe, Tool};

/// Exit code: verify found damage that join/rebuild repair.
pub const EXIT_REPAIRABLE: u8 = 3;
/// Exit code: the exact stream cannot be recovered.
pub const EXIT_UNRECOVERABLE: u8 = 4;

fn no_sync_arg() -> Arg {
    Arg::new("no-sync")
        .long("no-sync")
        .action(ArgAction::SetTrue)
        .help("Do not fsync the volumes written (files, block devices) before exit 0, as tee or dd without conv=fsync: faster, but a write error the disk reports late goes unseen")
}

fn size_arg(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("SIZE")
        .value_parser(parse_size_arg)
        .help(help)
}

fn common_read_args(cmd: Command) -> Command {
    cmd.arg(size_arg(
        "block-size",
        "Child block size the set was written with (default: what the volumes record, else 32k)",
    ))
    .arg(size_arg(
        "header-size",
        "Size of the first block of every volume (default: what the volumes record, else 32k)",
    ))
    .arg(
        Arg::new("verbose")
            .short('v')
            .long("verbose")
            .action(ArgAction::SetTrue)
            .help("Print one summary line on stderr"),
    )
    .arg(
        Arg::new("IN")
            .required(true)
            .num_args(1..)
            .help("The volumes in set order, parity last; a lost one as 'missing'"),
    )
}

pub fn command() -> Command {
    Command::new("raitstripe")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Stripe a stream over N volumes with parity (Amanda RAIT), rebuild it with volumes lost or damaged")
        .long_about(
            "Stripe a stream over N volumes with parity, byte-compatible with Amanda's RAIT device, and \
             read it back with volumes lost or silently damaged.\n\n\
             split reads stdin and writes the volumes; join writes the original stream to stdout, rebuilding \
             lost or failing volumes from parity on the fly; verify checks every record; rebuild writes a lost \
             volume again onto new media.",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("split")
                .about("Read stdin and write the volumes (files, block devices, tapes)")
                .arg(size_arg("block-size", "Child block size (default 32k, Amanda's); a row is (N - parity) blocks"))
                .arg(size_arg("header-size", "Size of the Amanda header block at the start of the stream (default 32k)"))
                .arg(
                    Arg::new("parity")
                        .long("parity")
                        .value_name("M")
                        .default_value("1")
                        .value_parser(clap::value_parser!(u8).range(1..))
                        .help("Parity volumes: 1 = XOR on the last volume (Amanda RAIT), 2 or more = Reed-Solomon"),
                )
                .arg(
                    Arg::new("checksums")
                        .long("checksums")
                        .action(ArgAction::SetTrue)
                        .help("Add a CRC-32C tag to every record so join/verify locate silent damage (not Amanda-compatible)"),
                )
                .arg(Arg::new("verbose").short('v').long("verbose").action(ArgAction::SetTrue).help("Print one summary line on stderr"))
                .arg(no_sync_arg())
                .arg(Arg::new("OUT").required(true).num_args(2..).help("The volumes to write, parity last ('-' is not allowed)")),
        )
        .subcommand(common_read_args(
            Command::new("join").about("Write the original stream to stdout, rebuilding lost or damaged volumes").arg(
                Arg::new("trust-data")
                    .long("trust-data")
                    .action(ArgAction::SetTrue)
                    .help("When parity disagrees and no volume can be blamed, write the data volumes' bytes anyway"),
            ),
        ))
        .subcommand(common_read_args(
            Command::new("verify").about("Check parity (and checksums) of every record; report bad records by volume and offset"),
        ))
        .subcommand(common_read_args(
            Command::new("rebuild").about("Write lost or damaged volumes again from the others").arg(
                Arg::new("into")
                    .long("into")
                    .value_name("K=PATH")
                    .required(true)
                    .action(ArgAction::Append)
                    .help("Write volume K (0 = first) to PATH; repeatable"),
            )
            .arg(no_sync_arg()),
        ))
}

pub fn main() -> ExitCode {
    Tool {
        name: "raitstripe",
        sigpipe: Sigpipe::Default,
        internal_error_code: 1,
    }
    .main(command(), run)
}

fn run(m: &ArgMatches) -> Result<u8, Failure> {
    match m.subcommand() {
        Some(("split", a)) => run_split(a),
        Some(("join", a)) => run_read(a, Mode::Join),
        Some(("verify", a)) => run_read(a, Mode::Verify),
        Some(("rebuild", a)) => run_read(a, Mode::Rebuild),
        _ => Err(Failure::usage(
            "a subcommand is required (split, join, verify, rebuild)",
        )),
    }
}

/// Open an output volume: created/truncated when a file; devices are written in place.
/// `sync`: fsync it before success (see `VolumeOut`).
fn open_out(path: &str, sync: bool) -> Result<VolumeOut, Failure> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx(path)?;
    let kind = fd_kind(f.as_fd()).map_err(|e| Failure::failed(format!("{path}: {}", e.desc())))?;
    if kind == FdKind::Directory {
        return Err(Failure::failed(format!("{path}: is a directory")));
    }
    Ok(VolumeOut::new(f, kind.is_seekable(), kind == FdKind::Tape).sync(sync))
}

/// Two volume paths naming one file (`a` and `./a`) would interleave their records.
fn same_file_twice(paths: &[String], vols: &[VolumeOut]) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    let mut seen: Vec<(u64, u64, usize)> = Vec::with_capacity(vols.len());
    for (i, v) in vols.iter().enumerate() {
        let md = v.metadata().ctx(&paths[i])?;
        let key = if md.file_type().is_file() {
            (md.dev(), md.ino())
        } else {
            (md.rdev(), md.ino())
        };
        if let Some(&(_, _, j)) = seen.iter().find(|&&(d, n, _)| (d, n) == key) {
            return Err(Failure::usage(format!(
                "split: {} and {} are the same file",
                paths[j], paths[i]
            )));
        }
        seen.push((key.0, key.1, i));
    }
    Ok(())
}

/// True when both paths exist and name one file.
fn same_inode(a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn set_identity() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}

fn run_split(a: &ArgMatches) -> Result<u8, Failure> {
    let outs: Vec<String> = a.get_many::<String>("OUT").unwrap().cloned().collect();
    if outs.iter().any(|o| o == "-") {
        return Err(Failure::usage(
            "split: '-' is not allowed as a volume (volumes are files, devices or tapes)",
        ));
    }
    let block = a
        .get_one::<usize>("block-size")
        .copied()
        .unwrap_or(AMANDA_BLOCK);
    let hs = a
        .get_one::<usize>("header-size")
        .copied()
        .unwrap_or(AMANDA_BLOCK);
    let parity = usize::from(*a.get_one::<u8>("parity").unwrap());
    let geo = Geometry::new(outs.len(), parity, block, hs, a.get_flag("checksums"))
        .map_err(|e| Failure::usage(format!("split: {e}")))?;
    let mut vols = outs
        .iter()
        .map(|p| open_out(p, !a.get_flag("no-sync")))
        .collect::<Result<Vec<_>, _>>()?;
    same_file_twice(&outs, &vols)?;
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let s = split(&mut input, &mut vols, &geo, set_identity()).map_err(|e| match e {
        SplitError::Input(e) => Failure::io("stdin", &e),
        SplitError::Output { volume, err } => Failure::io(&outs[volume], &err),
        SplitError::Parity(e) => Failure::failed(e.to_string()),
    })?;
    if s.header_striped {
        eprintln!(
            "raitstripe: stdin starts with an Amanda header that is not a clean {hs}-byte block (see --header-size): striped as data; Amanda cannot read this set"
        );
    }
    if a.get_flag("verbose") {
        eprintln!(
            "raitstripe: split {} payload bytes{} into {} rows over {} volumes ({} data + {} parity, block {})",
            s.payload,
            if s.header == lampvault::rait::HeaderKind::Amanda { " after an Amanda header" } else { "" },
            s.rows,
            geo.volumes,
            geo.data(),
            geo.parity,
            geo.block
        );
    }
    Ok(0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Join,
    Verify,
    Rebuild,
}

fn describe(e: &Event, names: &[String]) -> String {
    match e {
        Event::Missing { volume, cause } => format!(
            "volume {volume} ({}): {cause}; rebuilding it from parity",
            names[*volume]
        ),
        Event::Unreadable {
            volume,
            record,
            offset,
            cause,
        } => unreadable_line(&names[*volume], *record, *record, *offset, cause),
        Event::Ended {
            volume,
            record,
            offset,
            cause,
        } => {
            format!("{}: {cause} at record {record} (offset {offset}); rebuilding it from parity from there", names[*volume])
        }
        Event::BadChecksum {
            volume,
            record,
            offset,
        } => {
            format!(
                "{}: record {record} (offset {offset}): checksum mismatch; rebuilt from parity",
                names[*volume]
            )
        }
        Event::Located {
            volume,
            record,
            offset,
        } => {
            format!("{}: record {record} (offset {offset}): does not match the other volumes; rebuilt from parity", names[*volume])
        }
        Event::ParityMismatch { record, offset } => {
            format!("record {record} (offset {offset}): parity mismatch, cannot tell which volume is wrong")
        }
        Event::Unrecoverable { record, lost } => format!(
            "record {record}: {} lost: more than the parity can rebuild",
            lost.iter()
                .map(|&v| names[v].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn join_failure(e: JoinError, names: &[String]) -> Failure {
    let msg = match &e {
        JoinError::FirstBlock { volume, err } => format!("{}: {err}", names[*volume]),
        JoinError::Truncated { volume, got, want } => {
            format!("{}: truncated in its first block ({got} of {want} bytes)", names[*volume])
        }
        JoinError::OtherSet { volume, set, first, first_set } => format!(
            "{} belongs to set {set:016x} but {} to set {first_set:016x}: volumes of different sets",
            names[*volume], names[*first]
        ),
        JoinError::Position { volume, child } => {
            format!("{} is volume {child} of its set, given as volume {volume}: wrong order", names[*volume])
        }
        JoinError::Differs { volume, first, what } => {
            format!("{} and {} differ in {what}: volumes of different sets", names[*volume], names[*first])
        }
        JoinError::Incomplete { volume } => format!("{}: split did not finish (length never written)", names[*volume]),
        JoinError::TooManyLost { record, lost, parity } => format!(
            "record {record}: {} lost, only {parity} parity volume(s): unrecoverable",
            lost.iter().map(|&v| names[v].as_str()).collect::<Vec<_>>().join(", ")
        ),
        JoinError::Output(err) => return Failure::io("stdout", err),
        other => other.to_string(),
    };
    let code = match e {
        JoinError::TooManyLost { .. }
        | JoinError::ParityMismatch { .. }
        | JoinError::NoEnd { .. } => EXIT_UNRECOVERABLE,
        _ => 1,
    };
    Failure::new(code, msg)
}

/// The lines of a run's events: on stderr as they come (join, rebuild) or kept for stdout
/// (verify). Consecutive unreadable records of one volume become one line.
struct Teller<'a> {
    verify: bool,
    names: &'a [String],
    problems: Vec<String>,
    /// unreadable records not told yet: volume, first and last record, first offset, cause
    run: Option<(usize, u64, u64, u64, String)>,
}

impl Teller<'_> {
    fn line(&mut self, line: String) {
        self.flush();
        self.put(line);
    }

    fn put(&mut self, line: String) {
        if self.verify {
            self.problems.push(line);
        } else {
            eprintln!("raitstripe: {line}");
        }
    }

    fn unreadable(&mut self, volume: usize, record: u64, offset: u64, cause: &str) {
        if let Some((v, _, last, _, c)) = &mut self.run {
            if *v == volume && *last + 1 == record && c == cause {
                *last = record;
                return;
            }
        }
        self.flush();
        self.run = Some((volume, record, record, offset, cause.to_string()));
    }

    fn flush(&mut self) {
        let Some((volume, first, last, offset, cause)) = self.run.take() else {
            return;
        };
        let line = unreadable_line(&self.names[volume], first, last, offset, &cause);
        self.put(line);
    }
}

/// Records `first..=last` of volume `name`, from byte `offset`, could not be read.
fn unreadable_line(name: &str, first: u64, last: u64, offset: u64, cause: &str) -> String {
    let what = if first == last {
        format!("record {first} (offset {offset})")
    } else {
        format!(
            "records {first}-{last} ({} records from offset {offset})",
            last - first + 1
        )
    };
    format!("{name}: {what}: {cause}; rebuilt from parity, reading on")
}

fn run_read(a: &ArgMatches, mode: Mode) -> Result<u8, Failure> {
    let names: Vec<String> = a.get_many::<String>("IN").unwrap().cloned().collect();
    if names.iter().any(|o| o == "-") {
        return Err(Failure::usage("'-' is not allowed as a volume"));
    }
    let opts = JoinOptions {
        block: a.get_one::<usize>("block-size").copied(),
        header_size: a.get_one::<usize>("header-size").copied(),
        trust_data: mode == Mode::Join && a.get_flag("trust-data"),
    };
    let mut unopened = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let sources: Vec<Source> = names
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if p == "missing" {
                return Source::Missing;
            }
            match File::open(p) {
                Ok(f) if f.metadata().map(|m| m.is_dir()).unwrap_or(false) => {
                    dirs.push(p.clone());
                    Source::Missing
                }
                // files and block devices can skip a record they cannot read; a tape or
                // pipe is read through once
                Ok(f) => match fd_kind(f.as_fd()) {
                    Ok(FdKind::Regular | FdKind::BlockDevice) => Source::Seekable(Box::new(f)),
                    _ => Source::Read(Box::new(f)),
                },
                Err(e) => {
                    unopened.push((i, crate::common::errno_text(&e)));
                    Source::Missing
                }
            }
        })
        .collect();
    if let Some(d) = dirs.first() {
        return Err(Failure::failed(format!(
            "{d}: is a directory (name the volume file inside it, e.g. {d}/00001.*)"
        )));
    }
    let set = Set::open(sources, &opts).map_err(|e| join_failure(e, &names))?;
    let mut rebuild = Vec::new();
    // (volume, path, a regular file: removed again when the rebuild fails)
    let mut targets: Vec<(usize, String, bool)> = Vec::new();
    if mode == Mode::Rebuild {
        let n = set.geometry().volumes;
        for spec in a.get_many::<String>("into").unwrap() {
            let (k, path) = spec
                .split_once('=')
                .and_then(|(k, p)| k.parse::<usize>().ok().map(|k| (k, p)))
                .ok_or_else(|| {
                    Failure::usage(format!("rebuild: --into '{spec}': expected K=PATH"))
                })?;
            if k >= n || path.is_empty() {
                return Err(Failure::usage(format!(
                    "rebuild: --into '{spec}': the set has volumes 0 to {}",
                    n - 1
                )));
            }
            if names.iter().any(|x| x == path || same_inode(x, path)) {
                return Err(Failure::usage(format!(
                    "rebuild: --into '{spec}': {path} is one of the input volumes"
                )));
            }
            let out = open_out(path, !a.get_flag("no-sync"))?;
            let regular = out.metadata().map(|m| m.is_file()).unwrap_or(false);
            targets.push((k, path.to_string(), regular));
            rebuild.push((k, out));
        }
    }
    let verbose = a.get_flag("verbose");
    let mut teller = Teller {
        verify: mode == Mode::Verify,
        names: &names,
        problems: Vec::new(),
        run: None,
    };
    let padded_note = !set.has_metadata();
    let result: Result<Summary, JoinError> = {
        let mut on_event = |e: &Event| {
            if let Event::Unreadable {
                volume,
                record,
                offset,
                cause,
            } = e
            {
                return teller.unreadable(*volume, *record, *offset, cause);
            }
            let mut line = describe(e, &names);
            if let Event::Missing { volume, .. } = e {
                if let Some((_, why)) = unopened.iter().find(|(i, _)| i == volume) {
                    line = format!(
                        "volume {volume} ({}): {why}; rebuilding it from parity",
                        names[*volume]
                    );
                }
            }
            if mode == Mode::Join && matches!(e, Event::ParityMismatch { .. }) {
                line.push_str("; writing the data volumes' bytes as they are (--trust-data)");
            }
            teller.line(line);
        };
        match mode {
            Mode::Join => {
                let fd = io::stdout().as_fd().try_clone_to_owned().ctx("stdout")?;
                let mut out = File::from(fd);
                set.run(Some(&mut out), &mut rebuild, &mut on_event)
            }
            _ => set.run(None, &mut rebuild, &mut on_event),
        }
    };
    teller.flush();
    let problems = teller.problems;
    let report = |s: &Summary| {
        if verbose {
            eprintln!(
                "raitstripe: {} rows, {} payload bytes{}, {} volume(s) lost, {} damaged record(s), {} record(s) rebuilt, {} unrecoverable row(s)",
                s.rows,
                s.payload,
                if padded_note { " (Amanda set: length includes padding)" } else { "" },
                s.lost_volumes.len(),
                s.damaged_records,
                s.rebuilt_records,
                s.unrecoverable_rows
            );
        }
    };
    match mode {
        Mode::Verify => {
            use std::io::Write;
            let mut stdout = io::stdout().lock();
            for p in &problems {
                writeln!(stdout, "{p}").ctx("stdout")?;
            }
            let s = result.map_err(|e| join_failure(e, &names))?;
            report(&s);
            if s.unrecoverable_rows > 0 {
                Ok(EXIT_UNRECOVERABLE)
            } else if !s.lost_volumes.is_empty() || s.damaged_records > 0 {
                Ok(EXIT_REPAIRABLE)
            } else {
                Ok(0)
            }
        }
        _ => {
            drop(rebuild); // closed before a failed target is removed
            let s = result.map_err(|e| {
                // A partly rebuilt volume is never left to be mistaken for a whole one.
                for (_, path, regular) in &targets {
                    if *regular {
                        let _ = std::fs::remove_file(path);
                    }
                }
                match e {
                    JoinError::Rebuilt { volume, err } => {
                        let path = targets.iter().find(|t| t.0 == volume).map(|t| t.1.as_str());
                        Failure::io(path.unwrap_or("rebuilt volume"), &err)
                    }
                    e => join_failure(e, &names),
                }
            })?;
            report(&s);
            Ok(0)
        }
    }
}

/// The hand-written end of the man page.
pub const MAN_TAIL: &str = r#".SH COMMANDS
.TP
\fBraitstripe split\fR [\fB\-\-block\-size\fR \fISIZE\fR] [\fB\-\-parity\fR \fIM\fR] [\fB\-\-checksums\fR] [\fB\-\-header\-size\fR \fISIZE\fR] [\fB\-v\fR] \fIOUT\fR...
Read stdin and write the volumes, parity last (2 to 255 files, block devices or tapes; \fB\-\fR is
not allowed). \fB\-\-block\-size\fR: child block, default 32k (Amanda's); even, 512 bytes to
16 MiB. \fB\-\-parity\fR: parity volumes, default 1 (XOR, Amanda's layout); 2 or more use
Reed\-Solomon. \fB\-\-checksums\fR: tag every record (see below). \fB\-\-header\-size\fR: size of
the Amanda header block the stream may start with, default 32k.
.TP
\fBraitstripe join\fR [\fB\-\-trust\-data\fR] [\fB\-\-block\-size\fR \fISIZE\fR] [\fB\-\-header\-size\fR \fISIZE\fR] [\fB\-v\fR] \fIIN\fR...
Write the original stream to stdout (its Amanda header block first, when it had one). The
volumes are given in set order; a lost one as \fBmissing\fR. \fB\-\-block\-size\fR is only
needed for Amanda's own sets whose header does not state it (\fBbs=\fR); otherwise it is read
from the volumes and a different value is an error. \fB\-\-trust\-data\fR: when a row's
parity disagrees and no volume can be blamed, write the data volumes' bytes anyway.
.TP
\fBraitstripe verify\fR [\fB\-\-block\-size\fR \fISIZE\fR] [\fB\-\-header\-size\fR \fISIZE\fR] [\fB\-v\fR] \fIIN\fR...
Read every record, check checksums and parity, and print one line per problem on stdout
(volume, record number, byte offset in the volume). Prints nothing when clean.
.TP
\fBraitstripe rebuild\fR \fB\-\-into\fR \fIK\fR=\fIPATH\fR... [\fB\-\-block\-size\fR \fISIZE\fR] [\fB\-\-header\-size\fR \fISIZE\fR] [\fB\-v\fR] \fIIN\fR...
Write volume \fIK\fR (0 = first) again to \fIPATH\fR from the others, byte for byte as split
wrote it (damaged records repaired). Repeatable for as many volumes as there are parity volumes.
.SH "VOLUME LAYOUT"
With \fB\-\-parity 1\fR (the default) the bytes Amanda reads are exactly those of Amanda's RAIT
device: with N volumes, each row of (N\-1) blocks of the stream (32 KiB each by default) gives
block i to volume i and the XOR of the blocks to the last volume; two volumes are a mirror; the
last row is zero\-padded so every volume holds whole blocks. When the stream starts with an
Amanda header (\fBAMANDA: \fR or \fBNETDUMP: \fR, as \fBmediahdr\fR writes it), that 32 KiB
block is copied onto every volume and only the payload after it is striped, as Amanda does for
each child. Volumes written by split into \fIDIR\fR/c0/00001.\fIhost.disk.level\fR, next to a
copy of the tape label, are read by Amanda's own \fBrait:{...}\fR device, complete or degraded.
.PP
Amanda records the true length nowhere. raitstripe keeps it, and everything else of its own,
outside the bytes Amanda reads:
.IP \(bu 2
Every volume's first block carries one text line
.br
\fBRAITSTRIPE v=1 set=\fIID\fB child=\fIi\fB volumes=\fIN\fB parity=\fIM\fB block=\fIB\fB header=amanda|none header\-size=\fIH\fB sums=none|crc32c len=\fIBYTES\fB|trailer|incomplete crc=\fICRC32C\fR
.br
With an Amanda header it sits in the header's NUL padding, right after the header text, where
Amanda's parser ignores it (its fields, and the header join writes back, are unchanged: the line is
turned back into NULs). Without one, the first block is this line padded with NULs and is not part
of the stream. \fIID\fR is a random set identity, so volumes of different sets are never mixed.
.IP \(bu 2
On a seekable volume (file, block device) split writes \fBlen=incomplete\fR first and rewrites the
block with the exact length at the end. On a pipe or tape it writes \fBlen=trailer\fR and appends
one trailer record (\fBRAITSTRIPE\-END v=1 set=\fIID\fB child=\fIi\fB records=\fIK\fB
len=\fIBYTES\fB crc=\fICRC32C\fR, NUL\-padded to a record); Amanda then sees one extra block, so
only volumes written to files or block devices are Amanda\-compatible.
.IP \(bu 2
\fB\-\-checksums\fR (not Amanda\-compatible) appends an 8\-byte tag to every record: the CRC\-32C of
the block followed by the set identity, record number and volume number (LE u32), then the record
number's low 32 bits (LE u32). join and verify treat a record whose tag does not match as lost and
rebuild it from parity, so silent damage is located and repaired.
.IP \(bu 2
\fB\-\-parity\fR \fIM\fR \(>= 2 uses Reed\-Solomon over GF(2^16) (the reed\-solomon\-simd crate) on
the last \fIM\fR volumes; any \fIM\fR volumes may be lost, and without checksums a single damaged
record in a row is located by trying each volume in turn.
.PP
Sets written by Amanda carry no line: join checks that the children's headers are identical, takes
the child block size from the header's restore line (\fBdd if=<tape> bs=32k\fR), else from
\fB\-\-block\-size\fR (default 32k), refuses a \fB\-\-block\-size\fR that contradicts the header,
and writes whole rows, padding included, as Amanda does.
.SH "DEGRADED READS"
A volume named \fBmissing\fR, one that cannot be opened or read, one that ends early, or one that
fails in the middle of a read is rebuilt from parity from the very record where it stopped (never
the wrong bytes Amanda 3.5 returns in that block), at the speed of a healthy read; each such event
is one line on stderr and join still exits 0, since its output is exact. A volume on a file or
block device that cannot read a record (a bad sector: EIO) is not given up: that record is rebuilt
from parity and the volume is read on after it, as md does, so volumes with bad blocks in
different rows still give the exact stream; after 64 unreadable records the volume is given up
from there (a dying device). Tapes and pipes cannot skip and stop at their first read error. When every volume is
present each row is checked against its parity; a mismatch that cannot be pinned to one volume
(XOR parity, no checksums) stops join with exit 4 rather than guess, unless \fB\-\-trust\-data\fR.
.SH "EXIT STATUS"
.TP
.B 0
Success (join: the exact stream was written, possibly rebuilt; verify: every record is clean).
.TP
.B 1
Failure: unreadable input, volumes that do not form one set (different sets, wrong order, wrong
block or header size, split never finished), I/O errors.
.TP
.B 2
Usage error.
.TP
.B 3
verify: damage found (lost or truncated volumes, unreadable records, records with bad checksums
or located by Reed\-Solomon) that join and rebuild repair.
.TP
.B 4
Unrecoverable: more volumes lost in a row than parity volumes, or a parity mismatch that no volume
can be blamed for, or every volume truncated before its end record.
.SH EXAMPLES
Stripe a dump with its Amanda header over two tapes and a disk file:
.PP
.nf
.RS 4
mysqldump \-\-all\-databases | mediahdr write ... | raitstripe split /dev/nst0 /dev/nst1 /backup/vol2
.RE
.fi
.PP
Restore it with the second volume lost:
.PP
.nf
.RS 4
raitstripe join /dev/nst0 missing /backup/vol2 | mediahdr payload | mysql
.RE
.fi
.PP
A set Amanda's RAIT device reads (\fBrait:{file:/v/c0,file:/v/c1,file:/v/c2}\fR, a vtape
directory per child holding the label and file 1, named as Amanda names it):
.PP
.nf
.RS 4
for i in 0 1 2; do mkdir \-p /v/c$i; mediahdr tapestart \-\-label RAIT\-042 \-\-date 20260101120000 \-o /v/c$i/00000.RAIT\-042; done
tar \-cf \- /srv | mediahdr write \-\-host h \-\-disk /srv \-\-level 0 \-\-part 1/\-1 |
    raitstripe split /v/c0/00001.h._srv.0 /v/c1/00001.h._srv.0 /v/c2/00001.h._srv.0
.RE
.fi
.PP
Read Amanda's own RAIT set, and check a set with silent corruption detection:
.PP
.nf
.RS 4
raitstripe join c0/00001.* c1/00001.* c2/00001.* | mediahdr payload | tar \-xf \-
raitstripe split \-\-checksums \-\-parity 2 a b c d e < data; raitstripe verify a b c d e
.RE
.fi
.PP
Write a lost volume again: \fBraitstripe rebuild a missing c \-\-into 1=/new/b\fR
"#;
