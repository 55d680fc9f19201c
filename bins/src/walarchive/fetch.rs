//! `walarchive fetch %f %p --archive DIR`: restore one file, verified, or say precisely why not.
//!
//! Exit 0: `%p` written (temporary name next to it, fsync, rename) after the BLAKE3 in the
//! stored name and, for segments, the page header (magic, page address, system identifier,
//! size) were checked. Exit 1: the archive is a readable walarchive archive and holds no
//! file of that name — silently, as PostgreSQL expects at the end of the archive. Exit 255:
//! everything else (spec §2.3), because an exit 1 there would make PostgreSQL promote early.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A temporary file next to %p older than this is removed even if its pid looks alive.
const STALE_TEMP: Duration = Duration::from_secs(3600);

use clap::ArgMatches;
use lampvault::durable::{self, TempFile};
use lampvault::wal::lz4frame::{self, DecodeError};
use lampvault::wal::page::LONG_HEADER_LEN;
use lampvault::wal::store::{
    decode_stored, hex, ArchiveInfo, ContentHasher, INFO_FILE, TEMP_PREFIX,
};
use lampvault::wal::{parse_history, WalKind, WalName};
use lampvault::wal::{LongHeader, StoredError};

use super::{archive, prefetch, FETCH_FAIL};
use crate::common::{errno_text, Failure};

fn fail(msg: impl Into<String>) -> Failure {
    Failure::new(FETCH_FAIL, msg)
}

fn io_fail(ctx: impl std::fmt::Display, e: &io::Error) -> Failure {
    fail(format!("{ctx}: {}", errno_text(e)))
}

pub fn run(m: &ArgMatches) -> Result<u8, Failure> {
    let name_s = m.get_one::<String>("name").expect("required");
    let dest = PathBuf::from(m.get_one::<String>("path").expect("required"));
    let root = m.get_one::<PathBuf>("archive").expect("required");
    let wal = WalName::parse(name_s)
        .map_err(|e| fail(format!("{name_s}: invalid WAL file name: {e}")))?;
    let name = wal.to_string();

    // "Definitely not there" needs a readable archive that is ours: an empty mount point of
    // an unmounted archive must not read as "end of WAL".
    fs::read_dir(root).map_err(|e| io_fail(format_args!("{}: archive", root.display()), &e))?;
    let info = match archive::read_info(root) {
        Ok(Some(Ok(i))) => i,
        Ok(Some(Err(e))) => return Err(fail(format!("{}: {e}", root.join(INFO_FILE).display()))),
        Ok(None) => {
            return Err(fail(format!(
                "{}: not a walarchive archive (no {INFO_FILE}); is it mounted?",
                root.display()
            )))
        }
        Err(e) => return Err(io_fail(root.join(INFO_FILE).display(), &e)),
    };
    if m.get_flag("prefetch-worker") {
        let n = usize::from(*m.get_one::<u16>("prefetch").expect("default"));
        prefetch::work(&wal, &dest, root, &info, n);
        return Ok(0);
    }
    let dir = archive::dir_for(root, &wal);
    let (found, _) = archive::entries_for(&dir, &name).map_err(|e| io_fail(dir.display(), &e))?;
    let entry = match found.len() {
        0 => {
            prefetch::discard(&dest, &wal);
            return Err(Failure::new(1, ""));
        }
        1 => &found[0],
        _ => {
            return Err(fail(format!(
                "{name}: archived more than once in {} (run walarchive verify)",
                dir.display()
            )))
        }
    };
    if wal.kind == WalKind::Segment && prefetch::take(&dest, &wal, &entry.stored, &info) {
        spawn_prefetch(m, &wal, &dest, root);
        return Ok(0);
    }
    if wal.has_pages() {
        fetch_streaming(&wal, entry, &info, &dest)?;
    } else {
        let data = read_verified(&wal, entry, &info).map_err(fail)?;
        write_dest(&dest, &data)?;
    }
    if wal.kind == WalKind::Segment {
        spawn_prefetch(m, &wal, &dest, root);
    }
    Ok(0)
}

