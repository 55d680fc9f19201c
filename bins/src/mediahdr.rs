//! `mediahdr`: Amanda-format 32 KiB media file headers in front of a stream, and back.
//!
//! `write` puts one header block (Amanda 3.5's exact bytes) in front of a payload;
//! `show`, `payload`, `restore-cmd` and `list` read headers the way Amanda's own parser does
//! (spec: shared/specs/amanda-media.md §1–2). A media file restores without lampvault:
//! `dd if=FILE bs=32k skip=1 | ...`.

mod io;
mod read;
mod write;

use std::process::ExitCode;

use clap::{value_parser, Arg, ArgAction, Command};

use crate::common::{parse_size_arg, Failure, Sigpipe, Tool};

/// Exit codes beyond 0/1/2 (listed in the man page).
pub mod exit {
    /// The block is not an Amanda header (Amanda's parser says WEIRD).
    pub const NOT_A_HEADER: u8 = 3;
    /// The input ends before a whole header block (empty or truncated).
    pub const TRUNCATED: u8 = 4;
    /// A header field is longer than Amanda's 255 bytes (Amanda would cut it).
    pub const OVERLONG: u8 = 5;
    /// The payload does not match the header's SERVER-CRC line (size or CRC-32C).
    pub const CRC_MISMATCH: u8 = 6;
}

const TOOL: Tool = Tool {
    name: "mediahdr",
    sigpipe: Sigpipe::Default,
    internal_error_code: 1,
};

fn block_size_arg() -> Arg {
    Arg::new("block-size")
        .long("block-size")
        .value_name("SIZE")
        .default_value("32k")
        .value_parser(parse_size_arg)
        .help("Header block and record size, dd-style (32k = Amanda's; a tape's block size)")
}

fn input_arg() -> Arg {
    Arg::new("input")
        .value_name("IN")
        .default_value("-")
        .help("Input file or device; - for stdin")
}

fn no_sync_arg() -> Arg {
    Arg::new("no-sync")
        .long("no-sync")
        .action(ArgAction::SetTrue)
        .help("Do not fsync OUT (a file or block device named with -o) before exit 0, as dd without conv=fsync: faster, but a write error the disk reports late goes unseen")
}

fn output_arg() -> Arg {
    Arg::new("output")
        .short('o')
        .long("output")
        .value_name("OUT")
        .default_value("-")
        .help("Output file or device; - for stdout")
}

fn file_arg() -> Arg {
    Arg::new("file")
        .long("file")
        .value_name("N")
        .value_parser(value_parser!(i32).range(0..))
        .help("On a tape: rewind and skip to file N first (0 = the label)")
}

fn date_arg() -> Arg {
    Arg::new("date")
        .long("date")
        .value_name("YYYYMMDD[hhmmss]")
        .help("Datestamp (default: now, local time)")
}

