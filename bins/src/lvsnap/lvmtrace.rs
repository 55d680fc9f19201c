//! `--hold-mode suspend` on the lvm backend: hold the database lock only around LVM's own
//! suspend of the origin, not around the whole `lvcreate -s`.
//!
//! `lvcreate -s` spends most of its time before the suspend (scanning, metadata, activating
//! and zeroing the COW, creating `-real`) and only needs writers quiesced between its
//! `DM_DEV_SUSPEND` of the origin (lockfs: the freeze) and the resume that swaps in the
//! snapshot-origin table. So lvcreate runs under a tracer process (`lvsnap __trace`,
//! [`tracer_main`]) that stops it at every `DM_DEV_SUSPEND` ioctl only
//! (`lampvault::sys::ioctltrace`: seccomp filter + ptrace; no cost for other calls) and
//! tells lvsnap, over a pipe, line by line:
//!
//! * `STARTED` — lvcreate runs traced; `UNAVAILABLE <why>` — tracing is not possible here
//!   (EPERM in a container...): lvsnap falls back to `--hold-mode whole` with a warning.
//! * `SUSPEND` — lvcreate is stopped just before its first suspend of the ORIGIN (matched
//!   by dm uuid, name or device number). lvsnap starts the hold command, waits for READY
//!   (lock taken) and answers `GO`; the tracer lets the suspend run.
//! * `RESUMED <ret>` — the origin's resume (`DM_DEV_SUSPEND` without DM_SUSPEND_FLAG) has
//!   *returned* and the tracer checked that the origin now runs with a snapshot-origin
//!   table (the snapshot is live, the filesystem thawed); a resume that did not get there
//!   is not reported and the lock stays held. lvsnap releases the lock now. Releasing right before the resume would also be consistent
//!   (the lockfs suspend froze the filesystem, so writers block until the resume swapped
//!   the table in), but it depends on lockfs and gains writers nothing: they stay blocked
//!   on the frozen filesystem until the resume anyway. After it, consistency depends on
//!   nothing.
//! * the tracer exits with lvcreate's status.
//!
//! Failure modes: a hold command that fails or times out while lvcreate is stopped at the
//! suspend does not make the ioctl fail (a failed suspend makes lvcreate stop with "Manual
//! intervention required", devices left behind, specs §1): lvcreate is let go, then
//! lvsnap removes the snapshot and reports the hold's failure. lvcreate failing before it
//! suspends: no lock is ever taken. lvcreate that ends without lvsnap seeing the origin's
//! suspend and resume (another LVM) is an error and the snapshot is removed. lvsnap killed
//! (even SIGKILL): the tracer is a separate process that ignores SIGINT/SIGTERM/SIGHUP and
//! keeps tracing until lvcreate exits, answering every stop itself — a filtered lvcreate
//! without a tracer would get ENOSYS for its remaining suspends *and resumes* and leave the
//! origin suspended; the hold sees EOF (lock released); the record shows the leftover
//! snapshot as incomplete.
//!
//! The seccomp filter is inherited by everything lvcreate starts and outlives the tracer:
//! a daemon started from the traced lvcreate (dmeventd) would get ENOSYS for its own
//! suspends and resumes later (e.g. a snapshot autoextend). lvcreate runs with
//! `--monitor n`, so it starts no dmeventd; monitoring is enabled afterwards by an untraced
//! `lvchange --monitor y` (`ops::after_release`). Keep it that way.

