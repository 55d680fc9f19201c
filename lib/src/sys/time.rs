//! Local time for datestamps (`YYYYMMDDhhmmss`, as Amanda writes them), through libc's
//! `localtime_r`, which honours `TZ` and /etc/localtime like every peer tool.

/// `YYYYMMDDhhmmss` of `epoch` seconds in the local time zone; `None` if out of range.
pub fn local_datestamp(epoch: i64) -> Option<String> {
    let t: libc::time_t = epoch;
    // SAFETY: all-zero is a valid `struct tm` (integers and a null tm_zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the reentrant variant and
    // writes only into `tm`.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return None;
    }
    Some(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}

/// Now, as a local datestamp.
pub fn now_datestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    local_datestamp(now).unwrap_or_else(|| "19700101000000".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn datestamp_shape() {
        let d = super::now_datestamp();
        assert_eq!(d.len(), 14);
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
        assert!(d.starts_with("20"));
    }
}
