fn main() -> std::process::ExitCode {
    lampvault_bins::raitstripe::main()
}
