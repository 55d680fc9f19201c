//! `walarchive push %p %f --archive DIR`: archive one file atomically and durably.
//!
//! Order (spec §1.4–§1.5): validate the name and the bytes (page header vs name and vs the
//! archive's cluster); if the name is archived already, succeed only for identical content
//! (after checking the stored copy and fsyncing it); else write a temporary file in the
//! target directory (LZ4 blocks compressed on every core while earlier blocks are written,
//! BLAKE3 hashed in parallel), fsync it, then under the directory's flock re-check the name
//! and rename into place, and fsync the directory. Every failure exits 1.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A subdirectory created this recently may still be only in memory (its creator may not
/// have fsynced the root yet): a push into it fsyncs the root too.
const YOUNG_DIR: Duration = Duration::from_secs(60);

use clap::ArgMatches;
use lampvault::durable::{self, DirLock, TempFile};
use lampvault::sys::mapsource;
use lampvault::wal::page::{pg_version_of, LongHeader};
use lampvault::wal::store::{self, hex, ArchiveInfo, StoredName, INFO_FILE, TEMP_PREFIX};
use lampvault::wal::{lz4frame, parse_history, WalKind, WalName};

use super::archive::{self, Entry};
use super::spool::{self, Ident};
use crate::common::{errno_text, Failure, IoContext};

/// Temporary files older than this are leftovers of a killed push and are removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy)]
struct Opts {
    compress: bool,
    level: i32,
    file_mode: u32,
    dir_mode: u32,
    system_id: Option<u64>,
    accept_magic: Option<u16>,
    threads: usize,
}

pub fn run(m: &ArgMatches) -> Result<u8, Failure> {
    let path = m.get_one::<String>("path").expect("required");
    let name_s = m.get_one::<String>("name").expect("required");
    let root = m.get_one::<PathBuf>("archive").expect("required");
    let group = m.get_flag("group-read");
    let o = Opts {
        compress: m.get_one::<String>("compress").map(String::as_str) == Some("lz4"),
        level: *m.get_one::<i32>("level").expect("default"),
        file_mode: if group { 0o640 } else { 0o600 },
        dir_mode: if group { 0o750 } else { 0o700 },
        system_id: m.get_one::<u64>("system-id").copied(),
        accept_magic: m.get_one::<u16>("accept-magic").copied(),
        threads: m
            .get_one::<u16>("threads")
            .map(|&t| usize::from(t))
            .unwrap_or_else(cpus),
    };
    let ahead = usize::from(*m.get_one::<u16>("ahead").expect("default"));
    let wal = WalName::parse(name_s)
        .map_err(|e| Failure::failed(format!("{name_s}: invalid WAL file name: {e}")))?;
    match fs::metadata(root) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(Failure::failed(format!(
                "{}: archive is not a directory",
                root.display()
            )))
        }
        Err(e) => return Err(Failure::io(format_args!("{}: archive", root.display()), &e)),
    }
    // The server archives: its recovery is over, prefetched segments are of no use.
    super::prefetch::remove_all(Path::new(path));
    // A segment pushed ahead by an earlier call: confirmed from its record when that proves
    // the archive holds exactly %p's content (spool.rs), else the full path below.
    if wal.kind == WalKind::Segment && spool::confirm(Path::new(path), &wal, root) {
        return Ok(0);
    }
    let next = if ahead > 0 && wal.kind == WalKind::Segment {
        ready_after(Path::new(path), &wal, ahead)
    } else {
        Vec::new()
    };
    if next.is_empty() {
        return push_one(Path::new(path), &wal, root, &o).map(|_| 0);
    }
    push_ahead(Path::new(path), &wal, next, root, o)
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Segments after `wal` that PostgreSQL has marked `.ready` in `dirname(%p)/archive_status`
/// (what it will ask for next), at most `n`, in the order it will ask.
fn ready_after(path: &Path, wal: &WalName, n: usize) -> Vec<(PathBuf, WalName)> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let Ok(rd) = fs::read_dir(dir.join("archive_status")) else {
        return Vec::new();
    };
    let me = wal.to_string();
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".ready").map(str::to_string))
        .filter(|f| f.len() == 24 && *f > me)
        .collect();
    names.sort();
    spool::sweep(path, &names, &me);
    names
        .into_iter()
        .filter_map(|f| WalName::parse(&f).ok().map(|w| (dir.join(&f), w)))
        .filter(|(_, w)| w.kind == WalKind::Segment)
        .take(n)
        .collect()
}

