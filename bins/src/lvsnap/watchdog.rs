//! The watchdog: a child process (`lvsnap __watchdog`) that undoes a suspend (and, with the
//! freeze module, a freeze) if lvsnap dies before it does so itself.
//!
//! It is started *before* the dangerous step and holds the read end of a pipe whose write
//! end only lvsnap has. lvsnap writes `done` when the step is over; EOF without `done`
//! (lvsnap died, even by SIGKILL) makes the watchdog drop the inactive table of each named dm
//! device that is still suspended and resume it (back to its table before the snapshot). It never touches a suspended or frozen filesystem itself (specs §1).

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::common::Failure;

pub struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Start a watchdog that resumes `resume` dm devices on lvsnap's death.
    pub fn start(resume: &[String], thaw: &[String]) -> Result<Watchdog, Failure> {
        let exe = std::env::current_exe()
            .map_err(|e| Failure::io("cannot find lvsnap's own executable", &e))?;
        let mut cmd = Command::new(exe);
        cmd.arg("__watchdog");
        for r in resume {
            cmd.arg("--resume").arg(r);
        }
        for t in thaw {
            cmd.arg("--thaw").arg(t);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Failure::io("watchdog", &e))?;
        // Wait until it is armed (its own setup done) before the caller suspends.
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        if line.trim() != "armed" {
            let _ = child.wait();
            return Err(Failure::failed("watchdog failed to start"));
        }
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// The step is over: tell the watchdog to exit without acting.
    pub fn disarm(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Dropping without disarm = EOF: the watchdog undoes the step.
        self.stdin.take();
        let _ = self.child.wait();
    }
}

/// The watchdog process itself.
pub fn run(resume: &[String], _thaw: &[String]) -> Result<u8, Failure> {
    // Leave the caller's process group so a terminal ^C does not kill us with it.
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    let ctl = if resume.is_empty() {
        None
    } else {
        Some(lampvault::dm::Control::open().map_err(|e| Failure::failed(e.to_string()))?)
    };
    println!("armed");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
    if n > 0 && line.trim() == "done" {
        return Ok(0);
    }
    let mut code = 0;
    if let Some(ctl) = ctl {
        for name in resume.iter().rev() {
            match ctl.info(name) {
                Ok(Some(i)) if i.suspended() => {
                    // Drop the table lvsnap loaded but never activated, so the resume
                    // brings back the device exactly as it was before the snapshot.
                    if i.inactive_table() {
                        let _ = ctl.clear(name);
                    }
                    match ctl.resume(name) {
                        Ok(_) => eprintln!("lvsnap: watchdog: {name}: resumed after lvsnap died"),
                        Err(e) => {
                            eprintln!("lvsnap: watchdog: {e}");
                            code = 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("lvsnap: watchdog: {e}");
                    code = 1;
                }
            }
        }
    }
    Ok(code)
}
