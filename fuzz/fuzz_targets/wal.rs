//! Fuzz the WAL parsers: file names, the long page header and its checks, timeline history
//! files, LZ4 frames and walarchive's stored-file reader. Properties: no panic; names
//! round-trip; every error offset lies inside the input; a decoded frame re-encodes to a
//! frame that decodes to the same bytes; the parallel frame decoder agrees with the
//! sequential one. Seed with `scripts/fuzz-seed-wal` (from fixtures/wal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lampvault::wal::{check_segment, lz4frame, parse_history, store, LongHeader, WalName};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(w) = WalName::parse(s) {
            assert_eq!(w.to_string(), s);
        }
        if let Some(st) = store::StoredName::parse(s) {
            assert_eq!(store::StoredName::parse(&st.file_name()), Some(st));
        }
    }
    if let Ok(h) = LongHeader::parse(data, None) {
        let seg = WalName::segment_from_segno(h.tli.max(1), h.pageaddr / u64::from(h.seg_size), h.seg_size);
        if let Some(seg) = seg {
            let _ = check_segment(&seg, data, None);
        }
    }
    for tli in [2u32, 7, u32::MAX] {
        if let Err(e) = parse_history(tli, data) {
            assert!(e.offset <= data.len(), "history error offset {} beyond {}", e.offset, data.len());
        }
    }
    // the parallel, streaming decoder says exactly what the sequential one says
    let mut streamed = Vec::new();
    let par = lz4frame::decode_frame_parallel::<()>(data, 1 << 20, 2, |b| {
        streamed.extend_from_slice(b);
        Ok(())
    });
    let seq = lz4frame::decode_frame(data, 1 << 20);
    match (&par, &seq) {
        (Ok(n), Ok(out)) => assert!(*n == out.len() as u64 && streamed == *out),
        (Err(lz4frame::DecodeError::Frame(a)), Err(b)) => assert_eq!(a, b),
        _ => panic!("parallel {:?} vs sequential {:?}", par.is_ok(), seq.is_ok()),
    }
    match lz4frame::decode_frame(data, 1 << 20) {
        Ok(out) => {
            let again = lz4frame::compress_to_vec(&out, 1);
            assert_eq!(lz4frame::decode_frame(&again, 1 << 20).unwrap(), out);
            let st = store::StoredName {
                wal: WalName::parse("000000010000000000000009").unwrap(),
                hash: store::content_hash(&out),
                compressed: true,
            };
            assert_eq!(store::decode_stored(&st, data, 1 << 20).unwrap(), out);
        }
        Err(e) => assert!(e.offset <= data.len(), "frame error offset {} beyond {}", e.offset, data.len()),
    }
});