/// `--ahead`: push `%f` and the next `.ready` segments at once, one per core, each through
/// exactly the same checks and durable steps as a single push. Only `%f`'s outcome decides
/// the exit status; a failing segment ahead is left for PostgreSQL to ask for (and to get
/// its own error then). Waits for all before exiting, so no push is cut short.
fn push_ahead(
    path: &Path,
    wal: &WalName,
    next: Vec<(PathBuf, WalName)>,
    root: &Path,
    o: Opts,
) -> Result<u8, Failure> {
    let workers = o.threads.max(1).min(next.len() + 1);
    let per = Opts {
        threads: (o.threads / workers).max(1),
        ..o
    };
    let mut queue: Vec<(PathBuf, WalName)> = next;
    queue.reverse();
    let queue = std::sync::Mutex::new(queue);
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(|| loop {
                let job = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some((p, w)) = job else { break };
                push_ahead_one(&p, &w, root, &per);
            });
        }
        let mine = push_one(path, wal, root, &per).map(|_| 0);
        loop {
            let job = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
            let Some((p, w)) = job else { break };
            push_ahead_one(&p, &w, root, &per);
        }
        mine
    })
}

/// One segment ahead: skipped when its name is archived already (PostgreSQL's own call will
/// compare contents), errors ignored (that call reports them). A success whose source was
/// unchanged during the read leaves a record for PostgreSQL's call (spool.rs).
fn push_ahead_one(path: &Path, wal: &WalName, root: &Path, o: &Opts) {
    let dir = archive::dir_for(root, wal);
    match archive::entries_for(&dir, &wal.to_string()) {
        Ok((found, _)) if found.is_empty() => {
            if let Ok(Pushed {
                stored,
                ident: Some(id),
            }) = push_one(path, wal, root, o)
            {
                spool::write(path, &wal.to_string(), &id, &stored);
            }
        }
        _ => {}
    }
}

/// What a successful push archived.
struct Pushed {
    /// The stored file that holds the content (written now or found identical).
    stored: StoredName,
    /// The source's identity when it did not change while it was read and had settled
    /// before (spool.rs rules 2 and 3); `None` otherwise.
    ident: Option<Ident>,
}

