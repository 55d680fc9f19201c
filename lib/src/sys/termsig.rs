//! Turn SIGINT, SIGTERM and SIGHUP into bytes on a pipe (the self-pipe trick), so a tool
//! that holds a lock, a freeze or a suspended device can undo its steps in reverse and
//! only then die by the same signal (STYLE.md: "thaw, then re-raise").
//!
//! Invariants: the handler only calls `write(2)` (async-signal-safe) on a non-blocking pipe
//! and keeps errno intact; handlers are installed with SA_RESTART so that interrupted
//! system calls resume and the main code sees the signal only where it polls the pipe.
//! Caught signals reset to their default action in `exec`ed children, so co-processes
//! are unaffected.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::fcntl::OFlag;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signals that are caught.
pub const CAUGHT: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `b` is a valid 1-byte buffer. errno is
        // saved and restored so the interrupted code sees its own.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// The read end of the signal pipe.
pub struct TermSignals {
    read: OwnedFd,
    _write: OwnedFd,
}

impl TermSignals {
    /// Install the handlers. Call once per process.
    pub fn catch() -> nix::Result<TermSignals> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        WRITE_FD.store(std::os::fd::AsRawFd::as_raw_fd(&w), Ordering::SeqCst);
        let act = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for s in CAUGHT {
            // SAFETY: `on_signal` is async-signal-safe (see above).
            unsafe { sigaction(s, &act) }?;
        }
        Ok(TermSignals { read: r, _write: w })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The first signal received so far, if any (non-blocking). A received signal stays
    /// pending: later calls return it again.
    pub fn pending(&mut self) -> Option<Signal> {
        let mut b = [0u8; 1];
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.read), &mut b) {
            Ok(1) => {
                let s = Signal::try_from(b[0] as i32).ok()?;
                // Keep it readable for the next caller.
                let fd: RawFd = WRITE_FD.load(Ordering::Relaxed);
                if fd >= 0 {
                    // SAFETY: `fd` is the write end owned by `self._write`, still open.
                    let _ = nix::unistd::write(unsafe { BorrowedFd::borrow_raw(fd) }, &b);
                }
                Some(s)
            }
            _ => None,
        }
    }
}

/// Die by `sig`: restore its default action and raise it. Returns only if it was blocked.
pub fn reraise(sig: Signal) {
    // SAFETY: SIG_DFL installs no handler.
    let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    let _ = nix::sys::signal::raise(sig);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_becomes_a_pending_byte() {
        let mut t = TermSignals::catch().unwrap();
        assert_eq!(t.pending(), None);
        nix::sys::signal::raise(Signal::SIGHUP).unwrap();
        assert_eq!(t.pending(), Some(Signal::SIGHUP));
        assert_eq!(t.pending(), Some(Signal::SIGHUP));
    }
}
