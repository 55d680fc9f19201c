//! lvsnap's record of the snapshots it made: one JSON file per snapshot in the state
//! directory (`$LVSNAP_STATE_DIR`, default `/run/lvsnap`).
//!
//! A record is written (state `creating`) *before* the snapshot is taken and replaced
//! atomically (write + rename) as each step completes, so a `kill -9` at any step leaves a
//! record that `lvsnap list` shows and `lvsnap remove` can clean up. The record is
//! removed last, after the snapshot itself.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::common::{Failure, IoContext};

/// One snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub name: String,
    pub backend: String,
    /// What was snapshotted: a subvolume, directory or block device.
    pub origin: String,
    /// Where the snapshot is: a path (btrfs, reflink) or a block device (lvm, dm).
    pub snapshot: String,
    /// `creating`, `ready` (complete), `removing`.
    pub state: String,
    /// Where lvsnap mounted it, if it did.
    #[serde(default)]
    pub mount: Option<String>,
    /// lvm: `VG/LV` of the snapshot; dm: the COW device.
    #[serde(default)]
    pub extra: Option<String>,
    /// dm: spare devices `watch` may append to the COW (`--cow-spare`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spares: Vec<String>,
    /// Unix seconds.
    pub created: u64,
    /// The process that made it (so a leftover can be told from one in progress).
    pub pid: u32,
}

/// The state directory.
pub fn dir() -> PathBuf {
    std::env::var_os("LVSNAP_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/lvsnap"))
}

fn path_of(name: &str) -> PathBuf {
    dir().join(format!("{name}.json"))
}

/// Snapshot names: 1–64 of `[A-Za-z0-9._+-]`, not starting with `-` or `.`.
pub fn check_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(format!("invalid snapshot name '{name}': use 1-64 of A-Z a-z 0-9 . _ + - (not starting with - or .)")))
    }
}

impl Record {
    /// Write (or replace) the record atomically.
    pub fn save(&self) -> Result<(), Failure> {
        let d = dir();
        fs::create_dir_all(&d).ctx(format!("{}: cannot create state directory", d.display()))?;
        let p = path_of(&self.name);
        let tmp = d.join(format!(".{}.json.tmp", self.name));
        let text = serde_json::to_string_pretty(self).expect("a record always serialises");
        fs::write(&tmp, text + "\n").ctx(format!("{}: cannot write", tmp.display()))?;
        fs::rename(&tmp, &p).ctx(format!("{}: cannot write", p.display()))
    }

    /// Write a brand-new record; fails when one with this name exists (name clash).
    pub fn claim(&self) -> Result<(), Failure> {
        let d = dir();
        fs::create_dir_all(&d).ctx(format!("{}: cannot create state directory", d.display()))?;
        let p = path_of(&self.name);
        match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(_) => self.save(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Failure::failed(format!(
                    "{}: a snapshot with this name exists (see lvsnap list)",
                    self.name
                )))
            }
            Err(e) => Err(Failure::io(p.display(), &e)),
        }
    }

    pub fn load(name: &str) -> Result<Record, Failure> {
        let p = path_of(name);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Failure::failed(format!(
                    "{name}: no such snapshot (see lvsnap list)"
                )))
            }
            Err(e) => return Err(Failure::io(p.display(), &e)),
        };
        serde_json::from_str(&text)
            .map_err(|e| Failure::failed(format!("{}: bad record: {e}", p.display())))
    }

    pub fn delete(&self) -> Result<(), Failure> {
        let p = path_of(&self.name);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Failure::io(p.display(), &e)),
            _ => Ok(()),
        }
    }

    /// True when the process that wrote the record is still running (a create in progress).
    pub fn owner_alive(&self) -> bool {
        self.pid != std::process::id()
            && Path::new(&format!("/proc/{}", self.pid)).exists()
            && self.state == "creating"
    }
}

/// Every record, sorted by name.
pub fn all() -> Result<Vec<Record>, Failure> {
    let d = dir();
    let rd = match fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Failure::io(d.display(), &e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.ctx(d.display())?;
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(name) = n.strip_suffix(".json") {
            if !name.starts_with('.') {
                out.push(Record::load(name)?);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
