//! `walarchive cleanup | list | verify`: the archive as a whole.
//!
//! cleanup follows pg_archivecleanup (spec §3): the cutoff may be a segment, `.partial` or
//! `.backup` name and only its first 24 characters count; segments and partial segments
//! whose log id + segment (characters 9–24, timeline ignored, so parent timelines stay)
//! sort before the cutoff's are removed; `.history` files never; `.backup` files only with
//! `-b`. list summarises each timeline; verify reads every file back.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use lampvault::durable;
use lampvault::wal::history::{format_lsn, is_prefix};
use lampvault::wal::page::check_segment;
use lampvault::wal::store::{decode_stored, ArchiveInfo, INFO_FILE};
use lampvault::wal::{parse_history, WalKind, WalName};

use super::archive::{self, Entry};
use crate::common::{Failure, IoContext};

fn root_of(m: &ArgMatches) -> &PathBuf {
    m.get_one::<PathBuf>("archive").expect("required")
}

fn scan(root: &Path) -> Result<archive::Scan, Failure> {
    archive::scan(root).map_err(|e| Failure::io(format_args!("{}: archive", root.display()), &e))
}

fn info(root: &Path) -> Result<Option<ArchiveInfo>, Failure> {
    match archive::read_info(root).ctx(root.join(INFO_FILE).display())? {
        Some(Ok(i)) => Ok(Some(i)),
        Some(Err(e)) => Err(Failure::failed(format!(
            "{}: {e}",
            root.join(INFO_FILE).display()
        ))),
        None => Ok(None),
    }
}

pub fn cleanup(m: &ArgMatches) -> Result<u8, Failure> {
    let root = root_of(m);
    let cut_s = m.get_one::<String>("cutoff").expect("required");
    let cut = WalName::parse(cut_s)
        .ok()
        .filter(|w| !matches!(w.kind, WalKind::History))
        .ok_or_else(|| {
            Failure::usage(format!(
                "{cut_s}: invalid file name argument (want a segment, .partial or .backup name)"
            ))
        })?;
    let dry = m.get_flag("dry-run");
    let backups = m.get_flag("clean-backup-history");
    let s = scan(root)?;
    let key = |w: &WalName| (w.log, w.seg);
    let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut errors = 0;
    let mut out = std::io::stdout().lock();
    for e in &s.entries {
        let w = &e.stored.wal;
        let candidate = match w.kind {
            WalKind::Segment | WalKind::Partial => true,
            WalKind::Backup { .. } => backups,
            WalKind::History => false,
        };
        // A .backup of the cutoff segment itself sorts after it (pg_archivecleanup compares
        // whole names): keep it.
        if !candidate || key(w) >= key(&cut) {
            continue;
        }
        if dry {
            writeln!(out, "{}", e.path.display()).ctx("stdout")?;
            continue;
        }
        match fs::remove_file(&e.path) {
            Ok(()) => {
                if let Some(d) = e.path.parent() {
                    touched.insert(d.to_path_buf());
                }
            }
            Err(err) => {
                errors += 1;
                eprintln!(
                    "walarchive: {}: {}",
                    e.path.display(),
                    crate::common::errno_text(&err)
                );
            }
        }
    }
    for d in &touched {
        if d != root && fs::remove_dir(d).is_ok() {
            continue;
        }
        durable::sync_dir(d).ctx(d.display())?;
    }
    if !touched.is_empty() {
        durable::sync_dir(root).ctx(root.display())?;
    }
    if errors > 0 {
        return Err(Failure::failed(format!(
            "{errors} file(s) could not be removed"
        )));
    }
    Ok(0)
}

/// Per timeline: segments by number, stored sizes.
#[derive(Default)]
struct Timeline {
    segnos: BTreeSet<u64>,
    stored: u64,
}

