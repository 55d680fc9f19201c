//! Checks against what Amanda's own parser read from real and Amanda-built headers
//! (`fixtures/amanda/**/*.kv`, written by `scripts/amanda-parse-header`).

use super::*;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/amanda")
}

use super::escape_value as esc;

fn kv_of(h: &Header) -> String {
    h.fields()
        .iter()
        .map(|(k, v)| format!("{k}={}\n", esc(v)))
        .collect()
}

fn amanda_kv(path: &std::path::Path) -> String {
    let kv = std::fs::read_to_string(path.with_extension("kv")).unwrap();
    kv.lines()
        .filter(|l| !l.starts_with("x_"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn each(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[test]
fn every_accepted_fixture_reads_as_amanda_reads_it() {
    let mut files = each("headers", "hdr");
    files.extend(each("media", "media"));
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        let h = parse(&bytes[..bytes.len().min(HEADER_BLOCK.max(65536))])
            .unwrap_or_else(|e| panic!("{p:?}: {e}"));
        let want = amanda_kv(&p);
        assert_eq!(kv_of(&h), want, "{p:?}");
    }
}

#[test]
fn every_rejected_fixture_is_weird_with_the_same_partial_fields() {
    for p in each("bad", "bin") {
        let bytes = std::fs::read(&p).unwrap();
        let e = parse(&bytes).expect_err(&format!("{p:?} must be WEIRD"));
        assert!(e.offset <= bytes.len(), "{p:?}");
        assert_eq!(kv_of(&e.partial), amanda_kv(&p), "{p:?}");
    }
}

/// Amanda-built headers rebuild byte for byte from their parsed fields (the `bs=` is the
/// one thing not read back, so it is given here as the fixture's block size).
#[test]
fn amanda_built_headers_rebuild_byte_for_byte() {
    for (name, bs, block) in [
        ("built-oreilly-file.hdr", 32768, 32768),
        ("built-tapestart-X.hdr", 0, 32768),
        ("built-tapeend.hdr", 0, 32768),
        ("built-noop.hdr", 0, 32768),
        ("built-client-crypt-quoted-disk.hdr", 32768, 32768),
        ("built-partial-crc-dle.hdr", 0, 32768),
        ("real-tapestart.hdr", 0, 32768),
        ("real-split-crypt-part1.hdr", 32768, 32768),
        ("real-split-crypt-part3-last.hdr", 32768, 32768),
        ("real-holding-cont-file.hdr", 32768, 32768),
        ("real-holding-file-chunk1.hdr", 0, 32768),
    ] {
        let bytes = std::fs::read(fixtures().join("headers").join(name)).unwrap();
        let mut h = parse(&bytes).unwrap();
        h.blocksize = bs;
        assert_eq!(h.to_block(block).unwrap(), bytes, "{name}");
    }
}

#[test]
fn the_oreilly_line() {
    let h = Header {
        kind: Kind::File,
        datestamp: "20060228".into(),
        name: "natasha".into(),
        disk: "/boot".into(),
        dumplevel: 1,
        program: "/bin/gtar".into(),
        recover_cmd: "/bin/gtar -xpGf - ...".into(),
        blocksize: 32768,
        ..Header::default()
    };
    let t = h.to_text().unwrap();
    assert!(
        t.starts_with("AMANDA: FILE 20060228 natasha /boot  lev 1 comp N program /bin/gtar\n"),
        "{t}"
    );
    assert_eq!(parse(&h.to_block(32768).unwrap()).unwrap().disk, "/boot");
}

#[test]
fn writer_checks() {
    let base = Header {
        kind: Kind::File,
        datestamp: "20260101120000".into(),
        name: "db1".into(),
        disk: "/var/lib/mysql".into(),
        program: "/bin/tar".into(),
        recover_cmd: "/bin/tar -xpGf - ...".into(),
        blocksize: 32768,
        ..Header::default()
    };
    assert!(base.to_text().is_ok());
    let bad = |f: fn(&mut Header)| {
        let mut h = base.clone();
        f(&mut h);
        h.to_text().unwrap_err()
    };
    assert_eq!(
        bad(|h| h.datestamp = "2026-01-01".into()),
        BuildError::Datestamp("2026-01-01".into())
    );
    assert_eq!(bad(|h| h.name.clear()), BuildError::Empty("host"));
    assert!(matches!(
        bad(|h| h.name = "a b".into()),
        BuildError::Space { .. }
    ));
    assert!(matches!(
        bad(|h| h.disk = "x".repeat(256)),
        BuildError::TooLong {
            field: "disk",
            len: 256
        }
    ));
    assert!(matches!(
        bad(|h| h.recover_cmd = "a\nb".into()),
        BuildError::BadChar { .. }
    ));
    assert_eq!(
        bad(|h| h.uncompress_cmd = "/bin/gzip -dc".into()),
        BuildError::NoPipe("uncompress_cmd")
    );
    assert_eq!(
        bad(|h| {
            h.recover_cmd.clear();
            h.uncompress_cmd = "gzip -dc |".into()
        }),
        BuildError::NoRecoverCmd
    );
    assert_eq!(bad(|h| h.encrypted = true), BuildError::EncryptSuffix);
    assert_eq!(
        bad(|h| h.encrypt_suffix = "enc".into()),
        BuildError::EncryptSuffix
    );
    assert!(matches!(
        bad(|h| {
            h.kind = Kind::SplitFile;
            h.partnum = 4;
            h.totalparts = 3
        }),
        BuildError::Part { .. }
    ));
    assert!(matches!(
        bad(|h| {
            h.srvcompprog = "a".into();
            h.clntcompprog = "b".into()
        }),
        BuildError::Both(_)
    ));
    assert!(matches!(
        bad(|h| h.disk = "C:\\".into()),
        BuildError::BadChar { field: "disk", .. }
    ));
    assert!(matches!(
        bad(|h| h.program = "a\"b".into()),
        BuildError::BadChar {
            field: "program",
            ..
        }
    ));
    let mut exe = base.clone();
    exe.program = "C:/bin/TAR.EXE".into();
    assert!(exe.to_text().unwrap().contains(" program C:/bin/TAR\n"));
    exe.program = "/bin\u{fffd}tar".into();
    assert!(exe.to_text().is_ok(), "non-ASCII program name near the end");
    let mut big = base.clone();
    big.dle_str = Some("x\n".repeat(100));
    assert!(matches!(big.to_block(300), Err(BuildError::TooBig { .. })));
    // A quoted disk with spaces, quotes and UTF-8 reads back the same.
    let mut q = base.clone();
    q.disk = "C:\\My \"Data\"  /données\t".into();
    assert_eq!(parse(&q.to_block(32768).unwrap()).unwrap().disk, q.disk);
}

#[test]
fn tolerant_reading() {
    let p = |s: &str| parse(s.as_bytes());
    // runs of spaces, leading spaces, CRLF, prefix keywords, keywords out of order
    let h = p(
        "  AMANDA:  FILE  20260101 h  /d  lev 3 comp .gz program P cryptX enc client_encrypt E\r\n",
    )
    .unwrap();
    assert_eq!(
        (
            h.dumplevel,
            h.comp_suffix.as_str(),
            h.encrypt_suffix.as_str()
        ),
        (3, ".gz", "enc")
    );
    assert_eq!(h.clnt_encrypt, "E\r");
    let h = p("AMANDA: FILE 20260101 h /d lev 0 comp N program P server_encrypt S crypt enc\n")
        .unwrap();
    assert_eq!(
        (h.srv_encrypt.as_str(), h.encrypted),
        ("S", false),
        "out of order keyword ignored"
    );
    assert_eq!(
        p("AMANDA: FILE 20260101 h /d lev -3 comp C\n")
            .unwrap()
            .comp_suffix,
        ".Z"
    );
    assert_eq!(
        p("NETDUMP: FILE 20260101 h \"a  b\" lev 0 comp N\n")
            .unwrap()
            .disk,
        "a  b"
    );
    assert_eq!(p("AMANDA: FILE 1 h /d lev 0 comp N\nORIGSIZE=12x\nNATIVE-CRC=zz:1\nSERVER-CRC=0000abcd:77\n").unwrap().orig_size, 12);
    let h =
        p("AMANDA: FILE 1 h /d lev 0 comp N\nSERVER-CRC=0000abcd:77\nNATIVE-CRC=zz:1\n").unwrap();
    assert_eq!(
        (h.server_crc, h.native_crc),
        (
            Crc {
                crc: 0xabcd,
                size: 77
            },
            Crc::default()
        )
    );
    let h = p("AMANDA: FILE 1 h /d lev 0 comp N\n\tdd if=<tape> bs=32k skip=1 | a | b | c | d \n")
        .unwrap();
    assert_eq!(
        (
            h.decrypt_cmd.as_str(),
            h.uncompress_cmd.as_str(),
            h.recover_cmd.as_str()
        ),
        ("a |", "b |", "c | d")
    );
    assert_eq!(
        p("AMANDA: FILE 1 h /d lev 0 comp N\n\tdd if=<tape> skip=1\n")
            .unwrap()
            .recover_cmd,
        "BUG"
    );
    let h = p("AMANDA: FILE 1 h /d lev 0 comp N\nDLE=<<E\na\n\nb\nE\nPARTIAL=Yes\n").unwrap();
    assert_eq!((h.dle_str.as_deref(), h.is_partial), (Some("a\nb"), true));
    assert_eq!(
        p("AMANDA: FILE 1 h /d lev 0 comp N\nDLE=<<E\nrest\n")
            .unwrap()
            .dle_str
            .as_deref(),
        Some("rest")
    );
    assert_eq!(p("AMANDA: TAPEEND\n").unwrap().kind, Kind::TapeEnd);
    assert_eq!(p("AMANDA: TAPEEND DATE\n").unwrap().datestamp, "");
    // a field over 255 bytes is cut, and said so
    let long = "d".repeat(300);
    let h = p(&format!("AMANDA: FILE 1 h /{long} lev 0 comp N\n")).unwrap();
    assert_eq!((h.disk.len(), h.truncated.clone()), (255, vec!["disk"]));
}

#[test]
fn weird_cases_name_the_offset() {
    let w = |s: &[u8]| parse(s).unwrap_err();
    assert_eq!(w(&[0; 100]).offset, 0);
    assert_eq!(
        w(b"AMANDA:\tFILE 1 h /d lev 0 comp N\n").expected,
        "'AMANDA:'"
    );
    let e = w(b"AMANDA: FILE 20060228 natasha /boot\n");
    assert_eq!(
        (e.expected, e.offset, e.partial.disk.as_str()),
        ("'lev'", 35, "/boot")
    );
    assert_eq!(
        w(b"AMANDA: SPLIT_FILE 1 h /d part x/3 lev 0 comp N\n").expected,
        "a part number"
    );
    assert_eq!(
        w(b"AMANDA: FILE 1 h \"/d lev 0 comp N\n").expected,
        "a disk name (or its closing quote)"
    );
    assert_eq!(
        w(b"AMANDA: FILE 1 h /d lev one comp N\n").expected,
        "a dump level"
    );
    assert_eq!(w(b"AMANDA: BOGUS\n").offset, 8);
    assert_eq!(w(b"AMANDA: TAPEEND FOO\n").expected, "'DATE'");
    assert_eq!(
        w(b"AMANDA: FILE 1 h /d lev 0 comp N program P crypt").expected,
        "a value after a keyword"
    );
    assert!(w(b"AMANDA: TAPESTART DATE X TAPE")
        .to_string()
        .starts_with("not an Amanda header"));
}

#[test]
fn looks_like() {
    assert!(looks_like_header(b"AMANDA: FILE"));
    assert!(looks_like_header(b"  NETDUMP: x"));
    assert!(!looks_like_header(b"AMANDA:\tFILE"));
    assert!(!looks_like_header(b""));
}
