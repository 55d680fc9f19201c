//! The freeze watchdog process: a forked child that freezes on request and always thaws.
//!
//! Spec `snapshots.md` §1 ("Required design"): the thaw must not depend on the freezing
//! process surviving. The child holds an fd on every target filesystem (opened by the parent
//! before the fork, so no path lookup is needed while frozen) and the read end of a control
//! pipe whose write end only the parent has. It freezes target `i` when told `F`, and thaws
//! every filesystem *it* froze, in reverse order, when told `T`, when the control pipe reads
//! EOF (the parent died, whatever killed it, SIGKILL included), or when the deadline
//! (counted from the start of the first freeze) passes. It reports each result to the
//! parent as a fixed 32-byte [`Record`] on a status pipe, then `_exit`s.
//!
//! Invariants of the child (it may have been forked from a multi-threaded process, so only
//! async-signal-safe work is allowed until `_exit`): no allocation, no locks, no Rust
//! `std::io` — only `poll`, `read`, `write`, `ioctl`, `clock_gettime`, `close_range`,
//! `sigaction`, `chdir` and `_exit` on memory prepared by the parent. It never writes to a
//! target filesystem: its cwd is `/`, it logs only to fd 2, and only when orphaned.
//! SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGPIPE are ignored and it has its own process group, so a
//! terminal's ^C, `kill -9 -PGID` of the owner's job or a closed status pipe cannot kill it
//! before it has thawed (a cgroup-wide SIGKILL still can: nothing survives that); SIGKILL of the watchdog itself is detected by
//! the parent (status pipe EOF), which then thaws with its own fds.

use std::os::fd::{BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

use super::freeze::{fifreeze, fithaw};

/// Control byte: freeze the next target.
pub const CMD_FREEZE: u8 = b'F';
/// Control byte: thaw everything now and exit.
pub const CMD_THAW: u8 = b'T';

/// Why the watchdog thawed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The parent said so (`T`).
    Told = 1,
    /// The deadline passed.
    Timeout = 2,
    /// The control pipe closed: the parent died.
    OwnerGone = 3,
}

/// One status report, 32 bytes on the wire (atomic on a pipe: below PIPE_BUF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// `F` (freeze result), `T` (thaw result) or `D` (done; `aux` is the [`Reason`]).
    pub kind: u8,
    pub aux: u8,
    pub index: u32,
    /// 0 on success, else the errno.
    pub errno: i32,
    /// CLOCK_MONOTONIC nanoseconds before and after the ioctl.
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Record {
    pub const LEN: usize = 32;

    pub fn encode(&self) -> [u8; Record::LEN] {
        let mut b = [0u8; Record::LEN];
        b[0] = self.kind;
        b[1] = self.aux;
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..12].copy_from_slice(&self.errno.to_ne_bytes());
        b[16..24].copy_from_slice(&self.start_ns.to_ne_bytes());
        b[24..32].copy_from_slice(&self.end_ns.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; Record::LEN]) -> Record {
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Record {
            kind: b[0],
            aux: b[1],
            index: u32_at(4),
            errno: u32_at(8) as i32,
            start_ns: u64_at(16),
            end_ns: u64_at(24),
        }
    }
}

/// Everything the child needs, allocated by the parent before the fork.
pub struct Plan {
    /// Read end of the control pipe (kept by the child).
    pub control_read: RawFd,
    /// Write end of the control pipe (closed by the child).
    pub control_write: RawFd,
    /// Read end of the status pipe (closed by the child).
    pub status_read: RawFd,
    /// Write end of the status pipe (kept by the child).
    pub status_write: RawFd,
    /// One open fd per target filesystem, in freeze order.
    pub targets: Vec<RawFd>,
    /// Longest time a filesystem may stay frozen, from the start of the first freeze.
    pub timeout_ns: u64,
    /// Per target, the line prefix written to fd 2 when the watchdog thaws an orphaned
    /// freeze (for example `b"fsfreeze: /mnt: "`); `None` = stay silent.
    pub orphan_prefix: Option<Vec<Vec<u8>>>,
    /// Scratch: which targets the child froze, and when (filled in the child only).
    pub frozen_since: Vec<u64>,
    /// Scratch: fds to keep, sorted (filled by `spawn`).
    pub keep: Vec<RawFd>,
    /// Scratch: per target, (errno + 1, frozen ns) of its thaw; 0 = not thawed here.
    pub thawed: Vec<(i32, u64)>,
}

