//! The container's environment, as Docker builds it.

use anyhow::Result;

use crate::error;

pub use crate::engine::execve::DEFAULT_PATH;

/// Docker's environment: PATH and HOME defaults, then `-e K=V` (or `-e K` from ours).
pub fn build_env(args: &[String]) -> Result<Vec<String>> {
    let defaults = vec![format!("PATH={}", DEFAULT_PATH), "HOME=/root".to_string()];
    Ok(merge(defaults, parse_args(args)?))
}

/// `-e K=V` and `-e K` (the value from our own environment; skipped when unset), as
/// `K=V` entries.
pub fn parse_args(args: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
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
        out.push(format!("{key}={value}"));
    }
    Ok(out)
}

/// `base` with each of `overrides` replacing the entry of the same key (moved to the end).
pub fn merge(mut base: Vec<String>, overrides: Vec<String>) -> Vec<String> {
    for kv in overrides {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k).to_string();
        base.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        base.push(kv);
    }
    base
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_overrides_keep_every_key() {
        // `exec -e` on top of the container's environment: every override lands, PATH and
        // HOME included, whatever their order (an earlier version dropped some).
        let container = vec!["PATH=/bin".to_string(), "HOME=/root".to_string(), "X=1".to_string()];
        let got = merge(container, parse_args(&args(&["A=1", "PATH=/x", "HOME=/h"])).unwrap());
        assert_eq!(got, ["X=1", "A=1", "PATH=/x", "HOME=/h"]);
        let got = merge(vec!["PATH=/bin".into()], parse_args(&args(&["HOME=/h", "A=1"])).unwrap());
        assert_eq!(got, ["PATH=/bin", "HOME=/h", "A=1"]);
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(build_env(&[]).unwrap(), [format!("PATH={DEFAULT_PATH}"), "HOME=/root".to_string()]);
        assert_eq!(DEFAULT_PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }

    #[test]
    fn later_values_replace_earlier_ones_and_move_to_the_end() {
        let env = build_env(&args(&["A=1", "B=x=y", "A=2", "HOME=/home/me", "EMPTY=", "PATH=/bin"])).unwrap();
        assert_eq!(env, ["B=x=y", "A=2", "HOME=/home/me", "EMPTY=", "PATH=/bin"]);
        // Keys are matched whole: A does not replace AB, nor the other way round.
        let env = build_env(&args(&["AB=1", "A=2"])).unwrap();
        assert_eq!(&env[2..], ["AB=1", "A=2"]);
        // Case matters, as in Linux environments.
        let env = build_env(&args(&["path=/x"])).unwrap();
        assert_eq!(env.len(), 3);
        assert!(env[0].starts_with("PATH=/usr/local/sbin"));
    }

    #[test]
    fn bare_key_comes_from_the_callers_environment() {
        // PATH is always set where cargo runs tests; reading it needs no set_var (not
        // thread-safe in a multi-threaded test binary).
        let ours = std::env::var("PATH").unwrap();
        let env = build_env(&args(&["PATH", "X=1"])).unwrap();
        assert_eq!(env, ["HOME=/root".to_string(), format!("PATH={ours}"), "X=1".to_string()]);
        // An unset one is skipped (and does not remove a default).
        let unset = "DOCKLING_UNIT_TEST_SURELY_UNSET_VARIABLE";
        assert!(std::env::var_os(unset).is_none());
        let env = build_env(&args(&[unset, "HOME"])).unwrap();
        let home = std::env::var("HOME").map(|h| format!("HOME={h}"));
        match home {
            Ok(h) => assert_eq!(env, [format!("PATH={DEFAULT_PATH}"), h]),
            Err(_) => assert_eq!(env, [format!("PATH={DEFAULT_PATH}"), "HOME=/root".to_string()]),
        }
    }

    #[test]
    fn empty_key_is_refused() {
        for bad in ["=value", "=", "=a=b"] {
            let err = build_env(&args(&["OK=1", bad])).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid environment variable: {bad}"));
            assert_eq!(error::code_of(&err), error::RUNTIME_ERROR);
        }
    }

    #[test]
    fn apply_home_follows_the_user_unless_home_was_set() {
        let mut env = build_env(&args(&["A=1"])).unwrap();
        apply_home(&mut env, Some("/home/alice".into()));
        assert_eq!(env, [format!("PATH={DEFAULT_PATH}"), "HOME=/home/alice".into(), "A=1".into()]);

        let mut env = build_env(&args(&["HOME=/srv"])).unwrap();
        apply_home(&mut env, Some("/home/alice".into()));
        assert_eq!(env[1], "HOME=/srv");

        let mut env = build_env(&[]).unwrap();
        apply_home(&mut env, None);
        assert_eq!(env[1], "HOME=/root");

        // Only an exact HOME=/root is the default; HOME=/rootless is someone's choice.
        let mut env = vec!["HOME=/rootless".to_string(), "XHOME=/root".to_string()];
        apply_home(&mut env, Some("/h".into()));
        assert_eq!(env, ["HOME=/rootless", "XHOME=/root"]);
    }
}