/// Archive one file: validate, then write durably or accept an identical archived copy.
///
/// Durability and crash safety of the order below (spec §1.5; one fsync per directory):
/// 1. the segment's bytes go to an exclusive temporary file in its directory and are
///    fsynced; meanwhile, on a first push, another thread writes and fsyncs
///    `walarchive.info` under a temporary name at the root, and a new subdirectory is
///    created (no fsync yet);
/// 2. `walarchive.info` is renamed into place (never replacing one), THEN the segment;
/// 3. the subdirectory is fsynced (segment entry), THEN the root (subdirectory entry and
///    info entry) — on ext4/xfs the first fsync's journal commit already carries the root's
///    changes, so the second has nothing left to write;
/// 4. only then exit 0.
///
/// Every final name is created by a rename of a file whose bytes were fsynced before, so a
/// crash never leaves a partial file under a final name. A crash before step 4 can leave any
/// subset of {subdirectory, info, segment} durable; none of them is wrong: PostgreSQL has not
/// seen exit 0 and pushes again; an info file alone is what a first push records anyway; a
/// segment without the info (possible on filesystems that do not order the two renames)
/// makes the retry record the info from the same segment and then confirm the identical
/// copy (`already_archived`), while fetch meanwhile refuses the archive (exit 255, "not a
/// walarchive archive") instead of reading it as empty. Temporary files of killed pushes are
/// removed by later pushes (`durable::remove_stale_temp`: owner lock free and pid dead).
fn push_one(path: &Path, wal: &WalName, root: &Path, o: &Opts) -> Result<Pushed, Failure> {
    let wal = *wal;
    let name = wal.to_string();
    // Segments: read the first block, check the header against the name and the file size,
    // and stream the rest through hashing and compression. Other files: read whole.
    let mut file = fs::File::open(path).ctx(path.display())?;
    let read_start = SystemTime::now();
    let md0 = file.metadata().ctx(path.display())?;
    let len = md0.len();
    let id0 = Ident::of(&md0);
    let settled = |file: &fs::File| -> Option<Ident> {
        let id1 = Ident::of(&file.metadata().ok()?);
        (id1 == id0 && id0.settled_before(read_start)).then_some(id0)
    };
    let streamed = wal.has_pages();
    let want = if streamed {
        len.min(lz4frame::BLOCK_SIZE as u64)
    } else {
        len
    };
    let mut head = Vec::with_capacity(want as usize);
    (&mut file)
        .take(want)
        .read_to_end(&mut head)
        .ctx(path.display())?;
    if (head.len() as u64) < want {
        return Err(Failure::failed(format!(
            "{}: file shrank while being read",
            path.display()
        )));
    }
    let new_info = validate(root, &wal, &head, len, o)?;
    let dir = archive::dir_for(root, &wal);
    let created = make_dir(root, &dir, o.dir_mode)?;

    let (existing, temps) = archive::entries_for(&dir, &name).ctx(dir.display())?;
    remove_stale_temps(&dir, &temps);
    if dir != root && (created || new_info.is_some()) {
        // A killed first push (or history push) may have left one at the root.
        sweep_root(root);
    }
    if !existing.is_empty() {
        if let Some(info) = new_info {
            // The info file was lost while the segment survived (see above).
            record_info(root, info, o)?;
        }
        let mut h = store::ContentHasher::new();
        h.update(&head);
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).ctx(path.display())?;
        h.update(&rest);
        let stored = already_archived(&name, root, &dir, &existing, &h.finalize())?;
        let ident = settled(&file);
        return Ok(Pushed { stored, ident });
    }

    let compress = o.compress && wal.has_pages();
    std::thread::scope(|s| -> Result<Pushed, Failure> {
        let info_job = new_info.map(|info| s.spawn(move || write_info_temp(root, info, o)));
        let mut tmp = TempFile::create(&dir, &durable::temp_name(TEMP_PREFIX, &name), o.file_mode)
            .map_err(|e| io_fail(&name, &dir, "creating a temporary file", &e))?;
        let written = if streamed {
            stream_content(head, &mut file, len, &mut tmp, compress, o)
        } else {
            write_content(&mut tmp, &head, compress, o).map(|h| (h, Leftovers::default()))
        };
        let (hash, leftovers) = written.map_err(|e| match e {
            StreamError::Read(e) => Failure::io(path.display(), &e),
            StreamError::Write(e) => io_fail(&name, &dir, "writing", &e),
        })?;
        // Unmapping the source and freeing the buffers overlaps with the fsync's wait.
        s.spawn(move || drop(leftovers));
        // The hasher and the compressors read a segment separately (through its map): a
        // source written to while it was read (never by PostgreSQL) could leave a stored
        // file that does not match its hash, as a `read()` copy would be torn. Every write
        // sets ctime (and mtime), so an unchanged identity after the read means none came
        // in between (up to the timestamp granularity; a residual case then fails fetch's
        // BLAKE3 check loudly): otherwise refuse and archive nothing.
        if streamed && file.metadata().ok().map(|m| Ident::of(&m)) != Some(id0) {
            return Err(Failure::failed(format!(
                "{}: changed while being read; nothing archived",
                path.display()
            )));
        }
        tmp.sync().map_err(|e| io_fail(&name, &dir, "fsync", &e))?;
        let ident = settled(&file);
        let stored = StoredName {
            wal,
            hash,
            compressed: compress,
        };
        let mut root_changed = created;
        if let (Some(job), Some(info)) = (info_job, new_info) {
            let info_tmp = job.join().expect("info thread")?;
            root_changed |= publish_info(root, info_tmp, info)?;
        }

        // Only one writer at a time may decide that the name is free (two pushes of
        // different content must not both succeed under different hashes).
        let lock = DirLock::acquire(&dir).map_err(|e| io_fail(&name, &dir, "locking", &e))?;
        let (existing, _) = archive::entries_for(&dir, &name).ctx(dir.display())?;
        if !existing.is_empty() {
            drop(tmp);
            drop(lock);
            sync_dirs(&dir, root, root_changed)?;
            let stored = already_archived(&name, root, &dir, &existing, &hash)?;
            return Ok(Pushed { stored, ident });
        }
        match tmp.publish_noreplace(&stored.file_name()) {
            Ok(()) => {
                drop(lock);
                sync_dirs(&dir, root, root_changed)?;
                Ok(Pushed { stored, ident })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                drop(lock);
                sync_dirs(&dir, root, root_changed)?;
                let (existing, _) = archive::entries_for(&dir, &name).ctx(dir.display())?;
                let stored = already_archived(&name, root, &dir, &existing, &hash)?;
                Ok(Pushed { stored, ident })
            }
            Err(e) => Err(io_fail(&name, &dir, "renaming into place", &e)),
        }
    })
}

