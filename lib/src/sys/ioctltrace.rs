//! Stop a child process at one ioctl request, and only there: seccomp + ptrace.
//!
//! [`spawn`] runs a command whose process, between fork and exec, asks to be traced by its
//! parent (`PTRACE_TRACEME`) and installs a seccomp filter that returns `SECCOMP_RET_TRACE`
//! for `ioctl(fd, REQUEST, arg)` (the low 32 bits of the request compared: the kernel's
//! `ioctl` takes an `unsigned int` command) and `SECCOMP_RET_ALLOW` for every other system
//! call, so the other calls cost nothing extra. The parent then drives it with
//! [`Traced::wait_event`]: [`Event::Ioctl`] when the process is stopped before such a call,
//! [`Event::Returned`] after it when asked for ([`Traced::resume_to_return`]), and
//! [`Event::Exited`] when the process ends. Children it forks are traced too (the filter is
//! inherited); signals are passed on unchanged.
//!
//! Hazard (seccomp(2)): a filtered process that has no tracer any more gets `ENOSYS` from
//! every later matching call instead of running it. The tracer therefore must outlive the
//! traced process (or the caller must accept that those calls fail). `PTRACE_O_EXITKILL` is
//! deliberately not set: killing a process in the middle of what the ioctl guards could be
//! worse than letting it go on.
//!
//! x86-64 only (registers are read with PTRACE_GETREGS); elsewhere [`spawn`] fails with
//! `ENOSYS` and callers fall back to not tracing.

use std::collections::HashSet;
use std::io;
use std::process::{Child, Command};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// What the traced process did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `pid` is stopped before `ioctl(fd, REQUEST, arg)`; resume it with
    /// [`Traced::resume`] or [`Traced::resume_to_return`].
    Ioctl { pid: Pid, fd: i32, arg: u64 },
    /// `pid` is stopped after the call it was resumed from with `resume_to_return`;
    /// `ret` is the return value (`-errno` on failure). Resume with [`Traced::resume`].
    Returned { pid: Pid, ret: i64 },
    /// The process [`spawn`] started ended: exit code, or 128 + signal number.
    Exited(i32),
}

/// A traced child process (see the module doc).
pub struct Traced {
    main: Pid,
    child: Child,
    /// Traced processes whose first stop was seen (the exec stop for the command, the
    /// attach stop for its children).
    running: HashSet<Pid>,
}

/// The seccomp program: trace `ioctl(_, request, _)`, allow everything else.
#[cfg(target_arch = "x86_64")]
fn program(request: u32) -> io::Result<seccompiler::BpfProgram> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let bad = |e: seccompiler::BackendError| io::Error::other(e.to_string());
    let cond = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request as u64)
        .map_err(bad)?;
    let rule = SeccompRule::new(vec![cond]).map_err(bad)?;
    let filter = SeccompFilter::new(
        [(libc::SYS_ioctl, vec![rule])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Trace(0),
        TargetArch::x86_64,
    )
    .map_err(bad)?;
    filter.try_into().map_err(bad)
}

/// Start `cmd` traced, stopping at `ioctl(_, request, _)`. Fails (typically `EPERM` in a
/// container that forbids ptrace or seccomp) before the command runs anything of its own.
#[cfg(target_arch = "x86_64")]
pub fn spawn(cmd: &mut Command, request: u32) -> io::Result<Traced> {
    use std::os::unix::process::CommandExt;
    // Built before the fork: the child must not allocate between fork and exec.
    let prog = program(request)?;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (signal, ptrace, prctl, seccomp) on data prepared before
    // the fork (`prog` is moved in, not allocated there); it touches no lock or allocator.
    unsafe {
        cmd.pre_exec(move || {
            // Undo dispositions the tracer may have set to SIG_IGN (ignored signals survive
            // exec): the traced command gets the default ones.
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            seccompiler::apply_filter(&prog).map_err(|e| match e {
                seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
                _ => io::Error::from_raw_os_error(libc::EINVAL),
            })
        });
    }
    let child = cmd.spawn()?;
    let main = Pid::from_raw(child.id() as i32);
    Ok(Traced {
        main,
        child,
        running: HashSet::new(),
    })
}

/// Not supported on this architecture.
#[cfg(not(target_arch = "x86_64"))]
pub fn spawn(_cmd: &mut Command, _request: u32) -> io::Result<Traced> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

