//! mediahdr against the real peers: Amanda's own parser, writer and amrestore, dd, tar,
//! gzip and lz4 — and every kind of bad input.

mod util;

use std::process::Command;
use util::*;

/// The run failed with exactly this exit code and this stderr.
fn fails(o: &std::process::Output, code: i32, err: &str) {
    assert_eq!((status_code(o), stderr(o).as_str()), (code, err));
}

fn m() -> String {
    bin("mediahdr").display().to_string()
}

fn amanda() -> bool {
    require(
        "Amanda (amanda-common: Amanda::Header)",
        std::path::Path::new("/usr/lib/amanda").exists() || have("amrestore"),
    )
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(bin("mediahdr")).args(args).output().unwrap()
}

/// `mediahdr show` output must equal Amanda's parse, x_ lines aside.
fn same_as_amanda(file: &str) {
    let ours = run(&["show", file]);
    let theirs = Command::new(script("amanda-parse-header"))
        .arg(file)
        .output()
        .unwrap();
    let theirs: String = String::from_utf8_lossy(&theirs.stdout)
        .lines()
        .filter(|l| !l.starts_with("x_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        theirs,
        "{file}: {}",
        stderr(&ours)
    );
}

fn tree(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("etc/php")).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(
        dir.join("etc/php/php.ini"),
        "memory_limit = 128M\n".repeat(50),
    )
    .unwrap();
    std::fs::write(dir.join("www/index.php"), "<?php echo 'hi'; ?>\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(dir.join("www/blob.bin"), big).unwrap();
}

#[test]
fn headers_we_write_read_the_same_in_amanda() {
    if !amanda() {
        return;
    }
    let t = Scratch::new("mh-amanda");
    let d = t.0.display();
    let cases: &[&str] = &[
        "write --host db1 --disk /var/lib/mysql --level 0 --date 20260101120000",
        "write --host db1 --disk /var/lib/mysql --level 1 --date 20260101 --compress-suffix .gz --uncompress-cmd '/bin/gzip -dc'",
        "write --host win7 --disk 'C:\\Data \"2026\"' --level 2 --date 20260102030405 --program APPLICATION --recover-cmd 'amgtar restore' \
         --compress-suffix cust --uncompress-cmd '/usr/bin/lz4 -d |' --encrypt-suffix enc --decrypt-cmd '/usr/sbin/amcrypt -d |'",
        "write --host h --disk 'app config' --level 0 --date 20260101120000 --part 3/-1",
        "write --host h --disk /données --level 0 --date 20260101120000 --part 2/5 --block-size 64k",
        "tapestart --label DailySet1-007 --date X",
        "tapeend --date 20260102030405",
    ];
    for (i, c) in cases.iter().enumerate() {
        let f = format!("{d}/h{i}");
        // Input by redirection, not a pipe: tapestart/tapeend never read it, and a writer
        // killed by SIGPIPE would fail the pipeline under pipefail.
        let o = sh(&format!("{} {c} > {f} < <(printf 'payload bytes')", m()));
        assert!(o.status.success(), "{c}: {}", stderr(&o));
        let bs = if c.contains("64k") { "65536" } else { "32768" };
        let p = Command::new(script("amanda-parse-header"))
            .args(["--size", bs, &f])
            .output()
            .unwrap();
        assert_eq!(
            status_code(&p),
            0,
            "Amanda rejects the header of `{c}`: {}",
            String::from_utf8_lossy(&p.stdout)
        );
        if bs == "32768" {
            same_as_amanda(&f);
        }
    }
}

#[test]
fn header_bytes_equal_amandas_own_writer() {
    if !amanda() {
        return;
    }
    let t = Scratch::new("mh-bytes");
    let f = t.path("f");
    let o = sh(&format!(
        "printf 'x' | {} write --host db1 --disk /var/lib/mysql --level 0 --date 20260101120000 --part 1/-1 \
         --compress-suffix .gz --uncompress-cmd '/bin/gzip -dc |' > {}",
        m(),
        f.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let r = t.path("ref");
    let o = Command::new(script("amanda-build-header"))
        .args(["-o", r.to_str().unwrap()])
        .args([
            "type=SPLIT_FILE",
            "datestamp=20260101120000",
            "host=db1",
            "disk=/var/lib/mysql",
            "level=0",
            "partnum=1",
            "totalparts=-1",
            "compressed=1",
            "comp_suffix=.gz",
            "program=/bin/tar",
            "recover_cmd=/bin/tar -xpGf - ...",
            "uncompress_cmd=/bin/gzip -dc |",
            "blocksize=32768",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = std::fs::read(&f).unwrap();
    assert_eq!(
        &ours[..32768],
        &std::fs::read(&r).unwrap()[..],
        "header bytes differ from Amanda's build_header"
    );
    assert_eq!(&ours[32768..], b"x");

    // A whole-file header with CRC lines, from a regular-file input.
    let payload = t.path("payload");
    std::fs::write(&payload, vec![7u8; 5000]).unwrap();
    let o = run(&[
        "write",
        "--host",
        "db1",
        "--disk",
        "/d",
        "--level",
        "0",
        "--date",
        "20260101120000",
        "-o",
        f.to_str().unwrap(),
        payload.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let crc = format!("{:08x}:5000", crc32c_of(&vec![7u8; 5000]));
    let o = Command::new(script("amanda-build-header"))
        .args(["-o", r.to_str().unwrap()])
        .args([
            "type=FILE",
            "datestamp=20260101120000",
            "host=db1",
            "disk=/d",
            "level=0",
            "partnum=1",
            "totalparts=1",
            "program=/bin/tar",
            "recover_cmd=/bin/tar -xpGf - ...",
            "orig_size=5",
            &format!("native_crc={crc}"),
            &format!("client_crc={crc}"),
            &format!("server_crc={crc}"),
            "blocksize=32768",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        &std::fs::read(&f).unwrap()[..32768],
        &std::fs::read(&r).unwrap()[..]
    );
}

/// CRC-32C computed independently of the code under test (bitwise, reflected 0x82F63B78).
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn amandas_real_headers_show_the_same_fields() {
    for dir in ["headers", "media", "bad"] {
        for e in std::fs::read_dir(fixture(&format!("amanda/{dir}"))).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "kv") || !p.with_extension("kv").exists() {
                continue;
            }
            let kv = std::fs::read_to_string(p.with_extension("kv")).unwrap();
            let want: String = kv
                .lines()
                .filter(|l| !l.starts_with("x_"))
                .map(|l| format!("{l}\n"))
                .collect();
            let bs = if p.to_string_lossy().contains("bs64k") {
                "64k"
            } else {
                "32k"
            };
            let o = run(&["show", "--block-size", bs, p.to_str().unwrap()]);
            assert_eq!(String::from_utf8_lossy(&o.stdout), want, "{p:?}");
            let code = status_code(&o);
            if dir == "bad" {
                assert_eq!(code, 3, "{p:?}");
            } else {
                assert_eq!(code, 0, "{p:?}: {}", stderr(&o));
            }
        }
    }
}

#[test]
fn tar_gzip_lz4_through_mediahdr_and_back_with_dd() {
    let t = Scratch::new("mh-pipes");
    let d = t.0.display();
    tree(&t.path("src"));
    for (name, compress, opts) in [
        ("plain", "cat", ""),
        (
            "gz",
            "gzip -c",
            "--compress-suffix .gz --uncompress-cmd '/bin/gzip -dc |'",
        ),
        (
            "lz4",
            "lz4 -c",
            "--compress-suffix cust --uncompress-cmd '/usr/bin/lz4 -d |'",
        ),
    ] {
        if !require(compress, have(compress.split(' ').next().unwrap())) {
            continue;
        }
        let o = sh(&format!(
            "cd {d}/src && tar -cf - . | {compress} | {m} write --host web1 --disk /srv/app --level 0 {opts} > {d}/{name}.media
             mkdir -p {d}/out-{name} && cd {d}/out-{name}
             dd if={d}/{name}.media bs=32k skip=1 status=none | {un} | tar -xf -
             diff -r {d}/src {d}/out-{name}
             mkdir -p {d}/rc-{name} && cd {d}/rc-{name} && eval \"$({m} restore-cmd {d}/{name}.media)\"
             diff -r {d}/src {d}/rc-{name}",
            m = m(),
            un = if name == "plain" { "cat" } else if name == "gz" { "gzip -dc" } else { "lz4 -dc" },
        ));
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        // Amanda's own restore program reads our file.
        if amanda() {
            let o = sh(&format!("mkdir -p {d}/am-{name} && cd {d}/am-{name} && {} {d}/{name}.media | tar -xf - && diff -r {d}/src {d}/am-{name}", script("amanda-amrestore").display()));
            assert!(o.status.success(), "amrestore {name}: {}", stderr(&o));
        }
    }
    let o = run(&["restore-cmd", &format!("{d}/gz.media")]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("dd if={d}/gz.media bs=32k skip=1 | /bin/gzip -dc | /bin/tar -xpGf -\n")
    );
}

#[test]
fn crc_lines_from_file_input_and_from_rewriting_the_output() {
    let t = Scratch::new("mh-crc");
    let d = t.0.display();
    std::fs::write(
        t.path("in"),
        (0..100_000u32)
            .flat_map(|i| i.to_be_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let w = "write --host h --disk /d --level 0 --date 20260101120000";
    let o = sh(&format!(
        "{m} {w} {d}/in | cat > {d}/a      # file in, pipe out: the input is scanned first
         {m} {w} {d}/in > {d}/p            # file in, file out: one pass, header rewritten
         cmp {d}/a {d}/p
         cat {d}/in | {m} {w} > {d}/b      # input a pipe, output a file: header rewritten
         cat {d}/in | {m} {w} | cat > {d}/c  # pipe to pipe: no CRC known
         cmp {d}/a {d}/b",
        m = m()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let show = |f: &str| String::from_utf8(run(&["show", &format!("{d}/{f}")]).stdout).unwrap();
    let want = format!(
        "server_crc={:08x}:400000",
        crc32c_of(&std::fs::read(t.path("in")).unwrap())
    );
    assert!(show("a").contains(&want), "{}", show("a"));
    assert!(show("a").contains("orig_size=391\n"));
    assert!(show("c").contains("server_crc=00000000:0"));
    // payload verifies the CRC; a flipped byte or a truncated file is exit 6
    assert_eq!(
        status_code(&run(&["payload", "-o", "/dev/null", &format!("{d}/a")])),
        0
    );
    let mut bytes = std::fs::read(t.path("a")).unwrap();
    bytes[40000] ^= 1;
    std::fs::write(t.path("bad"), &bytes).unwrap();
    let o = run(&["payload", "-o", "/dev/null", &format!("{d}/bad")]);
    assert_eq!(status_code(&o), 6);
    assert!(
        stderr(&o).starts_with(&format!(
            "mediahdr: {d}/bad: payload does not match the header: SERVER-CRC="
        )),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        t.path("short"),
        &std::fs::read(t.path("a")).unwrap()[..100_000],
    )
    .unwrap();
    assert_eq!(
        status_code(&run(&["payload", "-o", "/dev/null", &format!("{d}/short")])),
        6
    );
    assert_eq!(
        status_code(&run(&[
            "payload",
            "--no-verify",
            "-o",
            "/dev/null",
            &format!("{d}/short")
        ])),
        0
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let t = Scratch::new("mh-bad");
    let d = t.0.display().to_string();
    std::fs::write(t.path("empty"), b"").unwrap();
    std::fs::write(t.path("zeros"), vec![0u8; 32768]).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random: Vec<u8> = (0..32768)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(t.path("random"), random).unwrap();
    let mut trunc = b"AMANDA: FILE 20260101 h /d  lev 0 comp N program /bin/tar\n".to_vec();
    trunc.resize(1000, 0);
    std::fs::write(t.path("truncated"), &trunc).unwrap();
    let mut long = format!(
        "AMANDA: FILE 20260101 h /{}  lev 0 comp N program /bin/tar\n",
        "d".repeat(300)
    )
    .into_bytes();
    long.resize(32768, 0);
    std::fs::write(t.path("overlong"), &long).unwrap();
    let o = sh(&format!(
        "cd {d} && mkdir t && echo hi > t/f && tar -cf tarfile t"
    ));
    assert!(o.status.success());
    for (file, cmd, code, msg) in [
        ("empty", "show", 4, "empty: empty input: no header block"),
        ("empty", "payload", 4, "empty: empty input: no header block"),
        (
            "zeros",
            "show",
            3,
            "zeros: not an Amanda header: expected 'AMANDA:' (the block is empty) at byte 0",
        ),
        (
            "random",
            "payload",
            3,
            "random: not an Amanda header: expected 'AMANDA:' at byte 0",
        ),
        (
            "tarfile",
            "payload",
            3,
            "tarfile: not an Amanda header: expected 'AMANDA:' at byte 0",
        ),
        (
            "truncated",
            "payload",
            4,
            "truncated: truncated header block: 1000 of 32768 bytes",
        ),
        (
            "truncated",
            "show",
            4,
            "truncated: truncated header block: 1000 of 32768 bytes",
        ),
        (
            "overlong",
            "show",
            5,
            "overlong: field disk longer than Amanda's 255 bytes: cut as Amanda cuts it",
        ),
        ("missing", "show", 1, "missing: No such file or directory"),
    ] {
        let o = run(&[cmd, &format!("{d}/{file}")]);
        assert_eq!(status_code(&o), code, "{cmd} {file}: {}", stderr(&o));
        assert_eq!(stderr(&o), format!("mediahdr: {d}/{msg}\n"), "{cmd} {file}");
    }
    // From stdin, too, and through a pipe.
    let o = sh(&format!("head -c 5000 /dev/zero | {} payload", m()));
    assert_eq!(status_code(&o), 3);
    assert_eq!(stderr(&o), "mediahdr: stdin: not an Amanda header: expected 'AMANDA:' (the block is empty) at byte 0\n");
    // write refuses an empty payload and writes nothing.
    let o = sh(&format!(
        "{} write --host h --disk /d --level 0 -o {d}/out < /dev/null",
        m()
    ));
    fails(
        &o,
        4,
        "mediahdr: stdin: empty input: nothing to put behind a header\n",
    );
    assert!(!t.path("out").exists());
    // Unwritable output.
    let o = sh(&format!(
        "echo x | {} write --host h --disk /d --level 0 -o /proc/nope/x",
        m()
    ));
    fails(&o, 1, "mediahdr: /proc/nope/x: No such file or directory\n");
}

#[test]
fn usage_errors_exit_2() {
    for (args, code, needle) in [
        (&["write", "--disk", "/d", "--level", "0"][..], 2, "--host"),
        (
            &[
                "write",
                "--host",
                "h",
                "--disk",
                "/d",
                "--level",
                "0",
                "--date",
                "2026-01-01",
            ],
            2,
            "mediahdr: header: invalid datestamp '2026-01-01'",
        ),
        (
            &["write", "--host", "a b", "--disk", "/d", "--level", "0"],
            2,
            "mediahdr: header: host 'a b' must not contain a space",
        ),
        (
            &[
                "write",
                "--host",
                "h",
                "--disk",
                &"d".repeat(256),
                "--level",
                "0",
            ],
            2,
            "disk is 256 bytes; Amanda keeps at most 255",
        ),
        (
            &[
                "write",
                "--host",
                "h",
                "--disk",
                "/d",
                "--level",
                "0",
                "--block-size",
                "512",
            ],
            2,
            "at least 32k",
        ),
        (
            &[
                "write", "--host", "h", "--disk", "/d", "--level", "0", "--part", "0/3",
            ],
            2,
            "invalid part 0/3",
        ),
        (
            &[
                "write",
                "--host",
                "h",
                "--disk",
                "/d",
                "--level",
                "0",
                "--compress-suffix",
                ".gz",
            ],
            2,
            "--uncompress-cmd",
        ),
        (&["show", "--block-size", "12q"], 2, "unknown suffix"),
        (&["frobnicate"], 2, "unrecognized subcommand"),
        (&[], 2, "Usage"),
    ] {
        let o = run(args);
        assert_eq!(status_code(&o), code, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    let o = run(&["--help"]);
    assert_eq!(status_code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("dd if=www.media bs=32k skip=1"));
}

#[test]
fn a_closed_pipe_ends_the_stream_like_dd() {
    let t = Scratch::new("mh-sigpipe");
    let d = t.0.display();
    let o = sh(&format!(
        "head -c 20000000 /dev/urandom | {m} write --host h --disk /d --level 0 > {d}/f
         set +e
         {m} payload {d}/f | head -c1 > /dev/null; echo \"payload ${{PIPESTATUS[0]}}\"
         head -c 20000000 /dev/zero | {m} write --host h --disk /d --level 0 | head -c1 > /dev/null; echo \"write ${{PIPESTATUS[1]}}\"",
        m = m()
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out, "payload 141\nwrite 141\n", "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no message, no panic on a closed pipe");
}

#[test]
fn list_a_vtape_slot() {
    let t = Scratch::new("mh-list");
    let d = t.0.display();
    let o = sh(&format!(
        "cd {d} && {m} tapestart --label LV-001 --date 20260101120000 > 00000.LV-001
         echo a | {m} write --host db1 --disk /var/lib/mysql --level 0 --date 20260101120000 --part 1/-1 > 00001.db1._var_lib_mysql.0
         echo b | {m} write --host web1 --disk 'app config' --level 1 --date 20260102 > 00002.web1.app\\ config.1
         echo junk > notes.txt
         {m} list {d}",
        m = m()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "00000 start of tape: date 20260101120000 label LV-001\t00000.LV-001\n\
         00001 split dumpfile: date 20260101120000 host db1 disk /var/lib/mysql part 1/UNKNOWN lev 0 comp N program /bin/tar\t00001.db1._var_lib_mysql.0\n\
         00002 FILE: date 20260102 host web1 disk \"app config\" lev 1 comp N program /bin/tar\t00002.web1.app config.1\n"
    );
}

#[test]
fn tape_operations_on_a_file_say_not_a_tape() {
    let t = Scratch::new("mh-tape");
    std::fs::write(t.path("f"), b"x").unwrap();
    let f = t.path("f").display().to_string();
    let o = run(&["show", "--file", "2", &f]);
    assert_eq!(
        (status_code(&o), stderr(&o)),
        (1, format!("mediahdr: {f}: --file 2: not a tape device\n"))
    );
}

#[test]
fn a_closed_stderr_does_not_change_the_exit_code() {
    let o = sh(&format!(
        "set +e; {} show /nonexistent/x 2>&-; echo $?",
        m()
    ));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n");
}

/// `--direct` onto a real block device (a loop device over a file on disk): O_DIRECT for the
/// whole records, buffered for the short tail, and the header rewritten with its CRC lines.
#[test]
fn direct_io_onto_a_block_device() {
    if !require(
        "root and losetup (block device)",
        is_root() && have("losetup"),
    ) {
        return;
    }
    let base = std::path::PathBuf::from("/var/tmp");
    std::env::set_var("LAMPVAULT_TEST_TMP", &base);
    let t = Scratch::new("mh-direct");
    let d = t.0.display();
    let o = sh(&format!(
        "truncate -s 8M {d}/img && dev=$(losetup -f --show {d}/img) && echo $dev > {d}/dev
         head -c 1000000 /dev/urandom > {d}/in
         cat {d}/in | {m} write --direct --host h --disk /d --level 0 -o $dev
         {m} payload -o {d}/out $dev      # the header's SERVER-CRC size ends the payload
         cmp {d}/out {d}/in
         {m} show $dev | grep '^server_crc=' | grep -v '=00000000:0' >/dev/null
         dd if=$dev bs=32k skip=1 count=30 status=none | cmp - <(head -c 983040 {d}/in)",
        m = m()
    ));
    if let Ok(dev) = std::fs::read_to_string(t.path("dev")) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", dev.trim()])
            .status();
    }
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

/// A full disk: a clear error, exit 1, and no partial media file left behind to be trusted.
#[test]
fn a_full_disk_leaves_no_partial_file() {
    if !require("root (tmpfs mount)", is_root()) {
        return;
    }
    let t = Scratch::new("mh-full");
    let d = t.0.display();
    let o = sh(&format!(
        "mkdir {d}/small && mount -t tmpfs -o size=1m tmpfs {d}/small
         head -c 3000000 /dev/urandom > {d}/in
         set +e
         {m} write --host h --disk /d --level 0 -o {d}/small/f.media < {d}/in; echo \"write $?\"
         {m} write --host h --disk /d --level 0 -o {d}/big.media < {d}/in
         {m} payload -o {d}/small/out {d}/big.media; echo \"payload $?\"
         ls {d}/small
         umount {d}/small",
        m = m()
    ));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "write 1\npayload 1\n");
    assert_eq!(
        stderr(&o),
        format!("mediahdr: {d}/small/f.media: No space left on device\nmediahdr: {d}/small/out: No space left on device\n")
    );
}
