//! Progress on stderr, only when asked or when stderr is a terminal (as uutils dd's
//! `progress.rs`): one line rewritten in place at most twice a second.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    tool: &'static str,
    on: bool,
    start: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(tool: &'static str, on: bool) -> Self {
        let now = Instant::now();
        Progress {
            tool,
            on,
            start: now,
            last: now,
        }
    }

    /// Report `bytes` so far, rate-limited.
    pub fn tick(&mut self, bytes: u64) {
        if !self.on || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-6);
        let _ = write!(
            std::io::stderr(),
            "\r{}: {} bytes, {:.1} MB/s ",
            self.tool,
            bytes,
            bytes as f64 / secs / 1e6
        );
    }

    /// End the progress line.
    pub fn done(&mut self) {
        if self.on && self.last != self.start {
            let _ = writeln!(std::io::stderr());
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
