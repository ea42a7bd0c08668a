//! A small subset of Go templates for `inspect --format`: `{{.A.B}}` field paths and
//! `{{json .A}}`, which is what Docker users type (`{{.NetworkSettings.IPAddress}}`).

use anyhow::Result;
use serde_json::Value;

use crate::error;

pub fn render(template: &str, value: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| error::user(format!("template: unclosed action in {template:?}")))?;
        let action = rest[start + 2..start + end].trim();
        out.push_str(&eval(action, value)?);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\n", "\n"))
}

fn eval(action: &str, value: &Value) -> Result<String> {
    let (as_json, path) = match action.strip_prefix("json ") {
        Some(p) => (true, p.trim()),
        None => (false, action),
    };
    let path =
        path.strip_prefix('.').ok_or_else(|| error::user(format!("template: unsupported action {{{{{action}}}}}")))?;
    let mut v = value;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = v.get(key).ok_or_else(|| error::user(format!("template: can't evaluate field {key}")))?;
    }
    Ok(match (as_json, v) {
        (false, Value::String(s)) => s.clone(),
        (false, Value::Null) => "<no value>".into(),
        _ => serde_json::to_string(v)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let v =
            serde_json::json!({"Name": "/web", "NetworkSettings": {"IPAddress": "10.131.0.2", "Ports": {"80/tcp": 1}}});
        assert_eq!(render("{{.NetworkSettings.IPAddress}}", &v).unwrap(), "10.131.0.2");
        assert_eq!(render("ip={{ .NetworkSettings.IPAddress }} n={{.Name}}", &v).unwrap(), "ip=10.131.0.2 n=/web");
        assert_eq!(render("{{json .NetworkSettings.Ports}}", &v).unwrap(), "{\"80/tcp\":1}");
        assert!(render("{{.Nope}}", &v).is_err());
    }
}
