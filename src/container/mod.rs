//! Containers: `run` (spawn, init inside the namespaces, monitor) and the lifecycle
//! commands (`stop`, `rm`) with the one teardown path they all share.

mod env;
mod exec;
mod image_defaults;
mod init;
mod lifecycle;
pub mod logfile;
mod monitor;
pub mod mounts;
mod naming;
mod options;
mod record;
mod relay;
mod rootfs;
mod run;
mod tty;

pub use exec::{exec, ExecOptions};
pub use lifecycle::{reconcile, reconcile_all, remove_many, stop};
pub use monitor::exit_handler as monitor_exit;
pub use options::RunOptions;
pub use run::{run, Outcome as RunOutcome};
