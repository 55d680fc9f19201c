//! The owner's side of the freeze watchdog ([`crate::sys::watchdog`] is the child's side).
//!
//! [`GuardedFreeze::spawn`] forks the watchdog with every target opened; from then on only
//! the watchdog freezes and thaws, so it knows exactly which freezes are its own to undo.
//! The owner asks for each freeze and reads the result; the watchdog thaws on
//! [`GuardedFreeze::thaw_all`], on drop, at the deadline, or when the owner dies (control
//! pipe EOF). If the watchdog itself dies (status pipe EOF), the owner thaws with its own
//! fds. EINVAL from a thaw means somebody thawed first: reported, not an error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::{FreezeError, Target};
use crate::sys::watchdog::{self as child, now_ns, Reason, Record, CMD_FREEZE, CMD_THAW};

/// How the watchdog behaves.
#[derive(Debug, Clone)]
pub struct WatchdogOptions {
    /// Longest time the filesystems may stay frozen, counted from the start of the first
    /// freeze. Must be > 0.
    pub timeout: Duration,
    /// When set (e.g. `"fsfreeze"`), an orphaned watchdog (its owner died) writes one line
    /// per thawed filesystem to stderr: `fsfreeze: /mnt: watchdog: owner process died;
    /// thawed after 812 ms`.
    pub orphan_log_name: Option<String>,
}

impl WatchdogOptions {
    pub fn new(timeout: Duration) -> WatchdogOptions {
        WatchdogOptions {
            timeout,
            orphan_log_name: None,
        }
    }
}

/// Why a filesystem was thawed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThawCause {
    /// [`GuardedFreeze::thaw_all`], drop, or a failed freeze of a later target.
    Asked,
    /// The timeout expired.
    Timeout,
    /// The watchdog found its owner gone (never seen by the owner itself).
    OwnerGone,
    /// The watchdog died; the owner thawed with its own fd.
    WatchdogDied,
}

/// What happened to one frozen filesystem.
#[derive(Debug, Clone)]
pub struct FreezeReport {
    pub path: PathBuf,
    pub mount_point: PathBuf,
    /// From the start of FIFREEZE to the end of FITHAW: how long writers were blocked.
    pub frozen: Duration,
    /// How long the FIFREEZE call took (mostly syncing dirty data).
    pub freeze_call: Duration,
    /// How long the FITHAW call took.
    pub thaw_call: Duration,
    /// `None`: thawed. `Some(EINVAL)`: already thawed by someone else. Other: thaw failed.
    pub thaw_errno: Option<Errno>,
    pub cause: ThawCause,
}

impl FreezeReport {
    /// The thaw failure, if the filesystem may still be frozen (EINVAL = already thawed).
    pub fn error(&self) -> Option<FreezeError> {
        match self.thaw_errno {
            None | Some(Errno::EINVAL) => None,
            Some(errno) => Some(FreezeError::Thaw {
                path: self.path.clone(),
                errno,
            }),
        }
    }
}

/// Something the watchdog did on its own.
#[derive(Debug)]
pub enum WatchdogEvent {
    /// Thawed because the owner asked (`thaw_all`, drop, or a failed freeze).
    Thawed,
    /// The deadline passed; everything is thawed.
    TimedOut,
    /// The watchdog process died; the owner thawed with its own fds.
    Died,
}

/// Filesystems frozen by a watchdog process; see the module doc.
pub struct GuardedFreeze {
    targets: Vec<Target>,
    pid: Pid,
    control: Option<File>,
    status: File,
    /// Per target: (start, end) of a successful FIFREEZE, CLOCK_MONOTONIC ns.
    frozen: Vec<Option<(u64, u64)>>,
    attempted: usize,
    reports: Vec<FreezeReport>,
    finished: Option<WatchdogEvent>,
    reaped: bool,
}

fn watchdog_err(detail: impl Into<String>) -> FreezeError {
    FreezeError::Watchdog {
        detail: detail.into(),
    }
}

