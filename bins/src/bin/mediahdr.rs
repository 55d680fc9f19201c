fn main() -> std::process::ExitCode {
    lampvault_bins::mediahdr::main()
}
