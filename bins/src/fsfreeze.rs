//! `fsfreeze`: util-linux's freeze/thaw (`-f`/`-u`, same messages and exit codes), and
//! `fsfreeze run`, a freeze–command–thaw that cannot leave a filesystem frozen.
//!
//! Spec: `shared/specs/snapshots.md` §1 (issue 4). `run` hands freezing and thawing to a
//! watchdog process ([`lampvault::freeze::GuardedFreeze`]) that thaws when COMMAND ends,
//! when the timeout expires, and when this process dies, SIGKILL included (it sees the
//! control pipe close). This process keeps SIGPIPE ignored, receives SIGINT/SIGTERM/SIGHUP
//! through a signalfd, and on one of them thaws first and then re-raises it. Nothing here
//! writes to the frozen filesystems: messages go to stderr only.
//!
//! Deliberate differences from util-linux 2.38: `-f` refuses a directory that is not a mount
//! point (util-linux freezes the filesystem holding it, which may be `/`); errno messages get
//! a hint in parentheses after util-linux's text; an unknown option exits 2 (clap), not 1.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use lampvault::freeze::{
    self, FreezeReport, GuardedFreeze, Target, WatchdogEvent, WatchdogOptions,
};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::common::{errno_text, Failure, Sigpipe, Tool};

/// `run`: the timeout expired; filesystems thawed, COMMAND stopped.
pub const EXIT_TIMEOUT: u8 = 124;
/// `run`: fsfreeze itself failed (a freeze, a thaw, the watchdog); COMMAND did not run or
/// was stopped.
pub const EXIT_RUN_FAILED: u8 = 125;
/// `run`: COMMAND was found but could not be executed.
pub const EXIT_CANNOT_EXEC: u8 = 126;
/// `run`: COMMAND was not found.
pub const EXIT_NOT_FOUND: u8 = 127;
/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: &str = "30s";
/// How long a timed-out COMMAND gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

const EXAMPLES: &str = "\
Examples:
  fsfreeze -f /srv/db && snapshot-the-device; fsfreeze -u /srv/db
  fsfreeze run --timeout 20s /srv/db -- take-array-snapshot db-lun
  fsfreeze run -v /srv/db /srv/wal -- sh -c 'take-snapshot /srv/db && take-snapshot /srv/wal'";

/// Parse a duration: `30` or `30s` (seconds), `500ms`, `2m`, `1h`, `1.5s`. Zero is refused:
/// "no timeout" is not offered.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| {
            format!("invalid duration '{s}': expected a number such as 30s, 500ms, 2m")
        })?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration '{s}': unknown unit '{unit}' (use ms, s, m, h)"
            ))
        }
    };
    if secs > 7.0 * 86400.0 {
        return Err(format!("invalid duration '{s}': longer than a week"));
    }
    let d = Duration::from_secs_f64(secs);
    if d < Duration::from_millis(1) {
        return Err(format!(
            "invalid duration '{s}': must be at least 1ms (there is no \"never thaw\")"
        ));
    }
    Ok(d)
}