fn group(entries: &[Entry], seg_size: u32) -> BTreeMap<u32, Timeline> {
    let mut tls: BTreeMap<u32, Timeline> = BTreeMap::new();
    for e in entries {
        let w = &e.stored.wal;
        if w.kind != WalKind::Segment {
            continue;
        }
        let Some(n) = w.segno(seg_size) else { continue };
        let t = tls.entry(w.tli).or_default();
        t.segnos.insert(n);
        t.stored += fs::symlink_metadata(&e.path).map(|m| m.len()).unwrap_or(0);
    }
    tls
}

/// Missing ranges `[a, b]` between a timeline's first and last segment.
fn gaps(segnos: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut prev: Option<u64> = None;
    for &n in segnos {
        if let Some(p) = prev {
            if n > p + 1 {
                out.push((p + 1, n - 1));
            }
        }
        prev = Some(n);
    }
    out
}

fn seg_name(tli: u32, n: u64, seg_size: u32) -> String {
    WalName::segment_from_segno(tli, n, seg_size)
        .map(|w| w.to_string())
        .unwrap_or_default()
}

pub fn list(m: &ArgMatches) -> Result<u8, Failure> {
    let root = root_of(m);
    let s = scan(root)?;
    let Some(info) = info(root)? else {
        if s.entries.is_empty() {
            return Ok(0);
        }
        return Err(Failure::failed(format!(
            "{}: no {INFO_FILE} although files are archived",
            root.display()
        )));
    };
    let seg = info.seg_size;
    let tls = group(&s.entries, seg);
    let mut timelines = Vec::new();
    let mut text = String::new();
    for (tli, t) in &tls {
        let (first, last) = (
            *t.segnos.first().expect("non-empty"),
            *t.segnos.last().expect("non-empty"),
        );
        let original = t.segnos.len() as u64 * u64::from(seg);
        let ratio = if t.stored > 0 {
            original as f64 / t.stored as f64
        } else {
            0.0
        };
        let g = gaps(&t.segnos);
        text.push_str(&format!(
            "timeline {tli}: {} .. {}, {} segments, {} gaps, {} -> {} bytes (ratio {ratio:.2})\n",
            seg_name(*tli, first, seg),
            seg_name(*tli, last, seg),
            t.segnos.len(),
            g.len(),
            original,
            t.stored
        ));
        for (a, b) in &g {
            text.push_str(&format!(
                "  gap: {} .. {}\n",
                seg_name(*tli, *a, seg),
                seg_name(*tli, *b, seg)
            ));
        }
        timelines.push(serde_json::json!({
            "timeline": tli,
            "first": seg_name(*tli, first, seg),
            "last": seg_name(*tli, last, seg),
            "segments": t.segnos.len(),
            "gaps": g.iter().map(|(a, b)| [seg_name(*tli, *a, seg), seg_name(*tli, *b, seg)]).collect::<Vec<_>>(),
            "original_bytes": original,
            "stored_bytes": t.stored,
            "ratio": (ratio * 100.0).round() / 100.0,
        }));
    }
    let mut others = Vec::new();
    for e in &s.entries {
        let w = &e.stored.wal;
        let kind = match w.kind {
            WalKind::Segment => continue,
            WalKind::Partial => "partial",
            WalKind::Backup { .. } => "backup",
            WalKind::History => "history",
        };
        let mut detail = String::new();
        if w.kind == WalKind::History {
            if let Ok(h) = fs::read(&e.path)
                .map_err(|_| ())
                .and_then(|b| parse_history(w.tli, &b).map_err(|_| ()))
            {
                if let Some(last) = h.last() {
                    detail = format!("parent {} at {}", last.parent, format_lsn(last.switch_lsn));
                }
            }
        }
        text.push_str(&format!(
            "{kind}: {w}{}{detail}\n",
            if detail.is_empty() { "" } else { " " }
        ));
        others.push(serde_json::json!({"kind": kind, "name": w.to_string(), "detail": detail}));
    }
    let mut out = std::io::stdout().lock();
    if m.get_flag("json") {
        let v = serde_json::json!({
            "system_identifier": info.system_id.to_string(),
            "wal_segment_size": info.seg_size,
            "wal_page_magic": format!("0x{:04X}", info.magic),
            "timelines": timelines,
            "files": others,
        });
        writeln!(out, "{v}").ctx("stdout")?;
    } else {
        out.write_all(text.as_bytes()).ctx("stdout")?;
    }
    Ok(0)
}

