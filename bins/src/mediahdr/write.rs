//! `mediahdr write`, `tapestart`, `tapeend`: a header block, then the payload as records.

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use clap::ArgMatches;
use lampvault::amanda::{self, Crc, Header, Kind};
use lampvault::blockio::{read_full, AlignedBuf, RecordWriter};
use lampvault::sys::fdkind::FdKind;
use lampvault::sys::time::now_datestamp;
use lampvault::tape;

use super::exit;
use super::io::{open_in, open_out, rewrite_offset, Durable, End, Out, Partial};
use crate::common::{progress_wanted, Failure, IoContext, Progress};

fn s(m: &ArgMatches, k: &str) -> Option<String> {
    m.get_one::<String>(k).cloned()
}

fn block_size(m: &ArgMatches) -> Result<usize, Failure> {
    let bs = *m.get_one::<usize>("block-size").expect("has a default");
    if bs < 32768 || !bs.is_multiple_of(1024) {
        return Err(Failure::usage(format!(
            "--block-size {bs}: a header block is a whole number of KiB and at least 32k (Amanda refuses smaller)"
        )));
    }
    Ok(bs)
}

/// A restore-line command must end in `|` (Amanda's rule); add it when the user left it out.
fn piped(c: String) -> String {
    let t = c.trim_end();
    if t.ends_with('|') {
        t.to_string()
    } else {
        format!("{t} |")
    }
}

