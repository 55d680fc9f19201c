//! Durable file creation: write to a temporary name, fsync it, rename it into place, fsync
//! the directory — the sequence of PostgreSQL's `durable_rename()` (fd.c) and
//! `contrib/basic_archive`, which spec `pg-wal-archive.md` §1.5 takes as the reference.
//!
//! Invariants: a final name either does not exist or holds complete, fsynced bytes; a
//! temporary file is removed when anything fails (the [`TempFile`] guard unlinks on drop);
//! `persist_noreplace` never replaces an existing name (`renameat2(RENAME_NOREPLACE)`,
//! falling back to `link` + `unlink` where the filesystem lacks it). File modes are set with
//! `fchmod` after creation, so the umask cannot widen or narrow them.
//!
//! Leftovers: a writer killed by a signal (or a crash) leaves its temporary file behind.
//! Every [`TempFile`] holds a shared `flock` on itself for its whole life and carries its
//! creator's pid as the second-to-last dot-separated field of its name
//! ([`temp_name`]); [`remove_stale_temp`] removes such a file only when nobody holds that
//! lock (the kernel drops it when the process dies, even by SIGKILL) AND the pid is dead on
//! this host (or the file is older than a limit, for writers on other hosts of a shared
//! filesystem). A live writer therefore never loses its file, except a writer on another
//! host in the microseconds between its create and its flock — and that writer's rename then
//! fails, it exits non-zero and is retried: never a wrong or partial final name.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;

use crate::sys::writeback::FlushEvery;
use nix::fcntl::{Flock, FlockArg};

/// fsync a directory, making the entries created or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file being written under a temporary name; unlinked on drop unless persisted.
#[derive(Debug)]
pub struct TempFile {
    pub file: File,
    path: PathBuf,
    armed: bool,
    /// Bytes written through [`TempFile::write_streaming`].
    streamed: u64,
    /// Shared flock on the file (through a dup of its descriptor): "a live writer owns it".
    _owner: Flock<File>,
    /// Flushes what [`TempFile::write_streaming`] wrote while the writer goes on.
    behind: FlushEvery,
}

