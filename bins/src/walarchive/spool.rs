//! Ahead records: how PostgreSQL's own call for a segment that `--ahead` already pushed is
//! confirmed without reading and hashing the 16 MiB again — and why that keeps spec §1.4's
//! guarantee ("exit 0 only if the archive durably holds exactly the content of %p").
//!
//! A record `dirname(%p)/.walarchive-spool/<name>` is one line
//! `walarchive-ahead 1 <name> <dev> <ino> <size> <mtime_ns> <ctime_ns> <stored file> <check>`
//! where `<check>` is the BLAKE3 (hex) of everything before it. It is written (temporary
//! name + rename; no fsync: a lost or torn record only means "take the full path") by an
//! ahead push, and only when all of this held:
//! 1. the push exited the way a normal push exits 0: the archive durably holds
//!    `<stored file>` = `<name>-<BLAKE3 of the bytes read>`, fsynced, renamed, directory
//!    fsynced (or an identical copy was already there, compared by that BLAKE3);
//! 2. `fstat` of the source before the first read and after the last read gave the same
//!    (dev, ino, size, mtime, ctime) — the identity in the record;
//! 3. that ctime is more than [`SETTLED`] older than the moment the reading started.
//!
//! The confirmation (PostgreSQL's later call, [`confirm`]) opens `%p`, `fstat`s the open
//! file and requires all five fields to equal the record's, the record's check to verify,
//! its name to be `%f`, and `<stored file>` to exist under the current `--archive` (which
//! binds the record to this archive); it then fsyncs that file, its directory and the root,
//! removes the record and exits 0. Anything else removes the record and takes the full path
//! (read, hash, compare; a different content is refused as always).
//!
//! Why equal fields prove equal content: every write to a file and every rename, link,
//! chmod or truncate of it sets its ctime to the current time, and no system call sets a
//! ctime to a chosen value (utimensat sets mtime but stamps ctime "now"). Rule 3 puts the
//! start of reading more than SETTLED after the last change, so any change during or after
//! the reading stamps a ctime at least one clock tick later than the recorded one (the
//! coarse clock used for timestamps ticks every ≤ 10 ms; SETTLED is 100 ms) — the fields
//! then differ. A different file at `%p` (renamed over it, or a new file reusing the inode
//! number) has a different ino or dev or a newer ctime. So equal fields mean the bytes at
//! `%p` are the bytes that were hashed into `<stored file>`'s name. What this trusts: the
//! kernel's timestamp rules, a realtime clock that is not set back to reproduce a
//! nanosecond-exact earlier ctime, and nobody but walarchive writing the spool directory
//! (it lives in the server's pg_wal, owned by the server's user). PostgreSQL never modifies
//! a segment after marking it `.ready`; the checks are for everything else.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lampvault::durable;
use lampvault::wal::store::{content_hash, hex, StoredName, TEMP_PREFIX};
use lampvault::wal::WalName;

use super::archive;

/// Minimum age of the source's last change (ctime) when reading starts, for a record.
pub const SETTLED: Duration = Duration::from_millis(100);
/// The spool directory's name inside `dirname(%p)` (pg_wal).
pub const SPOOL_DIR: &str = ".walarchive-spool";
const MAGIC: &str = "walarchive-ahead 1";

/// What `fstat` says about a file: enough to notice any change of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Ident {
    pub fn of(md: &fs::Metadata) -> Ident {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Ident {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: ns(md.mtime(), md.mtime_nsec()),
            ctime_ns: ns(md.ctime(), md.ctime_nsec()),
        }
    }

    /// Rule 3: the last change was more than SETTLED before `read_start`.
    pub fn settled_before(&self, read_start: SystemTime) -> bool {
        let start = read_start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        start - self.ctime_ns > SETTLED.as_nanos() as i128
    }
}

/// `dirname(%p)/.walarchive-spool`.
pub fn dir_of(pg_path: &Path) -> PathBuf {
    match pg_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(SPOOL_DIR),
        _ => PathBuf::from(SPOOL_DIR),
    }
}

fn check(body: &str) -> String {
    hex(&content_hash(body.as_bytes()))
}

/// The record's text.
pub fn format(name: &str, id: &Ident, stored_file: &str) -> String {
    let body = format!(
        "{MAGIC} {name} {} {} {} {} {} {stored_file}",
        id.dev, id.ino, id.size, id.mtime_ns, id.ctime_ns
    );
    let c = check(&body);
    format!("{body} {c}\n")
}