pub fn command() -> Command {
    Command::new("fsfreeze")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Suspend and resume access to a filesystem, or run a command while it is frozen")
        .long_about(
            "Suspend (freeze) and resume (thaw) access to a filesystem, as util-linux fsfreeze does, \
             so a block-level snapshot of it is consistent. While a filesystem is frozen every \
             writer blocks in uninterruptible sleep, even against SIGKILL.\n\n\
             `fsfreeze -f` leaves the filesystem frozen until `fsfreeze -u`: if the script between \
             the two dies, the filesystem stays frozen. `fsfreeze run` freezes, runs COMMAND and \
             thaws, and a separate watchdog process guarantees the thaw: when COMMAND ends, when \
             the timeout expires, and when fsfreeze itself is killed, even with SIGKILL.",
        )
        .args_conflicts_with_subcommands(true)
        .disable_help_subcommand(true)
        .after_help(EXAMPLES)
        .arg(
            Arg::new("freeze")
                .short('f')
                .long("freeze")
                .action(ArgAction::SetTrue)
                .help("Freeze the filesystem mounted on MOUNTPOINT (must be a mount point)"),
        )
        .arg(
            Arg::new("unfreeze")
                .short('u')
                .long("unfreeze")
                .action(ArgAction::SetTrue)
                .help("Thaw the filesystem holding MOUNTPOINT"),
        )
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Report on stderr how long each filesystem stayed frozen, in milliseconds"),
        )
        .arg(
            Arg::new("mountpoint")
                .value_name("MOUNTPOINT")
                .num_args(0..)
                .action(ArgAction::Append)
                .value_parser(value_parser!(PathBuf))
                .help("The mount point of the filesystem"),
        )
        .subcommand(
            Command::new("run")
                .about("Freeze every MOUNTPOINT, run COMMAND, thaw in reverse order; exit with COMMAND's status")
                .long_about(
                    "Freeze every MOUNTPOINT in order (if one fails, thaw those already frozen and exit \
                     125 without running COMMAND), run COMMAND, thaw in reverse order, and exit with \
                     COMMAND's status. The freezes belong to a watchdog process, started first, that \
                     holds every mount point open (so none can be unmounted while frozen) and thaws \
                     when COMMAND ends, when the timeout expires (COMMAND then gets SIGTERM, SIGKILL \
                     5 s later, and fsfreeze exits 124), or when fsfreeze dies, SIGKILL included. \
                     SIGINT, SIGTERM and SIGHUP make fsfreeze thaw, pass the signal to COMMAND and \
                     die by it.",
                )
                .arg(
                    Arg::new("timeout")
                        .short('t')
                        .long("timeout")
                        .value_name("DURATION")
                        .default_value(DEFAULT_TIMEOUT)
                        .value_parser(parse_duration)
                        .help("Thaw after DURATION at the latest (30, 30s, 500ms, 2m; 0 is refused)"),
                )
                .arg(
                    Arg::new("mountpoints")
                        .value_name("MOUNTPOINT")
                        .required(true)
                        .num_args(1..)
                        .value_parser(value_parser!(PathBuf))
                        .help("Mount points to freeze, in this order"),
                )
                .arg(
                    Arg::new("command")
                        .value_name("COMMAND")
                        .required(true)
                        .num_args(1..)
                        .last(true)
                        .value_parser(value_parser!(OsString))
                        .help("The command to run while frozen, after --"),
                )
                .after_help(EXAMPLES),
        )
}

pub fn main() -> ExitCode {
    Tool {
        name: "fsfreeze",
        sigpipe: Sigpipe::Ignore,
        internal_error_code: 1,
    }
    .main(command(), run)
}

fn run(m: &ArgMatches) -> Result<u8, Failure> {
    // Print the failure line ourselves: `eprintln!` (in the shared runner) panics on a
    // closed stderr, which would turn e.g. exit 124 into an internal error.
    run_modes(m).map_err(|f| {
        if !f.msg.is_empty() {
            let _ = writeln!(io::stderr(), "fsfreeze: {}", f.msg);
        }
        Failure::new(f.code, "")
    })
}

fn run_modes(m: &ArgMatches) -> Result<u8, Failure> {
    if let Some(("run", sub)) = m.subcommand() {
        return run_guarded(sub, sub.get_flag("verbose") || m.get_flag("verbose"));
    }
    // util-linux's checks, in its order and with its words (exit 1).
    let (f, u) = (m.get_flag("freeze"), m.get_flag("unfreeze"));
    if f && u {
        return Err(Failure::failed(
            "mutually exclusive arguments: --freeze --unfreeze",
        ));
    }
    if !f && !u {
        return Err(Failure::failed("neither --freeze or --unfreeze specified"));
    }
    let paths: Vec<&PathBuf> = m
        .get_many("mountpoint")
        .map(|v| v.collect())
        .unwrap_or_default();
    let path = match paths[..] {
        [] => return Err(Failure::failed("no filename specified")),
        [p] => p,
        _ => return Err(Failure::failed("unexpected number of arguments")),
    };
    let verbose = m.get_flag("verbose");
    let fail = |e: freeze::FreezeError| Failure::failed(e.to_string());
    if f {
        let t = Target::open_mount_point(path).map_err(fail)?;
        let start = Instant::now();
        t.freeze().map_err(fail)?;
        if verbose {
            eprintln!(
                "fsfreeze: {}: frozen (freeze took {})",
                path.display(),
                ms(start.elapsed())
            );
        }
    } else {
        let start = Instant::now();
        freeze::thaw(path).map_err(fail)?;
        if verbose {
            eprintln!(
                "fsfreeze: {}: thawed (thaw took {})",
                path.display(),
                ms(start.elapsed())
            );
        }
    }
    Ok(0)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// How `run` ended, before the thaw reports are looked at.
enum Outcome {
    Exited(ExitStatus),
    Signal(Signal),
    TimedOut,
    WatchdogDied,
}

fn run_failed(msg: impl Into<String>) -> Failure {
    Failure::new(EXIT_RUN_FAILED, msg)
}

/// Print the `-v` lines and every thaw failure; true when all filesystems are thawed.
fn report(reports: &[FreezeReport], verbose: bool) -> bool {
    let mut ok = true;
    for r in reports {
        if verbose {
            let note = match r.thaw_errno {
                None => String::new(),
                Some(Errno::EINVAL) => "; somebody else thawed it first".to_string(),
                Some(e) => format!("; thaw failed: {}", freeze::strerror(e)),
            };
            // Not eprintln!: it panics on a closed stderr, and SIGPIPE is ignored on purpose.
            let _ = writeln!(
                io::stderr(),
                "fsfreeze: {}: frozen for {} (freeze {}, thaw {}{note})",
                r.path.display(),
                ms(r.frozen),
                ms(r.freeze_call),
                ms(r.thaw_call)
            );
        }
        if let Some(e) = r.error() {
            let _ = writeln!(io::stderr(), "fsfreeze: {e}");
            ok = false;
        }
    }
    ok
}

/// Read every pending signal; the first terminating one wins, SIGCHLD sets `chld`.
fn pending_signals(sfd: &mut SignalFd, chld: &mut bool) -> Option<Signal> {
    let mut term = None;
    while let Ok(Some(info)) = sfd.read_signal() {
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGCHLD) => *chld = true,
            Ok(sig) => {
                term.get_or_insert(sig);
            }
            Err(_) => {}
        }
    }
    term
}

