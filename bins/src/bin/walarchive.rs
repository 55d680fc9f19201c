fn main() -> std::process::ExitCode {
    lampvault_bins::walarchive::main()
}
