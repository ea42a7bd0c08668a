//! `import --change`: the Dockerfile instructions that set an image's runtime config
//! (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, STOPSIGNAL, LABEL), as `docker import -c`.

use std::collections::HashMap;

use anyhow::Result;
use oci_spec::image::Config;

use crate::error;

/// Applies each `INSTRUCTION args` to `config`.
pub fn apply(config: &mut Config, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        let (word, rest) = change.split_once(char::is_whitespace).unwrap_or((change, ""));
        let rest = rest.trim();
        let bad = |why: &str| error::user(format!("invalid --change {change:?}: {why}"));
        match word.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.set_cmd(Some(command(rest).map_err(|e| bad(&e))?));
            }
            "ENTRYPOINT" => {
                config.set_entrypoint(Some(command(rest).map_err(|e| bad(&e))?));
            }
            "ENV" => {
                let mut env = config.env().clone().unwrap_or_default();
                for (k, v) in pairs(rest).map_err(|e| bad(&e))? {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                config.set_env(Some(env));
            }
            "LABEL" => {
                let mut labels = config.labels().clone().unwrap_or_default();
                labels.extend(pairs(rest).map_err(|e| bad(&e))?);
                config.set_labels(Some(labels));
            }
            "WORKDIR" if rest.starts_with('/') => {
                config.set_working_dir(Some(rest.to_string()));
            }
            "WORKDIR" => return Err(bad("the working directory must be an absolute path")),
            "USER" if !rest.is_empty() => {
                config.set_user(Some(rest.to_string()));
            }
            "STOPSIGNAL" => {
                super::config::parse_signal(rest).ok_or_else(|| bad("unknown signal"))?;
                config.set_stop_signal(Some(rest.to_string()));
            }
            "EXPOSE" => {
                let mut ports = config.exposed_ports().clone().unwrap_or_default();
                for p in rest.split_whitespace() {
                    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    let ok = num.parse::<u16>().is_ok_and(|n| n > 0) && matches!(proto, "tcp" | "udp");
                    if !ok {
                        return Err(bad(&format!("invalid port {p:?}")));
                    }
                    let key = format!("{num}/{proto}");
                    if !ports.contains(&key) {
                        ports.push(key);
                    }
                }
                config.set_exposed_ports(Some(ports));
            }
            _ => {
                return Err(bad(
                    "supported instructions are CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, EXPOSE, STOPSIGNAL",
                ))
            }
        }
    }
    Ok(())
}

/// `["a", "b"]` (exec form) or `a b` (shell form, run by /bin/sh -c).
fn command(text: &str) -> std::result::Result<Vec<String>, String> {
    if text.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(text).map_err(|e| format!("bad JSON array: {e}"));
    }
    if text.is_empty() {
        return Err("empty command".into());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), text.into()])
}

/// `K=V K2="v 2"` or the old `K V` form.
fn pairs(text: &str) -> std::result::Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let first = text.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = text.split_once(char::is_whitespace).ok_or("expected KEY=VALUE")?;
        out.insert(k.to_string(), v.trim().to_string());
        return Ok(out);
    }
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote = None;
        for c in chars.by_ref() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, c) => word.push(c),
            }
        }
        let (k, v) = word.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {word:?}"))?;
        if k.is_empty() {
            return Err("empty key".into());
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_make_a_config() {
        let mut c = Config::default();
        apply(
            &mut c,
            &[
                r#"CMD ["echo", "hi"]"#.into(),
                "ENTRYPOINT /bin/start".into(),
                r#"ENV A=1 B="two words""#.into(),
                "ENV C three".into(),
                "WORKDIR /srv".into(),
                "USER 1000:1000".into(),
                "EXPOSE 80 53/udp".into(),
                "STOPSIGNAL SIGUSR1".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["echo", "hi"]);
        assert_eq!(c.entrypoint().clone().unwrap(), vec!["/bin/sh", "-c", "/bin/start"]);
        let env = c.env().clone().unwrap();
        assert!(
            env.contains(&"A=1".to_string())
                && env.contains(&"B=two words".to_string())
                && env.contains(&"C=three".to_string())
        );
        assert_eq!(c.working_dir().as_deref(), Some("/srv"));
        assert_eq!(c.exposed_ports().clone().unwrap(), vec!["80/tcp", "53/udp"]);
        assert!(apply(&mut c, &["FROM x".into()]).is_err());
        assert!(apply(&mut c, &["EXPOSE 99999".into()]).is_err());
        assert!(apply(&mut c, &["WORKDIR rel".into()]).is_err());
    }
}