/// SIGTERM, then SIGKILL after [`KILL_GRACE`]; reaps the child.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < KILL_GRACE {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn run_guarded(m: &ArgMatches, verbose: bool) -> Result<u8, Failure> {
    let timeout = *m.get_one::<Duration>("timeout").expect("has a default");
    let paths: Vec<&PathBuf> = m.get_many("mountpoints").expect("required").collect();
    let argv: Vec<&OsString> = m.get_many("command").expect("required").collect();

    let mut targets = Vec::new();
    for p in &paths {
        targets.push(Target::open_mount_point(p).map_err(|e| run_failed(e.to_string()))?);
    }
    freeze::check_distinct(&targets).map_err(|e| run_failed(e.to_string()))?;

    // Block the signals we handle before anything is frozen: from here on they queue on the
    // signalfd and can never kill us between a freeze and its thaw. Children get a clean
    // mask: std would pass this one on, so COMMAND is spawned with an empty one, and the
    // watchdog resets its own.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| run_failed(format!("cannot block signals: {}", e.desc())))?;
    let mut sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| run_failed(format!("signalfd: {}", e.desc())))?;

    let opts = WatchdogOptions {
        timeout,
        orphan_log_name: Some("fsfreeze".to_string()),
    };
    let mut guard = GuardedFreeze::spawn(targets, opts).map_err(|e| run_failed(e.to_string()))?;
    if let Err(e) = guard.freeze_all() {
        report(&guard.thaw_all(), verbose);
        return Err(run_failed(e.to_string()));
    }
    let mut chld = false;
    if let Some(sig) = pending_signals(&mut sfd, &mut chld) {
        report(&guard.thaw_all(), verbose);
        lampvault::sys::watchdog::die_by_signal(sig);
    }

    let mut cmd = std::process::Command::new(argv[0]);
    cmd.args(&argv[1..]);
    let mut child = match lampvault::sys::watchdog::exec_with_empty_sigmask(&mut cmd).spawn() {
        Ok(c) => c,
        Err(e) => {
            report(&guard.thaw_all(), verbose);
            let code = if e.kind() == io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXEC
            };
            return Err(Failure::new(
                code,
                format!("{}: {}", argv[0].to_string_lossy(), errno_text(&e)),
            ));
        }
    };

    let outcome = loop {
        if chld {
            chld = false;
            if let Ok(Some(st)) = child.try_wait() {
                break Outcome::Exited(st);
            }
        }
        let (sig_ready, wd_ready) = {
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(guard.event_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // Cannot wait any more: thaw now rather than leave it to the timeout.
                    eprintln!("fsfreeze: poll: {}", e.desc());
                    stop(&mut child);
                    break Outcome::WatchdogDied;
                }
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if sig_ready {
            if let Some(sig) = pending_signals(&mut sfd, &mut chld) {
                break Outcome::Signal(sig);
            }
        }
        if wd_ready {
            match guard.check() {
                Some(WatchdogEvent::TimedOut) => {
                    stop(&mut child);
                    break Outcome::TimedOut;
                }
                Some(_) => {
                    stop(&mut child);
                    break Outcome::WatchdogDied;
                }
                None => {}
            }
        }
    };

    let all_thawed = report(&guard.thaw_all(), verbose);
    let cmd = argv[0].to_string_lossy();
    match outcome {
        Outcome::Signal(sig) => {
            let _ = kill(Pid::from_raw(child.id() as i32), sig);
            lampvault::sys::watchdog::die_by_signal(sig);
        }
        Outcome::TimedOut => Err(Failure::new(
            EXIT_TIMEOUT,
            format!(
                "timeout after {}: filesystems thawed, {cmd} stopped",
                humantime(timeout)
            ),
        )),
        Outcome::WatchdogDied => Err(run_failed(format!(
            "the watchdog process died: filesystems thawed early, {cmd} stopped"
        ))),
        Outcome::Exited(_) if !all_thawed => Err(run_failed("")),
        Outcome::Exited(st) => {
            use std::os::unix::process::ExitStatusExt;
            match (st.code(), st.signal()) {
                (Some(c), _) => Ok(c as u8),
                (None, Some(s)) => Ok(128u8.saturating_add(s as u8)),
                _ => Ok(EXIT_RUN_FAILED),
            }
        }
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

pub const MAN_TAIL: &str = r#".SH "EXIT STATUS"
.TP
.B 0
\fB\-f\fR/\fB\-u\fR: success.
.TP
.B 1
\fB\-f\fR/\fB\-u\fR: failure, as util\-linux fsfreeze: already frozen (EBUSY), not frozen
(EINVAL on thaw), filesystem cannot be frozen (EOPNOTSUPP), not a mount point, no such path,
not a directory, not permitted (EPERM: needs CAP_SYS_ADMIN), bad arguments.
.TP
.B 2
An unknown option or a bad option value (util\-linux says 1 here).
.PP
\fBrun\fR exits with COMMAND's exit status, or:
.TP
.B 124
The timeout expired: the filesystems were thawed, COMMAND got SIGTERM (SIGKILL 5 s later).
.TP
.B 125
fsfreeze itself failed: a MOUNTPOINT could not be opened or frozen (those already frozen were
thawed and COMMAND did not run), a thaw failed, or the watchdog died (filesystems thawed early,
COMMAND stopped).
.TP
.B 126
COMMAND could not be executed.
.TP
.B 127
COMMAND was not found.
.TP
.B 128+N
COMMAND was killed by signal N. When fsfreeze itself gets SIGINT, SIGTERM or SIGHUP it thaws,
passes the signal to COMMAND and dies by that signal.
.SH NOTES
While a filesystem is frozen its writers sleep uninterruptibly: not even SIGKILL ends them.
A frozen filesystem can be unmounted and then stays frozen with no path to thaw it; the
\fBrun\fR watchdog keeps every mount point open, so it cannot be unmounted while frozen.
Do not redirect fsfreeze's stderr to a file on a filesystem it freezes.
.PP
Do not freeze around \fBlvcreate \-s\fR: LVM freezes the filesystem itself, and on Linux 6.1 a
filesystem frozen beforehand makes the snapshot fail. Do not freeze around a btrfs snapshot
or a reflink copy: both block on a frozen filesystem.
.PP
\fB\-f\fR refuses a directory that is not a mount point (util\-linux freezes the filesystem
holding it, which may be the root filesystem); \fB\-u\fR accepts any directory of the
filesystem. A MOUNTPOINT named \fIrun\fR must be written \fI./run\fR.
.SH EXAMPLES
Freeze, snapshot, thaw; the filesystem is thawed even if the snapshot command hangs (after
20 s) or the shell running this is killed:
.PP
.nf
.RS
fsfreeze run \-\-timeout 20s /srv/db \-\- take\-array\-snapshot db\-lun
.RE
.fi
.PP
How long were writers blocked?
.PP
.nf
.RS
$ fsfreeze run \-v /srv/db \-\- true
fsfreeze: /srv/db: frozen for 41.207 ms (freeze 40.611 ms, thaw 0.412 ms)
.RE
.fi
.PP
The util\-linux way (nothing thaws the filesystem if the script dies in between):
.PP
.nf
.RS
fsfreeze \-f /srv/db; take\-snapshot; fsfreeze \-u /srv/db
.RE
.fi
.SH "SEE ALSO"
fsfreeze(8) from util\-linux, xfs_freeze(8), lvcreate(8)
"#;
