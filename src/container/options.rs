//! What `dockling run` was asked to do, as the command line (and then the image) says.

use crate::types::NetworkMode;

pub struct RunOptions {
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub auto_remove: bool,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub publish: Vec<String>,
    pub network: NetworkMode,
    /// `--network container:X`: X, whose network namespace the container joins.
    pub network_of: Option<String>,
    /// `--pid container:X`: X, whose pid namespace the container joins.
    pub pid_of: Option<String>,
    pub security: crate::security::Security,
    pub limits: crate::cgroups::Limits,
    pub mounts: Vec<crate::types::Mount>,
    pub image: String,
    pub command: Vec<String>,
    /// `-P`: publish the image's ExposedPorts on free host ports.
    pub publish_all: bool,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd).
    pub entrypoint: Option<String>,
    /// `--pull`: when to pull the image first.
    pub pull: crate::image::PullPolicy,
}
