//! `fetch --prefetch N`: while PostgreSQL replays segment S, a detached worker decodes and
//! verifies S+1 … S+N (same timeline) into `dirname(%p)/.walarchive-prefetch/<name>`, so
//! that PostgreSQL's call for one of them costs a read + BLAKE3 + rename instead of reading
//! and decompressing the archived file and writing 16 MiB.
//!
//! Guarantees (the same as a plain fetch, spec §2.2–2.3): PostgreSQL's call never trusts a
//! prefetched file. [`take`] reads it through one open descriptor, requires its size to be
//! the segment size, its BLAKE3 to equal the hash in the name of the archive's *current*
//! stored file for that name (so an archive that changed since, or a damaged prefetched
//! file, is noticed), and the page header / system identifier checks of every fetch; then
//! fsyncs it and renames it to `%p`, and finally checks that `%p` is the very inode it
//! verified (a file swapped in between is caught). Any failure removes the prefetched file
//! and falls back to the plain fetch. The archive's entry decides "absent" (exit 1) exactly
//! as without prefetch; a prefetched file of a name the archive no longer holds is removed.
//!
//! The worker: one at a time (non-blocking flock on `.lock` in the prefetch directory);
//! removes prefetched files of names up to the current one and temporary files of dead
//! writers; writes each segment under a temporary name, fsyncs it and renames it without
//! replacing; stops at the first name that is absent from the archive or fails to verify
//! (the plain fetch reports that one). It prints nothing and never changes the exit status.
//! `push` removes the whole directory (recovery is over once the server archives), so
//! files prefetched past the end of recovery do not stay in pg_wal.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lampvault::durable::{self, TempFile};
use lampvault::wal::store::{content_hash, ArchiveInfo, StoredName, TEMP_PREFIX};
use lampvault::wal::WalName;

use super::archive;
use super::fetch::{check_content, read_verified};

/// The prefetch directory's name inside `dirname(%p)` (pg_wal).
pub const PREFETCH_DIR: &str = ".walarchive-prefetch";

/// `dirname(%p)/.walarchive-prefetch`.
pub fn dir_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(PREFETCH_DIR),
        _ => PathBuf::from(PREFETCH_DIR),
    }
}

/// Remove a prefetched copy of `wal`, if any.
pub fn discard(dest: &Path, wal: &WalName) {
    let _ = fs::remove_file(dir_of(dest).join(wal.to_string()));
}

/// PostgreSQL's call: `true` when `%p` now holds a prefetched copy of `wal` that was
/// verified against `stored` (the archive's current entry) and `info`; `false` = take the
/// plain path (the prefetched file, if any, is gone).
pub fn take(dest: &Path, wal: &WalName, stored: &StoredName, info: &ArchiveInfo) -> bool {
    let p = dir_of(dest).join(wal.to_string());
    let Ok(mut f) = fs::File::open(&p) else {
        return false;
    };
    let ok = (|| {
        let md = f.metadata().ok()?;
        if !md.is_file() || md.len() != u64::from(info.seg_size) {
            return None;
        }
        let mut data = Vec::with_capacity(info.seg_size as usize);
        (&mut f)
            .take(u64::from(info.seg_size) + 1)
            .read_to_end(&mut data)
            .ok()?;
        if data.len() != info.seg_size as usize || content_hash(&data) != stored.hash {
            return None;
        }
        check_content(wal, &data, info).ok()?;
        f.sync_all().ok()?;
        fs::rename(&p, dest).ok()?;
        let now = fs::metadata(dest).ok()?;
        (now.dev() == md.dev() && now.ino() == md.ino()).then_some(())
    })()
    .is_some();
    if !ok {
        let _ = fs::remove_file(&p);
    }
    ok
}

/// The detached worker after `wal` was fetched to `dest` (see the module doc).
pub fn work(wal: &WalName, dest: &Path, root: &Path, info: &ArchiveInfo, n: usize) {
    let dir = dir_of(dest);
    if let Err(e) = fs::create_dir(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return;
        }
    }
    let Ok(lockf) = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
    else {
        return;
    };
    let Ok(_lock) = nix::fcntl::Flock::lock(lockf, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return; // another worker is at it
    };
    let me = wal.to_string();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let Some(f) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if f.starts_with(TEMP_PREFIX) {
                durable::remove_stale_temp(&dir, &f, Duration::from_secs(3600));
            } else if f != ".lock" && f <= me {
                let _ = fs::remove_file(dir.join(&f));
            }
        }
    }
    let Some(segno) = wal.segno(info.seg_size) else {
        return;
    };
    for k in 1..=n as u64 {
        let Some(next) = WalName::segment_from_segno(wal.tli, segno + k, info.seg_size) else {
            return;
        };
        let name = next.to_string();
        if dir.join(&name).exists() {
            continue;
        }
        let sub = archive::dir_for(root, &next);
        let Ok((found, _)) = archive::entries_for(&sub, &name) else {
            return;
        };
        if found.len() != 1 {
            return;
        }
        let Ok(data) = read_verified(&next, &found[0], info) else {
            return;
        };
        let Ok(mut t) = TempFile::create(&dir, &durable::temp_name(TEMP_PREFIX, &name), 0o600)
        else {
            return;
        };
        if t.write_all(&data).is_err() || t.publish_noreplace(&name).is_err() {
            return;
        }
    }
}

/// `push`: remove the prefetch directory next to `%p`, if any.
pub fn remove_all(pg_path: &Path) {
    let dir = dir_of(pg_path);
    if dir.exists() {
        let _ = fs::remove_dir_all(dir);
    }
}