use std::io::{BufRead, Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use lampvault::sys::dm::{flag, request_code, Cmd, HEADER_SIZE};
use lampvault::sys::ioctltrace::{self, Event};
use lampvault::sys::termsig::TermSignals;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::{backend, hold, Stop};
use crate::common::Failure;

/// Exit status of the tracer when tracing is not possible (after printing UNAVAILABLE).
const UNAVAILABLE: u8 = 97;

/// What a traced lvcreate measured.
pub struct Times {
    /// READY → the hold command's exit after release.
    pub lock_held: Duration,
    /// lvsnap's GO for the origin's suspend → its resume returned (an upper bound of the
    /// freeze, exact to a pipe round trip).
    pub suspended: Duration,
}

pub enum Outcome {
    Done(Times),
    /// Tracing is not possible here; nothing was run.
    Unavailable(String),
}

/// Which dm device is the origin, as `struct dm_ioctl` may name it.
struct OriginId {
    uuid: String,
    name: String,
    dev: u64,
}

impl OriginId {
    fn matches(&self, hdr: &[u8]) -> bool {
        if hdr.len() < HEADER_SIZE {
            return false;
        }
        let cstr = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let dev = u64::from_ne_bytes(hdr[40..48].try_into().expect("8 bytes"));
        let name = cstr(&hdr[48..176]);
        let uuid = cstr(&hdr[176..305]);
        if !uuid.is_empty() {
            return uuid == self.uuid;
        }
        if !name.is_empty() {
            return name == self.name;
        }
        dev != 0 && dev == self.dev
    }
}

fn flags(hdr: &[u8]) -> u32 {
    hdr.get(28..32)
        .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

/// `lvsnap __trace --uuid U --dm-name N --dev D -- lvcreate ARGS...`: run lvcreate traced
/// and talk to lvsnap on stdin/stdout (see the module doc). Exit status = lvcreate's.
pub fn tracer_main(uuid: &str, name: &str, dev: u64, argv: &[String]) -> Result<u8, Failure> {
    let _ = lampvault::sys::signals::ignore_term_signals();
    let origin = OriginId {
        uuid: uuid.to_string(),
        name: name.to_string(),
        dev,
    };
    let mut out = std::io::stdout();
    // Write failures mean lvsnap is gone: go on alone.
    let mut say = |s: &str| {
        let _ = out.write_all(format!("{s}\n").as_bytes());
        let _ = out.flush();
    };
    let answer = || {
        let mut l = String::new();
        let _ = std::io::stdin().lock().read_line(&mut l);
        l
    };
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Failure::usage("__trace: no command"))?;
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::io("dup", &e))?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout));
    let mut t = match ioctltrace::spawn(&mut cmd, request_code(Cmd::DevSuspend)) {
        Ok(t) => t,
        Err(e) => {
            say(&format!("UNAVAILABLE {}", crate::common::errno_text(&e)));
            return Ok(UNAVAILABLE);
        }
    };
    say("STARTED");
    let pause = std::env::var("LVSNAP_TEST_PAUSE").ok();
    let (mut suspended, mut resumed) = (false, false);
    let mut returning = None;
    loop {
        match t
            .wait_event()
            .map_err(|e| Failure::failed(format!("tracing lvcreate: {}", e.desc())))?
        {
            Event::Ioctl { pid, arg, .. } => {
                let hdr = t.read(pid, arg, HEADER_SIZE).unwrap_or_default();
                let is_origin = origin.matches(&hdr);
                let suspend = flags(&hdr) & flag::SUSPEND != 0;
                if is_origin && suspend && !suspended {
                    suspended = true;
                    say("SUSPEND");
                    answer();
                    resume(&t, pid)?;
                } else if is_origin && !suspend && suspended && !resumed {
                    resumed = true;
                    if pause.as_deref() == Some("suspended") {
                        say("PAUSED");
                        answer();
                    }
                    returning = Some(pid);
                    t.resume_to_return(pid)
                        .map_err(|e| Failure::failed(format!("tracing lvcreate: {}", e.desc())))?;
                } else {
                    resume(&t, pid)?;
                }
            }
            Event::Returned { pid, ret } => {
                if returning == Some(pid) {
                    returning = None;
                    // Only a resume that made the snapshot live ends the lock window: the
                    // origin's active table is now snapshot-origin and it runs. Otherwise
                    // (a failed resume, or an LVM that suspends the origin more than once)
                    // wait for a later resume of the origin; lvsnap keeps the lock.
                    if ret == 0 && snapshot_live(&origin.name) {
                        say(&format!("RESUMED {ret}"));
                    } else {
                        resumed = false;
                    }
                }
                resume(&t, pid)?;
            }
            Event::Exited(code) => return Ok(code.clamp(0, 255) as u8),
        }
    }
}

/// The origin `name` runs with a snapshot-origin table.
fn snapshot_live(name: &str) -> bool {
    let Ok(ctl) = lampvault::dm::Control::open() else {
        return false;
    };
    match ctl.table(name) {
        Ok((info, t)) => !info.suspended() && t.iter().any(|t| t.kind == "snapshot-origin"),
        Err(_) => false,
    }
}

