//! util-linux-compatible fsfreeze, plus `fsfreeze run`; see `lampvault_bins::fsfreeze`.
fn main() -> std::process::ExitCode {
    lampvault_bins::fsfreeze::main()
}
