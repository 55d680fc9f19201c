//! The archive directory as the subcommands see it: its info file, the entries that hold a
//! WAL name, the stored files of every subdirectory. I/O over `lampvault::wal::store`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use lampvault::wal::store::{ArchiveInfo, StoredName, INFO_FILE, TEMP_PREFIX};

/// A stored file found in the archive.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stored: StoredName,
    pub path: PathBuf,
}

/// Read `DIR/walarchive.info`: `Ok(None)` when it does not exist.
pub fn read_info(root: &Path) -> io::Result<Option<Result<ArchiveInfo, String>>> {
    match fs::read(root.join(INFO_FILE)) {
        Ok(b) => Ok(Some(ArchiveInfo::parse(&b))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The directory a WAL name is stored in.
pub fn dir_for(root: &Path, wal: &lampvault::wal::WalName) -> PathBuf {
    match wal.archive_subdir() {
        Some(s) => root.join(s),
        None => root.to_path_buf(),
    }
}

/// Every stored version of `wal_name` in `dir` (normally zero or one). A missing `dir` is
/// an empty list; any other error is returned. Also returns temporary files' names.
pub fn entries_for(dir: &Path, wal_name: &str) -> io::Result<(Vec<Entry>, Vec<String>)> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    let mut temps = Vec::new();
    for de in rd {
        let de = de?;
        let name = de.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) {
            temps.push(name.to_string());
        } else if StoredName::entry_is_for(name, wal_name) {
            if let Some(stored) = StoredName::parse(name) {
                found.push(Entry {
                    stored,
                    path: dir.join(name),
                });
            }
        }
    }
    Ok((found, temps))
}

/// Everything in the archive: stored files (root + `TTTTTTTTLLLLLLLL` subdirectories) and
/// the paths of things that are neither stored files, temp files nor the info file.
pub struct Scan {
    pub entries: Vec<Entry>,
    pub temps: Vec<PathBuf>,
    pub strangers: Vec<PathBuf>,
}

fn is_subdir_name(n: &str) -> bool {
    n.len() == 16
        && n.bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
}

pub fn scan(root: &Path) -> io::Result<Scan> {
    let mut s = Scan {
        entries: Vec::new(),
        temps: Vec::new(),
        strangers: Vec::new(),
    };
    let mut dirs = vec![];
    for de in fs::read_dir(root)? {
        let de = de?;
        let os = de.file_name();
        let path = root.join(&os);
        let Some(name) = os.to_str() else {
            s.strangers.push(path);
            continue;
        };
        if de.file_type()?.is_dir() && is_subdir_name(name) {
            dirs.push(path);
        } else {
            classify(name, path, None, &mut s);
        }
    }
    dirs.sort();
    for d in dirs {
        for de in fs::read_dir(&d)? {
            let de = de?;
            let os = de.file_name();
            let path = d.join(&os);
            let sub = d.file_name().and_then(|x| x.to_str()).map(str::to_string);
            match os.to_str() {
                Some(name) => classify(name, path, sub.as_deref(), &mut s),
                None => s.strangers.push(path),
            }
        }
    }
    s.entries.sort_by_cached_key(|e| e.stored.wal.to_string());
    Ok(s)
}

/// Sort one directory entry; a stored file in the wrong directory is a stranger (fetch
/// would never find it there).
fn classify(name: &str, path: PathBuf, subdir: Option<&str>, s: &mut Scan) {
    if name.starts_with(TEMP_PREFIX) {
        s.temps.push(path);
    } else if name == INFO_FILE && subdir.is_none() {
        // the archive's metadata
    } else if let Some(stored) =
        StoredName::parse(name).filter(|st| st.wal.archive_subdir().as_deref() == subdir)
    {
        s.entries.push(Entry { stored, path });
    } else {
        s.strangers.push(path);
    }
}