impl GuardedFreeze {
    /// Start the watchdog for `targets` (in freeze order; thawed in reverse). Nothing is
    /// frozen yet: call [`GuardedFreeze::freeze_all`].
    pub fn spawn(
        targets: Vec<Target>,
        opts: WatchdogOptions,
    ) -> Result<GuardedFreeze, FreezeError> {
        if opts.timeout.is_zero() {
            return Err(watchdog_err("timeout must be greater than 0"));
        }
        let pipe = || {
            nix::unistd::pipe2(OFlag::O_CLOEXEC)
                .map_err(|e| watchdog_err(format!("pipe: {}", e.desc())))
        };
        let (control_read, control_write): (OwnedFd, OwnedFd) = pipe()?;
        let (status_read, status_write): (OwnedFd, OwnedFd) = pipe()?;
        let orphan_prefix = opts.orphan_log_name.as_ref().map(|name| {
            targets
                .iter()
                .map(|t| format!("{name}: {}: ", t.path.display()).into_bytes())
                .collect()
        });
        let mut plan = child::Plan {
            control_read: control_read.as_raw_fd(),
            control_write: control_write.as_raw_fd(),
            status_read: status_read.as_raw_fd(),
            status_write: status_write.as_raw_fd(),
            targets: targets.iter().map(|t| t.file.as_raw_fd()).collect(),
            timeout_ns: u64::try_from(opts.timeout.as_nanos()).unwrap_or(u64::MAX),
            orphan_prefix,
            frozen_since: Vec::new(),
            keep: Vec::new(),
            thawed: Vec::new(),
        };
        let pid =
            child::spawn(&mut plan).map_err(|e| watchdog_err(format!("fork: {}", e.desc())))?;
        // Only the watchdog may hold these two: the control pipe's EOF must mean "owner died".
        drop(control_read);
        drop(status_write);
        let n = targets.len();
        Ok(GuardedFreeze {
            targets,
            pid,
            control: Some(File::from(control_write)),
            status: File::from(status_read),
            frozen: vec![None; n],
            attempted: 0,
            reports: Vec::new(),
            finished: None,
            reaped: false,
        })
    }

    /// The watchdog's pid.
    pub fn watchdog_pid(&self) -> Pid {
        self.pid
    }