fn resume(t: &ioctltrace::Traced, pid: nix::unistd::Pid) -> Result<(), Failure> {
    t.resume(pid)
        .map_err(|e| Failure::failed(format!("tracing lvcreate: {}", e.desc())))
}

/// Lines from the tracer, watching for signals meanwhile.
struct Lines {
    out: ChildStdout,
    buf: Vec<u8>,
}

enum Got {
    Line(String),
    Signal(Signal),
    Eof,
}

impl Lines {
    fn next(&mut self, sig: Option<&mut TermSignals>) -> Result<Got, Failure> {
        let mut sig = sig;
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Ok(Got::Line(
                    String::from_utf8_lossy(&line[..line.len() - 1]).into_owned(),
                ));
            }
            if let Some(s) = sig.as_mut().and_then(|s| s.pending()) {
                return Ok(Got::Signal(s));
            }
            let ready = {
                let mut fds = vec![PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
                if let Some(s) = sig.as_ref() {
                    fds.push(PollFd::new(s.fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::from(1000u16)) {
                    Err(nix::errno::Errno::EINTR) | Ok(0) => false,
                    Err(e) => return Err(Failure::failed(format!("poll: {}", e.desc()))),
                    Ok(_) => fds[0].revents().map(|r| !r.is_empty()).unwrap_or(false),
                }
            };
            if ready {
                let mut chunk = [0u8; 512];
                match self.out.read(&mut chunk) {
                    Ok(0) => return Ok(Got::Eof),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Failure::io("lvcreate tracer", &e)),
                }
            }
        }
    }
}

