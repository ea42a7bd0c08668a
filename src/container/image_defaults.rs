//! How an image's config shapes `run`, with Docker's rules for what `run`'s own flags and
//! arguments replace.

use anyhow::Result;

use super::options::RunOptions;
use crate::image::RunConfig;
use crate::types::NetworkMode;

/// Fills in what `run` was not told, from the image, as `docker run` does:
/// - the command is Entrypoint + Cmd; arguments after the image replace Cmd, and
///   `--entrypoint` replaces Entrypoint (and drops the image's Cmd);
/// - the image's Env comes before `-e` (so `-e` wins);
/// - WorkingDir and User apply unless `-w` / `-u` were given;
/// - `-P` publishes every ExposedPorts entry on a free host port (bridge network only,
///   as other modes have no ports to publish).
pub fn apply(image: &RunConfig, opts: &mut RunOptions) -> Result<()> {
    let (entrypoint, cmd) = match opts.entrypoint.take() {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e], Vec::new()),
        None => (image.entrypoint(), image.cmd()),
    };
    let args = if opts.command.is_empty() { cmd } else { std::mem::take(&mut opts.command) };
    opts.command = entrypoint.into_iter().chain(args).collect();
    // An image's bare `KEY` must never pull the value from the caller's environment
    // (that is only for `-e KEY` typed on the command line).
    let mut env: Vec<String> =
        image.env().into_iter().map(|e| if e.contains('=') { e } else { format!("{e}=") }).collect();
    env.append(&mut opts.env);
    opts.env = env;
    if opts.workdir.is_none() {
        opts.workdir = image.working_dir();
    }
    if opts.security.user.is_none() {
        if let Some(user) = image.user() {
            crate::security::user::validate(&user)?;
            opts.security.user = Some(user);
        }
    }
    if opts.publish_all && opts.network == NetworkMode::Bridge {
        opts.publish.extend(image.exposed_ports());
    }
    Ok(())
}
