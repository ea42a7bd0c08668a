//! The container's environment, as Docker builds it.

use anyhow::Result;

use crate::error;

/// Default PATH, as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's environment: PATH and HOME defaults, then `-e K=V` (or `-e K` from ours).
pub fn build_env(args: &[String]) -> Result<Vec<String>> {
    let mut env = vec![format!("PATH={}", DEFAULT_PATH), "HOME=/root".to_string()];
    for arg in args {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(arg) {
                Ok(v) => (arg.clone(), v),
                Err(_) => continue,
            },
        };
        if key.is_empty() {
            return Err(error::user(format!("invalid environment variable: {arg}")));
        }
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
        env.push(format!("{key}={value}"));
    }
    Ok(env)
}

/// After a switch to another user, HOME follows its passwd entry unless `-e HOME` was given.
pub fn apply_home(env: &mut [String], home: Option<String>) {
    if let Some(home) = home {
        for e in env.iter_mut() {
            if e == "HOME=/root" {
                *e = format!("HOME={home}");
            }
        }
    }
}
