//! Amanda's quoting of disk names (`quote_string` / `unquote_string`, spec
//! amanda-media.md §1.5), and the here-document delimiter of the DLE (§1.3).
//!
//! Invariant: `unquote(&quote(s)) == s` for every string without NUL.

/// True when Amanda quotes `s`: empty, or any of `:` `'` `\` `"`, a byte ≤ 0x20, 0x7F, or —
/// C `char` being signed on x86 — any byte ≥ 0x80.
pub fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.bytes()
            .any(|b| matches!(b, b':' | b'\'' | b'\\' | b'"') || b <= b' ' || b >= 0x7f)
}

/// Quote a disk name as Amanda writes it on the first header line.
pub fn quote(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Undo Amanda's quoting: quotes removed wherever they are, `\n \t \r \f` decoded, `\ooo`
/// octal (1–3 digits; a resulting NUL dropped), any other `\x` gives `x`, a trailing
/// backslash ends the string.
pub fn unquote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'"' {
            i += 1;
            continue;
        }
        if b == b'\\' {
            i += 1;
            match s.get(i) {
                None => break,
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(b'r') => out.push(b'\r'),
                Some(b'f') => out.push(0x0c),
                Some(b'0'..=b'7') => {
                    let mut c: u8 = 0;
                    let mut k = 0;
                    while k < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                        c = c.wrapping_shl(3).wrapping_add(s[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    if c != 0 {
                        out.push(c);
                    }
                    continue;
                }
                Some(&other) => out.push(other),
            }
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// The here-document of Amanda's `quote_heredoc`: `<<DELIM\ntext\nDELIM`, where DELIM is
/// `prefix`, or `prefix1`, `prefix2`... — the first that is not a line of `text`.
pub fn heredoc(text: &str, prefix: &str) -> String {
    let mut delim = prefix.to_string();
    let mut n = 0;
    while text.split('\n').any(|line| line == delim) {
        n += 1;
        delim = format!("{prefix}{n}");
    }
    format!("<<{delim}\n{text}\n{delim}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_as_amanda_does() {
        assert_eq!(quote("/var/lib/mysql"), "/var/lib/mysql");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("app config"), "\"app config\"");
        assert_eq!(quote("C:\\Data \"2026\""), "\"C:\\\\Data \\\"2026\\\"\"");
        assert_eq!(quote("/données"), "\"/données\"");
        assert_eq!(quote("it's"), "\"it's\"");
        assert_eq!(quote("a\tb\nc"), "\"a\\tb\\nc\"");
    }

    #[test]
    fn unquote_inverts_quote() {
        for s in [
            "",
            "plain",
            "a  b",
            "C:\\Data \"2026\"",
            "tab\there",
            "x\u{c}y\rz",
            "/données",
        ] {
            assert_eq!(unquote(quote(s).as_bytes()), s.as_bytes(), "{s:?}");
        }
        assert_eq!(unquote(b"\"a\\101b\\0c\""), b"aAbc");
        assert_eq!(unquote(b"\"trailing\\"), b"trailing");
        assert_eq!(unquote(b"\\q"), b"q");
    }

    #[test]
    fn heredoc_picks_a_free_delimiter() {
        assert_eq!(
            heredoc("<dle>\n</dle>", "ENDDLE"),
            "<<ENDDLE\n<dle>\n</dle>\nENDDLE"
        );
        assert_eq!(
            heredoc("a\nENDDLE\nENDDLE1", "ENDDLE"),
            "<<ENDDLE2\na\nENDDLE\nENDDLE1\nENDDLE2"
        );
    }
}
