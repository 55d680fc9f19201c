//! `-` means stdin or stdout; anything else is a path.

use std::fs::File;
use std::io::{self, Read, StdinLock};
use std::os::fd::{AsFd, BorrowedFd};

/// True for the path `-`.
pub fn is_stdio(path: &str) -> bool {
    path == "-"
}

/// An input: stdin or an opened file.
pub enum Input {
    Stdin(StdinLock<'static>),
    File(File),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Stdin(s) => s.read(buf),
            Input::File(f) => f.read(buf),
        }
    }
}

impl AsFd for Input {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Input::Stdin(s) => s.as_fd(),
            Input::File(f) => f.as_fd(),
        }
    }
}

/// Open `path` for reading (`-` = stdin).
pub fn open_input(path: &str) -> io::Result<Input> {
    if is_stdio(path) {
        Ok(Input::Stdin(io::stdin().lock()))
    } else {
        Ok(Input::File(File::open(path)?))
    }
}
