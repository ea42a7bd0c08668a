//! What a test asks the simulated host and dockling: containers, inspect, links, netns, rules, processes, mounts.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{SimHost, SUBNET_PREFIX};
use crate::common::json::Json;
use crate::common::process::{poll, run_cmd, wait_until, CMD_TIMEOUT, WAIT};
use crate::common::text::entries;

impl SimHost {
    /// `ps -aq` ids.
    pub fn ps_ids(&self) -> Vec<String> {
        let o = self.dockling(&["ps", "-aq"]);
        assert!(o.ok(), "ps -aq failed:\n{o}");
        o.stdout.split_whitespace().map(|s| s.to_string()).collect()
    }

    /// The `ps -a` row whose NAMES column is `name`.
    pub fn ps_row(&self, name: &str) -> Option<String> {
        let o = self.dockling(&["ps", "-a"]);
        assert!(o.ok(), "ps -a failed:\n{o}");
        o.stdout.lines().skip(1).find(|l| l.split_whitespace().last() == Some(name)).map(|s| s.to_string())
    }

    /// `inspect NAME`, parsed; the first element of the array.
    pub fn try_inspect(&self, name: &str) -> Result<Json, String> {
        let o = self.dockling(&["inspect", name]);
        if !o.ok() {
            return Err(o.to_string());
        }
        let j = Json::parse(&o.stdout).map_err(|e| format!("{e}\n{o}"))?;
        let first = j.idx(0).clone();
        if first.is_null() {
            return Err(format!("inspect did not print a non-empty JSON array\n{o}"));
        }
        if let Some(id) = first.get("Id").as_str() {
            self.seen_ids.lock().unwrap().insert(id.to_string());
        }
        Ok(first)
    }

    pub fn inspect(&self, name: &str) -> Json {
        self.try_inspect(name).unwrap_or_else(|e| panic!("inspect {name} failed:\n{e}"))
    }

    /// Wait until `inspect` reports the container running with a pid; returns State.Pid.
    pub fn wait_running_pid(&self, name: &str) -> u32 {
        poll(&format!("container {name} running with a State.Pid"), WAIT, || {
            let j = self.try_inspect(name)?;
            let st = j.get("State");
            match (st.get("Running").as_bool(), st.get("Pid").as_i64()) {
                (Some(true), Some(p)) if p > 0 => Ok(p as u32),
                _ => Err(format!("State = {:?}", st)),
            }
        })
    }

    /// Wait until the container's State.Status is "exited"; returns State.ExitCode.
    pub fn wait_exited(&self, name: &str) -> i64 {
        poll(&format!("container {name} exited"), WAIT, || {
            let j = self.try_inspect(name)?;
            let st = j.get("State");
            if st.get("Status").as_str() == Some("exited") {
                st.get("ExitCode").as_i64().ok_or_else(|| format!("no State.ExitCode: {st:?}"))
            } else {
                Err(format!("State = {st:?}"))
            }
        })
    }

    /// NetworkSettings.IPAddress (asserted to be in the bridge subnet).
    pub fn ip_of(&self, name: &str) -> String {
        let j = self.inspect(name);
        let ip = j.path("NetworkSettings.IPAddress").as_str().unwrap_or("").to_string();
        assert!(
            ip.starts_with(SUBNET_PREFIX),
            "container {name} should have an address in {SUBNET_PREFIX}0/24, inspect says {ip:?}"
        );
        ip
    }

    /// The sim host's firewall rules, whichever driver made them: `iptables-save` (all
    /// tables), then dockling's nftables table when it exists.
    pub fn firewall_rules(&self) -> String {
        let o = self.sh(
            "iptables-save && if nft list table ip dockling >/dev/null 2>&1; then nft -s list table ip dockling; fi",
        );
        assert!(o.ok(), "iptables-save / nft list failed:\n{o}");
        o.stdout
    }