/// fsync `dir` (the new entry in it), then the root when it changed too (new subdirectory
/// or info file). The root's fsync comes second: see `push_one`.
fn sync_dirs(dir: &Path, root: &Path, root_changed: bool) -> Result<(), Failure> {
    durable::sync_dir(dir).ctx(dir.display())?;
    if root_changed && dir != root {
        durable::sync_dir(root).ctx(root.display())?;
    }
    Ok(())
}

/// Step 1 of a first push, on its own thread: `walarchive.info` written and fsynced under
/// a temporary name.
fn write_info_temp(root: &Path, info: ArchiveInfo, o: &Opts) -> Result<TempFile, Failure> {
    let what = |e: io::Error| {
        Failure::io(
            format_args!(
                "{}: recording the archive's cluster",
                root.join(INFO_FILE).display()
            ),
            &e,
        )
    };
    let mut t = TempFile::create(
        root,
        &durable::temp_name(TEMP_PREFIX, INFO_FILE),
        o.file_mode,
    )
    .map_err(what)?;
    t.write_all(info.format().as_bytes()).map_err(what)?;
    t.file.sync_all().map_err(what)?;
    Ok(t)
}

/// Step 2 of a first push: rename the info into place. A concurrent first push that won
/// must have recorded the same cluster. Returns whether this push created the name.
fn publish_info(root: &Path, t: TempFile, info: ArchiveInfo) -> Result<bool, Failure> {
    match t.publish_noreplace(INFO_FILE) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => same_info(root, info).map(|()| false),
        Err(e) => Err(Failure::io(
            format_args!(
                "{}: recording the archive's cluster",
                root.join(INFO_FILE).display()
            ),
            &e,
        )),
    }
}

/// The archive's recorded info is `info` (after losing a race to record it).
fn same_info(root: &Path, info: ArchiveInfo) -> Result<(), Failure> {
    match archive::read_info(root) {
        Ok(Some(Ok(other))) if other == info => Ok(()),
        Ok(Some(Ok(other))) => Err(Failure::failed(format!(
            "{}: archive was just claimed by system identifier {} (this segment: {})",
            root.display(),
            other.system_id,
            info.system_id
        ))),
        _ => Err(Failure::failed(format!(
            "{}: unreadable",
            root.join(INFO_FILE).display()
        ))),
    }
}

/// Temporary files of dead pushes at the archive's root.
fn sweep_root(root: &Path) {
    if let Ok(rd) = fs::read_dir(root) {
        let temps: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect();
        remove_stale_temps(root, &temps);
    }
}

fn io_fail(name: &str, dir: &Path, what: &str, e: &io::Error) -> Failure {
    Failure::failed(format!(
        "{name}: {what} in {}: {}",
        dir.display(),
        errno_text(e)
    ))
}

