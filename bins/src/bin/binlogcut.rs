fn main() -> std::process::ExitCode {
    lampvault_bins::binlogcut::main()
}