    /// Bridge-family nftables rules in the sim host (dockling's port filters; ebtables-nft
    /// rules show here too), then dockling's `ip dockling` table when it exists, without
    /// counters; empty when nft is not installed.
    pub fn bridge_rules(&self) -> String {
        let o = self.sh("if command -v nft >/dev/null; then nft -s list ruleset bridge; \
             if nft list table ip dockling >/dev/null 2>&1; then nft -s list table ip dockling; fi; fi");
        assert!(o.ok(), "nft list ruleset bridge failed:\n{o}");
        o.stdout
    }

    /// Names of all links in the sim host.
    pub fn links(&self) -> BTreeSet<String> {
        let o = self.sh("ip -o link show");
        assert!(o.ok(), "ip link failed:\n{o}");
        o.stdout
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).trim().to_string())
            .collect()
    }

    pub fn veths(&self) -> BTreeSet<String> {
        self.links().into_iter().filter(|l| l.starts_with("veth")).collect()
    }

    /// `ip netns list` names in the sim host.
    pub fn netns_names(&self) -> BTreeSet<String> {
        let o = self.sh("ip netns list");
        assert!(o.ok(), "ip netns list failed:\n{o}");
        o.stdout.lines().filter_map(|l| l.split_whitespace().next()).map(|s| s.to_string()).collect()
    }

    /// Processes in the sim host's PID namespace other than PID 1: (pid, args).
    pub fn processes(&self) -> Vec<(u32, String)> {
        let mut c = self.ns_command("ps");
        c.args(["-eo", "pid=,args="]);
        let o = run_cmd(c, CMD_TIMEOUT);
        assert!(o.ok(), "ps failed:\n{o}");
        o.stdout
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let (p, a) = l.split_once(' ').unwrap_or((l, ""));
                Some((p.parse::<u32>().ok()?, a.trim().to_string()))
            })
            .filter(|(p, a)| *p != 1 && !a.starts_with("ps -eo"))
            .collect()
    }

    /// Mount points inside the sim host that lie under the dockling root.
    pub fn mounts_under_root(&self) -> Vec<String> {
        let o = self.sh("cat /proc/self/mountinfo");
        let r = self.root.to_string_lossy().into_owned();
        o.stdout
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|mp| mp.starts_with(&r))
            .map(|s| s.to_string())
            .collect()
    }

    /// Waits (bounded) until the kernel has dismantled the netns of every container that
    /// ended: dockling switches such a host veth off and leaves its removal to the kernel,
    /// which takes some milliseconds; a snapshot taken meanwhile would see it go later.
    /// Likewise removed containers' directories, which a background process deletes
    /// from the root's trash/.
    pub fn settle(&self) {
        wait_until(WAIT, || {
            let o = self.sh("ip -o link show");
            let veths = o.stdout.lines().any(|l| {
                let name = l.split(": ").nth(1).unwrap_or("");
                let flags = l.split(['<', '>']).nth(1).unwrap_or("");
                name.starts_with("veth") && !flags.split(',').any(|f| f == "UP")
            });
            !veths && self.trash().is_empty()
        });
    }

    /// What is in the root's trash/ (removed containers' directories not yet deleted).
    pub fn trash(&self) -> Vec<String> {
        entries(&self.root.join("trash"))
    }

    /// Diagnostics: the sim host's network state, processes and dockling's view.
    pub fn dump(&self) -> String {
        let o = self.sh("echo '== ip addr'; ip -br addr; echo '== ip route'; ip route; \
             echo '== ip netns'; ip netns list; echo '== iptables-save'; iptables-save; \
             echo '== processes'; ps -eo pid,ppid,stat,args");
        let ps = if self.used_dockling.load(Ordering::SeqCst) {
            let p = run_cmd(self.dockling_command(&["ps", "-a", "--no-trunc"]), Duration::from_secs(30));
            format!("== dockling ps -a\n{}{}", p.stdout, p.stderr)
        } else {
            String::new()
        };
        format!("===== sim host state =====\n{}{}\n{ps}==========================", o.stdout, o.stderr)
    }
}