/// Fork the watchdog. Returns its pid in the parent; the child never returns.
///
/// The caller must close its copies of `control_read` and `status_write` afterwards (the
/// EOF that tells the watchdog its owner died needs the parent to be the only holder of
/// `control_write`).
pub fn spawn(plan: &mut Plan) -> nix::Result<Pid> {
    plan.frozen_since = vec![0; plan.targets.len()];
    plan.thawed = vec![(0, 0); plan.targets.len()];
    let mut keep = plan.targets.clone();
    keep.extend([2, plan.control_read, plan.status_write]);
    keep.sort_unstable();
    keep.dedup();
    plan.keep = keep;
    if let Some(p) = &plan.orphan_prefix {
        assert_eq!(p.len(), plan.targets.len(), "one orphan prefix per target");
    }
    // SAFETY: the child only runs `child_main`, which is async-signal-safe (module doc): it
    // touches memory the parent prepared, makes raw system calls and ends in `_exit`, so a
    // lock held by another thread of the parent at fork time can never be needed.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => child_main(plan),
    }
}

/// CLOCK_MONOTONIC in nanoseconds (async-signal-safe; the clock the records use).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Write all of `buf` to `fd`; errors (EPIPE when the parent is gone) are ignored.
fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

fn send(plan: &Plan, r: Record) {
    write_all(plan.status_write, &r.encode());
}

/// Append the decimal digits of `n` to `out` at `len`; returns the new length.
fn put_u64(out: &mut [u8], mut len: usize, n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        len = put(out, len, &[d]);
    }
    len
}

fn put(out: &mut [u8], len: usize, s: &[u8]) -> usize {
    let n = s.len().min(out.len() - len);
    out[len..len + n].copy_from_slice(&s[..n]);
    len + n
}

