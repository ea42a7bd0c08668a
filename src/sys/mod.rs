//! System-call helpers shared across dockling: one home for each small piece of kernel
//! plumbing (process identity, descriptors, locks, terminals, threads, the sealed binary).

pub mod fd;
pub mod last_close;
pub mod lock;
pub mod mount_flags;
pub mod process;
pub mod sealed_exe;
pub mod terminal;
pub mod threads;
