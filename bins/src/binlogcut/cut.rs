//! The cut: the selected transactions of the inputs, in order, as one binlog (magic, an FDE
//! with the in-use flag cleared, the groups' bytes unchanged; another FDE wherever the
//! framing of the inputs changes).
//!
//! Three passes over the inputs, so that nothing is written unless the whole cut is good:
//! 1. plan: hop from header to header (no CRC) grouping events, let the [`Selector`] keep or
//!    drop whole groups, stop reading at the stop point;
//! 2. check: every CRC32 of every kept event (and of each FDE that will be written);
//! 3. write: the kept byte ranges, merged when contiguous.
//!
//! Spec: `shared/specs/mysql-binlog.md` §10 (what makes a cut valid: magic + FDE first,
//! original positions kept, in-use flag cleared without touching the CRC, whole groups).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;

use lampvault::binlog::dbfilter::{self, DbVerdict};
use lampvault::binlog::reader::{parse_fde, Format};
use lampvault::binlog::{
    self, types, Binlog, Decision, ErrorKind, Group, Groups, Kind, Position, Selector, StopCause,
    Window,
};

use super::input::{self, threads, warn, Input, EXIT_DAMAGED, EXIT_UNFINISHED};

/// Chains the header hop runs at once (their cache misses overlap).
const HOP_CHAINS: usize = 16;
use crate::common::{is_stdio, Failure, IoContext};

/// What the cut was asked to do.
pub struct CutArgs {
    pub files: Vec<String>,
    pub window: Window,
    pub output: Option<String>,
    pub force: bool,
    pub strict: bool,
    pub verbose: bool,
    /// `--database=DB`: keep only the transactions of this default database.
    pub database: Option<String>,
}

/// Bytes `start..end` of input `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    file: usize,
    start: u64,
    end: u64,
}

/// A run of kept events and the FDE in force for them.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    bytes: Range,
    fde: Range,
}

struct Plan {
    chunks: Vec<Chunk>,
    /// (chunk index, start) of every kept group: event starts where the CRC check may split.
    group_starts: Vec<(usize, u64)>,
    /// A kept group carries an FDE (relay log): the format changes inside a chunk, so the
    /// CRC check walks chunks whole.
    fde_inside: bool,
    groups: u64,
    first_gtid: Option<String>,
    last_gtid: Option<String>,
}

fn slice<'a>(binlogs: &[Binlog<'a>], r: Range) -> &'a [u8] {
    &binlogs[r.file].data[r.start as usize..r.end as usize]
}

pub fn run(a: CutArgs) -> Result<u8, Failure> {
    input::check_stdin_once(&a.files)?;
    let inputs: Vec<Input> = a
        .files
        .iter()
        .map(|f| input::load(f, false))
        .collect::<Result<_, _>>()?;
    let mut binlogs = Vec::with_capacity(inputs.len());
    for i in &inputs {
        binlogs.push(Binlog::open(&i.bytes).map_err(|e| input::failure(&i.name, &e))?);
    }
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    check_positions(&a.window, &binlogs, &names)?;
    let out_path = a.output.as_deref().filter(|o| !is_stdio(o));
    if let Some(o) = out_path {
        refuse_overwriting_input(o, &a.files)?;
    }
    let plan = plan(&a, &binlogs, &inputs, &names)?;
    check_crcs(&a, &plan, &binlogs, &names)?;
    match out_path {
        None => {
            let stdout = std::io::stdout();
            write(&plan, &binlogs, stdout.lock())
                .and_then(|mut o| o.flush())
                .ctx("write to stdout")?;
        }
        Some(o) => {
            let f = File::create(o).ctx(o)?;
            // only a regular file is synced, and removed again on failure: never a device
            // or FIFO named with -o (/dev/null!)
            let regular = f.metadata().map(|m| m.is_file()).unwrap_or(false);
            let r =
                write(&plan, &binlogs, f).and_then(|f| if regular { f.sync_all() } else { Ok(()) });
            if let Err(e) = r {
                if regular {
                    let _ = std::fs::remove_file(o);
                }
                return Err(Failure::io(o, &e));
            }
        }
    }
    if a.verbose {
        let bytes: u64 = plan
            .chunks
            .iter()
            .map(|c| c.bytes.end - c.bytes.start)
            .sum();
        warn(format_args!(
            "kept {} transactions ({} bytes of events) from {} files; GTIDs {} .. {}",
            plan.groups,
            bytes,
            binlogs.len(),
            plan.first_gtid.as_deref().unwrap_or("-"),
            plan.last_gtid.as_deref().unwrap_or("-")
        ));
    }
    Ok(0)
}

