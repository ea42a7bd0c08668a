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

/// What kind of failure an [`Exit`] is, where code decides on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something a container holds (a name, a host port, a netns name) is taken. If its
    /// holder died without tearing down, finishing that teardown frees it: worth one retry.
    Conflict,
    /// Any other failure.
    Other,
}

/// An error that should end the program with a specific exit code.
#[derive(Debug, thiserror::Error)]
pub struct Exit {
    pub code: i32,
    pub message: String,
    pub kind: Kind,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Builds an error that exits with `code` and prints `message`.
pub fn exit(code: i32, message: impl Into<String>) -> anyhow::Error {
    Exit { code, message: message.into(), kind: Kind::Other }.into()
}

/// A user error (exit 125) about something another container holds.
pub fn conflict(message: impl Into<String>) -> anyhow::Error {
    Exit { code: RUNTIME_ERROR, message: message.into(), kind: Kind::Conflict }.into()
}

/// The kind of an error (errors dockling did not classify are [`Kind::Other`]).
pub fn kind_of(err: &anyhow::Error) -> Kind {
    err.downcast_ref::<Exit>().map(|e| e.kind).unwrap_or(Kind::Other)
}

/// Shorthand for a user error (exit 125).
pub fn user(message: impl Into<String>) -> anyhow::Error {
    exit(RUNTIME_ERROR, message)
}

/// The exit code an error maps to.
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<Exit>().map(|e| e.code).unwrap_or(RUNTIME_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_and_kinds() {
        assert_eq!(code_of(&exit(126, "x")), 126);
        assert_eq!(code_of(&anyhow::anyhow!("untyped")), RUNTIME_ERROR);
        assert_eq!(kind_of(&conflict("name taken")), Kind::Conflict);
        assert_eq!(code_of(&conflict("name taken")), RUNTIME_ERROR);
        assert_eq!(kind_of(&user("bad flag")), Kind::Other);
        assert_eq!(kind_of(&anyhow::anyhow!("io")), Kind::Other);
        // Context on top keeps the kind.
        let wrapped = Err::<(), _>(conflict("port")).context("reserving");
        assert_eq!(kind_of(&wrapped.unwrap_err()), Kind::Conflict);
    }
}
