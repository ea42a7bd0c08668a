//! Docker-style exit codes carried through `anyhow` errors.
//!
//! Anything that is not an [`Exit`] is a dockling failure and exits 125, as Docker does.

use std::fmt;

/// Exit code when dockling itself fails (bad flag, unknown image, name taken, ...).
pub const RUNTIME_ERROR: i32 = 125;
/// Exit code when the command exists but cannot be executed.
pub const CANNOT_EXECUTE: i32 = 126;
/// Exit code when the command is not found.
pub const NOT_FOUND: i32 = 127;

/// An error that should end the program with a specific exit code.
#[derive(Debug, thiserror::Error)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Builds an error that exits with `code` and prints `message`.
pub fn exit(code: i32, message: impl Into<String>) -> anyhow::Error {
    Exit { code, message: message.into() }.into()
}

/// Shorthand for a user error (exit 125).
pub fn user(message: impl Into<String>) -> anyhow::Error {
    exit(RUNTIME_ERROR, message)
}

/// The exit code an error maps to.
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<Exit>().map(|e| e.code).unwrap_or(RUNTIME_ERROR)
}
