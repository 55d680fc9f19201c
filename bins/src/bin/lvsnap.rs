fn main() -> std::process::ExitCode {
    lampvault_bins::lvsnap::main()
}
