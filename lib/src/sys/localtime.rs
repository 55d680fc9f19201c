//! Local time conversions through the C library (`mktime`, `localtime_r`), so that
//! `TZ=UTC binlogcut --stop-datetime=…` behaves as mysqlbinlog, which also uses the C
//! library's notion of the local time zone (spec `mysql-binlog.md` §7, §8).

extern "C" {
    // POSIX <time.h>; not exported by the libc crate.
    fn tzset();
}

/// A broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Seconds since the epoch of a local wall-clock time (DST decided by the C library).
/// None when the C library cannot represent it.
pub fn to_epoch(t: LocalTime) -> Option<i64> {
    // SAFETY: tm is plain old data; all-zero is a valid value (tm_zone null pointer is fine
    // as input to mktime, which ignores it).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = t.year - 1900;
    tm.tm_mon = t.month as i32 - 1;
    tm.tm_mday = t.day as i32;
    tm.tm_hour = t.hour as i32;
    tm.tm_min = t.minute as i32;
    tm.tm_sec = t.second as i32;
    tm.tm_isdst = -1;
    // SAFETY: mktime reads and normalises the tm we own; it calls tzset itself.
    let r = unsafe { libc::mktime(&mut tm) };
    if r == -1 && !(t.year == 1969 && t.month == 12 && t.day == 31) {
        return None;
    }
    Some(r as i64)
}

/// The local wall-clock time of `epoch` seconds.
pub fn from_epoch(epoch: i64) -> LocalTime {
    // SAFETY: as in to_epoch, an all-zero tm is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = epoch as libc::time_t;
    // SAFETY: tzset only (re)reads TZ; localtime_r writes into our tm and is thread-safe.
    let ok = unsafe {
        tzset();
        !libc::localtime_r(&t, &mut tm).is_null()
    };
    if !ok {
        return LocalTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = LocalTime {
            year: 2026,
            month: 11,
            day: 24,
            hour: 15,
            minute: 24,
            second: 17,
        };
        let e = to_epoch(t).unwrap();
        assert_eq!(from_epoch(e), t);
    }
}
