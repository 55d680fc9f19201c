//! The `--hold COMMAND` co-process: a quiesce command (e.g. `scripts/hold-mysql`, which
//! takes FLUSH TABLES WITH READ LOCK in one session) run with `sh -c`.
//!
//! Protocol: lvsnap waits until the command prints a line `READY` on its stdout (the lock
//! is taken), takes the snapshot, then closes the command's stdin (release) and checks its
//! exit status. Other stdout lines are copied to stderr. If lvsnap dies at any point, the
//! kernel closes the pipe and the command sees EOF on stdin, so the lock can never outlive
//! lvsnap. The lock-held time is READY → the command's exit after release.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lampvault::sys::termsig::TermSignals;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::common::Failure;

/// Why waiting for READY ended without it.
pub enum WaitError {
    Failed(Failure),
    Signal(Signal),
}

pub struct Hold {
    cmd: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    buf: Vec<u8>,
    pub ready_at: Option<Instant>,
    done: bool,
}

fn describe(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => format!(
            "signal {}",
            Signal::try_from(s).map(|s| s.as_str()).unwrap_or("?")
        ),
        _ => "unknown status".into(),
    }
}

impl Hold {
    pub fn start(cmd: &str) -> Result<Hold, Failure> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Failure::io(format!("hold command '{cmd}'"), &e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        Ok(Hold {
            cmd: cmd.to_string(),
            child,
            stdin,
            stdout,
            buf: Vec::new(),
            ready_at: None,
            done: false,
        })
    }

    /// Wait for the `READY` line, watching `sig` and a `timeout`.
    pub fn wait_ready(
        &mut self,
        sig: &mut TermSignals,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                if text.trim_end_matches('\r') == "READY" {
                    self.ready_at = Some(Instant::now());
                    return Ok(());
                }
                let _ = std::io::stderr().write_all(&line);
            }
            if let Some(s) = sig.pending() {
                return Err(WaitError::Signal(s));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WaitError::Failed(Failure::failed(format!(
                    "hold command '{}': no READY within {} s",
                    self.cmd,
                    timeout.as_secs()
                ))));
            }
            let ms = left.as_millis().min(1000) as u16;
            let mut fds = [
                PollFd::new(self.stdout.as_fd(), PollFlags::POLLIN),
                PollFd::new(sig.fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Err(nix::errno::Errno::EINTR) | Ok(0) => continue,
                Err(e) => {
                    return Err(WaitError::Failed(Failure::failed(format!(
                        "poll: {}",
                        e.desc()
                    ))))
                }
                Ok(_) => {}
            }
            if fds[0].revents().map(|r| !r.is_empty()).unwrap_or(false) {
                let mut chunk = [0u8; 4096];
                match self.stdout.read(&mut chunk) {
                    Ok(0) => {
                        let st = self.child.wait();
                        self.done = true;
                        let how = st.map(describe).unwrap_or_else(|e| e.to_string());
                        return Err(WaitError::Failed(Failure::failed(format!(
                            "hold command '{}' exited with {how} before printing READY",
                            self.cmd
                        ))));
                    }
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(WaitError::Failed(Failure::io(
                            format!("hold command '{}'", self.cmd),
                            &e,
                        )))
                    }
                }
            }
        }
    }

    /// Close the command's stdin (release the lock), copy the rest of its output to stderr
    /// and wait for it. Returns how long the lock was held.
    pub fn release(&mut self) -> Result<Duration, Failure> {
        self.stdin.take();
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        let mut all = std::mem::take(&mut self.buf);
        all.extend_from_slice(&rest);
        if !all.is_empty() {
            let _ = std::io::stderr().write_all(&all);
        }
        let st = self
            .child
            .wait()
            .map_err(|e| Failure::io(format!("hold command '{}'", self.cmd), &e))?;
        self.done = true;
        let held = self.ready_at.map(|t| t.elapsed()).unwrap_or_default();
        if !st.success() {
            return Err(Failure::failed(format!(
                "hold command '{}' failed on release: {}",
                self.cmd,
                describe(st)
            )));
        }
        Ok(held)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.done {
            // Undo: release and reap; the command's status no longer matters.
            self.stdin.take();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}