impl TempFile {
    /// Create `dir/name` exclusively with permission bits `mode` (applied with fchmod,
    /// whatever the umask).
    pub fn create(dir: &Path, name: &str, mode: u32) -> io::Result<TempFile> {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&path)?;
        let owner = match file
            .try_clone()
            .and_then(|d| Flock::lock(d, FlockArg::LockShared).map_err(|(_, e)| e.into()))
        {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        let t = TempFile {
            file,
            path,
            armed: true,
            streamed: 0,
            _owner: owner,
            behind: FlushEvery::bytes(1),
        };
        t.file
            .set_permissions(Permissions::from_mode(mode & 0o7777))?;
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `b`, start its writeback at once (`sync_file_range`) and have it flushed to
    /// stable storage behind the writer ([`FlushEvery`], after every write), so that the
    /// final fsync of a file written piece by piece has little left to do. Use for every
    /// write of a file written this way (it counts the offset).
    pub fn write_streaming(&mut self, b: &[u8]) -> io::Result<()> {
        self.file.write_all(b)?;
        let _ = crate::sys::writeback::start_writeback(
            self.file.as_fd(),
            self.streamed,
            b.len() as u64,
        );
        self.streamed += b.len() as u64;
        self.behind.wrote(&self.file, b.len());
        Ok(())
    }

    /// fsync the file (after the flushes behind the writer, if any, have ended).
    pub fn sync(&mut self) -> io::Result<()> {
        self.behind.stop();
        self.file.sync_all()
    }

    /// fsync the data, then give the file its final name in the same directory, failing
    /// with `AlreadyExists` when `final_name` exists (it is never replaced); then fsync the
    /// directory. On error the temporary file is removed.
    pub fn persist_noreplace(self, final_name: &str) -> io::Result<()> {
        let dir = self.dir();
        self.publish_noreplace(final_name)?;
        sync_dir(&dir)
    }

    /// fsync the data, then give the file its final name in the same directory unless that
    /// name exists (`AlreadyExists`, nothing changed); the directory is NOT fsynced: the
    /// caller does that (once for several renames) before it reports success.
    pub fn publish_noreplace(mut self, final_name: &str) -> io::Result<()> {
        self.sync()?;
        rename_noreplace(&self.path, &self.dir().join(final_name))?;
        self.armed = false;
        Ok(())
    }

    /// The directory the temporary file is in.
    fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// fsync the data and rename over `dest` (which may be in another directory of the same
    /// filesystem), replacing it; the directory is not fsynced (for callers such as
    /// PostgreSQL's restore_command, whose caller makes the rename durable itself).
    pub fn persist_replace(mut self, dest: &Path) -> io::Result<()> {
        self.sync()?;
        fs::rename(&self.path, dest)?;
        self.armed = false;
        Ok(())
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.behind.stop();
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A temporary name `PREFIX<base>.<pid>.<nanoseconds>`: unique per process and moment, and
/// parseable by [`remove_stale_temp`].
pub fn temp_name(prefix: &str, base: &str) -> String {
    format!(
        "{prefix}{base}.{}.{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// The creator pid recorded in a [`temp_name`].
fn temp_pid(name: &str) -> Option<i32> {
    let mut it = name.rsplit('.');
    it.next()?;
    it.next()?.parse().ok().filter(|&p| p > 0)
}

fn pid_alive(pid: i32) -> bool {
    // EPERM: exists, owned by someone else.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// Remove `dir/name`, a temporary file left by a dead writer: only when no process holds
/// its owner lock and either its pid (from the name) is dead on this host or it is older
/// than `max_age`. Returns whether it was removed; any error means "leave it".
pub fn remove_stale_temp(dir: &Path, name: &str, max_age: Duration) -> bool {
    let path = dir.join(name);
    let Ok(f) = File::open(&path) else {
        return false;
    };
    let Ok(locked) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
        return false; // a live writer holds it
    };
    let dead = temp_pid(name).is_some_and(|p| !pid_alive(p));
    let old = locked
        .metadata()
        .and_then(|m| m.modified())
        .map(|mt| SystemTime::now().duration_since(mt).unwrap_or_default() > max_age)
        .unwrap_or(false);
    (dead || old) && fs::remove_file(&path).is_ok()
}

/// Rename `from` to `to` unless `to` exists (then `AlreadyExists`, nothing changed).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match nix::fcntl::renameat2(
        None,
        from,
        None,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) | Err(Errno::ENOSYS) => {
            // Filesystems without RENAME_NOREPLACE: link() also refuses an existing name.
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// Write `bytes` durably as `dir/final_name` through a temporary `dir/tmp_name`, never
/// replacing an existing file.
pub fn write_new(
    dir: &Path,
    tmp_name: &str,
    final_name: &str,
    bytes: &[u8],
    mode: u32,
) -> io::Result<()> {
    let mut t = TempFile::create(dir, tmp_name, mode)?;
    t.write_all(bytes)?;
    t.persist_noreplace(final_name)
}

/// An exclusive advisory lock (flock) on a directory, held until dropped. Serialises the
/// "is the name taken? then rename" step of concurrent writers into one directory.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] Flock<File>);

impl DirLock {
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let f = File::open(dir)?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map(DirLock)
            .map_err(|(_, e)| io::Error::from_raw_os_error(e as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("lv-durable-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn write_new_never_replaces() {
        let d = scratch("noreplace");
        write_new(&d, ".t1", "f", b"one", 0o600).unwrap();
        let e = write_new(&d, ".t2", "f", b"two", 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(d.join("f")).unwrap(), b"one");
        assert!(!d.join(".t2").exists(), "temp file left behind");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(d.join("f")).unwrap().mode() & 0o777, 0o600);
        let _l = DirLock::acquire(&d).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn dropped_temp_is_removed() {
        let d = scratch("drop");
        {
            let mut t = TempFile::create(&d, ".t", 0o640).unwrap();
            t.write_all(b"partial").unwrap();
            assert!(d.join(".t").exists());
        }
        assert!(!d.join(".t").exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn streamed_file_is_flushed_behind_and_published_whole() {
        let d = scratch("behind");
        let blocks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 300_000]).collect();
        let mut t = TempFile::create(&d, ".t", 0o600).unwrap();
        for b in &blocks {
            t.write_streaming(b).unwrap();
        }
        // Its own open file description, not a dup (which would share the offset and the
        // flags, and consume a writeback error the final fsync must see).
        let fdinfo = |fd: std::os::fd::RawFd| {
            let s = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
            let field = |k: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
                    .unwrap()
            };
            (field("pos:"), field("flags:"))
        };
        use std::os::fd::AsRawFd;
        let (flusher, writer) = (
            fdinfo(t.behind.fd().expect("no flushing thread")),
            fdinfo(t.file.as_raw_fd()),
        );
        assert_eq!(flusher.0, "0");
        assert_eq!(writer.0, (5 * 300_000).to_string());
        assert_ne!(flusher.1, writer.1);
        t.publish_noreplace("f").unwrap();
        assert_eq!(fs::read(d.join("f")).unwrap(), blocks.concat());
        // Dropped while its flusher runs: the thread ends, the file goes.
        let mut t = TempFile::create(&d, ".t2", 0o600).unwrap();
        t.write_streaming(&blocks[0]).unwrap();
        drop(t);
        assert!(!d.join(".t2").exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stale_temps_of_dead_writers_only() {
        let d = scratch("stale");
        // A live writer (this process) keeps its file, even when old-looking limits are 0.
        let live = TempFile::create(&d, &temp_name(".t.", "x"), 0o600).unwrap();
        let live_name = live
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(!remove_stale_temp(&d, &live_name, Duration::ZERO));
        assert!(live.path().exists());
        // A file of a dead pid that nobody locks: removed at once.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = format!(".t.x.{dead_pid}.1");
        fs::write(d.join(&dead), b"partial").unwrap();
        assert!(remove_stale_temp(&d, &dead, Duration::from_secs(3600)));
        assert!(!d.join(&dead).exists());
        // A live pid (ours) but no lock (another host's writer, say): kept until old.
        let other = format!(".t.x.{}.2", std::process::id());
        fs::write(d.join(&other), b"partial").unwrap();
        assert!(!remove_stale_temp(&d, &other, Duration::from_secs(3600)));
        assert!(remove_stale_temp(&d, &other, Duration::ZERO));
        assert_eq!(
            temp_pid(".walarchive-tmp.000000010000000000000009.123.456"),
            Some(123)
        );
        assert_eq!(temp_pid(".walarchive-tmp.x"), None);
        drop(live);
        fs::remove_dir_all(&d).unwrap();
    }
}