    /// The targets, in freeze order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Readable when the watchdog acted on its own (timeout) or died: poll it alongside
    /// whatever else the owner waits for, then call [`GuardedFreeze::check`].
    pub fn event_fd(&self) -> BorrowedFd<'_> {
        self.status.as_fd()
    }

    fn read_record(&mut self) -> io::Result<Record> {
        let mut b = [0u8; Record::LEN];
        self.status.read_exact(&mut b)?;
        Ok(Record::decode(&b))
    }

    fn cause(reason: u8) -> ThawCause {
        match reason {
            r if r == Reason::Timeout as u8 => ThawCause::Timeout,
            r if r == Reason::OwnerGone as u8 => ThawCause::OwnerGone,
            _ => ThawCause::Asked,
        }
    }

    fn record_thaw(&mut self, r: &Record) {
        let i = r.index as usize;
        let Some((fs, fe)) = self.frozen.get_mut(i).and_then(Option::take) else {
            return;
        };
        self.reports.push(FreezeReport {
            path: self.targets[i].path.clone(),
            mount_point: self.targets[i].mount.mount_point.clone(),
            frozen: Duration::from_nanos(r.end_ns.saturating_sub(fs)),
            freeze_call: Duration::from_nanos(fe.saturating_sub(fs)),
            thaw_call: Duration::from_nanos(r.end_ns.saturating_sub(r.start_ns)),
            thaw_errno: (r.errno != 0).then(|| Errno::from_raw(r.errno)),
            cause: Self::cause(r.aux),
        });
    }

    /// Read thaw records until the watchdog says it is done; if it dies first, thaw what
    /// is left with our own fds.
    fn drain(&mut self) -> WatchdogEvent {
        loop {
            match self.read_record() {
                Ok(r) if r.kind == b'T' => self.record_thaw(&r),
                Ok(r) if r.kind == b'D' => {
                    return match Self::cause(r.aux) {
                        ThawCause::Timeout => WatchdogEvent::TimedOut,
                        ThawCause::Asked => WatchdogEvent::Thawed,
                        _ => WatchdogEvent::Died,
                    };
                }
                Ok(_) => {} // a late freeze record cannot happen; ignore
                Err(_) => {
                    self.thaw_ourselves();
                    return WatchdogEvent::Died;
                }
            }
        }
    }

    /// The watchdog is gone: thaw every target it may have frozen, in reverse order.
    fn thaw_ourselves(&mut self) {
        for i in (0..self.attempted).rev() {
            let since = self.frozen[i];
            let start = now_ns();
            let res = self.targets[i].thaw();
            let end = now_ns();
            // A freeze whose result never arrived may have happened: thaw, and only report
            // it when the kernel says it was frozen.
            let (fs, fe) = match since {
                Some(s) => s,
                None if res.is_ok() => (start, start),
                None => continue,
            };
            self.frozen[i] = None;
            self.reports.push(FreezeReport {
                path: self.targets[i].path.clone(),
                mount_point: self.targets[i].mount.mount_point.clone(),
                frozen: Duration::from_nanos(end.saturating_sub(fs)),
                freeze_call: Duration::from_nanos(fe.saturating_sub(fs)),
                thaw_call: Duration::from_nanos(end.saturating_sub(start)),
                thaw_errno: res.err().and_then(|e| e.errno()),
                cause: ThawCause::WatchdogDied,
            });
        }
    }

    fn reap(&mut self) {
        if !self.reaped {
            self.reaped = true;
            let _ = waitpid(self.pid, None);
        }
    }

    /// Freeze every target in order. If one fails, the ones already frozen are thawed
    /// (reverse order) and its error is returned; nothing stays frozen.
    pub fn freeze_all(&mut self) -> Result<(), FreezeError> {
        for i in 0..self.targets.len() {
            self.freeze_next(i)?;
        }
        Ok(())
    }

    fn freeze_next(&mut self, i: usize) -> Result<(), FreezeError> {
        if self.finished.is_some() {
            return Err(watchdog_err("already thawed everything"));
        }
        self.attempted = i + 1;
        let sent = self.control.as_mut().map(|c| c.write_all(&[CMD_FREEZE]));
        let rec = match sent {
            Some(Ok(())) => self.read_record(),
            _ => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        };
        match rec {
            Ok(r) if r.kind == b'F' && r.index as usize == i && r.errno == 0 => {
                self.frozen[i] = Some((r.start_ns, r.end_ns));
                Ok(())
            }
            Ok(r) if r.kind == b'F' && r.index as usize == i => {
                let err = FreezeError::Freeze {
                    path: self.targets[i].path.clone(),
                    errno: Errno::from_raw(r.errno),
                };
                self.finish();
                Err(err)
            }
            Ok(r) if r.kind == b'T' || r.kind == b'D' => {
                // The deadline passed during this freeze: the watchdog is thawing.
                if r.kind == b'T' {
                    self.record_thaw(&r);
                }
                let ev = if r.kind == b'D' {
                    WatchdogEvent::TimedOut
                } else {
                    self.drain()
                };
                self.finished = Some(ev);
                self.reap();
                Err(watchdog_err("timeout expired while freezing"))
            }
            _ => {
                self.thaw_ourselves();
                self.finished = Some(WatchdogEvent::Died);
                self.reap();
                Err(watchdog_err("the watchdog process died"))
            }
        }
    }

    /// Non-blocking: has the watchdog acted on its own? `Some` once it timed out or died
    /// (everything is then thawed; [`GuardedFreeze::thaw_all`] returns the reports).
    pub fn check(&mut self) -> Option<&WatchdogEvent> {
        if self.finished.is_none() {
            let mut pfd = [nix::poll::PollFd::new(
                self.status.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ready = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0;
            if ready {
                let ev = self.drain();
                self.finished = Some(ev);
                self.reap();
            }
        }
        self.finished.as_ref()
    }

    fn finish(&mut self) {
        if self.finished.is_none() {
            if let Some(c) = self.control.as_mut() {
                let _ = c.write_all(&[CMD_THAW]);
            }
            let ev = self.drain();
            self.finished = Some(ev);
        }
        self.control = None;
        self.reap();
    }

    /// Thaw everything (reverse order) and return one report per filesystem that was frozen.
    /// Check [`FreezeReport::error`] on each: a failed thaw may leave a filesystem frozen.
    pub fn thaw_all(mut self) -> Vec<FreezeReport> {
        self.finish();
        std::mem::take(&mut self.reports)
    }

    /// How the watchdog ended, once it has (after `check` or `thaw_all`).
    pub fn finished(&self) -> Option<&WatchdogEvent> {
        self.finished.as_ref()
    }
}

impl Drop for GuardedFreeze {
    fn drop(&mut self) {
        self.finish();
    }
}