/// The clap definition, used to parse and to render `man/mediahdr.1`.
pub fn command() -> Command {
    Command::new("mediahdr")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Amanda-format 32 KiB media file headers: write them in front of a stream, read them back")
        .long_about(
            "Writes and reads the 32 KiB header block Amanda puts in front of every file on tape, \
             vtape and holding disk, byte-compatible with Amanda 3.5: Amanda's own parser and amrestore \
             read mediahdr's files, mediahdr reads Amanda's. The payload after the header restores \
             without lampvault: dd if=FILE bs=32k skip=1 | tar -xpf -",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .after_help("Example:\n  tar -cf - /var/www | mediahdr write --host web1 --disk /var/www --level 0 -o www.media\n  dd if=www.media bs=32k skip=1 | tar -tf -")
        .subcommand(
            Command::new("write")
                .about("Write a FILE (or SPLIT_FILE) header, then the payload from IN")
                .arg(Arg::new("host").long("host").value_name("H").required(true).help("Host name (no spaces)"))
                .arg(Arg::new("disk").long("disk").value_name("D").required(true).help("Disk (directory) name; quoted as Amanda quotes it"))
                .arg(Arg::new("level").long("level").value_name("N").required(true).value_parser(value_parser!(i32).range(0..=399)).help("Dump level (0 = full)"))
                .arg(date_arg())
                .arg(Arg::new("program").long("program").value_name("P").default_value("/bin/tar").help("Backup program, as Amanda records it (/bin/tar for GNU tar on Debian)"))
                .arg(Arg::new("recover-cmd").long("recover-cmd").value_name("C").help("Restore command on the header's restore line (default for tar: '<program> -xpGf - ...')"))
                .arg(Arg::new("compress-suffix").long("compress-suffix").value_name("S").requires("uncompress-cmd").help("Payload is compressed: suffix as Amanda writes it (.gz; cust = a custom program, named by the first word of --uncompress-cmd)"))
                .arg(Arg::new("uncompress-cmd").long("uncompress-cmd").value_name("C").requires("compress-suffix").help("Command that uncompresses the payload (e.g. '/bin/gzip -dc |')"))
                .arg(Arg::new("encrypt-suffix").long("encrypt-suffix").value_name("S").requires("decrypt-cmd").help("Payload is encrypted: suffix (enc)"))
                .arg(Arg::new("decrypt-cmd").long("decrypt-cmd").value_name("C").requires("encrypt-suffix").help("Command that decrypts the payload (e.g. '/usr/sbin/amcrypt -d |')"))
                .arg(Arg::new("part").long("part").value_name("K/N").help("Write a SPLIT_FILE header 'part K/N' (N = -1: unknown, as Amanda's taper writes)"))
                .arg(block_size_arg())
                .arg(Arg::new("direct").long("direct").action(ArgAction::SetTrue).help("Open OUT (a block device) with O_DIRECT"))
                .arg(no_sync_arg())
                .arg(Arg::new("progress").long("progress").action(ArgAction::SetTrue).help("Show progress on stderr (default when stderr is a terminal)"))
                .arg(crate::common::verbose_arg())
                .arg(output_arg())
                .arg(input_arg()),
        )
        .subcommand(
            Command::new("tapestart")
                .about("Write a TAPESTART (volume label) header block")
                .arg(Arg::new("label").long("label").value_name("L").required(true).help("Volume label (no spaces)"))
                .arg(date_arg().help("Datestamp, or X for 'labelled, never written' (default: now)"))
                .arg(block_size_arg())
                .arg(output_arg()),
        )
        .subcommand(
            Command::new("tapeend")
                .about("Write a TAPEEND header block")
                .arg(date_arg())
                .arg(block_size_arg())
                .arg(output_arg()),
        )
        .subcommand(
            Command::new("show")
                .about("Parse one header and print its fields as key=value (Amanda's names) or JSON")
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print one JSON object"))
                .arg(block_size_arg())
                .arg(file_arg())
                .arg(input_arg()),
        )
        .subcommand(
            Command::new("payload")
                .about("Write the payload after the header, byte-exact (as dd bs=32k skip=1)")
                .arg(Arg::new("no-verify").long("no-verify").action(ArgAction::SetTrue).help("Do not check the payload against the header's SERVER-CRC line"))
                .arg(no_sync_arg())
                .arg(block_size_arg())
                .arg(file_arg())
                .arg(Arg::new("progress").long("progress").action(ArgAction::SetTrue).help("Show progress on stderr (default when stderr is a terminal)"))
                .arg(crate::common::verbose_arg())
                .arg(output_arg())
                .arg(input_arg()),
        )
        .subcommand(
            Command::new("restore-cmd")
                .about("Print the restore pipeline the header describes, ready to run")
                .arg(block_size_arg())
                .arg(Arg::new("input").value_name("IN").required(true).help("Media file or device")),
        )
        .subcommand(
            Command::new("list")
                .about("One line per media file in a vtape directory, on a tape, or for one file")
                .arg(block_size_arg())
                .arg(Arg::new("input").value_name("DEVICE|DIR|FILE").required(true)),
        )
}

fn run(m: &clap::ArgMatches) -> Result<u8, Failure> {
    match m.subcommand() {
        Some(("write", a)) => write::write(a),
        Some(("tapestart", a)) => write::marker(a, true),
        Some(("tapeend", a)) => write::marker(a, false),
        Some(("show", a)) => read::show(a),
        Some(("payload", a)) => read::payload(a),
        Some(("restore-cmd", a)) => read::restore_cmd(a),
        Some(("list", a)) => read::list(a),
        _ => Err(Failure::usage("a subcommand is required (see --help)")),
    }
}

pub fn main() -> ExitCode {
    TOOL.main(command(), run)
}

/// EXIT STATUS and EXAMPLES for the man page.
pub const MAN_TAIL: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
Failure: an input or output could not be opened, read or written. An output file that \fBwrite\fR or \fBpayload\fR was writing is removed (a device or stdout is left as it is), so no partial media file is left behind.
.TP
.B 2
Usage error, or a header Amanda would refuse to write (bad datestamp, a space in the host name, a field over 255 bytes, ...).
.TP
.B 3
The input is not an Amanda header: Amanda's parser would call it WEIRD (a block of zeros, random bytes, a plain tar file, a malformed first line). \fBshow\fR still prints the fields read before the parser gave up.
.TP
.B 4
The input ends before a whole header block: empty or truncated (\fBwrite\fR: the payload is empty).
.TP
.B 5
The header has a field longer than 255 bytes; Amanda cuts it, and \fBshow\fR prints the cut value.
.TP
.B 6
\fBpayload\fR: the payload does not match the header's SERVER\-CRC line (its size or its CRC\-32C): the file is truncated or damaged. The bytes were written; do not trust them.
.PP
A process killed by SIGPIPE (a closed output pipe, as in \fBmediahdr payload f | head\fR) ends as \fBdd\fR does, by the signal: never with exit 0 on a truncated stream.
.SH "FILE FORMAT"
One header block (32768 bytes by default; on a tape, one tape block) of text in Amanda's format, padded with NUL bytes, then the payload unpadded: the last record keeps its true length, so \fBdd bs=32k skip=1\fR gives back the exact payload. When the input is a regular file, or the output is a regular file or block device (the header is rewritten at the end), \fBwrite\fR fills in ORIGSIZE (KiB) and the CRC\-32C lines as Amanda does: NATIVE, CLIENT and SERVER for a plain payload, SERVER alone for a compressed or encrypted one, none for a \fB\-\-part\fR (Amanda's CRC lines describe the whole dump). Read from a block device, which is larger than what was written to it, \fBpayload\fR stops at the size the SERVER\-CRC line records (\fBwrite \-\-direct \-o /dev/sdX\fR then \fBpayload /dev/sdX\fR gives back the exact stream). On a tape, the payload is written in records of the block size and a filemark follows. No tape drive was available where mediahdr was tested: the tape code is small and its ioctl numbers are checked against the kernel headers.
.SH EXAMPLES
.nf
# a tar of /var/www with an Amanda header, into a vtape-style file
tar \-cf \- /var/www | mediahdr write \-\-host web1 \-\-disk /var/www \-\-level 0 \-o 00001.web1._var_www.0

# restore it with dd alone, as the header itself says
dd if=00001.web1._var_www.0 bs=32k skip=1 | tar \-xpf \-

# a gzip\-compressed logical dump
mysqldump \-\-single\-transaction db | gzip | mediahdr write \-\-host db1 \-\-disk db \-\-level 0 \\
    \-\-program /usr/bin/mysqldump \-\-recover\-cmd mysql \-\-compress\-suffix .gz \-\-uncompress\-cmd '/bin/gzip \-dc |' > db.media
mediahdr restore\-cmd db.media      # prints: dd if=db.media bs=32k skip=1 | /bin/gzip \-dc | mysql

# what is on a vtape slot, and one header in detail
mediahdr list /var/lib/amanda/vtapes/slot1
mediahdr show \-\-json 00001.web1._var_www.0
.fi
.SH "SEE ALSO"
.BR amrestore (8),
.BR dd (1),
.BR raitstripe (1)
"#;
