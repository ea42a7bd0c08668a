//! The default profile as build.rs compiled it from default.json: no JSON is parsed when
//! a container starts. A container that holds none of the capabilities the profile
//! mentions (Docker's default set, or any set without them) gets the ready program;
//! others get the rules chosen from the resolved tables. When cross-compiled, neither
//! exists and default.json is parsed at start (see build.rs).

// (Unused by the generated code when it is empty, when cross-compiling.)
#[allow(unused_imports)]
use std::borrow::Cow;

use libc::sock_filter;

#[allow(unused_imports)]
use super::profile::{Cmp, Entry, Resolved};

/// A program valid for every container that holds none of `mentioned`.
pub struct Precompiled {
    pub mentioned: &'static [&'static str],
    pub program: &'static [sock_filter],
}

include!(concat!(env!("OUT_DIR"), "/seccomp_default.rs"));

/// The ready program, if it is the one for a container holding `caps`.
pub fn precompiled(caps: &[String]) -> Option<&'static [sock_filter]> {
    let p = PRECOMPILED.as_ref()?;
    let holds_one = p.mentioned.iter().any(|m| caps.iter().any(|c| c.eq_ignore_ascii_case(m)));
    (!holds_one).then_some(p.program)
}

/// The resolved default profile, if build.rs made it.
pub fn resolved() -> Option<&'static Resolved<'static>> {
    DEFAULT.as_ref()
}
