//! Parsing the window options as mysqlbinlog takes them: datetimes in the local time zone
//! (`TZ=UTC` works), positions as byte offsets or MariaDB GTID lists, MySQL GTID sets.

use lampvault::binlog::gtid::{self, GtidSet, MariadbGtid};
use lampvault::sys::localtime::{self, LocalTime};

/// A `--start-position`/`--stop-position` value.
#[derive(Debug, Clone)]
pub enum Pos {
    Offset(u64),
    Gtids(Vec<MariadbGtid>),
}

pub fn parse_pos(opt: &str, s: &str) -> Result<Pos, String> {
    if gtid::looks_like_mariadb_gtid(s) {
        return gtid::parse_mariadb_list(s)
            .map(Pos::Gtids)
            .map_err(|e| format!("{opt}: {e}"));
    }
    s.trim()
        .parse::<u64>()
        .map(Pos::Offset)
        .map_err(|_| format!("{opt}: '{s}' is neither a byte offset nor a GTID list (D-S-N)"))
}

pub fn parse_gtid_set(opt: &str, s: &str) -> Result<GtidSet, String> {
    GtidSet::parse(s).map_err(|e| format!("{opt}: {e}"))
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse a datetime as mysqlbinlog does (local time zone): `YYYY-MM-DD HH:MM:SS`, also with
/// `T`, without seconds or time, as `YYYYMMDDHHMMSS`, with a fraction (dropped, as the
/// peer drops it), or `@SECONDS` since the epoch.
pub fn parse_datetime(opt: &str, s: &str) -> Result<i64, String> {
    let bad = || format!("{opt}: bad datetime '{s}' (want 'YYYY-MM-DD HH:MM:SS', local time)");
    let t = s.trim();
    if let Some(e) = t.strip_prefix('@') {
        return e.parse::<i64>().map_err(|_| bad());
    }
    let t = match t.find('.') {
        Some(i) if t[i + 1..].bytes().all(|c| c.is_ascii_digit()) => &t[..i],
        _ => t,
    };
    let (y, mo, d, h, mi, se) = if t.len() == 14 && t.bytes().all(|c| c.is_ascii_digit()) {
        (
            num(&t[0..4]),
            num(&t[4..6]),
            num(&t[6..8]),
            num(&t[8..10]),
            num(&t[10..12]),
            num(&t[12..14]),
        )
    } else {
        let (date, time) = match t.split_once([' ', 'T']) {
            Some((a, b)) => (a, b.trim()),
            None => (t, ""),
        };
        let dp: Vec<&str> = date.split('-').collect();
        let tp: Vec<&str> = if time.is_empty() {
            vec![]
        } else {
            time.split(':').collect()
        };
        if dp.len() != 3 || tp.len() > 3 || tp.len() == 1 {
            return Err(bad());
        }
        let g = |v: &Vec<&str>, i: usize| if i < v.len() { num(v[i]) } else { Some(0) };
        (
            num(dp[0]),
            num(dp[1]),
            num(dp[2]),
            g(&tp, 0),
            g(&tp, 1),
            g(&tp, 2),
        )
    };
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (y, mo, d, h, mi, se) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 59
        || !(1970..=9999).contains(&y)
    {
        return Err(bad());
    }
    let lt = LocalTime {
        year: y as i32,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: se,
    };
    localtime::to_epoch(lt).ok_or_else(bad)
}

/// `YYYY-MM-DD HH:MM:SS` in the local time zone.
pub fn format_time(epoch: i64) -> String {
    let t = localtime::from_epoch(epoch);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        std::env::set_var("TZ", "UTC");
        let want = 1795533857; // 2026-11-24 15:24:17 UTC
        for s in [
            "2026-11-24 15:24:17",
            "2026-11-24T15:24:17",
            "20261124152417",
            "2026-11-24 15:24:17.999",
            "@1795533857",
        ] {
            assert_eq!(parse_datetime("--x", s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_datetime("--x", "2026-11-24"),
            Ok(want - 15 * 3600 - 24 * 60 - 17)
        );
        assert_eq!(parse_datetime("--x", "2026-11-24 15:24"), Ok(want - 17));
        for s in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-24 25:00:00",
            "2026-11-24 15",
            "1-2-3-4",
        ] {
            assert!(parse_datetime("--x", s).is_err(), "{s}");
        }
        assert_eq!(format_time(want), "2026-11-24 15:24:17");
    }

    #[test]
    fn positions() {
        assert!(matches!(parse_pos("--p", "7841"), Ok(Pos::Offset(7841))));
        assert!(matches!(parse_pos("--p", "0-1-25"), Ok(Pos::Gtids(ref g)) if g[0].seq == 25));
        assert!(parse_pos("--p", "12x").is_err());
        assert!(parse_pos("--p", "0-1").is_err());
    }
}