/// The checks of spec §5.5 for segments, §4.1 for history files.
/// `data` is the whole file, or for segments its first block; `len` the file's size.
/// Returns the archive info to record when this is the archive's first segment.
fn validate(
    root: &Path,
    wal: &WalName,
    data: &[u8],
    len: u64,
    o: &Opts,
) -> Result<Option<ArchiveInfo>, Failure> {
    let name = wal.to_string();
    let bad = |cause: String| Failure::failed(format!("{name}: {cause}"));
    match wal.kind {
        WalKind::Segment | WalKind::Partial => {
            let info = archive::read_info(root).ctx(root.join(INFO_FILE).display())?;
            let info = match info {
                Some(Ok(i)) => Some(i),
                Some(Err(e)) => {
                    return Err(Failure::failed(format!(
                        "{}: {e}",
                        root.join(INFO_FILE).display()
                    )))
                }
                None => None,
            };
            let accept = o.accept_magic.or(info.map(|i| i.magic));
            let h = LongHeader::parse(data, accept)
                .and_then(|h| h.check_against(wal, len).map(|()| h))
                .map_err(|e| {
                    let hint = match e {
                        lampvault::wal::PageError::UnknownMagic { .. } => {
                            " (use --accept-magic for a development release)"
                        }
                        _ => "",
                    };
                    bad(format!("{e}{hint}"))
                })?;
            let want_sysid = o.system_id.or(info.map(|i| i.system_id));
            if let Some(want) = want_sysid {
                if h.sysid != want {
                    return Err(bad(format!(
                        "system identifier {} does not match the archive's {want}: a segment of another cluster, refused",
                        h.sysid
                    )));
                }
            }
            match info {
                Some(i) => {
                    if h.seg_size != i.seg_size {
                        return Err(bad(format!(
                            "segment size {} differs from the archive's {}",
                            h.seg_size, i.seg_size
                        )));
                    }
                    if h.magic != i.magic {
                        return Err(bad(format!(
                            "WAL page magic 0x{:04X} (PostgreSQL {}) differs from the archive's 0x{:04X} (PostgreSQL {}): one archive holds one major version",
                            h.magic,
                            pg_version_of(h.magic).unwrap_or("?"),
                            i.magic,
                            pg_version_of(i.magic).unwrap_or("?")
                        )));
                    }
                }
                None => {
                    return Ok(Some(ArchiveInfo {
                        system_id: h.sysid,
                        seg_size: h.seg_size,
                        magic: h.magic,
                    }))
                }
            }
            Ok(None)
        }
        WalKind::History => parse_history(wal.tli, data)
            .map(|_| None)
            .map_err(|e| bad(format!("invalid timeline history: {e}"))),
        WalKind::Backup { .. } => {
            if std::str::from_utf8(data).is_err() || data.is_empty() {
                return Err(bad("a backup history file must be non-empty text".into()));
            }
            Ok(None)
        }
    }
}

/// Record the cluster durably on its own (a retry that finds its segment archived but no
/// info file). A concurrent push that won must agree.
fn record_info(root: &Path, info: ArchiveInfo, o: &Opts) -> Result<(), Failure> {
    let t = write_info_temp(root, info, o)?;
    if publish_info(root, t, info)? {
        durable::sync_dir(root).ctx(root.display())?;
    }
    Ok(())
}

/// Create the subdirectory if needed (made durable later by `sync_dirs`); returns whether
/// this push created it.
fn make_dir(root: &Path, dir: &Path, mode: u32) -> Result<bool, Failure> {
    if dir == root {
        return Ok(false);
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode)).ctx(dir.display())?;
            Ok(true)
        }
        // Made by another push, which fsyncs the root before its exit 0 — but it may not
        // have got there yet (or died first): while the directory is young, ours does too.
        // Older ones were made durable by their creator or, if it died, by the filesystem's
        // periodic commit (ext4 5 s, xfs 30 s). No birth time known: fsync.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(fs::metadata(dir)
            .and_then(|m| m.created())
            .map(|b| SystemTime::now().duration_since(b).unwrap_or_default() < YOUNG_DIR)
            .unwrap_or(true)),
        Err(e) => Err(Failure::io(dir.display(), &e)),
    }
}

fn remove_stale_temps(dir: &Path, temps: &[String]) {
    for t in temps {
        durable::remove_stale_temp(dir, t, STALE_TEMP);
    }
}

/// Write the (compressed) content to `out` while hashing the original on another thread.
/// Which side of a copy failed.
enum StreamError {
    Read(io::Error),
    Write(io::Error),
}

/// Buffers handed back for reuse: a 16 MiB segment then costs a few MiB of fresh memory
/// (page faults and kernel zeroing) instead of 16 MiB in and 8 out.
#[derive(Default)]
struct Pool(std::sync::Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn get(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default()
    }
}

/// A buffer that returns to its pool when the last user drops it.
struct Pooled<'p> {
    data: Vec<u8>,
    pool: &'p Pool,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Ok(mut v) = self.pool.0.lock() {
            v.push(std::mem::take(&mut self.data));
        }
    }
}

/// A block of the source: read into a pooled buffer, or a slice of the source's map.
enum Block<'a> {
    Owned(Pooled<'a>),
    Mapped(&'a [u8]),
}

impl std::ops::Deref for Block<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Block::Owned(p) => &p.data,
            Block::Mapped(s) => s,
        }
    }
}

