//! Fuzz the device-mapper reply parsers (lampvault::dm): a DM_TABLE_STATUS payload, a
//! DM_LIST_DEVICES payload and a snapshot status line. Properties: never panic; an error
//! names an offset inside the input; a parsed snapshot status is re-parsed identically from
//! its canonical text, and its fill is within 0..=100 %.
#![no_main]

use lampvault::dm::{parse_name_list, parse_targets, DmError, SnapshotStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let count = data.first().copied().unwrap_or(0) as u32 % 8;
    let payload = data.get(1..).unwrap_or(&[]);
    if let Err(DmError::BadReply { offset, .. }) = parse_targets(payload, count) {
        assert!(offset <= payload.len(), "offset {offset} beyond input {}", payload.len());
    }
    let _ = parse_name_list(payload);
    if let Ok(text) = std::str::from_utf8(payload) {
        match SnapshotStatus::parse(text) {
            Ok(st) => {
                let p = st.percent();
                assert!((0.0..=100.0).contains(&p), "{p}");
                if let SnapshotStatus::Active { allocated, total, metadata } = st {
                    let again = SnapshotStatus::parse(&format!("{allocated}/{total} {metadata}")).unwrap();
                    assert_eq!(again, st);
                }
            }
            Err(e) => assert!(e.offset <= text.len(), "offset {} beyond {}", e.offset, text.len()),
        }
    }
});
