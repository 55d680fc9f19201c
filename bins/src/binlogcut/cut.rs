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

use lampvault::binlog::dbfilter::{self, DbVerdict, Xa};
use lampvault::binlog::reader::{parse_fde, Format};
use lampvault::binlog::{
    self, types, Binlog, Decision, ErrorKind, Group, Groups, Kind, Position, Selector, StopCause,
    Window,
};

use super::input::{self, threads, warn, Input, EXIT_DAMAGED, EXIT_UNFINISHED};

/// Chains the header hop runs at once (their cache misses overlap; on 2 threads, 64 chains
/// of a 650 MB file hopped 1.3–1.5 times faster than 16 here).
const HOP_CHAINS: usize = 64;
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
    /// A kept group carries an FDE (relay log): the format changes inside a chunk, so the
    /// CRC check walks chunks whole.
    fde_inside: bool,
    groups: u64,
    first_gtid: Option<binlog::Gtid>,
    last_gtid: Option<binlog::Gtid>,
    /// Kept bytes not yet handed to the CRC pipe start here (chunk index, offset).
    fed: (usize, u64),
    /// The format of the last fed chunk's FDE.
    fed_format: Option<(Range, Format)>,
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
    let pipe = Pipe::new();
    let planned = std::thread::scope(|s| {
        let mut helpers = Vec::new();
        let mut to_pipe = |pc: Piece| {
            let queued = pipe.push(pc);
            if helpers.is_empty() && queued >= CRC_PARALLEL_MIN {
                for _ in 1..threads() {
                    helpers.push(s.spawn(|| pipe.work(&binlogs)));
                }
            }
        };
        let r = plan(&a, &binlogs, &inputs, &names, &mut to_pipe);
        pipe.finish(r.is_err());
        pipe.work(&binlogs);
        for h in helpers {
            h.join().expect("CRC worker panicked");
        }
        r
    });
    let plan = planned?;
    check_crcs(&a, &plan, &binlogs, &names, pipe.results())?;
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
            plan.first_gtid.map_or("-".into(), |g| g.to_string()),
            plan.last_gtid.map_or("-".into(), |g| g.to_string())
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
    pipe: &mut dyn FnMut(Piece),
) -> Result<Plan, Failure> {
    let files = binlogs.len();
    let mut sel = Selector::new(a.window.clone());
    let mut p = Plan {
        chunks: Vec::new(),
        fde_inside: false,
        groups: 0,
        first_gtid: None,
        last_gtid: None,
        fed: (0, 0),
        fed_format: None,
    };
    // XIDs of XA transactions whose prepared part --database left out
    let mut dropped_xa = std::collections::HashSet::new();
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
                        // the CRC helpers work on the window while this looks ahead
                        feed(&mut p, binlogs, true, pipe);
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
                    if database_keeps(a, &mut dropped_xa, &g, b, binlogs, fde, name)? {
                        keep(a, &mut p, &g, b, fde, name)?;
                        feed(&mut p, binlogs, false, pipe);
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
    feed(&mut p, binlogs, true, pipe);
    Ok(p)
}

/// Kept bytes are handed to the CRC check in pieces of about this size, at group starts.
const PIECE: u64 = 1 << 20;

/// Hand the kept bytes not yet fed to `pipe`, in pieces of about [`PIECE`] bytes that end
/// at group ends and never span chunks; with `all`, also the last partial piece.
fn feed(p: &mut Plan, binlogs: &[Binlog<'_>], all: bool, pipe: &mut dyn FnMut(Piece)) {
    loop {
        let (ci, from) = p.fed;
        let Some(c) = p.chunks.get(ci) else { return };
        let from = from.max(c.bytes.start);
        let last = ci + 1 == p.chunks.len();
        if last && !all && c.bytes.end - from < PIECE {
            p.fed = (ci, from);
            return;
        }
        if from < c.bytes.end {
            let format = match &p.fed_format {
                Some((r, f)) if *r == c.fde => f.clone(),
                _ => {
                    let f = parse_fde(slice(binlogs, c.fde), c.fde.start, false)
                        .unwrap_or_else(|_| binlogs[c.fde.file].format.clone());
                    p.fed_format = Some((c.fde, f.clone()));
                    f
                }
            };
            pipe(Piece {
                file: c.bytes.file,
                from,
                to: c.bytes.end,
                format,
            });
        }
        if last {
            p.fed = (ci, c.bytes.end);
            return;
        }
        p.fed = (ci + 1, 0);
    }
}

/// A piece of the CRC check: the events of `file` from `from` (an event start) to `to`.
pub struct Piece {
    file: usize,
    from: u64,
    to: u64,
    format: Format,
}

/// (framing problem?, file, error) in file order.
type Problems = Vec<(bool, usize, binlog::Error)>;

fn check_piece(binlogs: &[Binlog<'_>], pc: &Piece) -> Problems {
    let mut problems = Vec::new();
    for ev in binlogs[pc.file].events_at(pc.from, pc.format.clone(), false) {
        match ev {
            Err(e) => {
                problems.push((true, pc.file, e));
                return problems;
            }
            Ok(ev) if ev.offset >= pc.to => break,
            Ok(ev) => {
                if let Err(e) = ev.verify_crc() {
                    problems.push((false, pc.file, e));
                }
            }
        }
    }
    problems
}

/// The CRC check of kept bytes while the plan goes on: pieces queue up; once enough bytes
/// wait, helper threads start and check them; after the plan the main thread helps.
/// Results are kept per piece number, so problems are reported in file order.
struct Pipe {
    state: std::sync::Mutex<PipeState>,
    cv: std::sync::Condvar,
}

#[derive(Default)]
struct PipeState {
    queue: std::collections::VecDeque<(usize, Piece)>,
    pieces: usize,
    queued_bytes: u64,
    done: bool,
    results: Vec<(usize, Problems)>,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            state: std::sync::Mutex::new(PipeState::default()),
            cv: std::sync::Condvar::new(),
        }
    }

    /// Queue a piece; returns the bytes queued so far.
    fn push(&self, pc: Piece) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.queued_bytes += pc.to - pc.from;
        let n = st.pieces;
        st.pieces += 1;
        st.queue.push_back((n, pc));
        self.cv.notify_one();
        st.queued_bytes
    }

    /// No more pieces; with `drop_queue` (the plan failed) nothing more is checked.
    fn finish(&self, drop_queue: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.done = true;
        if drop_queue {
            st.queue.clear();
        }
        self.cv.notify_all();
    }

    /// Check pieces until the queue is empty and the plan is done.
    fn work(&self, binlogs: &[Binlog<'_>]) {
        loop {
            let (n, pc) = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(x) = st.queue.pop_front() {
                        break x;
                    }
                    if st.done {
                        return;
                    }
                    st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let r = check_piece(binlogs, &pc);
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.results.push((n, r));
        }
    }

    /// The problems of every piece, in piece (= file) order.
    fn results(self) -> Vec<Problems> {
        let mut st = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        st.results.sort_by_key(|r| r.0);
        st.results.into_iter().map(|r| r.1).collect()
    }
}

/// `--database`: keep a group whose data events are all DB's (or that has none), drop one
/// with none of DB's; a group mixing DB and other databases, or whose databases cannot be
/// read (compressed Transaction_payload, old LOAD DATA events), is refused unless `--force`,
/// which keeps it whole.
fn database_keeps(
    a: &CutArgs,
    dropped_xa: &mut std::collections::HashSet<Vec<u8>>,
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
    let v = dbfilter::classify(b, g, fmt.clone(), db.as_bytes())
        .map_err(|e| input::failure(name, &e))?;
    // XA: the completion (XA COMMIT/ROLLBACK, no changes) follows its prepared part
    if matches!(v, DbVerdict::None | DbVerdict::Neutral) {
        match dbfilter::xa_role(b, g, fmt).map_err(|e| input::failure(name, &e))? {
            Some(Xa::Prepare(x)) if v == DbVerdict::None => {
                dropped_xa.insert(x);
            }
            Some(Xa::Complete(x)) if dropped_xa.remove(&x) => return Ok(false),
            _ => {}
        }
    }
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
    if p.first_gtid.is_none() {
        p.first_gtid = Some(g.gtid);
    }
    p.last_gtid = Some(g.gtid);
    let r = Range {
        file,
        start: g.start,
        end: g.end,
    };
    p.fde_inside |= g.types.contains(types::FORMAT_DESCRIPTION);
    if let Some(last) = p.chunks.last_mut() {
        if last.bytes.file == file && last.bytes.end == g.start && last.fde == fde {
            last.bytes.end = g.end;
            return Ok(());
        }
    }
    p.chunks.push(Chunk { bytes: r, fde });
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
    piped: Vec<Problems>,
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
    // a kept group carries an FDE (relay log): the format changes inside a chunk, so
    // chunks are walked whole (the walk follows the FDE); else the pipe's pieces
    let results: Vec<Problems> = if p.fde_inside {
        p.chunks
            .iter()
            .zip(&formats)
            .map(|(c, f)| {
                check_piece(
                    binlogs,
                    &Piece {
                        file: c.bytes.file,
                        from: c.bytes.start,
                        to: c.bytes.end,
                        format: f.clone(),
                    },
                )
            })
            .collect()
    } else {
        piped
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

/// CRC helper threads start once this many kept bytes wait (smaller windows: one thread).
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
