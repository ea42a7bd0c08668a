//! `dockling-runc`, runc's command line as containerd's shim speaks it: what it answers
//! before any container of its own exists. (The engine's create/start come next.)

mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;

/// A directory of the test's own with a `dockling-runc` link to the binary under test;
/// removed when dropped.
struct Runc {
    dir: PathBuf,
    link: PathBuf,
}

impl Runc {
    fn new(name: &str) -> Runc {
        let dir = std::env::temp_dir().join(format!("dockling-runc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("dockling-runc");
        std::os::unix::fs::symlink(bin(), &link).unwrap();
        Runc { dir, link }
    }

    fn call(&self, args: &[&str]) -> (i32, String, String) {
        let o = Command::new(&self.link).args(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn version_and_features_come_from_the_engine() {
    let r = Runc::new("features");
    let call = |a: &[&str]| r.call(a);
    let (code, out, _) = call(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("dockling-runc version ") && out.contains("\nspec: 1.0.2"), "{out}");
    let (code, out, err) = call(&["features"]);
    assert_eq!(code, 0, "{err}");
    let f: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["ociVersionMax"], "1.0.2");
    let opts: Vec<&str> = f["mountOptions"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for o in ["rbind", "ro", "nosuid", "rprivate", "strictatime"] {
        assert!(opts.contains(&o), "{o} missing from {opts:?}");
    }
    assert!(!opts.contains(&"rro"), "rro is not honoured, so it is not offered: {opts:?}");
    let ns: Vec<&str> = f["linux"]["namespaces"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(ns.contains(&"network") && !ns.contains(&"user"), "{ns:?}");
    assert!(f["linux"]["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_NET_RAW"));
}

#[test]
fn unknown_ids_are_answered_as_the_shim_expects() {
    let r = Runc::new("unknown");
    let call = |a: &[&str]| r.call(a);
    let dir = r.dir.clone();
    let log = dir.join("log.json");
    let _ = std::fs::remove_file(&log);
    let root = dir.join("root");
    let (root_s, log_s) = (root.to_str().unwrap(), log.to_str().unwrap());
    let global = ["--root", root_s, "--log", log_s, "--log-format", "json"];
    // delete --force of an id that does not exist: success, and silence.
    let (code, out, err) = call(&[&global[..], &["delete", "--force", "nosuch"]].concat());
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    // state and kill: exit 1, nothing on stdout or stderr, and a JSON error line in the
    // log with the words the shim and dockerd classify by.
    for cmd in [&["state", "nosuch"][..], &["kill", "nosuch", "9"][..]] {
        let (code, out, err) = call(&[&global[..], cmd].concat());
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""), "{cmd:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["level"], "error", "{text}");
        assert!(last["msg"].as_str().unwrap().contains("does not exist"), "{text}");
        assert!(last["time"].as_str().is_some(), "{text}");
    }
    // A hostile id is refused before it names any path.
    let (code, ..) = call(&[&global[..], &["state", "../../etc"]].concat());
    assert_eq!(code, 1);
    assert!(std::fs::read_to_string(&log).unwrap().lines().last().unwrap().contains("invalid container id"));
    // --systemd-cgroup is refused clearly, not ignored.
    let (code, ..) = call(&[&global[..], &["--systemd-cgroup", "list"]].concat());
    assert_eq!(code, 1);
    assert!(std::fs::read_to_string(&log).unwrap().lines().last().unwrap().contains("--systemd-cgroup"));
    assert!(!root.exists(), "nothing may have been created under the root");
}
