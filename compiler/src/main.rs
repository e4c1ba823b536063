//! The `fastml-compile` binary: everything is in `fastml_compile::cli`.

fn main() {
    fastml_compile::cli::main();
}
