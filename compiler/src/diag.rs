//! Diagnostics with levels: the user's mistake (with file, JSON path or line/column, what was expected
//! and how to fix it) versus our bug (an invariant broken inside the compiler: "please report").
//!
//! Messages are plain text and deterministic (no colours, no terminal widths), so they are snapshot-
//! tested and read the same in a CI log. We render them ourselves rather than through miette because
//! our locations are JSON paths more often than byte spans, and a one-line-per-fact format greps well.
//! This module formats; it must not decide what is an error.

use std::fmt;

/// Whose fault it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The input is wrong; the message says where and what is expected. Exit code 2.
    Error,
    /// The compiler broke its own invariant. Exit code 3.
    Bug,
}

/// One diagnostic (boxed, so `Result<T, Diagnostic>` stays one pointer wide on the happy path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic(Box<Fields>);

/// What a diagnostic says; reach the fields through `Deref` (`d.message`, `d.path`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub level: Level,
    /// The file concerned (as the user named it).
    pub file: Option<String>,
    /// JSON path of the offending value, e.g. `nodes[3].weight.data[17]`.
    pub path: Option<String>,
    /// Line and column (1-based) where the JSON text itself is at fault.
    pub line_col: Option<(usize, usize)>,
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl std::ops::Deref for Diagnostic {
    type Target = Fields;
    fn deref(&self) -> &Fields {
        &self.0
    }
}

impl std::ops::DerefMut for Diagnostic {
    fn deref_mut(&mut self) -> &mut Fields {
        &mut self.0
    }
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic(Box::new(Fields {
            level: Level::Error,
            file: None,
            path: None,
            line_col: None,
            message: message.into(),
            help: None,
        }))
    }
    /// An internal error: names the stage (usually a pass) that broke an invariant.
    pub fn bug(stage: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic(Box::new(Fields {
            level: Level::Bug,
            file: None,
            path: None,
            line_col: None,
            message: format!("{stage}: {}", message.into()),
            help: Some(
                "this is a bug in fastml-compile, not in your model; please report it with the model.json"
                    .into(),
            ),
        }))
    }
    pub fn at(mut self, path: impl Into<String>) -> Diagnostic {
        self.path = Some(path.into());
        self
    }
    pub fn in_file(mut self, file: impl Into<String>) -> Diagnostic {
        self.file = Some(file.into());
        self
    }
    pub fn line_col(mut self, line: usize, col: usize) -> Diagnostic {
        self.line_col = Some((line, col));
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    /// The process exit code for this diagnostic.
    pub fn exit_code(&self) -> i32 {
        match self.level {
            Level::Error => 2,
            Level::Bug => 3,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = match self.level {
            Level::Error => "error",
            Level::Bug => "internal compiler error",
        };
        write!(f, "{head}: ")?;
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some((l, c)) = self.line_col {
                write!(f, ":{l}:{c}")?;
            }
            write!(f, ": ")?;
        }
        writeln!(f, "{}", self.message)?;
        if let Some(p) = &self.path {
            writeln!(f, "  at: {p}")?;
        }
        if let Some(h) = &self.help {
            writeln!(f, "  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

pub type Result<T> = std::result::Result<T, Diagnostic>;
