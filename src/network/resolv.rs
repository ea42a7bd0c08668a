//! The container's /etc/resolv.conf: the host's, without the resolvers a container
//! cannot reach.

use crate::types::NetworkMode;

/// The host's resolv.conf, with loopback resolvers (unreachable from a container's netns)
/// replaced by the upstream ones systemd-resolved uses, or by public ones as Docker does.
pub fn resolv_conf(mode: NetworkMode) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    rewrite(mode, host, || std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or_default())
}

/// [`resolv_conf`] given the host's text; `upstream` gives systemd-resolved's (read only
/// when the host's has no usable nameserver left).
fn rewrite(mode: NetworkMode, host: String, upstream: impl FnOnce() -> String) -> String {
    if mode == NetworkMode::Host {
        return host;
    }
    let is_loopback = |l: &str| {
        l.split_whitespace().nth(1).and_then(|a| a.parse::<std::net::IpAddr>().ok()).is_some_and(|a| a.is_loopback())
    };
    let mut out: Vec<String> =
        host.lines().filter(|l| !(l.starts_with("nameserver") && is_loopback(l))).map(String::from).collect();
    if !out.iter().any(|l| l.starts_with("nameserver")) {
        let upstream = upstream();
        let ups: Vec<String> =
            upstream.lines().filter(|l| l.starts_with("nameserver") && !is_loopback(l)).map(String::from).collect();
        if ups.is_empty() {
            out.push("nameserver 8.8.8.8".into());
            out.push("nameserver 8.8.4.4".into());
        } else {
            out.extend(ups);
        }
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

    fn never() -> String {
        panic!("the upstream file must not be read here")
    }

    #[test]
    fn host_mode_gets_the_hosts_file_unchanged() {
        let host = "nameserver 127.0.0.53\noptions edns0\n# no newline at the end";
        assert_eq!(rewrite(NetworkMode::Host, host.to_string(), never), host);
        assert_eq!(rewrite(NetworkMode::Host, String::new(), never), "");
    }

    #[test]
    fn reachable_nameservers_are_kept_and_loopback_ones_removed() {
        let host = "# Generated\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\nnameserver 2001:db8::53\n\
                    nameserver 127.1.2.3\nsearch lan example.com\noptions edns0 trust-ad\n";
        let want = "# Generated\nnameserver 10.0.0.1\nnameserver 2001:db8::53\nsearch lan example.com\n\
                    options edns0 trust-ad\n";
        assert_eq!(rewrite(NetworkMode::Bridge, host.to_string(), never), want);
        assert_eq!(rewrite(NetworkMode::None, host.to_string(), never), want);
        // Text without a final newline gets one.
        assert_eq!(rewrite(NetworkMode::Bridge, "nameserver 1.1.1.1".into(), never), "nameserver 1.1.1.1\n");
    }

    #[test]
    fn systemd_resolved_stub_falls_back_to_its_upstream_servers() {
        let host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        let upstream = "# This is /run/systemd/resolve/resolv.conf\nnameserver 192.168.1.1\nnameserver 127.0.0.1\n\
                        nameserver ::1\nnameserver 2001:db8::1\nsearch other\n";
        assert_eq!(
            rewrite(NetworkMode::Bridge, host.into(), || upstream.into()),
            "options edns0 trust-ad\nsearch lan\nnameserver 192.168.1.1\nnameserver 2001:db8::1\n"
        );
    }

    #[test]
    fn public_servers_when_nothing_else_is_reachable() {
        assert_eq!(rewrite(NetworkMode::Bridge, String::new(), String::new), PUBLIC);
        let host = "nameserver 127.0.0.53\nsearch lan\n";
        assert_eq!(rewrite(NetworkMode::Bridge, host.into(), String::new), format!("search lan\n{PUBLIC}"));
        // An upstream file with only loopback servers or comments is no better.
        let upstream = || "nameserver 127.0.0.1\n# nameserver 9.9.9.9\nsearch x\n".to_string();
        assert_eq!(rewrite(NetworkMode::Bridge, host.into(), upstream), format!("search lan\n{PUBLIC}"));
        // A commented-out nameserver is not a nameserver.
        let host = "# nameserver 1.1.1.1\n";
        assert_eq!(rewrite(NetworkMode::None, host.into(), String::new), format!("# nameserver 1.1.1.1\n{PUBLIC}"));
    }
}