pub fn verify(m: &ArgMatches) -> Result<u8, Failure> {
    let root = root_of(m);
    let s = scan(root)?;
    let info = info(root)?;
    let mut problems: Vec<String> = Vec::new();
    let mut p = |path: &Path, cause: String| problems.push(format!("{}: {cause}", path.display()));
    if info.is_none() && !s.entries.is_empty() {
        p(root, format!("no {INFO_FILE} although files are archived"));
    }
    for st in &s.strangers {
        p(
            st,
            "not a walarchive file (or in the wrong directory)".into(),
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut histories: BTreeMap<u32, Vec<lampvault::wal::HistoryEntry>> = BTreeMap::new();
    for e in &s.entries {
        let w = e.stored.wal;
        *seen.entry(w.to_string()).or_default() += 1;
        let limit = match (w.has_pages(), info) {
            (true, Some(i)) => i.seg_size as usize,
            _ => 1 << 30,
        };
        let bytes = match fs::read(&e.path) {
            Ok(b) => b,
            Err(err) => {
                p(&e.path, crate::common::errno_text(&err));
                continue;
            }
        };
        let data = match decode_stored(&e.stored, &bytes, limit) {
            Ok(d) => d,
            Err(err) => {
                p(&e.path, err.to_string());
                continue;
            }
        };
        match w.kind {
            WalKind::Segment | WalKind::Partial => {
                match check_segment(&w, &data, info.map(|i| i.magic)) {
                    Ok(h) => {
                        if let Some(i) = info {
                            if h.sysid != i.system_id
                                || h.seg_size != i.seg_size
                                || h.magic != i.magic
                            {
                                p(&e.path, format!("system identifier {} / segment size {} / magic 0x{:04X} differ from the archive's", h.sysid, h.seg_size, h.magic));
                            }
                        }
                    }
                    Err(err) => p(&e.path, err.to_string()),
                }
            }
            WalKind::History => match parse_history(w.tli, &data) {
                Ok(h) => {
                    histories.insert(w.tli, h);
                }
                Err(err) => p(&e.path, err.to_string()),
            },
            WalKind::Backup { .. } => {}
        }
    }
    for (n, c) in &seen {
        if *c > 1 {
            p(root, format!("{n} is archived {c} times"));
        }
    }
    // Each history file's ancestry must extend its parent's.
    for (tli, h) in &histories {
        if let Some(last) = h.last() {
            if let Some(ph) = histories.get(&last.parent) {
                if !is_prefix(ph, &h[..h.len() - 1]) || ph.len() != h.len() - 1 {
                    p(root, format!("history of timeline {tli} does not extend the history of its parent {}", last.parent));
                }
            }
        }
    }
    if let Some(i) = info {
        for (tli, t) in group(&s.entries, i.seg_size) {
            for (a, b) in gaps(&t.segnos) {
                p(
                    root,
                    format!(
                        "timeline {tli}: missing {} .. {}",
                        seg_name(tli, a, i.seg_size),
                        seg_name(tli, b, i.seg_size)
                    ),
                );
            }
        }
    }
    for msg in &problems {
        eprintln!("walarchive: {msg}");
    }
    if m.get_flag("verbose") {
        eprintln!(
            "walarchive: verified {} files, {} problems",
            s.entries.len(),
            problems.len()
        );
    }
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(Failure::failed(format!(
            "{}: {} problem(s) found",
            root.display(),
            problems.len()
        )))
    }
}
