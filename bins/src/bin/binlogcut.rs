//! binlogcut: cut MySQL/MariaDB binary logs at transaction boundaries; see `lampvault_bins::binlogcut`.
fn main() -> std::process::ExitCode {
    lampvault_bins::binlogcut::main()
}
