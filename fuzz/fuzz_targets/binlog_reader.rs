//! Fuzz the binlog reader (lib/src/binlog): any bytes must give events and groups that are
//! slices of the input tiling it from offset 4, or one error whose offset lies inside the
//! input — never a panic, a hang or an allocation sized by a length field.
//! Seeds: fixtures/binlog (copy into fuzz/corpus/binlog_reader, see the command below).
//!   mkdir -p corpus/binlog_reader && find ../fixtures/binlog -type f -size -200k \
//!     -exec cp {} corpus/binlog_reader/ \; && RUSTC_BOOTSTRAP=1 cargo fuzz run binlog_reader
#![no_main]

use lampvault::binlog::{self, group::statement_text, Binlog, Decision, Groups, Selector, Window};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let b = match Binlog::open(data) {
        Ok(b) => b,
        Err(e) => {
            assert!(e.offset <= len);
            return;
        }
    };
    // events: contiguous slices, one error at most, inside the input
    let mut pos = 4;
    let mut evs = b.events(true);
    while let Some(ev) = evs.next() {
        match ev {
            Ok(e) => {
                assert_eq!(e.offset, pos);
                assert!(e.end() <= len && e.raw.len() >= 19);
                let _ = e.body();
                let _ = statement_text(&e, evs.format());
                pos = e.end();
            }
            Err(e) => {
                assert!(e.offset <= len && e.offset >= pos);
                break;
            }
        }
    }
    // groups: tile the same bytes; a selector over them never panics
    let mut sel = Selector::new(Window {
        stop_time: Some(i64::from(data.get(30).copied().unwrap_or(0)) << 24),
        stop_pos: Some(len / 2),
        ..Window::default()
    });
    let mut gpos = 4;
    for g in Groups::new(b.events(false)).collect_statements(true) {
        match g {
            Ok(g) => {
                assert_eq!(g.start, gpos);
                assert!(g.start < g.end && g.end <= len && g.last_event < g.end);
                gpos = g.end;
                let _ = g.gtid.to_string();
                if sel.decide(&g, 0, 1) == Decision::Stop {
                    break;
                }
            }
            Err(e) => {
                assert!(e.offset <= len);
                break;
            }
        }
    }
    for p in [0, 4, len / 3, len / 2, len, len + 1] {
        let _ = binlog::locate(&b, p);
    }
    let _ = binlog::verify::verify_all(&b, 1);
    // the header hop: chains resynchronised anywhere give the sequential answer
    let tail = &data[data.len().saturating_sub(4)..];
    let t = i64::from(u32::from_le_bytes(
        [0, 1, 2, 3].map(|i| tail.get(i).copied().unwrap_or(0)),
    ));
    let seq = binlog::hop::resume_point_seq(&b, t);
    for (chains, seg) in [(8, 16), (3, 200)] {
        let par = binlog::hop::resume_point_with(&b, t, chains, 1, seg, &binlog::mapped::NoPager);
        assert_eq!(par, seq);
    }
    assert!(seq.is_none_or(|o| o < len));
});
