//! `binlogcut list`: one line per transaction (or per event with `--events`), so a DBA can
//! find the statement to cut before: file, start and end offsets, time, GTID, size, event
//! types and the first statement. `--json` prints one JSON object per line (JSON Lines);
//! `--grep REGEX` keeps the transactions/events whose statement text matches.

use std::io::{BufWriter, Write};

use regex::bytes::Regex;
use serde_json::json;

use lampvault::binlog::group::statement_text;
use lampvault::binlog::{self, gtid, types, Binlog, Groups, Kind};

use super::input::{self, warn, EXIT_DAMAGED};
use super::opts::format_time;
use crate::common::{Failure, IoContext};

pub struct ListArgs {
    pub files: Vec<String>,
    pub json: bool,
    pub events: bool,
    pub grep: Option<Regex>,
    pub strict: bool,
}

/// A statement as one short line: whitespace collapsed, at most `max` characters.
fn one_line(t: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(t);
    let mut out = String::new();
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
        if out.chars().count() > max {
            let cut: String = out.chars().take(max).collect();
            return cut + "…";
        }
    }
    out
}

pub fn run(a: ListArgs) -> Result<u8, Failure> {
    input::check_stdin_once(&a.files)?;
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let mut worst: Option<Failure> = None;
    for f in &a.files {
        let inp = input::load(f, true)?;
        let b = match Binlog::open(&inp.bytes) {
            Ok(b) => b,
            Err(e) => {
                w.flush().ctx("write to stdout")?;
                worst = Some(input::failure(f, &e));
                break;
            }
        };
        let res = if a.events {
            list_events(&a, f, &b, &mut w)
        } else {
            list_groups(&a, f, &b, &mut w)
        };
        let err = res.ctx("write to stdout")?;
        if let Some(e) = err {
            w.flush().ctx("write to stdout")?;
            if b.in_use && e.is_truncation() && !a.strict {
                warn(format_args!("{f}: warning: {e}: file in use (live, or the server crashed), listed up to there"));
            } else {
                let code = if e.is_format() || e.is_encrypted() {
                    1
                } else {
                    EXIT_DAMAGED
                };
                worst = Some(Failure::new(code, format!("{f}: {e}")));
                break;
            }
        }
    }
    w.flush().ctx("write to stdout")?;
    match worst {
        Some(f) => Err(f),
        None => Ok(0),
    }
}

fn list_groups(
    a: &ListArgs,
    name: &str,
    b: &Binlog<'_>,
    w: &mut impl Write,
) -> std::io::Result<Option<binlog::Error>> {
    for g in Groups::new(b.events(true)).collect_statements(a.grep.is_some()) {
        let g = match g {
            Ok(g) => g,
            Err(e) => return Ok(Some(e)),
        };
        // control events are not transactions; Incident and unknown events are shown
        if g.kind == Kind::Control && g.first_type() != types::INCIDENT {
            continue;
        }
        if let Some(re) = &a.grep {
            if !g.statements.iter().any(|s| re.is_match(s)) {
                continue;
            }
        }
        let names: Vec<&str> = g.types.codes().iter().map(|&c| types::name(c)).collect();
        let stmt = g.statement.map(|s| one_line(s, 120)).unwrap_or_default();
        let time = format_time(i64::from(g.max_ts));
        if a.json {
            let v = json!({
                "file": name, "start": g.start, "end": g.end, "size": g.size(),
                "timestamp": g.max_ts, "time": time, "gtid": g.gtid.to_string(),
                "events": g.events, "types": names, "complete": g.complete,
                "kind": match g.kind { Kind::Transaction => "transaction", Kind::Control => "control", Kind::Unknown => "unknown" },
                "statement": g.statement.map(|s| String::from_utf8_lossy(s).into_owned()),
            });
            writeln!(w, "{v}")?;
        } else {
            let mut t = names.join(",");
            if g.types.more {
                t.push_str(",…");
            }
            if !g.complete {
                t.push_str(" (incomplete)");
            }
            writeln!(
                w,
                "{name}\t{}\t{}\t{time}\t{}\t{}\t{t}\t{stmt}",
                g.start,
                g.end,
                g.gtid,
                g.size()
            )?;
        }
    }
    Ok(None)
}

fn list_events(
    a: &ListArgs,
    name: &str,
    b: &Binlog<'_>,
    w: &mut impl Write,
) -> std::io::Result<Option<binlog::Error>> {
    let mut evs = b.events(true);
    while let Some(ev) = evs.next() {
        let ev = match ev {
            Ok(e) => e,
            Err(e) => return Ok(Some(e)),
        };
        let text = statement_text(&ev, evs.format());
        if let Some(re) = &a.grep {
            if !text.is_some_and(|t| re.is_match(t)) {
                continue;
            }
        }
        let code = ev.type_code();
        let g = gtid::decode(code, ev.header.server_id, ev.body());
        let time = format_time(i64::from(ev.header.timestamp));
        let h = ev.header;
        if a.json {
            let v = json!({
                "file": name, "offset": ev.offset, "end": ev.end(), "size": ev.raw.len(),
                "timestamp": h.timestamp, "time": time, "type": types::name(code), "type_code": code,
                "server_id": h.server_id, "log_pos": h.log_pos, "flags": h.flags,
                "gtid": (g != gtid::Gtid::None).then(|| g.to_string()),
                "statement": text.map(|s| String::from_utf8_lossy(s).into_owned()),
            });
            writeln!(w, "{v}")?;
        } else {
            let gt = if g == gtid::Gtid::None {
                "-".to_string()
            } else {
                g.to_string()
            };
            let stmt = text.map(|s| one_line(s, 120)).unwrap_or_default();
            writeln!(
                w,
                "{name}\t{}\t{}\t{time}\t{gt}\t{}\t{}\t{stmt}",
                ev.offset,
                ev.end(),
                ev.raw.len(),
                types::name(code)
            )?;
        }
    }
    Ok(None)
}