/// `--prefetch N`: start a detached worker (this program, `--prefetch-worker`) that
/// decodes and verifies the next N segments into `dirname(%p)/.walarchive-prefetch` while
/// PostgreSQL replays this one (prefetch.rs). Failing to start it changes nothing.
fn spawn_prefetch(m: &ArgMatches, wal: &WalName, dest: &Path, root: &Path) {
    let n = *m.get_one::<u16>("prefetch").expect("default");
    if n == 0 {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let _ = std::process::Command::new(exe)
        .arg("fetch")
        .arg(wal.to_string())
        .arg(dest)
        .arg("--archive")
        .arg(root)
        .arg("--prefetch")
        .arg(n.to_string())
        .arg("--prefetch-worker")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Read a stored file and check everything fetch promises before exit 0: the BLAKE3 in its
/// name, and for segments the page header against the name and the archive's cluster.
pub(super) fn read_verified(
    wal: &WalName,
    entry: &archive::Entry,
    info: &ArchiveInfo,
) -> Result<Vec<u8>, String> {
    let name = wal.to_string();
    let limit = if wal.has_pages() {
        info.seg_size as usize
    } else {
        64 << 20
    };
    let bytes = fs::read(&entry.path)
        .map_err(|e| format!("{}: {}", entry.path.display(), errno_text(&e)))?;
    let data = decode_stored(&entry.stored, &bytes, limit)
        .map_err(|e| format!("{name}: {} is corrupt: {e}", entry.path.display()))?;
    check_content(wal, &data, info)
        .map_err(|e| format!("{name}: {}: {e}", entry.path.display()))?;
    Ok(data)
}

/// The header / history checks of a file about to be handed to PostgreSQL.
pub(super) fn check_content(wal: &WalName, data: &[u8], info: &ArchiveInfo) -> Result<(), String> {
    match wal.kind {
        WalKind::Segment | WalKind::Partial => check_head(wal, data, data.len() as u64, info)?,
        WalKind::History => {
            parse_history(wal.tli, data).map_err(|e| e.to_string())?;
        }
        WalKind::Backup { .. } => {}
    }
    Ok(())
}

/// The page-header checks of a segment of `len` bytes that starts with `head`.
fn check_head(wal: &WalName, head: &[u8], len: u64, info: &ArchiveInfo) -> Result<(), String> {
    let h = LongHeader::parse(head, Some(info.magic)).map_err(|e| e.to_string())?;
    h.check_against(wal, len).map_err(|e| e.to_string())?;
    if h.sysid != info.system_id || h.seg_size != info.seg_size || h.magic != info.magic {
        return Err(format!(
            "belongs to system identifier {} (archive: {}); refused",
            h.sysid, info.system_id
        ));
    }
    Ok(())
}

/// Decode workers of a streaming fetch (the caller's thread writes and hashes).
const DECODE_THREADS: usize = 2;

/// [`read_verified`] + [`write_dest`] for a segment, without the whole segment in memory
/// first: its blocks are decoded on [`DECODE_THREADS`] workers and written to the temporary
/// file next to `%p` in order as they come, writeback started at once, the BLAKE3 taken on
/// the way, so the disk writes while later blocks are still being decoded. `%p` appears
/// (fsync, rename) only after the same checks with the same messages: the hash in the
/// stored name, then the page header; anything else removes the temporary file.
fn fetch_streaming(
    wal: &WalName,
    entry: &archive::Entry,
    info: &ArchiveInfo,
    dest: &Path,
) -> Result<(), Failure> {
    let name = wal.to_string();
    let path = entry.path.display();
    let bytes = fs::read(&entry.path).map_err(|e| fail(format!("{path}: {}", errno_text(&e))))?;
    let corrupt = |e: StoredError| fail(format!("{name}: {path} is corrupt: {e}"));
    let mut t = create_temp(dest)?;
    let mut hasher = ContentHasher::new();
    let mut head = Vec::with_capacity(LONG_HEADER_LEN);
    let mut sink = |b: &[u8]| -> io::Result<()> {
        let more = LONG_HEADER_LEN.saturating_sub(head.len()).min(b.len());
        head.extend_from_slice(&b[..more]);
        hasher.update(b);
        t.write_streaming(b)
    };
    let total = if entry.stored.compressed {
        let limit = info.seg_size as usize;
        match lz4frame::decode_frame_parallel(&bytes, limit, DECODE_THREADS, &mut sink) {
            Ok(n) => n,
            Err(DecodeError::Frame(e)) => return Err(corrupt(StoredError::Frame(e))),
            Err(DecodeError::Sink(e)) => return Err(io_fail(dest.display(), &e)),
        }
    } else {
        for piece in bytes.chunks(lz4frame::BLOCK_SIZE) {
            sink(piece).map_err(|e| io_fail(dest.display(), &e))?;
        }
        bytes.len() as u64
    };
    let found = hasher.finalize();
    if found != entry.stored.hash {
        return Err(corrupt(StoredError::Checksum {
            expected: hex(&entry.stored.hash),
            found: hex(&found),
        }));
    }
    check_head(wal, &head, total, info).map_err(|e| fail(format!("{name}: {path}: {e}")))?;
    t.persist_replace(dest)
        .map_err(|e| io_fail(dest.display(), &e))
}

/// Write `%p` through a temporary name in its directory; never leave a partial `%p`.
fn write_dest(dest: &Path, data: &[u8]) -> Result<(), Failure> {
    let mut t = create_temp(dest)?;
    t.write_all(data).map_err(|e| io_fail(dest.display(), &e))?;
    t.persist_replace(dest)
        .map_err(|e| io_fail(dest.display(), &e))
}

/// A new temporary file next to `dest`, after removing those of killed fetches into it.
fn create_temp(dest: &Path) -> Result<TempFile, Failure> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Leftovers of fetches into the same %p that were killed (a signal, a crash): removed
    // once their owner is dead (durable::remove_stale_temp).
    let mine = format!("{TEMP_PREFIX}{base}.");
    if let Ok(rd) = fs::read_dir(&parent) {
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str().filter(|n| n.starts_with(&mine)) {
                durable::remove_stale_temp(&parent, n, STALE_TEMP);
            }
        }
    }
    let tmp_name = durable::temp_name(TEMP_PREFIX, base);
    TempFile::create(&parent, &tmp_name, 0o600).map_err(|e| io_fail(dest.display(), &e))
}
