//! `-` means stdin or stdout; anything else is a path.

/// True for the path `-`.
pub fn is_stdio(path: &str) -> bool {
    path == "-"
}
