fn main() -> std::process::ExitCode {
    relab::cli::main(std::env::args_os())
}
