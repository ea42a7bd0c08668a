//! The OCI distribution client (oci-client over rustls/ring): which registries get
//! plain HTTP, and which credentials go where.
//!
//! Plain HTTP is used for `--insecure` pulls and, as Docker's built-in rule has it, for
//! registries on the loopback (`localhost`, `127.0.0.0/8`, `::1`). Credentials come from
//! `docker login`'s file (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`,
//! `auths.<registry>.auth`); otherwise the pull is anonymous, and oci-client fetches the
//! bearer token a registry's challenge asks for.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use crate::image::reference::ImageRef;

/// Whether a registry host (with optional port) is on the loopback.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub fn build(reference: &ImageRef, insecure: bool) -> Client {
    // rustls needs a crypto provider; ring builds quickly and is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = reference.oci().resolve_registry().to_string();
    let plain = insecure || is_loopback(&registry);
    let config = ClientConfig {
        protocol: if plain { ClientProtocol::HttpsExcept(vec![registry]) } else { ClientProtocol::Https },
        // We choose from manifest lists ourselves (linux + this architecture).
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(15)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("dockling/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    Client::new(config)
}

/// Credentials for `registry` from Docker's config file, or anonymous.
pub fn auth(reference: &ImageRef) -> RegistryAuth {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")));
    let Some(dir) = dir else { return RegistryAuth::Anonymous };
    let Ok(text) = std::fs::read(dir.join("config.json")) else { return RegistryAuth::Anonymous };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else { return RegistryAuth::Anonymous };
    let registry = reference.registry();
    let keys: Vec<String> = if registry == "docker.io" {
        vec!["https://index.docker.io/v1/".into(), "index.docker.io".into(), "docker.io".into()]
    } else {
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
    };
    for key in keys {
        let Some(b64) = json
            .pointer(&format!("/auths/{}", key.replace('~', "~0").replace('/', "~1")))
            .and_then(|a| a.get("auth"))
            .and_then(|a| a.as_str())
        else {
            continue;
        };
        if let Some((user, pass)) = decode_basic(b64) {
            return RegistryAuth::Basic(user, pass);
        }
    }
    RegistryAuth::Anonymous
}

/// base64 `user:password` (Docker's `auth` field).
fn decode_basic(b64: &str) -> Option<(String, String)> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in b64.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("index.docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert_eq!(decode_basic("dXNlcjpwYXNz"), Some(("user".into(), "pass".into())));
    }
}
