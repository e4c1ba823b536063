//! The fastml-compile command line, built inside the test package so end-to-end tests can run it.
fn main() {
    fastml_compile::cli::main();
}