fn fd(raw: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the fds in a `Plan` stay open for the whole life of the child, which never
    // closes them before `_exit`.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

fn thaw_all(plan: &mut Plan, reason: Reason) {
    for i in (0..plan.targets.len()).rev() {
        let since = plan.frozen_since[i];
        if since == 0 {
            continue;
        }
        let start = now_ns();
        let res = fithaw(fd(plan.targets[i]));
        let end = now_ns();
        plan.frozen_since[i] = 0;
        let errno = match res {
            Ok(()) => 0,
            Err(e) => e as i32,
        };
        send(
            plan,
            Record {
                kind: b'T',
                aux: reason as u8,
                index: i as u32,
                errno,
                start_ns: start,
                end_ns: end,
            },
        );
        plan.thawed[i] = (errno + 1, end - since);
    }
    // Messages only once everything is thawed: a write to stderr may block (a full pipe, a
    // terminal) and must not delay a thaw.
    if reason == Reason::OwnerGone {
        if let Some(prefix) = &plan.orphan_prefix {
            for i in (0..plan.targets.len()).rev() {
                let (e1, held) = plan.thawed[i];
                if e1 == 0 {
                    continue;
                }
                let errno = e1 - 1;
                let mut line = [0u8; 4352];
                let mut n = put(&mut line, 0, &prefix[i]);
                if errno == 0 || errno == Errno::EINVAL as i32 {
                    n = put(&mut line, n, b"watchdog: owner process died; thawed after ");
                    n = put_u64(&mut line, n, held / 1_000_000);
                    n = put(&mut line, n, b" ms\n");
                } else {
                    n = put(
                        &mut line,
                        n,
                        b"watchdog: owner process died; unfreeze failed: errno ",
                    );
                    n = put_u64(&mut line, n, errno as u64);
                    n = put(&mut line, n, b"\n");
                }
                write_all(2, &line[..n]);
            }
        }
    }
    send(
        plan,
        Record {
            kind: b'D',
            aux: reason as u8,
            index: 0,
            errno: 0,
            start_ns: 0,
            end_ns: now_ns(),
        },
    );
}

fn child_main(plan: &mut Plan) -> ! {
    // Ignoring the job-control and termination signals keeps the watchdog alive until it
    // has thawed.
    // SAFETY: plain system calls on integers, a local sigset and a static string.
    unsafe {
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
            libc::SIGTSTP,
            libc::SIGTTOU,
            libc::SIGTTIN,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::chdir(c"/".as_ptr());
        // Its own process group: `kill -9 -PGID` of the owner's job must not take the
        // watchdog with it (an ioctl interrupted that way would leave a freeze nobody owns).
        libc::setpgid(0, 0);
        // Close everything but the fds we need (stdout, the parent's pipe ends, whatever
        // else was open): nobody must wait for EOF on a pipe because the watchdog holds it.
        let mut lo: libc::c_uint = 0;
        for &k in &plan.keep {
            let k = k as libc::c_uint;
            if k > lo {
                libc::syscall(libc::SYS_close_range, lo, k - 1, 0);
            }
            lo = k + 1;
        }
        libc::syscall(libc::SYS_close_range, lo, libc::c_uint::MAX, 0);
        // close_range may be missing (Linux < 5.9): close the two fds that matter anyway.
        libc::close(plan.control_write);
        libc::close(plan.status_read);
    }
    let mut next = 0usize;
    let mut deadline: Option<u64> = None;
    let reason = loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let now = now_ns();
                if now >= d {
                    break Reason::Timeout;
                }
                ((d - now).div_ceil(1_000_000)).min(i32::MAX as u64) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd: plan.control_read,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            break Reason::OwnerGone;
        }
        if rc == 0 {
            continue; // the deadline check at the top decides
        }
        let mut cmd = [0u8; 1];
        // SAFETY: a one-byte writable buffer.
        let n = unsafe { libc::read(plan.control_read, cmd.as_mut_ptr().cast(), 1) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            break Reason::OwnerGone;
        }
        match cmd[0] {
            CMD_FREEZE if next < plan.targets.len() => {
                // A request read after the owner died (it is still in the pipe): do not
                // freeze for nobody.
                let mut hup = libc::pollfd {
                    fd: plan.control_read,
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, zero timeout.
                if unsafe { libc::poll(&mut hup, 1, 0) } > 0 && hup.revents & libc::POLLHUP != 0 {
                    break Reason::OwnerGone;
                }
                let i = next;
                next += 1;
                let start = now_ns();
                let res = fifreeze(fd(plan.targets[i]));
                let end = now_ns();
                let errno = match res {
                    Ok(()) => {
                        plan.frozen_since[i] = start.max(1);
                        deadline.get_or_insert(start.saturating_add(plan.timeout_ns));
                        0
                    }
                    Err(e) => e as i32,
                };
                send(
                    plan,
                    Record {
                        kind: b'F',
                        aux: 0,
                        index: i as u32,
                        errno,
                        start_ns: start,
                        end_ns: end,
                    },
                );
            }
            CMD_THAW => break Reason::Told,
            _ => {}
        }
    };
    thaw_all(plan, reason);
    // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
    // destructors, which must not run twice.
    unsafe { libc::_exit(0) }
}

/// Make `cmd`'s child start with an empty signal mask. The owner of a freeze blocks
/// SIGINT/SIGTERM/SIGHUP/SIGCHLD (it reads them from a signalfd), and std's spawn hands the
/// parent's mask to the child unchanged (**measured**: `sleep` then ignores SIGTERM).
pub fn exec_with_empty_sigmask(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls `pthread_sigmask`
    // (async-signal-safe) on a local, initialised set.
    unsafe {
        cmd.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// End this process by `sig` as if it had never been caught (default action restored,
/// unblocked, raised), so a parent shell sees "killed by SIGINT". The owner of a freeze calls
/// it after thawing (STYLE.md: thaw, then re-raise). Falls back to exit 128+sig.
pub fn die_by_signal(sig: nix::sys::signal::Signal) -> ! {
    use nix::sys::signal::{signal, SigHandler, SigSet};
    // SAFETY: SIG_DFL installs no Rust handler; only this signal's disposition changes.
    let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = set.thread_unblock();
    let _ = nix::sys::signal::raise(sig);
    std::process::exit(128 + sig as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = Record {
            kind: b'F',
            aux: 3,
            index: 7,
            errno: -16,
            start_ns: u64::MAX - 1,
            end_ns: 42,
        };
        assert_eq!(Record::decode(&r.encode()), r);
    }

    #[test]
    fn decimal_formatting_without_allocation() {
        let mut b = [0u8; 8];
        let n = put_u64(&mut b, 0, 0);
        assert_eq!(&b[..n], b"0");
        let n = put_u64(&mut b, 0, 1234567);
        assert_eq!(&b[..n], b"1234567");
        let n = put_u64(&mut b, 0, u64::MAX); // truncated to the buffer, never a panic
        assert_eq!(n, 8);
    }
}