fn refuse_overwriting_input(out: &str, files: &[String]) -> Result<(), Failure> {
    let Ok(om) = std::fs::metadata(out) else {
        return Ok(());
    };
    for f in files.iter().filter(|f| !is_stdio(f)) {
        if let Ok(m) = std::fs::metadata(f) {
            if m.dev() == om.dev() && m.ino() == om.ino() {
                return Err(Failure::usage(format!(
                    "{out}: output file is the input {f}"
                )));
            }
        }
    }
    Ok(())
}

/// Byte positions must be event starts (the error names the nearest ones).
fn check_positions(w: &Window, binlogs: &[Binlog<'_>], names: &[&str]) -> Result<(), Failure> {
    let checks = [
        ("--start-position", w.start_pos, 0),
        ("--stop-position", w.stop_pos, binlogs.len() - 1),
    ];
    for (opt, pos, file) in checks {
        let Some(n) = pos else { continue };
        let b = &binlogs[file];
        let name = names[file];
        match binlog::locate(b, n) {
            Ok(Position::EventStart | Position::End | Position::Magic) => {}
            Ok(Position::Inside { prev, next }) => {
                return Err(Failure::failed(format!(
                    "{name}: {opt} {n} is inside an event: the nearest events start at {prev} and {next}"
                )))
            }
            Ok(Position::Beyond { len }) if opt == "--start-position" => {
                return Err(Failure::failed(format!("{name}: {opt} {n} is past the end of the file ({len} bytes)")))
            }
            Ok(Position::Beyond { len }) => {
                warn(format_args!("{name}: warning: {opt} {n} is past the end of the file ({len} bytes)"))
            }
            // a framing error before the position: reported when the cut reaches it
            Err(_) => {}
        }
    }
    Ok(())
}

/// The smaller of the start and stop datetimes when only datetimes (and include/exclude
/// sets) bound the window: then every group before the first event stamped at or after it
/// is skipped, and the hop may jump there (see `lampvault::binlog::hop`).
fn hop_time(w: &Window) -> Option<i64> {
    if w.start_pos.is_some()
        || w.stop_pos.is_some()
        || !w.start_gtids.is_empty()
        || !w.stop_gtids.is_empty()
    {
        return None;
    }
    let t = w.start_time?;
    Some(w.stop_time.map_or(t, |s| s.min(t)))
}

/// How far ahead of the walk the plan asks for pages of a memory map.
const POPULATE_AHEAD: u64 = 4 << 20;

fn plan(
    a: &CutArgs,
    binlogs: &[Binlog<'_>],
    inputs: &[Input],
    names: &[&str],
) -> Result<Plan, Failure> {
    let files = binlogs.len();
    let mut sel = Selector::new(a.window.clone());
    let mut p = Plan {
        chunks: Vec::new(),
        group_starts: Vec::new(),
        fde_inside: false,
        groups: 0,
        first_gtid: None,
        last_gtid: None,
    };
    'files: for (i, b) in binlogs.iter().enumerate() {
        let name = names[i];
        let mut fde = Range {
            file: i,
            start: 4,
            end: b.after_fde(),
        };
        let events = match hop_time(&a.window).filter(|_| !sel.started_time()) {
            Some(t) => {
                let bytes = &inputs[i].bytes;
                match binlog::hop::resume_point(b, t, HOP_CHAINS, threads(), bytes) {
                    Some(o) => b.events_at(o, b.format.clone(), false),
                    None => b.events(false),
                }
            }
            None => b.events(false),
        };
        let mut groups = Groups::new(events);
        let mut populated = 0;
        loop {
            let at = groups.position();
            if at + POPULATE_AHEAD / 2 >= populated {
                let from = at.max(populated);
                inputs[i].bytes.populate(from, POPULATE_AHEAD);
                populated = from + POPULATE_AHEAD;
            }
            let Some(r) = groups.next() else { break };
            let g = match r {
                Ok(g) => g,
                Err(e) => {
                    framing_error(a, b, name, &e)?;
                    continue 'files;
                }
            };
            if let Some(n) = a.window.start_pos.filter(|_| i == 0) {
                if g.kind == Kind::Transaction && g.start < n && n < g.end {
                    warn(format_args!(
                        "{name}: warning: --start-position {n} is inside the transaction at {}..{}: starting at {}",
                        g.start, g.end, g.end
                    ));
                }
            }
            let d = sel.decide(&g, i, files);
            match d {
                Decision::Stop => {
                    if sel.stopped == Some(StopCause::Datetime) {
                        late_waiters(&a.window, groups, name);
                    }
                    break 'files;
                }
                Decision::Skip => {
                    if g.kind == Kind::Control && g.first_type() == types::FORMAT_DESCRIPTION {
                        fde = Range {
                            file: i,
                            start: g.start,
                            end: g.end,
                        };
                    }
                    if g.kind == Kind::Control
                        && g.first_type() == types::INCIDENT
                        && sel.in_window(&g, i)
                    {
                        if !a.force {
                            return Err(Failure::new(
                                EXIT_DAMAGED,
                                format!("{name}: offset {}: incident event: the server lost changes here (use --force to cut past it)", g.start),
                            ));
                        }
                        warn(format_args!(
                            "{name}: offset {}: warning: incident event skipped (--force)",
                            g.start
                        ));
                    }
                }
                Decision::Keep | Decision::KeepThenStop => {
                    if database_keeps(a, &g, b, binlogs, fde, name)? {
                        keep(a, &mut p, &g, b, fde, name)?
                    }
                }
            }
            // a relay log can carry a (master's) FDE inside a transaction: it rules what follows
            if g.kind != Kind::Control && g.types.contains(types::FORMAT_DESCRIPTION) {
                let fmt = parse_fde(slice(binlogs, fde), fde.start, false)
                    .unwrap_or_else(|_| b.format.clone());
                if let Some(e) = b
                    .events_at(g.start, fmt, false)
                    .map_while(Result::ok)
                    .take_while(|e| e.offset < g.end)
                    .filter(|e| e.type_code() == types::FORMAT_DESCRIPTION)
                    .last()
                {
                    fde = Range {
                        file: i,
                        start: e.offset,
                        end: e.end(),
                    };
                }
            }
            if d == Decision::KeepThenStop {
                break 'files;
            }
        }
    }
    for (g, done) in a.window.stop_gtids.iter().zip(sel.stop_gtids_done()) {
        if !done {
            warn(format_args!(
                "warning: stop GTID {}-{}-{} not reached before the end of the input",
                g.domain, g.server, g.seq
            ));
        }
    }
    Ok(p)
}

/// `--database`: keep a group whose data events are all DB's (or that has none), drop one
/// with none of DB's; a group mixing DB and other databases, or whose databases cannot be
/// read (compressed Transaction_payload, old LOAD DATA events), is refused unless `--force`,
/// which keeps it whole.
fn database_keeps(
    a: &CutArgs,
    g: &Group<'_>,
    b: &Binlog<'_>,
    binlogs: &[Binlog<'_>],
    fde: Range,
    name: &str,
) -> Result<bool, Failure> {
    let Some(db) = a.database.as_deref() else {
        return Ok(true);
    };
    if !g.complete {
        // left out with a warning by keep()
        return Ok(true);
    }
    let fmt = parse_fde(slice(binlogs, fde), fde.start, false).unwrap_or_else(|_| b.format.clone());
    let v = dbfilter::classify(b, g, fmt, db.as_bytes()).map_err(|e| input::failure(name, &e))?;
    let gtid = match g.gtid {
        binlog::Gtid::None => String::new(),
        ref t => format!(" (GTID {t})"),
    };
    let why = match v {
        DbVerdict::Neutral | DbVerdict::Only => return Ok(true),
        DbVerdict::None => return Ok(false),
        DbVerdict::Mixed { other, at } => format!(
            "the transaction at {}..{}{gtid} changes database '{db}' and also '{}' (event at {at})",
            g.start,
            g.end,
            String::from_utf8_lossy(&other)
        ),
        DbVerdict::Opaque { type_code, at } => format!(
            "the transaction at {}..{}{gtid} holds a {} event at {at} whose database cannot be read without decompressing or parsing it",
            g.start,
            g.end,
            types::name(type_code)
        ),
    };
    if !a.force {
        return Err(Failure::failed(format!(
            "{name}: --database: {why}; a cut keeps or drops transactions whole (use --force to keep it whole)"
        )));
    }
    warn(format_args!(
        "{name}: warning: --database: {why}; kept whole (--force)"
    ));
    Ok(true)
}

fn keep(
    a: &CutArgs,
    p: &mut Plan,
    g: &Group<'_>,
    b: &Binlog<'_>,
    fde: Range,
    name: &str,
) -> Result<(), Failure> {
    let file = fde.file;
    if !g.complete {
        warn(format_args!(
            "{name}: offset {}: warning: incomplete transaction (the file ends inside it) left out",
            g.start
        ));
        return Ok(());
    }
    if let Some(t) = g.unknown_type {
        // the offset of the unknown event itself
        let fmt = parse_fde(
            &b.data[fde.start as usize..fde.end as usize],
            fde.start,
            false,
        )
        .unwrap_or_else(|_| b.format.clone());
        let at = b
            .events_at(g.start, fmt, false)
            .map_while(Result::ok)
            .take_while(|e| e.offset < g.end)
            .find(|e| e.type_code() == t)
            .map(|e| e.offset)
            .unwrap_or(g.start);
        if !a.force {
            return Err(Failure::new(
                EXIT_DAMAGED,
                format!("{name}: offset {at}: unknown event type {t} (use --force to copy it)"),
            ));
        }
        warn(format_args!(
            "{name}: offset {at}: warning: unknown event type {t} copied (--force)"
        ));
    }
    p.groups += 1;
    let gt = g.gtid.to_string();
    if p.first_gtid.is_none() {
        p.first_gtid = Some(gt.clone());
    }
    p.last_gtid = Some(gt);
    let r = Range {
        file,
        start: g.start,
        end: g.end,
    };
    p.fde_inside |= g.types.contains(types::FORMAT_DESCRIPTION);
    if let Some(last) = p.chunks.last_mut() {
        if last.bytes.file == file && last.bytes.end == g.start && last.fde == fde {
            last.bytes.end = g.end;
            p.group_starts.push((p.chunks.len() - 1, g.start));
            return Ok(());
        }
    }
    p.chunks.push(Chunk { bytes: r, fde });
    p.group_starts.push((p.chunks.len() - 1, g.start));
    Ok(())
}

/// A file that cannot be walked further: the end of a live file, or damage.
fn framing_error(
    a: &CutArgs,
    b: &Binlog<'_>,
    name: &str,
    e: &binlog::Error,
) -> Result<(), Failure> {
    if e.kind == ErrorKind::MariadbEncrypted {
        return Err(input::failure(name, e));
    }
    if b.in_use && e.is_truncation() {
        if a.strict {
            return Err(Failure::new(
                EXIT_UNFINISHED,
                format!("{name}: {e} (file in use: live, or the server crashed)"),
            ));
        }
        warn(format_args!(
            "{name}: warning: {e}: file in use (live, or the server crashed), treated as its end"
        ));
        return Ok(());
    }
    if a.force {
        warn(format_args!(
            "{name}: warning: {e}: rest of the file skipped (--force)"
        ));
        return Ok(());
    }
    Err(Failure::new(
        EXIT_DAMAGED,
        format!("{name}: {e} (use --force to cut up to it)"),
    ))
}

/// After a datetime stop: say when later groups carry older timestamps (statements that
/// waited for a lock, spec §7); like mysqlbinlog we leave them out.
fn late_waiters(w: &Window, groups: Groups<'_>, name: &str) {
    let Some(stop) = w.stop_time else { return };
    let mut n = 0u64;
    let mut first = None;
    // look at most 1000 groups / 8 MiB ahead: lock waiters are written soon after
    let from = groups.position();
    for g in groups
        .take(1000)
        .map_while(Result::ok)
        .take_while(|g| g.start - from < 8 << 20)
    {
        if g.kind == Kind::Transaction && i64::from(g.max_ts) < stop {
            n += 1;
            first.get_or_insert(g.start);
        }
    }
    if let Some(at) = first {
        warn(format_args!(
            "{name}: warning: {n} later transaction(s) from offset {at} on have timestamps before --stop-datetime (lock waiters written after the stop point); left out, as mysqlbinlog does"
        ));
    }
}

/// Check every CRC32 of what will be written: the FDEs first, then the kept events, split
/// over threads at group starts. Problems are reported in file order, as one walk would.
fn check_crcs(
    a: &CutArgs,
    p: &Plan,
    binlogs: &[Binlog<'_>],
    names: &[&str],
) -> Result<(), Failure> {
    let mut last_fde = None;
    let mut formats = Vec::with_capacity(p.chunks.len());
    for c in &p.chunks {
        let name = names[c.bytes.file];
        let fde_raw = slice(binlogs, c.fde);
        let format = match parse_fde(fde_raw, c.fde.start, last_fde != Some(c.fde)) {
            Ok(f) => f,
            Err(e) => {
                crc_problem(a, name, &e)?;
                parse_fde(fde_raw, c.fde.start, false).map_err(|e| input::failure(name, &e))?
            }
        };
        last_fde = Some(c.fde);
        formats.push(format);
    }
    if p.chunks.is_empty() {
        return Ok(());
    }
    // the work as (chunk, from, to) pieces, cut into parts of about equal bytes
    let total: u64 = p.chunks.iter().map(|c| c.bytes.end - c.bytes.start).sum();
    let n = if p.fde_inside || total < CRC_PARALLEL_MIN {
        1
    } else {
        threads()
    };
    let mut cuts: Vec<(usize, u64)> = Vec::new();
    let mut done = 0u64;
    let mut next_chunk = 0;
    for &(ci, at) in &p.group_starts {
        while next_chunk < ci {
            done += p.chunks[next_chunk].bytes.end - p.chunks[next_chunk].bytes.start;
            next_chunk += 1;
        }
        let here = done + (at - p.chunks[ci].bytes.start);
        if here >= total / n as u64 * (cuts.len() as u64 + 1) && cuts.len() + 1 < n {
            cuts.push((ci, at));
        }
    }
    let mut parts: Vec<Vec<(usize, u64, u64)>> = Vec::new();
    let mut bounds = vec![(0usize, p.chunks.first().map_or(0, |c| c.bytes.start))];
    bounds.extend(cuts.iter().copied());
    for (k, &(ci, from)) in bounds.iter().enumerate() {
        let (ce, to) = bounds
            .get(k + 1)
            .copied()
            .unwrap_or((p.chunks.len().saturating_sub(1), u64::MAX));
        let mut part = Vec::new();
        for c in ci..=ce.min(p.chunks.len().saturating_sub(1)) {
            let r = p.chunks[c].bytes;
            let s = if c == ci { from } else { r.start };
            let e = if c == ce { to.min(r.end) } else { r.end };
            if s < e {
                part.push((c, s, e));
            }
        }
        parts.push(part);
    }
    // (framing problem?, file, error) in file order
    type Problems = Vec<(bool, usize, binlog::Error)>;
    let check = |part: &[(usize, u64, u64)]| -> Problems {
        let mut problems = Vec::new();
        for &(c, from, to) in part {
            let file = p.chunks[c].bytes.file;
            let b = &binlogs[file];
            for ev in b.events_at(from, formats[c].clone(), false) {
                match ev {
                    Err(e) => {
                        problems.push((true, file, e));
                        return problems;
                    }
                    Ok(ev) if ev.offset >= to => break,
                    Ok(ev) => {
                        if let Err(e) = ev.verify_crc() {
                            problems.push((false, file, e));
                        }
                    }
                }
            }
        }
        problems
    };
    let results: Vec<Problems> = if parts.len() <= 1 {
        parts.iter().map(|pt| check(pt)).collect()
    } else {
        std::thread::scope(|s| {
            let hs: Vec<_> = parts.iter().map(|pt| s.spawn(|| check(pt))).collect();
            hs.into_iter()
                .map(|h| h.join().expect("CRC worker panicked"))
                .collect()
        })
    };
    for problems in results {
        for (framing, file, e) in problems {
            if framing {
                return Err(input::failure(names[file], &e));
            }
            crc_problem(a, names[file], &e)?;
        }
    }
    Ok(())
}

/// Windows smaller than this are checked on one thread.
const CRC_PARALLEL_MIN: u64 = 4 << 20;

fn crc_problem(a: &CutArgs, name: &str, e: &binlog::Error) -> Result<(), Failure> {
    if a.force {
        warn(format_args!(
            "{name}: warning: {e}: copied anyway (--force)"
        ));
        return Ok(());
    }
    Err(Failure::new(
        EXIT_DAMAGED,
        format!("{name}: {e} (use --force to copy it anyway)"),
    ))
}

fn write_fde(w: &mut impl Write, raw: &[u8]) -> std::io::Result<()> {
    // Clear LOG_EVENT_BINLOG_IN_USE_F: the FDE's CRC is defined with it clear (spec §4).
    let mut v = raw.to_vec();
    v[17] &= !(binlog::reader::FLAG_IN_USE as u8);
    w.write_all(&v)
}

fn write<W: Write>(p: &Plan, binlogs: &[Binlog<'_>], out: W) -> std::io::Result<W> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    w.write_all(&binlog::MAGIC)?;
    let mut last: Option<(Range, Format)> = None;
    for c in &p.chunks {
        let raw = slice(binlogs, c.fde);
        let same = match &last {
            Some((r, _)) if *r == c.fde => true,
            Some((_, f)) => parse_fde(raw, c.fde.start, false)
                .map(|n| n.same_framing(f))
                .unwrap_or(false),
            None => false,
        };
        if !same {
            write_fde(&mut w, raw)?;
            let f = parse_fde(raw, c.fde.start, false)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            last = Some((c.fde, f));
        }
        w.write_all(slice(binlogs, c.bytes))?;
    }
    if last.is_none() {
        write_fde(&mut w, binlogs[0].fde_raw)?;
    }
    w.into_inner().map_err(|e| e.into_error())
}
