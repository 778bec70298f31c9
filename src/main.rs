fn main() -> std::process::ExitCode {
    relab::allocator::keep_freed_memory();
    relab::cli::main(std::env::args_os())
}