fn first_word(cmd: &str) -> String {
    cmd.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn parse_part(p: &str) -> Result<(i32, i32), Failure> {
    let bad = || {
        Failure::usage(format!(
            "--part '{p}': expected K/N, e.g. 1/3, or 1/-1 when the total is unknown"
        ))
    };
    let (k, n) = p.split_once('/').ok_or_else(bad)?;
    Ok((
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    ))
}

fn header_from_args(m: &ArgMatches, bs: usize) -> Result<Header, Failure> {
    let program = s(m, "program").unwrap_or_default();
    let recover = match s(m, "recover-cmd") {
        Some(r) => r,
        None if program
            .rsplit('/')
            .next()
            .is_some_and(|b| b.contains("tar")) =>
        {
            format!("{program} -xpGf - ...")
        }
        None => String::new(),
    };
    let mut h = Header {
        kind: Kind::File,
        datestamp: s(m, "date").unwrap_or_else(now_datestamp),
        name: s(m, "host").unwrap_or_default(),
        disk: s(m, "disk").unwrap_or_default(),
        dumplevel: *m.get_one::<i32>("level").expect("required"),
        partnum: 1,
        totalparts: 1,
        program,
        recover_cmd: recover,
        blocksize: bs,
        ..Header::default()
    };
    if let Some(sfx) = s(m, "compress-suffix") {
        h.compressed = true;
        h.comp_suffix = sfx;
        h.uncompress_cmd = piped(s(m, "uncompress-cmd").unwrap_or_default());
        // Amanda's "cust" compression names its program; amrestore runs `<prog> -d`.
        if h.comp_suffix == "cust" {
            h.clntcompprog = first_word(&h.uncompress_cmd);
        }
    }
    if let Some(sfx) = s(m, "encrypt-suffix") {
        h.encrypted = true;
        h.encrypt_suffix = sfx;
        h.decrypt_cmd = piped(s(m, "decrypt-cmd").unwrap_or_default());
        // amrestore decrypts with `<encrypt program> <decrypt option>`.
        let words = h.decrypt_cmd.trim_end_matches('|').trim().to_string();
        let (prog, opt) = words.split_once(' ').unwrap_or((&words, ""));
        h.clnt_encrypt = prog.to_string();
        h.clnt_decrypt_opt = opt.trim().to_string();
    }
    if let Some(p) = s(m, "part") {
        (h.partnum, h.totalparts) = parse_part(&p)?;
        h.kind = Kind::SplitFile;
    }
    if h.recover_cmd.is_empty() && (h.compressed || h.encrypted) {
        return Err(Failure::usage(
            "--recover-cmd is needed with --uncompress-cmd/--decrypt-cmd when --program is not tar",
        ));
    }
    Ok(h)
}

/// Put the CRC lines of a payload of `len` bytes with CRC-32C `crc` into `h`.
fn set_crc(h: &mut Header, crc: u32, len: u64) {
    let c = Crc {
        crc,
        size: len as i64,
    };
    h.server_crc = c;
    if !h.compressed && !h.encrypted {
        h.native_crc = c;
        h.client_crc = c;
        h.orig_size = len.div_ceil(1024) as i64;
    }
}

fn build(h: &Header, bs: usize) -> Result<Vec<u8>, Failure> {
    h.to_block(bs)
        .map_err(|e| Failure::usage(format!("header: {e}")))
}

/// CRC-32C and length of the rest of a regular file, then back to where it was.
fn prescan(input: &mut End) -> Result<(u32, u64), Failure> {
    let start = input.file.stream_position().ctx(&input.name)?;
    let mut buf = AlignedBuf::new(1 << 20).ctx("buffer")?;
    let (mut crc, mut len) = (0u32, 0u64);
    loop {
        let n = read_full(&mut input.file, buf.as_mut_slice()).ctx(&input.name)?;
        if n == 0 {
            break;
        }
        crc = amanda::crc_append(crc, &buf.as_slice()[..n]);
        len += n as u64;
    }
    input.file.seek(SeekFrom::Start(start)).ctx(&input.name)?;
    Ok((crc, len))
}

pub fn write(m: &ArgMatches) -> Result<u8, Failure> {
    let bs = block_size(m)?;
    let mut header = header_from_args(m, bs)?;
    // Check every field before touching the output.
    build(&header, bs)?;
    let mut input = open_in(m.get_one::<String>("input").expect("default"))?;
    let split = header.kind == Kind::SplitFile;

    // Read the first record before writing anything: an empty input writes nothing.
    let mut buf = AlignedBuf::new(bs).ctx("buffer")?;
    let mut n = read_full(&mut input.file, buf.as_mut_slice()).ctx(&input.name)?;
    if n == 0 {
        return Err(Failure::new(
            exit::TRUNCATED,
            format!(
                "{}: empty input: nothing to put behind a header",
                input.name
            ),
        ));
    }

    let (mut out, direct) = open_out(
        m.get_one::<String>("output").expect("default"),
        m.get_flag("direct"),
    )?;
    let partial = Partial::new(&out, m.get_one::<String>("output").expect("default"));
    let mut durable = Durable::new(&out, !m.get_flag("no-sync"))?;
    let is_tape = out.kind == FdKind::Tape;
    // The CRC lines in one pass when the header can be rewritten at the end; otherwise (a
    // pipe or tape out) a regular-file input is read twice: scanned first, then copied.
    let rewrite_at = if split {
        None
    } else {
        rewrite_offset(&mut out)
    };
    if rewrite_at.is_none() && !split && input.kind == FdKind::Regular {
        input
            .file
            .seek(SeekFrom::Current(-(n as i64)))
            .ctx(&input.name)?;
        let (crc, len) = prescan(&mut input)?;
        set_crc(&mut header, crc, len);
        n = read_full(&mut input.file, buf.as_mut_slice()).ctx(&input.name)?;
    }
    let first = build(&header, bs)?;
    let out_name = out.name.clone();
    let mut w = match direct {
        Some(d) => RecordWriter::new(Out::Direct(d), bs)
            .ctx("buffer")?
            .copy_always(true),
        None => {
            RecordWriter::new(Out::Plain(out.file.try_clone().ctx(&out_name)?), bs).ctx("buffer")?
        }
    }
    .tape(is_tape);
    w.write_bytes(&first).ctx(&out_name)?;

    let mut progress = Progress::new("mediahdr", progress_wanted(m.get_flag("progress")));
    let (mut crc, mut len) = (0u32, 0u64);
    while n > 0 {
        let rec = &buf.as_slice()[..n];
        if rewrite_at.is_some() {
            crc = amanda::crc_append(crc, rec);
        }
        w.write_bytes(rec).ctx(&out_name)?;
        durable.wrote(n);
        len += n as u64;
        progress.tick(len);
        if n < bs {
            break;
        }
        n = read_full(&mut input.file, buf.as_mut_slice()).ctx(&input.name)?;
    }
    let stats = w.finish().ctx(&out_name)?;
    progress.done();
    if let Some(off) = rewrite_at {
        set_crc(&mut header, crc, len);
        out.file
            .write_all_at(&build(&header, bs)?, off)
            .ctx(&out_name)?;
    }
    durable.sync(&out_name)?;
    partial.keep();
    if is_tape {
        tape::weof(out.file.as_fd(), 1).map_err(|e| Failure::failed(format!("{out_name}: {e}")))?;
    }
    if m.get_flag("verbose") {
        let secs = progress.elapsed().as_secs_f64();
        crate::common::warn(format_args!(
            "mediahdr: {out_name}: {} bytes of payload, {}+{} records of {bs} with the header, {:.3} s, {:.1} MB/s{}",
            len,
            stats.full_records,
            stats.partial_records,
            secs,
            len as f64 / secs.max(1e-9) / 1e6,
            if header.server_crc.crc != 0 { format!(", SERVER-CRC {}", header.server_crc) } else { String::new() }
        ));
    }
    Ok(0)
}

/// `tapestart` (label block) or `tapeend`.
pub fn marker(m: &ArgMatches, start: bool) -> Result<u8, Failure> {
    let bs = block_size(m)?;
    let h = Header {
        kind: if start {
            Kind::TapeStart
        } else {
            Kind::TapeEnd
        },
        datestamp: s(m, "date").unwrap_or_else(now_datestamp),
        name: if start {
            s(m, "label").unwrap_or_default()
        } else {
            String::new()
        },
        ..Header::default()
    };
    let block = build(&h, bs)?;
    let (mut out, _) = open_out(m.get_one::<String>("output").expect("default"), false)?;
    let name = out.name.clone();
    out.file.write_all(&block).ctx(&name)?;
    if out.kind == FdKind::Tape {
        tape::weof(out.file.as_fd(), 1).map_err(|e| Failure::failed(format!("{name}: {e}")))?;
    }
    Ok(0)
}
