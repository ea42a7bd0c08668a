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

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Config, ConfigBuilder};

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn opts() -> RunOptions {
        RunOptions {
            detach: false,
            interactive: false,
            tty: false,
            auto_remove: false,
            name: None,
            hostname: None,
            env: Vec::new(),
            workdir: None,
            publish: Vec::new(),
            network: NetworkMode::Bridge,
            network_of: None,
            pid_of: None,
            security: crate::security::Security::from_flags(&[], &[], false, &[], None, false).unwrap(),
            limits: Default::default(),
            mounts: Vec::new(),
            image: "img".into(),
            command: Vec::new(),
            publish_all: false,
            entrypoint: None,
            pull: Default::default(),
        }
    }

    fn image() -> Config {
        ConfigBuilder::default()
            .entrypoint(v(&["/entry", "--flag"]))
            .cmd(v(&["serve", "-v"]))
            .env(v(&["PATH=/image/bin", "BARE", "A=image"]))
            .working_dir("/srv")
            .user("1000:1000")
            .exposed_ports(v(&["8080/tcp", "53/udp", "443/tcp"]))
            .build()
            .unwrap()
    }

    fn applied(cfg: Option<&Config>, opts: &mut RunOptions) {
        apply(&RunConfig::of(cfg), opts).unwrap();
    }

    #[test]
    fn command_is_entrypoint_then_cmd() {
        let img = image();
        let mut o = opts();
        applied(Some(&img), &mut o);
        assert_eq!(o.command, ["/entry", "--flag", "serve", "-v"]);
        // Arguments replace Cmd, not Entrypoint.
        let mut o = RunOptions { command: v(&["run", "x"]), ..opts() };
        applied(Some(&img), &mut o);
        assert_eq!(o.command, ["/entry", "--flag", "run", "x"]);
    }

    #[test]
    fn entrypoint_flag_replaces_entrypoint_and_drops_cmd() {
        let img = image();
        let mut o = RunOptions { entrypoint: Some("/bin/sh".into()), ..opts() };
        applied(Some(&img), &mut o);
        assert_eq!(o.command, ["/bin/sh"]);
        assert_eq!(o.entrypoint, None);
        let mut o = RunOptions { entrypoint: Some("/bin/sh".into()), command: v(&["-c", "id"]), ..opts() };
        applied(Some(&img), &mut o);
        assert_eq!(o.command, ["/bin/sh", "-c", "id"]);
        // --entrypoint "": no entrypoint at all, and still no image Cmd.
        let mut o = RunOptions { entrypoint: Some(String::new()), command: v(&["echo", "hi"]), ..opts() };
        applied(Some(&img), &mut o);
        assert_eq!(o.command, ["echo", "hi"]);
        let mut o = RunOptions { entrypoint: Some(String::new()), ..opts() };
        applied(Some(&img), &mut o);
        assert!(o.command.is_empty());
    }

    #[test]
    fn image_env_comes_first_and_bare_keys_stay_empty() {
        let img = image();
        let mut o = RunOptions { env: v(&["A=flag", "BARE"]), ..opts() };
        applied(Some(&img), &mut o);
        // `-e BARE` (ours) stays bare for build_env to read from the caller; the image's becomes BARE=.
        assert_eq!(o.env, ["PATH=/image/bin", "BARE=", "A=image", "A=flag", "BARE"]);
    }

    #[test]
    fn workdir_and_user_unless_given() {
        let img = image();
        let mut o = opts();
        applied(Some(&img), &mut o);
        assert_eq!((o.workdir.as_deref(), o.security.user.as_deref()), (Some("/srv"), Some("1000:1000")));
        let mut o = opts();
        o.workdir = Some("/w".into());
        o.security.user = Some("0".into());
        applied(Some(&img), &mut o);
        assert_eq!((o.workdir.as_deref(), o.security.user.as_deref()), (Some("/w"), Some("0")));
        // An image's empty WorkingDir and User are none.
        let empty = ConfigBuilder::default().working_dir("").user("").build().unwrap();
        let mut o = opts();
        applied(Some(&empty), &mut o);
        assert_eq!((o.workdir, o.security.user), (None, None));
        // A malformed image User is refused like a malformed --user.
        let bad = ConfigBuilder::default().user("a:b:c").build().unwrap();
        let err = apply(&RunConfig::of(Some(&bad)), &mut opts()).unwrap_err();
        assert!(err.to_string().starts_with("invalid --user value \"a:b:c\""), "{err}");
    }

    #[test]
    fn publish_all_takes_exposed_ports_on_the_bridge_only() {
        let img = image();
        let mut o = RunOptions { publish_all: true, publish: v(&["9000:9000"]), ..opts() };
        applied(Some(&img), &mut o);
        assert_eq!(o.publish, ["9000:9000", "443/tcp", "53/udp", "8080/tcp"]);
        for network in [NetworkMode::Host, NetworkMode::None] {
            let mut o = RunOptions { publish_all: true, network, ..opts() };
            applied(Some(&img), &mut o);
            assert!(o.publish.is_empty());
        }
        let mut o = opts();
        applied(Some(&img), &mut o);
        assert!(o.publish.is_empty());
    }

    #[test]
    fn an_image_without_config_changes_only_what_it_must() {
        let mut o = RunOptions { command: v(&["sh"]), env: v(&["X=1"]), publish_all: true, ..opts() };
        applied(None, &mut o);
        assert_eq!(o.command, ["sh"]);
        assert_eq!(o.env, ["X=1"]);
        assert_eq!((o.workdir, o.security.user), (None, None));
        assert!(o.publish.is_empty());
    }
}
