//! Signal dispositions the tools choose at start-up.
//!
//! Rust's runtime ignores SIGPIPE before `main`, so a write to a closed pipe returns EPIPE.
//! Data movers want the opposite — die by SIGPIPE as `dd` does in `dd | head`, so that a
//! truncated stream never ends with exit 0 — while fsfreeze and lvsnap keep it ignored so
//! they can never die while a filesystem is frozen (STYLE.md, "SIGPIPE").

use nix::sys::signal::{signal, SigHandler, Signal};

/// Restore the default action of SIGPIPE (terminate), as a C program has it.
pub fn sigpipe_default() -> nix::Result<()> {
    // SAFETY: SIG_DFL installs no Rust handler, so no async-signal-safety rules apply; the
    // call only changes the disposition of SIGPIPE for this process.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(drop)
}

/// Ignore SIGPIPE: writes to a closed pipe fail with EPIPE instead of killing the process.
pub fn sigpipe_ignore() -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler; see `sigpipe_default`.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.map(drop)
}

/// Ignore SIGINT, SIGTERM and SIGHUP: for a helper process that its parent drives over a
/// pipe and that must outlive it (lvsnap's lvcreate tracer).
pub fn ignore_term_signals() -> nix::Result<()> {
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN installs no handler; see `sigpipe_default`.
        unsafe { signal(s, SigHandler::SigIgn) }?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_can_be_set() {
        sigpipe_ignore().unwrap();
        sigpipe_default().unwrap();
        sigpipe_ignore().unwrap();
    }
}
