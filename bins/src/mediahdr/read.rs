//! `mediahdr show`, `payload`, `restore-cmd`, `list`: read headers as Amanda's parser does.

use std::io::Write;
use std::os::fd::AsFd;

use clap::ArgMatches;
use lampvault::amanda::{self, Header, Kind};
use lampvault::blockio::{read_full, AlignedBuf, RecordReader};
use lampvault::sys::fdkind::FdKind;
use lampvault::tape;

use super::exit;
use super::io::{open_in, open_out, Durable, End, Partial};
use crate::common::{progress_wanted, Failure, IoContext, Progress};

/// A tape block can be larger than the header size asked for; read it whole.
const TAPE_READ: usize = 2 << 20;

/// The first block of an input, and how it parsed.
struct First {
    header: Result<Header, amanda::Weird>,
    /// Bytes read into the block (< block size: the input ended).
    got: usize,
    block: usize,
}

fn position(input: &End, m: &ArgMatches) -> Result<(), Failure> {
    if let Some(&n) = m.get_one::<i32>("file") {
        tape::goto_file(input.file.as_fd(), n)
            .map_err(|e| Failure::failed(format!("{}: --file {n}: {e}", input.name)))?;
    }
    Ok(())
}

fn read_first(input: &mut End, bs: usize, buf: &mut AlignedBuf) -> Result<First, Failure> {
    let got = if input.kind == FdKind::Tape {
        let mut r = RecordReader::new(&mut input.file, buf.len())
            .ctx("buffer")?
            .tape(true);
        let n = r.next_record().ctx(&input.name)?.map_or(0, <[u8]>::len);
        drop(r);
        n
    } else {
        read_full(&mut input.file, &mut buf.as_mut_slice()[..bs]).ctx(&input.name)?
    };
    let block = if input.kind == FdKind::Tape { got } else { bs };
    Ok(First {
        header: amanda::parse(&buf.as_slice()[..got]),
        got,
        block,
    })
}

fn buffer_for(input: &End, bs: usize) -> Result<AlignedBuf, Failure> {
    AlignedBuf::new(if input.kind == FdKind::Tape {
        bs.max(TAPE_READ)
    } else {
        bs
    })
    .ctx("buffer")
}

/// The header, or the failure that says why there is none. `strict`: a short block fails.
fn require_header(first: First, name: &str, strict: bool) -> Result<Header, Failure> {
    if first.got == 0 {
        return Err(Failure::new(
            exit::TRUNCATED,
            format!("{name}: empty input: no header block"),
        ));
    }
    let h = first
        .header
        .map_err(|w| Failure::new(exit::NOT_A_HEADER, format!("{name}: {w}")))?;
    if strict && first.got < first.block {
        return Err(Failure::new(
            exit::TRUNCATED,
            format!(
                "{name}: truncated header block: {} of {} bytes",
                first.got, first.block
            ),
        ));
    }
    Ok(h)
}

fn block_size(m: &ArgMatches) -> usize {
    *m.get_one::<usize>("block-size").expect("has a default")
}

use lampvault::amanda::escape_value as esc;

fn to_json(h: &Header) -> String {
    let mut map = Vec::new();
    for (k, v) in h.fields() {
        let val = match k {
            "partnum" | "totalparts" | "dumplevel" | "orig_size" => v.clone(),
            "compressed" | "encrypted" | "is_partial" | "dle_present" => (v == "1").to_string(),
            _ => serde_json::Value::String(v.clone()).to_string(),
        };
        map.push(format!(
            "{}:{val}",
            serde_json::Value::String(k.to_string())
        ));
    }
    format!("{{{}}}\n", map.join(","))
}

/// Open IN, position a tape at `--file`, read the first block.
fn open_first(m: &ArgMatches) -> Result<(End, AlignedBuf, First), Failure> {
    let bs = block_size(m);
    let mut input = open_in(m.get_one::<String>("input").expect("default"))?;
    position(&input, m)?;
    let mut buf = buffer_for(&input, bs)?;
    let first = read_first(&mut input, bs, &mut buf)?;
    Ok((input, buf, first))
}

