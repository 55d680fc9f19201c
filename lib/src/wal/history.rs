//! Timeline history files (`NNNNNNNN.history`): one line per ancestor timeline,
//! `<parent TLI, decimal> TAB <switch LSN X/Y> TAB <reason>` (spec `pg-wal-archive.md` §4.1).
//!
//! Like PostgreSQL's `readTimeLineHistory()` (timeline.c), blank lines and lines starting
//! with `#` are skipped, parent TLIs must strictly increase, and each must be older than the
//! file's own timeline. Pure over bytes; errors name the line and byte offset.

use std::fmt;

/// One ancestor: timeline `parent` ended at `switch_lsn` (where its child begins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub parent: u32,
    pub switch_lsn: u64,
    pub reason: String,
}

/// A history file that PostgreSQL would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line number.
    pub line: usize,
    /// Byte offset of the line's start.
    pub offset: usize,
    pub cause: &'static str,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "history line {} (offset {}): {}",
            self.line, self.offset, self.cause
        )
    }
}

impl std::error::Error for HistoryError {}

/// Parse an LSN in PostgreSQL's text form `X/Y` (each part 1-8 hex digits, any case).
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    let ok = |p: &str| !p.is_empty() && p.len() <= 8 && p.bytes().all(|c| c.is_ascii_hexdigit());
    if !ok(hi) || !ok(lo) {
        return None;
    }
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// Format an LSN as `X/Y`.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Parse the history file of timeline `tli`.
pub fn parse_history(tli: u32, data: &[u8]) -> Result<Vec<HistoryEntry>, HistoryError> {
    let mut out: Vec<HistoryEntry> = Vec::new();
    let mut offset = 0;
    let text = std::str::from_utf8(data).map_err(|e| HistoryError {
        line: data[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1,
        offset: e.valid_up_to(),
        cause: "not UTF-8 text",
    })?;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let here = offset;
        offset += raw.len();
        let err = |cause| HistoryError {
            line: i + 1,
            offset: here,
            cause,
        };
        if !raw.ends_with('\n') {
            return Err(err("line is not newline-terminated (truncated file?)"));
        }
        let line = raw.trim_end_matches('\n').trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let parent: u32 = fields
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| err("parent timeline is not a decimal number"))?;
        let lsn = fields
            .next()
            .and_then(parse_lsn)
            .ok_or_else(|| err("switch point is not an X/Y LSN"))?;
        let reason = fields.next().unwrap_or("").to_string();
        if parent == 0 || parent >= tli {
            return Err(err("parent timeline is not older than the file's timeline"));
        }
        if let Some(prev) = out.last() {
            if parent <= prev.parent {
                return Err(err("timeline IDs are not in increasing order"));
            }
            if lsn < prev.switch_lsn {
                return Err(err("switch points go backwards"));
            }
        }
        out.push(HistoryEntry {
            parent,
            switch_lsn: lsn,
            reason,
        });
    }
    if out.is_empty() {
        return Err(HistoryError {
            line: 1,
            offset: 0,
            cause: "no ancestor timeline listed",
        });
    }
    Ok(out)
}

/// True when `parent_entries` (history of an ancestor timeline) is the start of `child_entries`
/// — what "history files consistent" means for `verify`.
pub fn is_prefix(parent_entries: &[HistoryEntry], child_entries: &[HistoryEntry]) -> bool {
    parent_entries.len() <= child_entries.len()
        && parent_entries
            .iter()
            .zip(child_entries)
            .all(|(a, b)| a.parent == b.parent && a.switch_lsn == b.switch_lsn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_histories() {
        let h = parse_history(2, b"1\t0/A000780\tbefore 2026-11-24 15:41:28.889729+00\n").unwrap();
        assert_eq!(
            h,
            vec![HistoryEntry {
                parent: 1,
                switch_lsn: 0xA000780,
                reason: "before 2026-11-24 15:41:28.889729+00".into()
            }]
        );
        let h = parse_history(3, b"1\t0/15020388\tno recovery target specified\n").unwrap();
        assert_eq!(h[0].switch_lsn, 0x15020388);
        assert_eq!(format_lsn(0x15020388), "0/15020388");
        let h4 = parse_history(4, b"1\t0/15020388\tx\n\n# c\n3\t1/0\ty\n").unwrap();
        assert!(is_prefix(&h, &h4));
    }

    #[test]
    fn bad_histories_name_the_line() {
        assert_eq!(
            parse_history(2, b"1\t0/A000780\tx").unwrap_err().cause,
            "line is not newline-terminated (truncated file?)"
        );
        assert_eq!(parse_history(2, b"2\t0/1\tx\n").unwrap_err().line, 1);
        let e = parse_history(5, b"1\t0/1\tx\n1\t0/2\ty\n").unwrap_err();
        assert_eq!((e.line, e.offset), (2, 8));
        assert!(parse_history(5, b"").is_err());
        assert!(parse_history(5, b"x\t0/1\n").is_err());
        assert!(parse_history(5, b"1\t0/\n").is_err());
        assert!(parse_history(5, b"\xff\n").is_err());
        assert_eq!(parse_lsn("0/A000780"), Some(0xA000780));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(parse_lsn("123456789/0"), None);
    }
}
