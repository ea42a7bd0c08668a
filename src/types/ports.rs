//! `-p` parsing: `[IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]`, as Docker has it.

use std::fmt;
use std::net::Ipv4Addr;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What the user asked for; `host_port` None means "pick a free one".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Ipv4Addr,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

/// A published port, as recorded and shown by `ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}->{}/{}", self.host_ip, self.host_port, self.container_port, self.proto.as_str())
    }
}

impl PortMapping {
    /// Whether two publications would fight over the same host socket.
    pub fn clashes(&self, other: &PortMapping) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip || self.host_ip.is_unspecified() || other.host_ip.is_unspecified())
    }
}

pub fn parse_all(specs: &[String]) -> Result<Vec<PortSpec>> {
    specs.iter().map(|s| parse(s)).collect()
}

pub fn parse(spec: &str) -> Result<PortSpec> {
    let bad = |why: &str| error::user(format!("invalid port specification: {spec:?}: {why}"));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(bad(&format!("unsupported protocol {p:?} (use tcp or udp)"))),
        None => (spec, Proto::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), if h.is_empty() { None } else { Some(*h) }, *c),
        _ => return Err(bad("too many colons")),
    };
    let port = |s: &str, what: &str| -> Result<u16> {
        match s.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) && !s.starts_with('+') => Ok(n as u16),
            _ if s.contains('-') => Err(bad("port ranges are not supported")),
            _ => Err(bad(&format!("invalid {what} port {s:?}"))),
        }
    };
    let host_ip = match ip {
        None | Some("") => Ipv4Addr::UNSPECIFIED,
        Some(ip) => {
            ip.trim_matches(['[', ']']).parse::<Ipv4Addr>().map_err(|_| bad(&format!("invalid IP address {ip:?}")))?
        }
    };
    Ok(PortSpec {
        host_ip,
        host_port: host.map(|h| port(h, "host")).transpose()?,
        container_port: port(container, "container")?,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = parse("5000:5000").unwrap();
        assert_eq!((p.host_port, p.container_port, p.proto), (Some(5000), 5000, Proto::Tcp));
        let p = parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.proto), (Ipv4Addr::LOCALHOST, Some(8080), Proto::Udp));
        let p = parse("127.0.0.1::80").unwrap();
        assert_eq!((p.host_ip, p.host_port), (Ipv4Addr::LOCALHOST, None));
        assert_eq!(parse("80").unwrap().host_port, None);
        for bad in ["abc", "70000:80", "1.2.3:80:80", "80/sctp", "0:80", "1:2:3:4", "80-90:80", ""] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    fn mapping(host_ip: Ipv4Addr, host_port: u16, proto: Proto) -> PortMapping {
        PortMapping { host_ip, host_port, container_port: 80, proto }
    }

    #[test]
    fn clashes() {
        let any = Ipv4Addr::UNSPECIFIED;
        let lo = Ipv4Addr::LOCALHOST;
        let other = Ipv4Addr::new(10, 0, 0, 1);
        let a = mapping(lo, 8080, Proto::Tcp);
        assert!(a.clashes(&a));
        // The container port does not matter: the host socket does.
        assert!(a.clashes(&PortMapping { container_port: 9999, ..a.clone() }));
        assert!(a.clashes(&mapping(any, 8080, Proto::Tcp)));
        assert!(mapping(any, 8080, Proto::Tcp).clashes(&a));
        assert!(mapping(any, 8080, Proto::Tcp).clashes(&mapping(any, 8080, Proto::Tcp)));
        assert!(!a.clashes(&mapping(other, 8080, Proto::Tcp)));
        assert!(!a.clashes(&mapping(lo, 8081, Proto::Tcp)));
        assert!(!a.clashes(&mapping(lo, 8080, Proto::Udp)));
        assert!(!mapping(any, 53, Proto::Udp).clashes(&mapping(any, 53, Proto::Tcp)));
    }

    #[test]
    fn display() {
        let m = PortMapping { host_ip: Ipv4Addr::UNSPECIFIED, host_port: 8080, container_port: 80, proto: Proto::Tcp };
        assert_eq!(m.to_string(), "0.0.0.0:8080->80/tcp");
        let m = PortMapping { host_ip: Ipv4Addr::LOCALHOST, host_port: 5353, container_port: 53, proto: Proto::Udp };
        assert_eq!(m.to_string(), "127.0.0.1:5353->53/udp");
        assert_eq!(Proto::Tcp.as_str(), "tcp");
        assert_eq!(serde_json::to_string(&Proto::Udp).unwrap(), "\"udp\"");
    }

    #[test]
    fn parse_edges() {
        let spec = |host_ip, host_port, container_port, proto| PortSpec { host_ip, host_port, container_port, proto };
        let any = Ipv4Addr::UNSPECIFIED;
        assert_eq!(parse("80").unwrap(), spec(any, None, 80, Proto::Tcp));
        assert_eq!(parse("80/tcp").unwrap(), spec(any, None, 80, Proto::Tcp));
        assert_eq!(parse("53/udp").unwrap(), spec(any, None, 53, Proto::Udp));
        assert_eq!(parse("1:65535").unwrap(), spec(any, Some(1), 65535, Proto::Tcp));
        assert_eq!(parse("0.0.0.0:8080:80").unwrap(), spec(any, Some(8080), 80, Proto::Tcp));
        assert_eq!(parse(":8080:80").unwrap(), spec(any, Some(8080), 80, Proto::Tcp));
        assert_eq!(parse("::80/udp").unwrap(), spec(any, None, 80, Proto::Udp));
        assert_eq!(parse("[10.1.2.3]:53:53/udp").unwrap(), spec(Ipv4Addr::new(10, 1, 2, 3), Some(53), 53, Proto::Udp));
        for (bad, why) in [
            ("65536", "invalid container port"),
            ("80:0", "invalid container port"),
            ("+80", "invalid container port"),
            ("80:+80", "invalid container port"),
            (" 80", "invalid container port"),
            (":80", "invalid host port"),
            ("x:80", "invalid host port"),
            ("80/", "unsupported protocol"),
            ("80/TCP", "unsupported protocol"),
            ("8000-8010:80", "port ranges are not supported"),
            ("80:8000-8010", "port ranges are not supported"),
            ("localhost:80:80", "invalid IP address"),
            ("1.2.3.4.5:80:80", "invalid IP address"),
            ("[::1]:80:80", "too many colons"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
            assert!(err.to_string().starts_with(&format!("invalid port specification: {bad:?}")), "{err}");
            assert_eq!(crate::error::code_of(&err), crate::error::RUNTIME_ERROR);
        }
    }

    #[test]
    fn parse_all_stops_at_the_first_bad_one() {
        let specs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = parse_all(&specs(&["80", "127.0.0.1:53:53/udp"])).unwrap();
        assert_eq!(all.iter().map(|p| p.container_port).collect::<Vec<_>>(), [80, 53]);
        assert!(parse_all(&specs(&["80", "nope", "81"])).unwrap_err().to_string().contains("\"nope\""));
        assert!(parse_all(&[]).unwrap().is_empty());
    }
}
