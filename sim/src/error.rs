//! The one error type of `fastml-sim`.
//!
//! Every failure a caller can hit — tool missing, Verilog that does not
//! build, a harness that crashes, a design whose valid pipeline misbehaves —
//! is a [`SimError`] variant with a message that says what happened and where
//! to look. This file only defines the type; it must not perform I/O or decide
//! policy (which condition is an error is decided in `run.rs` / `verilate.rs`).

use std::path::PathBuf;

/// Everything that can go wrong in [`crate::simulate`]. None of these panic.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `verilator` (or `make`, which drives g++) could not be started at all: not on
    /// `PATH`, or not executable.
    #[error(
        "{detail}: co-simulation needs Verilator 5, make and g++ on PATH; \
         run `make deps` to install them"
    )]
    VerilatorMissing { detail: String },

    /// The `Design`, the input buffer or the options are inconsistent
    /// (zero width, input length not a multiple of the word count, missing source file, …).
    #[error("invalid simulation request: {0}")]
    Invalid(String),

    /// Verilator or the C++ compiler failed, or the top module's ports do not match
    /// the convention / the widths in the `Design` (checked between the two). `log` is kept on disk (the failed build
    /// directory is preserved next to the cache) so the whole log can be read.
    #[error("verilator build of `{top}` failed ({status}); full log: {}\n--- last lines of the build log ---\n{tail}", log.display())]
    BuildFailed {
        top: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    /// The compiled harness crashed, exited non-zero or produced unreadable result files.
    /// Its run directory (inputs, stderr log) is kept for inspection.
    #[error("simulation harness failed: {message}; logs in {}\n{tail}", dir.display())]
    HarnessFailed {
        message: String,
        dir: PathBuf,
        tail: String,
    },

    /// The number of `out_valid` cycles differs from the number of vectors presented.
    /// Either results are missing after draining (true latency far beyond the declared
    /// one, or a broken valid chain) or there were more results than vectors (valid
    /// stuck high or duplicated).
    #[error(
        "output count mismatch: {inputs} vectors presented, {outputs} outputs seen \
         ({detail})"
    )]
    OutputCountMismatch {
        inputs: u64,
        outputs: u64,
        detail: String,
    },

    /// `out_valid` was 1 while `rst` was held, or in the idle cycles right after reset,
    /// when no vector was in flight. The valid chain is probably not reset.
    #[error(
        "out_valid was 1 at cycle {cycle} during or right after reset (rst held for \
         cycles 0..{reset_cycles}, no vector presented yet); the valid pipeline must be \
         reset synchronously by rst"
    )]
    ResetViolation { cycle: u64, reset_cycles: u64 },

    /// A file in the work or cache directory could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SimError {
    /// Helper for `map_err`: attach the path an I/O error happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SimError {
        let path = path.into();
        move |source| SimError::Io { path, source }
    }
}