/// Parse a record for `name`: its identity and stored file. `None` for anything else.
pub fn parse(text: &str, name: &str) -> Option<(Ident, StoredName)> {
    let line = text.strip_suffix('\n')?;
    let (body, c) = line.rsplit_once(' ')?;
    if c != check(body) {
        return None;
    }
    let rest = body.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let f: Vec<&str> = rest.split(' ').collect();
    if f.len() != 7 || f[0] != name {
        return None;
    }
    let id = Ident {
        dev: f[1].parse().ok()?,
        ino: f[2].parse().ok()?,
        size: f[3].parse().ok()?,
        mtime_ns: f[4].parse().ok()?,
        ctime_ns: f[5].parse().ok()?,
    };
    let stored = StoredName::parse(f[6]).filter(|s| s.wal.to_string() == name)?;
    Some((id, stored))
}

/// Write the record for an ahead-pushed `%p` (errors ignored: no record = full path later).
pub fn write(pg_path: &Path, name: &str, id: &Ident, stored: &StoredName) {
    let dir = dir_of(pg_path);
    if let Err(e) = fs::create_dir(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return;
        }
    }
    let text = format(name, id, &stored.file_name());
    let Ok(mut t) = durable::TempFile::create(&dir, &durable::temp_name(TEMP_PREFIX, name), 0o600)
    else {
        return;
    };
    if t.write_all(text.as_bytes()).is_ok() {
        let _ = t.persist_replace(&dir.join(name));
    }
}

/// PostgreSQL's call for `%f` at `%p`: `true` when a valid record proves that the archive
/// under `root` durably holds exactly `%p`'s content (see the module doc). The record is
/// removed either way; `false` means "take the full path".
pub fn confirm(pg_path: &Path, wal: &WalName, root: &Path) -> bool {
    let rec = dir_of(pg_path).join(wal.to_string());
    let mut text = String::new();
    match fs::File::open(&rec) {
        Ok(f) => {
            if f.take(4096).read_to_string(&mut text).is_err() {
                let _ = fs::remove_file(&rec);
                return false;
            }
        }
        Err(_) => return false,
    }
    let ok = (|| {
        let (id, stored) = parse(&text, &wal.to_string())?;
        let src = fs::File::open(pg_path).ok()?;
        if Ident::of(&src.metadata().ok()?) != id {
            return None;
        }
        let dir = archive::dir_for(root, wal);
        let f = fs::File::open(dir.join(stored.file_name())).ok()?;
        let md = f.metadata().ok()?;
        if !md.is_file() || md.len() == 0 {
            return None;
        }
        f.sync_all().ok()?;
        durable::sync_dir(&dir).ok()?;
        if dir != root {
            durable::sync_dir(root).ok()?;
        }
        Some(())
    })()
    .is_some();
    let _ = fs::remove_file(&rec);
    ok
}

/// Remove records (and dead temporary files) in the spool of `dirname(%p)` for names
/// that are neither `keep` nor still marked `.ready` — leftovers when the archive_command
/// changed. Called by `--ahead`, which reads archive_status anyway.
pub fn sweep(pg_path: &Path, ready: &[String], keep: &str) {
    let dir = dir_of(pg_path);
    let Ok(rd) = fs::read_dir(&dir) else { return };
    for e in rd.flatten() {
        let Some(n) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if n.starts_with(TEMP_PREFIX) {
            durable::remove_stale_temp(&dir, &n, Duration::from_secs(3600));
        } else if n != keep && !ready.contains(&n) {
            let _ = fs::remove_file(dir.join(&n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_tampering() {
        let id = Ident {
            dev: 2049,
            ino: 1234,
            size: 16 << 20,
            mtime_ns: 1_795_550_533_251_416_465,
            ctime_ns: 1_795_550_533_251_416_466,
        };
        let name = "000000010000000000000009";
        let stored = StoredName {
            wal: WalName::parse(name).unwrap(),
            hash: [0xab; 32],
            compressed: true,
        };
        let t = format(name, &id, &stored.file_name());
        assert_eq!(parse(&t, name), Some((id, stored)));
        assert_eq!(parse(&t, "00000001000000000000000A"), None);
        // any change of any field breaks the check
        let bad = t.replace(" 1234 ", " 1235 ");
        assert_eq!(parse(&bad, name), None);
        assert_eq!(parse(&t[..t.len() - 2], name), None);
        assert_eq!(parse("", name), None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_nanos(id.ctime_ns as u64);
        assert!(!id.settled_before(now + Duration::from_millis(50)));
        assert!(id.settled_before(now + Duration::from_millis(150)));
    }
}
