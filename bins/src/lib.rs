//! The six lampvault tools: each `<tool>.rs` holds `command()` (the clap definition, used to
//! parse and to render the man page) and `run()`; `bin/<tool>.rs` only calls `main()`.
//! All six live in one package so that pipeline tests can run any of them.
#![forbid(unsafe_code)]

pub mod binlogcut;
pub mod common;
pub mod fsfreeze;
pub mod lvsnap;
pub mod mediahdr;
pub mod raitstripe;
pub mod walarchive;

/// A man page rendered from a tool's `command()` plus its hand-written tail.
pub struct ManPage {
    pub tool: &'static str,
    pub section: u8,
    pub command: fn() -> clap::Command,
    /// roff text appended to clap_mangen's output: EXIT STATUS, EXAMPLES, ...
    pub tail: &'static str,
}

/// Every man page under `man/`; `tests/man.rs` fails when a committed page is stale.
pub fn man_pages() -> Vec<ManPage> {
    vec![
        ManPage {
            tool: "mediahdr",
            section: 1,
            command: mediahdr::command,
            tail: mediahdr::MAN_TAIL,
        },
        ManPage {
            tool: "raitstripe",
            section: 1,
            command: raitstripe::command,
            tail: raitstripe::MAN_TAIL,
        },
        ManPage {
            tool: "walarchive",
            section: 1,
            command: walarchive::command,
            tail: walarchive::MAN_TAIL,
        },
        ManPage {
            tool: "binlogcut",
            section: 1,
            command: binlogcut::command,
            tail: binlogcut::MAN_TAIL,
        },
        ManPage {
            tool: "lvsnap",
            section: 8,
            command: lvsnap::command,
            tail: lvsnap::MAN_TAIL,
        },
        ManPage {
            tool: "fsfreeze",
            section: 8,
            command: fsfreeze::command,
            tail: fsfreeze::MAN_TAIL,
        },
    ]
}
