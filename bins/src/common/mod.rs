//! What every lampvault tool shares: the run loop with its one way to fail, dd-style sizes,
//! `-` paths, progress on a terminal, and man page rendering.
//!
//! A failure prints one stderr line `tool: context: cause` (without Rust's "(os error N)"),
//! and exits with the code it carries: 0 ok, 1 failed, 2 usage, 3–125 tool-specific.

mod failure;
mod paths;
mod progress;
mod size;

pub use failure::{errno_text, Failure, IoContext};
pub use paths::is_stdio;
pub use progress::Progress;
pub use size::{parse_size, parse_size_arg};

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{ArgMatches, Command};

/// What a tool does with SIGPIPE (STYLE.md): data movers die by it like `dd`; fsfreeze and
/// lvsnap ignore it so they cannot die while a filesystem is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigpipe {
    Default,
    Ignore,
}

/// How a tool is run.
pub struct Tool {
    pub name: &'static str,
    pub sigpipe: Sigpipe,
    /// Exit code for an internal error (a panic): 1 for most tools; `walarchive` needs a
    /// code that PostgreSQL cannot mistake for "file missing".
    pub internal_error_code: u8,
}

impl Tool {
    /// Parse argv with `cmd`, call `run`, print its failure, and return the exit code.
    /// `--help`/`--version` go to stdout with exit 0, usage errors to stderr with exit 2.
    pub fn main(
        &self,
        cmd: Command,
        run: impl FnOnce(&ArgMatches) -> Result<u8, Failure>,
    ) -> ExitCode {
        let set = match self.sigpipe {
            Sigpipe::Default => lampvault::sys::signals::sigpipe_default(),
            Sigpipe::Ignore => lampvault::sys::signals::sigpipe_ignore(),
        };
        if let Err(e) = set {
            warn(format_args!(
                "{}: cannot set SIGPIPE disposition: {}",
                self.name,
                e.desc()
            ));
            return ExitCode::from(1);
        }
        let matches = match cmd.try_get_matches() {
            Ok(m) => m,
            Err(e) => {
                let code = if e.use_stderr() { 2 } else { 0 };
                let _ = e.print();
                return ExitCode::from(code);
            }
        };
        let name = self.name;
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            warn(format_args!("{name}: internal error: {msg}{at}"));
        }));
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&matches))) {
            Ok(Ok(code)) => ExitCode::from(code),
            Ok(Err(f)) => {
                if !f.msg.is_empty() {
                    warn(format_args!("{}: {}", self.name, f.msg));
                }
                ExitCode::from(f.code)
            }
            Err(_) => ExitCode::from(self.internal_error_code),
        }
    }
}

/// One line on stderr. Unlike `eprintln!`, a closed or full stderr is ignored rather than a
/// panic: the exit code still tells the caller what happened.
pub fn warn(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{args}");
}

/// `-v/--verbose`: one summary line on stderr (STYLE.md), the same in every tool.
pub fn verbose_arg() -> clap::Arg {
    clap::Arg::new("verbose")
        .short('v')
        .long("verbose")
        .action(clap::ArgAction::SetTrue)
        .help("Print a summary line on stderr")
}

/// True when progress should be shown: asked for, or stderr is a terminal.
pub fn progress_wanted(asked: bool) -> bool {
    asked || std::io::stderr().is_terminal()
}

/// Every page of a tool: `<tool>.<section>` (with the tail) and, as clap_mangen's SUBCOMMANDS
/// section refers to them, one `<tool>-<sub>.<section>` per subcommand with its options.
pub fn render_man_pages(cmd: Command, section: u8, tail: &str) -> Vec<(String, Vec<u8>)> {
    let tool = cmd.get_name().to_string();
    let version = cmd.get_version().map(str::to_string);
    let mut pages = Vec::new();
    for sub in cmd.get_subcommands() {
        let name = format!("{tool}-{}", sub.get_name());
        let mut sub = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("{tool} {}", sub.get_name()));
        if let Some(v) = &version {
            sub = sub.version(v.clone());
        }
        let mut out = Vec::new();
        clap_mangen::Man::new(sub)
            .section(section.to_string())
            .render(&mut out)
            .expect("rendering into a Vec cannot fail");
        pages.push((format!("{name}.{section}"), out));
    }
    let mut cmd = cmd;
    cmd.build();
    let main = {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .section(section.to_string())
            .render(&mut out)
            .expect("rendering into a Vec cannot fail");
        out.extend_from_slice(tail.as_bytes());
        if !tail.ends_with('\n') {
            out.push(b'\n');
        }
        out
    };
    pages.insert(0, (format!("{tool}.{section}"), main));
    pages
}
