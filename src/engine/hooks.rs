//! The spec's hooks: programs the caller wants run at points of the container's life
//! (Docker's bridge networking is a prestart hook that plugs the veth into the new netns).
//! Each gets the container's state as JSON on stdin; a failing hook fails the step.
//! prestart, createRuntime, poststart and poststop run in the runtime's namespaces;
//! createContainer in the container's mount namespace before pivot_root (the host's
//! programs and their libraries still resolve; the spec's mounts are made after
//! pivot_root, see [`super::rootfs`], so these hooks run before them, not after as in
//! runc), and startContainer in the container, right before its command.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;

use crate::explain;

/// The state a hook reads on stdin (the spec's `state` object).
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &serde_json::Value,
) -> String {
    serde_json::json!({
        "ociVersion": super::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
    .to_string()
}

/// Runs each hook in order; the first failure stops them and is the error.
pub fn run(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for hook in hooks {
        run_one(kind, hook, state).with_context(|| format!("{kind} hook {}", hook.path().display()))?;
    }
    Ok(())
}

fn run_one(kind: &str, hook: &Hook, state: &str) -> Result<()> {
    let path = hook.path();
    let args = hook.args().clone().unwrap_or_default();
    explain::step(
        &format!(
            "{} {} <<< '<state JSON>'",
            path.display(),
            args.iter().skip(1).cloned().collect::<Vec<_>>().join(" ")
        ),
        &format!("the spec's {kind} hook"),
    );
    let mut cmd = Command::new(path);
    if let Some(arg0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    }
    cmd.args(args.iter().skip(1)).env_clear().stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().context("starting it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state may close stdin early: not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    // Its stderr read as it comes (the first 4 KiB kept for the error), so a hook that
    // writes a lot never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut e, &mut buf) {
                if kept.len() < 4096 {
                    kept.extend_from_slice(&buf[..n.min(4096 - kept.len())]);
                }
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    });
    let deadline = hook.timeout().map(|s| Instant::now() + Duration::from_secs(s.max(1) as u64));
    loop {
        if let Some(status) = child.try_wait().context("waiting for it")? {
            if status.success() {
                return Ok(());
            }
            let err = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
            bail!("{status}: {}", err.trim());
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", hook.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
