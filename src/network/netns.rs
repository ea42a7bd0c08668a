//! Naming a container's netns for `ip netns` (a bind mount on /run/netns/NAME), as
//! iproute2 does, so `ip netns exec web ip addr` works as in the tutorial.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::explain;

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// /run/netns must be a shared mount so names show in every mount namespace.
fn ensure_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).context("creating /run/netns")?;
    let shared = |flags| mount(None::<&str>, NETNS_DIR, None::<&str>, flags, None::<&str>);
    if shared(MsFlags::MS_SHARED | MsFlags::MS_REC).is_err() {
        mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .context("binding /run/netns")?;
        shared(MsFlags::MS_SHARED | MsFlags::MS_REC).context("making /run/netns shared")?;
    }
    Ok(())
}

pub fn add(name: &str, pid: i32) -> Result<()> {
    ensure_dir()?;
    let target = path(name);
    explain::step(
        &format!("touch {0} && mount --bind /proc/{pid}/ns/net {0}", target.display()),
        "name the container's netns so `ip netns exec` can enter it",
    );
    std::fs::File::create(&target).with_context(|| format!("creating {}", target.display()))?;
    mount(Some(format!("/proc/{pid}/ns/net").as_str()), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .with_context(|| format!("naming the netns {name}"))
}

pub fn remove(name: &str) {
    let target = path(name);
    if !target.exists() {
        return;
    }
    explain::step(&format!("ip netns delete {name}"), "forget the netns name");
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&target);
}