pub fn show(m: &ArgMatches) -> Result<u8, Failure> {
    let (input, _buf, first) = open_first(m)?;
    let name = input.name.clone();
    if first.got == 0 {
        return Err(Failure::new(
            exit::TRUNCATED,
            format!("{name}: empty input: no header block"),
        ));
    }
    let (h, verdict) = match &first.header {
        Ok(h) => (h.clone(), None),
        Err(w) => (
            (*w.partial).clone(),
            Some(Failure::new(exit::NOT_A_HEADER, format!("{name}: {w}"))),
        ),
    };
    let text = if m.get_flag("json") {
        to_json(&h)
    } else {
        h.fields()
            .iter()
            .map(|(k, v)| format!("{k}={}\n", esc(v)))
            .collect()
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .ctx("stdout")?;
    if let Some(f) = verdict {
        return Err(f);
    }
    if first.got < first.block {
        return Err(Failure::new(
            exit::TRUNCATED,
            format!(
                "{name}: truncated header block: {} of {} bytes",
                first.got, first.block
            ),
        ));
    }
    if !h.truncated.is_empty() {
        return Err(Failure::new(
            exit::OVERLONG,
            format!(
                "{name}: field {} longer than Amanda's {} bytes: cut as Amanda cuts it",
                h.truncated.join(", "),
                amanda::FIELD_MAX
            ),
        ));
    }
    Ok(0)
}

/// Whether a payload must match the header's SERVER-CRC line: a whole dump in one file
/// (FILE without a next chunk) always; a SPLIT_FILE part only when its size is the
/// dump's size (a one-part dump) — other parts carry the whole dump's CRC.
fn crc_to_check(h: &Header) -> Option<(amanda::Crc, bool)> {
    if h.server_crc.crc == 0 {
        return None;
    }
    match h.kind {
        Kind::File if h.cont_filename.is_empty() => Some((h.server_crc, true)),
        Kind::SplitFile => Some((h.server_crc, false)),
        _ => None,
    }
}

pub fn payload(m: &ArgMatches) -> Result<u8, Failure> {
    let (mut input, buf, first) = open_first(m)?;
    let name = input.name.clone();
    let h = require_header(first, &name, true)?;
    let check = if m.get_flag("no-verify") {
        None
    } else {
        crc_to_check(&h)
    };
    let (mut out, _) = open_out(m.get_one::<String>("output").expect("default"), false)?;
    let partial = Partial::new(&out, m.get_one::<String>("output").expect("default"));
    let mut durable = Durable::new(&out, !m.get_flag("no-sync"))?;
    let out_name = out.name.clone();
    let tape_in = input.kind == FdKind::Tape;
    let input_kind = input.kind;
    let mut progress = Progress::new("mediahdr", progress_wanted(m.get_flag("progress")));
    let (mut crc, mut len) = (0u32, 0u64);
    let mut r = RecordReader::new(&mut input.file, buf.len())
        .ctx("buffer")?
        .tape(tape_in);
    // A block device is larger than what was written to it: when the header records the
    // payload's size (SERVER-CRC of a whole dump), stop there instead of copying the rest.
    let limit = match (input_kind, &h.kind) {
        (FdKind::BlockDevice, Kind::File)
            if h.server_crc.crc != 0 && h.cont_filename.is_empty() =>
        {
            Some(h.server_crc.size.max(0) as u64)
        }
        _ => None,
    };
    while let Some(rec) = r.next_record().ctx(&name)? {
        let rec = match limit {
            Some(l) if len + rec.len() as u64 > l => &rec[..(l - len) as usize],
            _ => rec,
        };
        if rec.is_empty() {
            break;
        }
        if check.is_some() {
            crc = amanda::crc_append(crc, rec);
        }
        out.file.write_all(rec).ctx(&out_name)?;
        durable.wrote(rec.len());
        len += rec.len() as u64;
        progress.tick(len);
    }
    durable.sync(&out_name)?;
    // Every byte is out; a CRC mismatch below keeps the file (exit 6 says not to trust it).
    partial.keep();
    progress.done();
    if m.get_flag("verbose") {
        let secs = progress.elapsed().as_secs_f64();
        crate::common::warn(format_args!(
            "mediahdr: {name}: {len} bytes of payload, {:.3} s, {:.1} MB/s",
            secs,
            len as f64 / secs.max(1e-9) / 1e6
        ));
    }
    if let Some((want, strict)) = check {
        let got = amanda::Crc {
            crc,
            size: len as i64,
        };
        let same_size = want.size == got.size;
        if (strict || same_size) && got != want {
            return Err(Failure::new(
                exit::CRC_MISMATCH,
                format!("{name}: payload does not match the header: SERVER-CRC={want}, payload is {got}"),
            ));
        }
    }
    Ok(0)
}

/// Single-quote a path for a shell when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The pipeline after `dd`: Amanda's `...` placeholder (the files to restore) is dropped,
/// so the command restores everything as printed.
pub fn restore_pipeline(h: &Header) -> String {
    let mut cmd = String::new();
    for c in [&h.decrypt_cmd, &h.uncompress_cmd] {
        if !c.is_empty() {
            cmd.push_str(" | ");
            cmd.push_str(c.trim_end_matches('|').trim());
        }
    }
    let rec = h.recover_cmd.trim();
    let rec = rec.strip_suffix(" ...").unwrap_or(rec);
    if !rec.is_empty() && rec != "BUG" {
        cmd.push_str(" | ");
        cmd.push_str(rec);
    }
    cmd
}

pub fn restore_cmd(m: &ArgMatches) -> Result<u8, Failure> {
    let bs = block_size(m);
    let path = m.get_one::<String>("input").expect("required").clone();
    let mut input = open_in(&path)?;
    let mut buf = buffer_for(&input, bs)?;
    let first = read_first(&mut input, bs, &mut buf)?;
    let block = first.block;
    let h = require_header(first, &input.name, true)?;
    if !h.kind.is_dump() {
        return Err(Failure::failed(format!(
            "{}: a {} header has no payload to restore",
            input.name,
            h.kind.name()
        )));
    }
    let src = if crate::common::is_stdio(&path) {
        "/dev/stdin".to_string()
    } else {
        shell_quote(&path)
    };
    let bs_arg = if block % 1024 == 0 {
        format!("{}k", block / 1024)
    } else {
        block.to_string()
    };
    println!("dd if={src} bs={bs_arg} skip=1{}", restore_pipeline(&h));
    Ok(0)
}

fn list_line(no: Option<u64>, h: &Result<Header, amanda::Weird>) -> String {
    let summary = match h {
        Ok(h) => h.summary(),
        Err(_) => "WEIRD file".into(),
    };
    match no {
        Some(n) => format!("{n:05} {summary}\n"),
        None => format!("{summary}\n"),
    }
}

pub fn list(m: &ArgMatches) -> Result<u8, Failure> {
    let bs = block_size(m);
    let path = m.get_one::<String>("input").expect("required").clone();
    let mut out = std::io::stdout().lock();
    let meta = std::fs::metadata(&path).ctx(&path)?;
    if meta.is_dir() {
        // Amanda's vtape slot: files named NNNNN.<...> (any name matching ^[0-9]+[.-]).
        let mut files: Vec<(u64, std::path::PathBuf)> = Vec::new();
        for e in std::fs::read_dir(&path).ctx(&path)? {
            let e = e.ctx(&path)?;
            let fname = e.file_name().to_string_lossy().into_owned();
            let digits = fname.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && matches!(fname.as_bytes().get(digits), Some(b'.') | Some(b'-')) {
                if let Ok(n) = fname[..digits].parse() {
                    files.push((n, e.path()));
                }
            }
        }
        files.sort();
        let mut failed = None;
        for (n, p) in files {
            let pname = p.display().to_string();
            let mut input = match open_in(&pname) {
                Ok(i) => i,
                Err(f) => {
                    crate::common::warn(format_args!("mediahdr: {}", f.msg));
                    failed = Some(f.code);
                    continue;
                }
            };
            let mut buf = buffer_for(&input, bs)?;
            let first = read_first(&mut input, bs, &mut buf)?;
            let fname = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let line = list_line(Some(n), &first.header);
            let line = format!("{}\t{fname}\n", line.trim_end());
            out.write_all(line.as_bytes()).ctx("stdout")?;
        }
        return failed.map_or(Ok(0), |c| Err(Failure::new(c, "")));
    }
    let mut input = open_in(&path)?;
    if input.kind != FdKind::Tape {
        let mut buf = buffer_for(&input, bs)?;
        let first = read_first(&mut input, bs, &mut buf)?;
        if first.got == 0 {
            return Err(Failure::new(
                exit::TRUNCATED,
                format!("{path}: empty input: no header block"),
            ));
        }
        out.write_all(list_line(None, &first.header).as_bytes())
            .ctx("stdout")?;
        return Ok(0);
    }
    // A tape: rewind, then one header per file, skipping to the next filemark each time.
    let fd = input.file.as_fd().try_clone_to_owned().ctx(&path)?;
    tape::rewind(fd.as_fd()).map_err(|e| Failure::failed(format!("{path}: {e}")))?;
    let mut buf = buffer_for(&input, bs)?;
    for n in 0u64.. {
        let first = read_first(&mut input, bs, &mut buf)?;
        if first.got == 0 {
            break; // end of data: two filemarks in a row
        }
        out.write_all(list_line(Some(n), &first.header).as_bytes())
            .ctx("stdout")?;
        if let Err(e) = tape::fsf(fd.as_fd(), 1) {
            return Err(Failure::failed(format!("{path}: after file {n}: {e}")));
        }
    }
    Ok(0)
}