/// Run `lvcreate ARGS` traced and hold the lock of `hold_cmd` only around its suspend of
/// `origin`. `made` is set once lvcreate succeeded (the caller removes the snapshot when an
/// error is returned after that).
pub fn lvcreate_held(
    args: &[String],
    origin: &Path,
    hold_cmd: &str,
    hold_timeout: Duration,
    sig: &mut TermSignals,
    made: &mut bool,
) -> Result<Outcome, Stop> {
    let o = origin.display();
    let (ma, mi) = backend::block_devno(origin)
        .ok_or_else(|| Failure::failed(format!("{o}: not a block device")))?;
    let (name, uuid) = backend::dm_name_uuid(origin).unwrap_or_default();
    let exe = std::env::current_exe()
        .map_err(|e| Failure::io("cannot find lvsnap's own executable", &e))?;
    // lvcreate's (and the tracer's) messages go to a memory file, read back on failure.
    let errfd = nix::sys::memfd::memfd_create(
        c"lvcreate-stderr",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| Failure::failed(format!("memfd_create: {}", e.desc())))?;
    let mut errfile = std::fs::File::from(errfd);
    let child_err = errfile.try_clone().map_err(|e| Failure::io("memfd", &e))?;
    let mut child = Command::new(exe)
        .arg("__trace")
        .args(["--uuid", &uuid, "--dm-name", &name, "--dev"])
        .arg(libc::makedev(ma, mi).to_string())
        .arg("--")
        .arg("lvcreate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(child_err))
        .spawn()
        .map_err(|e| Failure::io("lvcreate tracer", &e))?;
    let mut to = child.stdin.take();
    let mut lines = Lines {
        out: child.stdout.take().expect("piped"),
        buf: Vec::new(),
    };
    let mut stop: Option<Signal> = None;
    let mut err: Option<Failure> = None;
    let mut hold: Option<hold::Hold> = None;
    let mut lock_held = None;
    let mut suspended = None;
    let mut go_at = None;
    let mut saw_suspend = false;
    let mut unavailable = None;
    let send = |to: &mut Option<std::process::ChildStdin>, s: &str| {
        if let Some(w) = to.as_mut() {
            let _ = w.write_all(s.as_bytes()).and_then(|_| w.flush());
        }
    };
    loop {
        let got = lines.next(if stop.is_none() {
            Some(&mut *sig)
        } else {
            None
        })?;
        match got {
            Got::Eof => break,
            Got::Signal(s) => {
                // The lock first: it blocks the database. The snapshot is removed later.
                stop = Some(s);
                drop(hold.take());
            }
            Got::Line(l) if l.starts_with("UNAVAILABLE") => {
                unavailable = Some(l["UNAVAILABLE".len()..].trim().to_string());
            }
            Got::Line(l) if l == "SUSPEND" => {
                saw_suspend = true;
                if stop.is_none() && err.is_none() {
                    match hold::Hold::start(hold_cmd) {
                        Err(f) => err = Some(f),
                        Ok(h) => match hold.insert(h).wait_ready(sig, hold_timeout) {
                            Ok(()) => {}
                            Err(hold::WaitError::Failed(f)) => {
                                err = Some(f);
                                hold = None;
                            }
                            Err(hold::WaitError::Signal(s)) => {
                                stop = Some(s);
                                hold = None;
                            }
                        },
                    }
                }
                if hold.is_some() {
                    if let Err(Stop::Signal(s)) = super::pause_sig("held", sig) {
                        stop = Some(s);
                        drop(hold.take());
                    }
                }
                // Let the suspend run even when the hold failed: a failed suspend leaves
                // LVM devices behind; a made snapshot is removed cleanly below.
                go_at = Some(Instant::now());
                send(&mut to, "GO\n");
            }
            Got::Line(l) if l == "PAUSED" => {
                if let Err(Stop::Signal(s)) = super::pause_sig("suspended", sig) {
                    stop = Some(s);
                    drop(hold.take());
                }
                send(&mut to, "GO\n");
            }
            Got::Line(l) if l.starts_with("RESUMED") => {
                suspended = go_at.map(|t| t.elapsed());
                if let Some(mut h) = hold.take() {
                    match h.release() {
                        Ok(d) => lock_held = Some(d),
                        Err(f) => {
                            err.get_or_insert(f);
                        }
                    }
                }
            }
            Got::Line(_) => {}
        }
    }
    drop(to);
    drop(hold.take());
    let st = child
        .wait()
        .map_err(|e| Failure::io("lvcreate tracer", &e))?;
    if let Some(why) = unavailable {
        return Ok(Outcome::Unavailable(why));
    }
    if st.success() {
        *made = true;
    }
    if let Some(s) = stop {
        return Err(Stop::Signal(s));
    }
    if let Some(f) = err {
        return Err(f.into());
    }
    if !st.success() {
        let mut text = String::new();
        let _ = errfile.rewind();
        let _ = errfile.read_to_string(&mut text);
        let last = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("failed");
        return Err(Failure::failed(format!("lvcreate: {last}")).into());
    }
    match (saw_suspend, lock_held, suspended) {
        (true, Some(lock_held), Some(suspended)) => Ok(Outcome::Done(Times {
            lock_held,
            suspended,
        })),
        _ => Err(Failure::failed(format!(
            "lvcreate made the snapshot without lvsnap seeing it suspend and resume {o} (another LVM version?), so it was taken without the lock and is removed: use --hold-mode whole"
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(flags: u32, dev: u64, name: &str, uuid: &str) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_SIZE];
        h[28..32].copy_from_slice(&flags.to_ne_bytes());
        h[40..48].copy_from_slice(&dev.to_ne_bytes());
        h[48..48 + name.len()].copy_from_slice(name.as_bytes());
        h[176..176 + uuid.len()].copy_from_slice(uuid.as_bytes());
        h
    }

    #[test]
    fn origin_is_matched_by_uuid_then_name_then_dev() {
        let o = OriginId {
            uuid: "LVM-abc".into(),
            name: "vg0-data".into(),
            dev: libc::makedev(253, 0),
        };
        assert!(o.matches(&hdr(2, 0, "", "LVM-abc")));
        assert!(!o.matches(&hdr(2, 0, "vg0-data", "LVM-abc-real")));
        assert!(o.matches(&hdr(2, 0, "vg0-data", "")));
        assert!(!o.matches(&hdr(2, 0, "vg0-data-real", "")));
        assert!(o.matches(&hdr(2, libc::makedev(253, 0), "", "")));
        assert!(!o.matches(&hdr(2, 0, "", "")));
        assert!(!o.matches(&[0u8; 100]));
        assert_eq!(flags(&hdr(2, 0, "", "")) & flag::SUSPEND, flag::SUSPEND);
    }
}