/// What a push says when a mapped source shrinks under it or has a page it cannot read
/// (see `lampvault::sys::mapsource`).
const SIGBUS_MSG: &[u8] =
    b"walarchive: push: a source file could not be read through its map (an I/O error, or it shrank: SIGBUS); nothing archived by this call\n";

/// What the pipeline leaves to free (the source's map, the buffer pools): dropped on a
/// thread of its own while the caller waits for its fsync.
#[derive(Default)]
struct Leftovers {
    _map: Option<mapsource::Mmap>,
    _pools: [Pool; 2],
}

/// Blocks read but not yet taken by a compression worker: bounds the memory in flight so
/// that buffers come back to the pool.
const READ_AHEAD: usize = 4;

/// The segment pipeline: this thread takes 1 MiB blocks (the first is `head`, the others
/// slices of a read-only map of the source, faulted in ahead with MADV_POPULATE_READ, or
/// `read()` into pooled buffers where mapping fails) and hands each to the hasher (in
/// order) and to the compression workers (any order); a writer
/// thread puts the encoded blocks into `out` in order as they come. Reading, hashing,
/// compressing and writing overlap; the frame is the same as `compress_parallel`'s.
fn stream_content(
    mut head: Vec<u8>,
    file: &mut fs::File,
    len: u64,
    out: &mut TempFile,
    compress: bool,
    o: &Opts,
) -> Result<([u8; 32], Leftovers), StreamError> {
    use std::sync::mpsc::sync_channel;
    use std::sync::{Arc, Mutex};
    let bs = lz4frame::BLOCK_SIZE as u64;
    let nblocks = len.div_ceil(bs) as usize;
    let cap = nblocks.max(1);
    let (in_pool, out_pool) = (Pool::default(), Pool::default());
    // The rest of the source is read through a map (no copy into buffers; ~3 ms less CPU
    // per dense segment), `read()` where mapping fails. A source truncated under the map
    // (never by PostgreSQL) raises SIGBUS: the handler then exits 1 as a short read does.
    let map = mapsource::exit_on_sigbus(SIGBUS_MSG, 1)
        .ok()
        .and_then(|()| mapsource::map_source(file, len).ok());
    std::thread::scope(|s| {
        let (tx_h, rx_h) = sync_channel::<Arc<Block>>(cap);
        let hasher = s.spawn(move || {
            let mut h = store::ContentHasher::new();
            for b in rx_h {
                h.update(&b);
            }
            h.finalize()
        });
        let (tx_w, rx_w) = sync_channel::<(usize, Arc<Block>)>(cap);
        let writer = s.spawn(move || -> io::Result<()> {
            if compress {
                out.write_streaming(&lz4frame::frame_header(len))?;
            }
            let mut pending: Vec<Option<Arc<Block>>> = vec![None; nblocks];
            let mut next = 0;
            for (i, b) in rx_w {
                pending[i] = Some(b);
                while next < nblocks {
                    let Some(b) = pending[next].take() else { break };
                    out.write_streaming(&b)?;
                    next += 1;
                }
            }
            if next < nblocks {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "input ended early",
                ));
            }
            if compress {
                out.write_streaming(&lz4frame::END_MARK)?;
            }
            Ok(())
        });
        let (tx_c, rx_c) = sync_channel::<(usize, Arc<Block>)>(READ_AHEAD);
        let rx_c = Arc::new(Mutex::new(rx_c));
        if compress {
            for _ in 0..o.threads.max(1) {
                let (rx_c, tx_w) = (Arc::clone(&rx_c), tx_w.clone());
                let (level, out_pool) = (o.level, &out_pool);
                s.spawn(move || loop {
                    let job = rx_c
                        .lock()
                        .map(|r| r.recv())
                        .unwrap_or(Err(std::sync::mpsc::RecvError));
                    let Ok((i, b)) = job else { break };
                    let mut enc = out_pool.get();
                    lz4frame::encode_block_into(&b, level, &mut enc);
                    drop(b);
                    let enc = Block::Owned(Pooled {
                        data: enc,
                        pool: out_pool,
                    });
                    if tx_w.send((i, Arc::new(enc))).is_err() {
                        break;
                    }
                });
            }
        }
        // Only the workers hold the receiver: when they stop (the writer failed), sending
        // below fails instead of waiting forever for room in the queue.
        drop(rx_c);
        let mut read_err = None;
        let mut done = 0u64;
        for i in 0..nblocks {
            let want = (len - done).min(bs);
            let block = if i == 0 {
                Block::Owned(Pooled {
                    data: std::mem::take(&mut head),
                    pool: &in_pool,
                })
            } else if let Some(m) = &map {
                let at = done as usize;
                mapsource::populate(m, at, want as usize);
                Block::Mapped(&m[at..at + want as usize])
            } else {
                let mut b = in_pool.get();
                b.clear();
                match (&mut *file).take(want).read_to_end(&mut b) {
                    Ok(n) if n as u64 == want => Block::Owned(Pooled {
                        data: b,
                        pool: &in_pool,
                    }),
                    Ok(_) => {
                        read_err = Some(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while being read",
                        ));
                        break;
                    }
                    Err(e) => {
                        read_err = Some(e);
                        break;
                    }
                }
            };
            done += block.len() as u64;
            let b = Arc::new(block);
            let _ = tx_h.send(Arc::clone(&b));
            let sent = if compress {
                tx_c.send((i, b)).is_ok()
            } else {
                tx_w.send((i, b)).is_ok()
            };
            if !sent {
                break; // the writer stopped: its error is reported below
            }
        }
        drop((tx_h, tx_c, tx_w));
        let w = writer.join().expect("writer thread");
        let h = hasher.join().expect("hashing thread");
        if let Some(e) = read_err {
            return Err(StreamError::Read(e));
        }
        w.map_err(StreamError::Write)?;
        Ok(h)
    })
    .map(|h| {
        let leftovers = Leftovers {
            _map: map,
            _pools: [in_pool, out_pool],
        };
        (h, leftovers)
    })
}