impl Traced {
    /// The process id of the command.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the next event that concerns the caller, handling the others (the stop
    /// after exec, forks, signals).
    pub fn wait_event(&mut self) -> nix::Result<Event> {
        loop {
            // __WNOTHREAD: only children (and tracees) of this thread, so children that
            // other threads of the caller spawned are never reaped here.
            let st = match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD)) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(st) => st,
            };
            match st {
                WaitStatus::Exited(pid, code) if pid == self.main => {
                    return Ok(Event::Exited(code))
                }
                WaitStatus::Signaled(pid, sig, _) if pid == self.main => {
                    return Ok(Event::Exited(128 + sig as i32))
                }
                WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _) => {
                    self.running.remove(&pid);
                }
                WaitStatus::PtraceEvent(pid, _, ev) if ev == libc::PTRACE_EVENT_SECCOMP => {
                    let (fd, arg) = regs_ioctl(pid)?;
                    return Ok(Event::Ioctl { pid, fd, arg });
                }
                WaitStatus::PtraceEvent(pid, _, _) => {
                    // fork/vfork/clone/exec: the new child is attached by the kernel; its
                    // own first stop is handled below.
                    cont(pid, None)?;
                }
                WaitStatus::PtraceSyscall(pid) => {
                    let ret = regs_ret(pid)?;
                    return Ok(Event::Returned { pid, ret });
                }
                WaitStatus::Stopped(pid, sig) => {
                    let first = !self.running.contains(&pid);
                    if pid == self.main && first && sig == Signal::SIGTRAP {
                        // The stop right after exec (PTRACE_TRACEME): set the options before
                        // the command runs a single instruction of its own.
                        self.running.insert(pid);
                        ptrace::setoptions(
                            pid,
                            Options::PTRACE_O_TRACESECCOMP
                                | Options::PTRACE_O_TRACESYSGOOD
                                | Options::PTRACE_O_TRACEFORK
                                | Options::PTRACE_O_TRACEVFORK
                                | Options::PTRACE_O_TRACECLONE
                                | Options::PTRACE_O_TRACEEXEC,
                        )?;
                        cont(pid, None)?;
                    } else if pid != self.main && first && sig == Signal::SIGSTOP {
                        // First stop of a newly attached child (its fork event may come
                        // before or after it).
                        self.running.insert(pid);
                        cont(pid, None)?;
                    } else if sig == Signal::SIGSTOP
                        && ptrace::getsiginfo(pid) == Err(Errno::EINVAL)
                    {
                        // Group stop (not a signal to deliver): let it go on.
                        cont(pid, None)?;
                    } else {
                        // A signal for the process: deliver it.
                        cont(pid, Some(sig))?;
                    }
                }
                _ => {}
            }
        }
    }

    /// Let `pid` go on (the stopped call runs).
    pub fn resume(&self, pid: Pid) -> nix::Result<()> {
        cont(pid, None)
    }

    /// Let `pid` run the stopped call and stop again right after it ([`Event::Returned`]).
    pub fn resume_to_return(&self, pid: Pid) -> nix::Result<()> {
        match ptrace::syscall(pid, None) {
            Err(Errno::ESRCH) => Ok(()),
            r => r,
        }
    }

    /// Read `len` bytes at `addr` in `pid`'s memory.
    pub fn read(&self, pid: Pid, addr: u64, len: usize) -> nix::Result<Vec<u8>> {
        use nix::sys::uio::{process_vm_readv, RemoteIoVec};
        let mut buf = vec![0u8; len];
        let n = process_vm_readv(
            pid,
            &mut [io::IoSliceMut::new(&mut buf)],
            &[RemoteIoVec {
                base: addr as usize,
                len,
            }],
        )?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// PTRACE_CONT; a process that vanished meanwhile (killed) is not an error.
fn cont(pid: Pid, sig: Option<Signal>) -> nix::Result<()> {
    match ptrace::cont(pid, sig) {
        Err(Errno::ESRCH) => Ok(()),
        r => r,
    }
}

#[cfg(target_arch = "x86_64")]
fn regs_ioctl(pid: Pid) -> nix::Result<(i32, u64)> {
    let r = ptrace::getregs(pid)?;
    Ok((r.rdi as i32, r.rdx))
}

#[cfg(target_arch = "x86_64")]
fn regs_ret(pid: Pid) -> nix::Result<i64> {
    Ok(ptrace::getregs(pid)?.rax as i64)
}

#[cfg(not(target_arch = "x86_64"))]
fn regs_ioctl(_pid: Pid) -> nix::Result<(i32, u64)> {
    Err(Errno::ENOSYS)
}

#[cfg(not(target_arch = "x86_64"))]
fn regs_ret(_pid: Pid) -> nix::Result<i64> {
    Err(Errno::ENOSYS)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// `program args` (all standard streams /dev/null) traced at TCGETS; None when stty is
    /// missing or tracing is forbidden here (EPERM).
    fn traced_tcgets(program: &str, args: &[&str]) -> Option<Traced> {
        Command::new("stty").arg("--version").output().ok()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match spawn(&mut cmd, libc::TCGETS as u32) {
            Ok(t) => Some(t),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// `stty -g` makes TCGETS on its stdin (failing with ENOTTY on /dev/null, but it makes
    /// the call): it must stop there, once per call, and return.
    #[test]
    fn stops_at_the_traced_request_and_returns() {
        let Some(mut t) = traced_tcgets("stty", &["-g"]) else {
            return;
        };
        let mut stops = 0;
        let mut returned = 0;
        loop {
            match t.wait_event().unwrap() {
                Event::Ioctl { pid, fd, .. } => {
                    assert_eq!(fd, 0);
                    stops += 1;
                    t.resume_to_return(pid).unwrap();
                }
                Event::Returned { pid, .. } => {
                    returned += 1;
                    t.resume(pid).unwrap();
                }
                Event::Exited(_) => break,
            }
        }
        assert!(stops >= 1, "stty made no TCGETS under the tracer");
        assert_eq!(stops, returned);
    }

    /// Children are traced too: `sh` forks for each `stty`.
    #[test]
    fn forked_children_stop_too() {
        let Some(mut t) = traced_tcgets("sh", &["-c", "stty -g; stty -g; exit 3"]) else {
            return;
        };
        let main = Pid::from_raw(t.pid() as i32);
        let mut pids = HashSet::new();
        let code = loop {
            match t.wait_event().unwrap() {
                Event::Ioctl { pid, .. } => {
                    pids.insert(pid);
                    t.resume(pid).unwrap();
                }
                Event::Returned { pid, .. } => t.resume(pid).unwrap(),
                Event::Exited(c) => break c,
            }
        };
        assert_eq!(code, 3);
        assert!(pids.len() >= 2 && !pids.contains(&main), "{pids:?}");
    }

    #[test]
    fn the_filter_compiles() {
        let p = program(0xC138_FD06).unwrap();
        assert!(p.len() > 4);
    }
}
