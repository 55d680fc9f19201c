//! The failure every tool returns: an exit code and a `context: cause` message.

use std::fmt::Display;
use std::io;

/// A failed run: the message (without the tool name) and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub msg: String,
}

impl Failure {
    /// Exit `code` with `msg` (printed as `tool: msg`). An empty `msg` prints nothing.
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        Failure {
            code,
            msg: msg.into(),
        }
    }

    /// Exit 1 with `msg`.
    pub fn failed(msg: impl Into<String>) -> Self {
        Failure::new(1, msg)
    }

    /// Exit 2 (usage) with `msg`.
    pub fn usage(msg: impl Into<String>) -> Self {
        Failure::new(2, msg)
    }

    /// Exit 1 with `context: cause`.
    pub fn io(context: impl Display, e: &io::Error) -> Self {
        Failure::new(1, format!("{context}: {}", errno_text(e)))
    }
}

/// An io::Error as a user reads it: "No such file or directory", not "... (os error 2)".
pub fn errno_text(e: &io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        return nix::errno::Errno::from_raw(code).desc().to_string();
    }
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// `result.ctx("reading /x")?` turns an io::Error into a [`Failure`] with that context.
pub trait IoContext<T> {
    fn ctx(self, context: impl Display) -> Result<T, Failure>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::io(context, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(errno_text(&e), "No such file or directory");
        let f = Failure::io("/nope", &e);
        assert_eq!(f.msg, "/nope: No such file or directory");
        assert_eq!(f.code, 1);
        let e = io::Error::other("odd thing");
        assert_eq!(errno_text(&e), "odd thing");
    }
}
