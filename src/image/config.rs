//! What an image's config says about running it: Entrypoint and Cmd, Env, WorkingDir,
//! User, ExposedPorts (for `-P`) and StopSignal (`container::image_defaults` applies it).

use oci_spec::image::Config;

use super::store::Image;

/// The runtime part of an image's config (empty for images without one, like imports).
pub struct RunConfig<'a> {
    cfg: Option<&'a Config>,
}

impl Image {
    pub fn config(&self) -> RunConfig<'_> {
        RunConfig { cfg: self.config.config().as_ref() }
    }
}

impl RunConfig<'_> {
    pub fn entrypoint(&self) -> Vec<String> {
        self.cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default()
    }

    pub fn cmd(&self) -> Vec<String> {
        self.cfg.and_then(|c| c.cmd().clone()).unwrap_or_default()
    }

    pub fn env(&self) -> Vec<String> {
        self.cfg.and_then(|c| c.env().clone()).unwrap_or_default()
    }

    pub fn working_dir(&self) -> Option<String> {
        self.cfg.and_then(|c| c.working_dir().clone()).filter(|w| !w.is_empty())
    }

    pub fn user(&self) -> Option<String> {
        self.cfg.and_then(|c| c.user().clone()).filter(|u| !u.is_empty())
    }

    /// `80/tcp`-style keys of ExposedPorts, sorted.
    pub fn exposed_ports(&self) -> Vec<String> {
        let mut ports = self.cfg.and_then(|c| c.exposed_ports().clone()).unwrap_or_default();
        ports.sort();
        ports
    }

    pub fn stop_signal(&self) -> Option<String> {
        self.cfg.and_then(|c| c.stop_signal().clone()).filter(|s| !s.is_empty())
    }
}

/// The signal number for a StopSignal value (`SIGUSR1`, `USR1`, `10`, `SIGRTMIN+3`).
pub fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = text.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off = if rest.is_empty() { 0 } else { rest.strip_prefix('+')?.parse::<i32>().ok()? };
        let n = libc::SIGRTMIN() + off;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off = if rest.is_empty() { 0 } else { rest.strip_prefix('-')?.parse::<i32>().ok()? };
        let n = libc::SIGRTMAX() - off;
        return (n >= libc::SIGRTMIN()).then_some(n);
    }
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
}

/// The stop signal of the image a container was made from (None: use SIGTERM).
pub fn stop_signal(store: &crate::state::Store, image_id: &str) -> Option<i32> {
    let images = super::ImageStore::new(store);
    let image = images.lookup(image_id).ok()??;
    parse_signal(&image.config().stop_signal()?)
}

/// For the tests of `container::image_defaults`: an image config without an image.
#[cfg(test)]
impl<'a> RunConfig<'a> {
    pub fn of(cfg: Option<&'a Config>) -> RunConfig<'a> {
        RunConfig { cfg }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGUSR1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("0"), None);
    }
}
