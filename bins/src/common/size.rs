//! Sizes as dd writes them: `512` bytes, `32k`/`32K`/`32KiB` = 32×1024, `32kB` = 32×1000,
//! `1M`, `2G`, `1T`; also dd's `c` (1), `w` (2) and `b` (512) suffixes.

/// Parse a dd-style size. Errors name the offending text.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suf) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "invalid size '{s}': expected a number such as 512, 32k, 1M"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': number too large"))?;
    let mult: u64 = match suf {
        "" | "c" => 1,
        "w" => 2,
        "b" => 512,
        "k" | "K" | "KiB" | "kiB" => 1 << 10,
        "kB" | "KB" => 1000,
        "M" | "m" | "MiB" => 1 << 20,
        "MB" => 1_000_000,
        "G" | "g" | "GiB" => 1 << 30,
        "GB" => 1_000_000_000,
        "T" | "t" | "TiB" => 1 << 40,
        "TB" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "invalid size '{s}': unknown suffix '{suf}' (use k, M, G, T)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size '{s}': too large"))
}

/// A clap value parser for sizes that must be > 0 and fit in memory as a record.
pub fn parse_size_arg(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n == 0 {
        return Err(format!("invalid size '{s}': must be greater than 0"));
    }
    usize::try_from(n).map_err(|_| format!("invalid size '{s}': too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dd_sizes() {
        for (s, n) in [
            ("512", 512),
            ("32k", 32768),
            ("32K", 32768),
            ("32KiB", 32768),
            ("32kB", 32000),
            ("1M", 1 << 20),
            ("2G", 2 << 30),
            ("1b", 512),
            ("3w", 6),
            ("7c", 7),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size(s), Ok(n), "{s}");
        }
        for bad in [
            "",
            "k",
            "12q",
            "-1",
            "1.5M",
            "99999999999999999999",
            "20000000T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size_arg("0").is_err());
    }
}
