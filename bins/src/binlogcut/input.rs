//! Loading the named inputs (`-` = stdin) and turning binlog errors into failures with the
//! file name: `FILE: offset N: cause`, exit 1 for "not a (readable) binlog", 3 for damage.

use lampvault::binlog::mapped::{self, Bytes};
use lampvault::binlog::Error;

use crate::common::{is_stdio, Failure, IoContext};

/// Exit code for a damaged binlog (bad CRC, impossible size, truncated closed file).
pub const EXIT_DAMAGED: u8 = 3;
/// Exit code of `verify --strict` (and cut `--strict`) for an unfinished (in-use) file.
pub const EXIT_UNFINISHED: u8 = 4;

pub struct Input {
    pub name: String,
    pub bytes: Bytes,
}

/// Read or map `path` (`populate`: pre-fault the whole map, for full reads).
pub fn load(path: &str, populate: bool) -> Result<Input, Failure> {
    let bytes = if is_stdio(path) {
        mapped::read_all(std::io::stdin().lock()).ctx("-")?
    } else {
        let f = std::fs::File::open(path).ctx(path)?;
        mapped::load(f, populate).ctx(path)?
    };
    Ok(Input {
        name: path.to_string(),
        bytes,
    })
}

/// At most one `-` among the inputs.
pub fn check_stdin_once(files: &[String]) -> Result<(), Failure> {
    if files.iter().filter(|f| is_stdio(f)).count() > 1 {
        return Err(Failure::usage("'-' (stdin) can be named only once"));
    }
    Ok(())
}

/// `name: offset N: cause`, with the exit code that kind of error carries.
pub fn failure(name: &str, e: &Error) -> Failure {
    let code = if e.is_format() { 1 } else { EXIT_DAMAGED };
    Failure::new(code, format!("{name}: {e}"))
}

/// Print a warning line `binlogcut: msg`.
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("binlogcut: {msg}");
}

/// Worker threads for CRC checks and the header hop: the CPUs we may use, at most 4.
/// (Asked once: the answer comes from /proc and cgroup files.)
pub fn threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
    })
}
