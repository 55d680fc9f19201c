//! Fuzz `lampvault::freeze::mountinfo`: parsing never panics, every parsed entry comes from a
//! line whose first field parses to its id, and mountinfo's octal escaping round-trips through
//! `unescape` for any bytes. Seeds: any `/proc/self/mountinfo`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lampvault::freeze::mountinfo;

/// Escape as the kernel does for mountinfo paths (space, tab, newline, backslash).
fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b' ' | b'\t' | b'\n' | b'\\' => s.push_str(&format!("\\{c:03o}")),
            c => s.push(c as char),
        }
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for e in mountinfo::parse(&text) {
        assert!(text.lines().any(|l| l.split(' ').next().and_then(|s| s.parse::<u64>().ok()) == Some(e.id)), "{e:?}");
    }
    let ascii: Vec<u8> = data.iter().map(|b| b & 0x7f).collect();
    assert_eq!(mountinfo::unescape(&escape(&ascii)), ascii);
});
