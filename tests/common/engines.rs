//! Real container engines as peers, inside a test's simulated host: containerd (and its
//! shim) with root, state and sockets under the test's temp dir, never the system's.
//!
//! The simulated host gets a private tmpfs on `/run` first (the shim puts its sockets
//! under `/run/containerd/s`, a path containerd 1.6 does not let us move); the sim host's
//! netns names are carried over. All of it goes with the simulated host's mount namespace.

use std::path::PathBuf;
use std::time::Duration;

use super::paths::bin;
use super::process::{wait_until, Out, Proc};
use super::simhost::SimHost;
use super::text::shq;

/// The link through which containerd's shim calls dockling as its runtime.
pub fn runc_link(sim: &SimHost) -> PathBuf {
    let link = sim.tmp.join("dockling-runc");
    if !link.exists() {
        std::os::unix::fs::symlink(bin(), &link).unwrap();
    }
    link
}

/// `/run` of the simulated host becomes its own (see the module comment).
pub fn private_run(sim: &SimHost) {
    let t = shq(&sim.tmp.to_string_lossy());
    sim.sh_ok(&format!(
        "mkdir -p {t}/netns-keep && mount --rbind /run/netns {t}/netns-keep && \
         mount -t tmpfs -o mode=755 test-run /run && mkdir -p /run/netns && \
         mount --move {t}/netns-keep /run/netns && rmdir {t}/netns-keep"
    ));
}

/// A containerd of the test's own.
pub struct Containerd<'a> {
    sim: &'a SimHost,
    pub dir: PathBuf,
    pub socket: PathBuf,
    daemon: Option<Proc>,
}

impl<'a> Containerd<'a> {
    pub fn start(sim: &'a SimHost) -> Containerd<'a> {
        private_run(sim);
        let dir = sim.tmp.join("containerd");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{s}"
[ttrpc]
  address = "{s}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"#,
            d = dir.display(),
            s = socket.display()
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let daemon = sim.spawn_host(&format!(
            "exec containerd --config {} > {} 2>&1",
            shq(&dir.join("config.toml").to_string_lossy()),
            shq(&dir.join("containerd.log").to_string_lossy())
        ));
        let up = wait_until(Duration::from_secs(20), || socket.exists());
        let c = Containerd { sim, dir, socket, daemon: Some(daemon) };
        assert!(up, "containerd did not start:\n{}", c.log());
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a SOCKET ARGS` (a shell fragment) in the simulated host.
    pub fn ctr(&self, args: &str) -> Out {
        self.sim.sh(&format!("ctr -a {} {args}", shq(&self.socket.to_string_lossy())))
    }

    /// The same, in a pseudo-terminal of its own (`script`), for `-t`.
    pub fn ctr_in_pty(&self, args: &str) -> Out {
        let inner = format!("ctr -a {} {args}", shq(&self.socket.to_string_lossy()));
        self.sim.sh(&format!("script -qec {} /dev/null < /dev/null", shq(&inner)))
    }

    /// Stops containerd (the shims of tasks still running go with the simulated host).
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A dockerd of the test's own (with the containerd it starts), dockling-runc registered
/// as the runtime `dockling`, and the busybox image loaded from dockling's own `save`.
pub struct Dockerd<'a> {
    sim: &'a SimHost,
    pub dir: PathBuf,
    pub socket: PathBuf,
    daemon: Option<Proc>,
}

impl<'a> Dockerd<'a> {
    pub fn start(sim: &'a SimHost) -> Dockerd<'a> {
        private_run(sim);
        let runtime = runc_link(sim);
        let dir = sim.tmp.join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("docker.sock");
        // The containers' groups under a parent of the test's own (dockling/<label>/<id>).
        let config = format!(r#"{{"cgroup-parent": "/{}"}}"#, sim.label);
        std::fs::write(dir.join("daemon.json"), config).unwrap();
        let q = |p: &std::path::Path| shq(&p.to_string_lossy());
        let daemon = sim.spawn_host(&format!(
            "exec dockerd --config-file {} --data-root {} --exec-root {} --pidfile {} -H unix://{} \
             --add-runtime dockling={} > {} 2>&1",
            q(&dir.join("daemon.json")),
            q(&dir.join("data")),
            q(&dir.join("exec")),
            q(&dir.join("docker.pid")),
            socket.display(),
            q(&runtime),
            q(&dir.join("dockerd.log")),
        ));
        let d = Dockerd { sim, dir, socket, daemon: Some(daemon) };
        let up = wait_until(Duration::from_secs(60), || d.docker("version").ok());
        assert!(up, "dockerd did not start:\n{}", d.log());
        sim.image("busybox");
        let tar = sim.tmp.join("busybox.tar");
        sim.dockling_ok(&["save", "-o", &tar.to_string_lossy(), "busybox"]);
        let o = d.docker(&format!("load -i {}", q(&tar)));
        assert!(o.ok(), "docker load:\n{o}");
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Where dockerd has dockling-runc keep its containers' state (`--root`).
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.join("exec/runtime-runc/moby")
    }

    /// The cgroup directories of dockling's groups for this dockerd's containers.
    pub fn cgroup_dirs(&self) -> Vec<String> {
        let o = self.sim.sh(&format!("ls -d /sys/fs/cgroup/*/dockling/{}/*/ 2>/dev/null", self.sim.label));
        o.stdout.lines().map(String::from).collect()
    }

    /// Debian's docker client (`/usr/bin/docker`, the daemon's version) with ARGS (a
    /// shell fragment), in the simulated host.
    pub fn docker(&self, args: &str) -> Out {
        self.sim.sh(&format!("/usr/bin/docker -H unix://{} {args}", self.socket.display()))
    }

    /// The same, in a pseudo-terminal of its own (`script`), for `-it`.
    pub fn docker_in_pty(&self, args: &str) -> Out {
        let inner = format!("/usr/bin/docker -H unix://{} {args}", self.socket.display());
        self.sim.sh(&format!("script -qec {} /dev/null < /dev/null", shq(&inner)))
    }

    /// Removes every container, then stops dockerd (and its containerd) and waits.
    pub fn stop(&mut self) {
        let Some(mut d) = self.daemon.take() else { return };
        let docker = format!("/usr/bin/docker -H unix://{}", self.socket.display());
        let _ = self.sim.sh(&format!("ids=$({docker} ps -aq); [ -z \"$ids\" ] || {docker} rm -f $ids"));
        let pidfile = self.dir.join("docker.pid");
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let _ = self.sim.sh(&format!("kill -TERM {}", pid.trim()));
            wait_until(Duration::from_secs(30), || !pidfile.exists());
        }
        d.stop();
    }
}

impl Drop for Dockerd<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}
