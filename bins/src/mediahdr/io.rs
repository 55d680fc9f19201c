//! Inputs and outputs as plain `File`s (stdin/stdout are duplicated, so a redirected stdout
//! can be rewritten at the header's offset like a named file), with their kind.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek};
use std::os::fd::AsFd;
use std::path::Path;

use lampvault::blockio::{open_direct, DirectFile};
use lampvault::sys::fdkind::{fd_kind, FdKind};
use lampvault::sys::writeback::FlushEvery;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::common::{is_stdio, Failure, IoContext};

/// An opened end of the pipeline.
pub struct End {
    pub file: File,
    pub kind: FdKind,
    /// For messages: the path, or "stdin"/"stdout".
    pub name: String,
}

fn kind_of(file: &File, name: &str) -> Result<FdKind, Failure> {
    fd_kind(file.as_fd()).map_err(|e| Failure::failed(format!("{name}: {}", e.desc())))
}

/// Open IN (`-` = stdin) for reading.
pub fn open_in(path: &str) -> Result<End, Failure> {
    let (file, name) = if is_stdio(path) {
        (
            io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .ctx("stdin")?,
            "stdin".to_string(),
        )
    } else {
        (File::open(path).ctx(path)?, path.to_string())
    };
    let kind = kind_of(&file, &name)?;
    if kind == FdKind::Directory {
        return Err(Failure::failed(format!("{name}: Is a directory")));
    }
    Ok(End { file, kind, name })
}

/// Where the output goes.
pub enum Out {
    Plain(File),
    Direct(DirectFile),
}

impl io::Write for Out {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Out::Plain(f) => f.write(b),
            Out::Direct(f) => f.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Open OUT (`-` = stdout) for writing: files are created/truncated, devices opened as they
/// are (`direct`: O_DIRECT, for block devices).
pub fn open_out(path: &str, direct: bool) -> Result<(End, Option<DirectFile>), Failure> {
    if is_stdio(path) {
        if direct {
            return Err(Failure::usage("--direct needs -o DEVICE, not stdout"));
        }
        let file = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .ctx("stdout")?;
        let kind = kind_of(&file, "stdout")?;
        return Ok((
            End {
                file,
                kind,
                name: "stdout".into(),
            },
            None,
        ));
    }
    let p = Path::new(path);
    if direct {
        let d = open_direct(p).ctx(path)?;
        // A second, buffered descriptor: for fstat and for rewriting the header at the end.
        let probe = OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .ctx(path)?;
        let kind = kind_of(&probe, path)?;
        if kind != FdKind::BlockDevice {
            return Err(Failure::usage(format!(
                "{path}: --direct is for block devices"
            )));
        }
        return Ok((
            End {
                file: probe,
                kind,
                name: path.into(),
            },
            Some(d),
        ));
    }
    // Devices must not be created or truncated; regular files are.
    let existing_dev = std::fs::metadata(p)
        .map(|m| !m.is_file() && !m.is_dir())
        .unwrap_or(false);
    let file = if existing_dev {
        OpenOptions::new().write(true).open(p)
    } else {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(p)
    }
    .ctx(path)?;
    let kind = kind_of(&file, path)?;
    Ok((
        End {
            file,
            kind,
            name: path.into(),
        },
        None,
    ))
}

/// The offset where a header written now can be rewritten later, if it can: a regular file
/// or block device not opened with O_APPEND (where pwrite would append on Linux).
pub fn rewrite_offset(end: &mut End) -> Option<u64> {
    if !end.kind.is_seekable() {
        return None;
    }
    let flags = fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&end.file),
        FcntlArg::F_GETFL,
    )
    .ok()?;
    if OFlag::from_bits_truncate(flags).contains(OFlag::O_APPEND) {
        return None;
    }
    end.file.stream_position().ok()
}

/// Flushes OUT behind the writer and fsyncs it at the end when OUT is a regular file or
/// block device named with `-o` (not stdout, a pipe or a tape), unless `--no-sync`: a write
/// error that the kernel reports only at writeback (a failing disk) then fails the command
/// instead of being lost after exit 0.
pub struct Durable {
    file: Option<File>,
    behind: FlushEvery,
}

impl Durable {
    pub fn new(out: &End, sync: bool) -> Result<Durable, Failure> {
        let wanted = sync
            && out.name != "stdout"
            && matches!(out.kind, FdKind::Regular | FdKind::BlockDevice);
        let file = if wanted {
            Some(out.file.try_clone().ctx(&out.name)?)
        } else {
            None
        };
        Ok(Durable {
            file,
            behind: FlushEvery::default(),
        })
    }

    /// `n` more bytes were written.
    pub fn wrote(&mut self, n: usize) {
        if let Some(f) = &self.file {
            self.behind.wrote(f, n);
        }
    }

    /// fsync OUT (when it is durable), after the flushing thread has ended.
    pub fn sync(mut self, name: &str) -> Result<(), Failure> {
        self.behind.stop();
        match &self.file {
            Some(f) => f.sync_all().ctx(name),
            None => Ok(()),
        }
    }
}

/// Removes an output file this run created, unless [`keep`](Partial::keep) is called: a
/// failed `write` or `payload` leaves no partial media file behind to be trusted later.
/// Devices and stdout are never removed.
pub struct Partial(Option<std::path::PathBuf>);

impl Partial {
    pub fn new(out: &End, path: &str) -> Partial {
        Partial((out.kind == FdKind::Regular && !is_stdio(path)).then(|| path.into()))
    }

    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
