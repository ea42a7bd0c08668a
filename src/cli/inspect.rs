//! `dockling inspect`: a JSON array in Docker's spirit, plus what a class wants to see
//! (namespaces read from the kernel, the veth pair, the rules the container owns).

use anyhow::Result;
use serde_json::{json, Value};

use super::template;
use crate::state::{Container, Liveness, Store};

pub fn inspect(store: &Store, keys: &[String], format: Option<&str>) -> Result<i32> {
    let mut out = Vec::new();
    let mut code = 0;
    for key in keys {
        match store.resolve(key) {
            Ok(c) => out.push(describe(store, &c)),
            Err(e) => {
                eprintln!("dockling: {e:#}");
                code = 1;
            }
        }
    }
    match format {
        Some(template) => {
            for value in &out {
                println!("{}", template::render(template, value)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
    }
    Ok(code)
}

/// `inspect --rules`: the rules each container owns, with live counters, so a class can
/// `curl` the port and watch the DNAT counter rise.
pub fn rules(store: &Store, keys: &[String]) -> Result<i32> {
    let mut rows = vec![["CONTAINER", "TABLE", "CHAIN", "PACKETS", "BYTES", "RULE"].map(String::from).to_vec()];
    for key in keys {
        let c = store.resolve(key)?;
        for rule in crate::network::rule_counters(&c)? {
            rows.push(vec![
                c.name.clone(),
                rule.table,
                rule.chain,
                rule.packets.to_string(),
                rule.bytes.to_string(),
                rule.spec,
            ]);
        }
    }
    super::table::print(&rows);
    Ok(0)
}

fn describe(store: &Store, c: &Container) -> Value {
    let live = c.liveness();
    let (status, running, exit) = match live {
        Liveness::Created => ("created", false, 0),
        Liveness::Running => ("running", true, 0),
        Liveness::Exited(code) => ("exited", false, code.unwrap_or(255)),
    };
    let pid = if running { c.pid.unwrap_or(0) } else { 0 };
    let namespaces: Vec<Value> = if running {
        ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
            .iter()
            .filter_map(|ns| {
                let path = format!("/proc/{pid}/ns/{ns}");
                let link = std::fs::read_link(&path).ok()?;
                Some(json!({ "Type": ns, "Inode": link.to_string_lossy(), "Path": path }))
            })
            .collect()
    } else {
        Vec::new()
    };
    let dir = store.container_dir(&c.id);
    let mut ports = serde_json::Map::new();
    for p in &c.ports {
        ports.insert(
            format!("{}/{}", p.container_port, p.proto.as_str()),
            json!([{ "HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string() }]),
        );
    }
    let ip = c.network.ip.map(|i| i.to_string()).unwrap_or_default();
    json!({
        "Id": c.id,
        "Created": c.created.to_rfc3339(),
        "Path": c.command.first(),
        "Args": c.command.get(1..).unwrap_or(&[]),
        "State": {
            "Status": status,
            "Running": running,
            "Pid": pid,
            "MonitorPid": if running { c.monitor_pid.unwrap_or(0) } else { 0 },
            "ExitCode": exit,
            "OOMKilled": c.oom_killed,
            "StartedAt": c.started_at.map(|t| t.to_rfc3339()),
            "FinishedAt": c.finished_at.map(|t| t.to_rfc3339()),
        },
        "Image": format!("sha256:{}", c.image_id),
        "Name": format!("/{}", c.name),
        "LogPath": dir.join("container.log"),
        "HostConfig": {
            "NetworkMode": c.network_mode.as_str(),
            "AutoRemove": c.auto_remove,
            "Privileged": c.security.privileged,
            "ReadonlyRootfs": c.security.read_only,
            "CapAdd": c.security.capabilities,
            "SecurityOpt": {
                "NoNewPrivileges": c.security.no_new_privs,
                "Seccomp": if c.security.seccomp { "default" } else { "unconfined" },
            },
            "Memory": c.limits.memory.unwrap_or(0),
            "NanoCpus": c.limits.cpus.map(|v| (v * 1e9) as u64).unwrap_or(0),
            "PidsLimit": c.limits.pids,
            "Mounts": c.mounts,
            "CgroupPaths": c.cgroups,
        },
        "Security": kernel_view(pid),
        "Config": {
            "Hostname": c.hostname,
            "Env": c.env,
            "Cmd": c.command,
            "Image": c.image,
            "WorkingDir": c.workdir,
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": crate::image::ImageStore::new(store)
                    .find(&c.image_id)
                    .map(|i| i.layers().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"))
                    .unwrap_or_default(),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                // The overlay is mounted only in the container's mount namespace; from
                // the host its root is reached through the process.
                "MergedDir": (pid != 0).then(|| format!("/proc/{pid}/root")),
            }
        },
        "Namespaces": namespaces,
        "NetworkSettings": {
            "Bridge": c.network.bridge,
            "IPAddress": ip,
            "IPPrefixLen": c.network.prefix.unwrap_or(0),
            "Gateway": c.network.gateway.map(|g| g.to_string()).unwrap_or_default(),
            "MacAddress": c.network.mac.clone().unwrap_or_default(),
            "HostVeth": c.network.host_veth,
            "ContainerVeth": c.network.host_veth.as_ref().map(|_| "eth0"),
            "NetnsName": c.network.netns_name,
            "Ports": ports,
            "FirewallDriver": c.network.firewall.as_ref().map(|f| f.driver.as_str()),
            "Rules": crate::network::rule_texts(c),
        },
    })
}

/// What the kernel says about the container's first process (not what we asked for).
fn kernel_view(pid: i32) -> Value {
    if pid == 0 {
        return Value::Null;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
    let seccomp = match field("Seccomp:").as_deref() {
        Some("0") => "disabled",
        Some("1") => "strict",
        Some("2") => "filter",
        _ => "unknown",
    };
    json!({
        "CapEff": field("CapEff:"),
        "CapBnd": field("CapBnd:"),
        "NoNewPrivs": field("NoNewPrivs:").as_deref() == Some("1"),
        "Seccomp": seccomp,
        "Uid": field("Uid:"),
        "Cgroup": std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>(),
    })
}