fn write_content(
    out: &mut TempFile,
    data: &[u8],
    compress: bool,
    o: &Opts,
) -> Result<[u8; 32], StreamError> {
    write_whole(out, data, compress, o).map_err(StreamError::Write)
}

fn write_whole(out: &mut TempFile, data: &[u8], compress: bool, o: &Opts) -> io::Result<[u8; 32]> {
    std::thread::scope(|s| {
        let hasher = s.spawn(|| -> [u8; 32] { store::content_hash(data) });
        // Writeback starts behind each block, so the final fsync overlaps with compression.
        let mut put = |b: &[u8]| out.write_streaming(b);
        let r = if compress {
            lz4frame::compress_parallel(data, o.level, o.threads, &mut put).map(|_| ())
        } else {
            data.chunks(lz4frame::BLOCK_SIZE).try_for_each(&mut put)
        };
        let h = hasher.join().expect("hashing thread");
        r.map(|()| h)
    })
}

/// The name is archived already: exit 0 only for identical content whose stored copy is
/// intact (then fsync it), refuse anything else (spec §1.4).
fn already_archived(
    name: &str,
    root: &Path,
    dir: &Path,
    existing: &[Entry],
    hash: &[u8; 32],
) -> Result<StoredName, Failure> {
    if existing.len() > 1 {
        return Err(Failure::failed(format!(
            "{name}: archived more than once in {} (run walarchive verify)",
            dir.display()
        )));
    }
    let e = &existing[0];
    if &e.stored.hash != hash {
        return Err(Failure::failed(format!(
            "{name}: already archived with different content (archived BLAKE3 {}, new {}); refused, nothing changed",
            hex(&e.stored.hash),
            hex(hash)
        )));
    }
    // Same BLAKE3 = same content (spec §1.4). The stored copy reached its final name only
    // by a rename after fsync, so it is complete; `verify` re-reads archived files. Make it
    // durable again (the earlier push may have died before its directory fsyncs).
    let f = fs::File::open(&e.path).ctx(e.path.display())?;
    if f.metadata().ctx(e.path.display())?.len() == 0 {
        return Err(Failure::failed(format!(
            "{name}: archived copy {} is empty (run walarchive verify)",
            e.path.display()
        )));
    }
    f.sync_all().ctx(e.path.display())?;
    // The directory entry, and the subdirectory's own entry in the root (its creator may
    // still be before its root fsync); with nothing new to commit these are cheap.
    sync_dirs(dir, root, true)?;
    Ok(e.stored)
}
