//! The end of a test: removing containers and background processes, checking for leftovers, tearing the host down.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{kill, SimHost, BRIDGE, SIGKILL};
use crate::common::process::{run_cmd, wait_until, Out};
use crate::common::real_host::cgroups_named_after;
use crate::common::text::entries;

impl SimHost {
    /// Kill all background processes started with spawn_world/spawn_host.
    pub fn kill_background(&self) {
        let files: Vec<PathBuf> = self.bg_pidfiles.lock().unwrap().clone();
        for f in files {
            if let Some(pg) = fs::read_to_string(&f).ok().and_then(|s| s.trim().parse::<u32>().ok()) {
                let mut c = self.ns_command("kill");
                c.args(["-9", "--", &format!("-{pg}")]);
                let _ = run_cmd(c, Duration::from_secs(30));
            }
        }
    }

    fn remove_all_containers(&self) -> Vec<Out> {
        let mut problems = Vec::new();
        let o = run_cmd(self.dockling_command(&["ps", "-aq"]), Duration::from_secs(60));
        if !o.ok() {
            problems.push(o.clone());
        }
        let ids: Vec<String> = o.stdout.split_whitespace().map(|s| s.to_string()).collect();
        if !ids.is_empty() {
            let mut a: Vec<&str> = vec!["rm", "-f"];
            a.extend(ids.iter().map(|s| s.as_str()));
            let o = run_cmd(self.dockling_command(&a), Duration::from_secs(120));
            if !o.ok() {
                problems.push(o);
            }
        }
        let o = run_cmd(self.dockling_command(&["network", "prune"]), Duration::from_secs(60));
        if !o.ok() {
            problems.push(o);
        }
        problems
    }

    /// End of test: remove every container and prune the network, and ASSERT
    /// that dockling left nothing behind in the sim host (no containers, veths,
    /// bridge, netns names, DOCKLING rules or rules for the subnet, bridge-family nft rules, mounts under
    /// the root, processes, cgroups named after container ids).
    pub fn finish(self) {
        self.finished.store(true, Ordering::SeqCst);
        let problems = self.remove_all_containers();
        assert!(
            problems.is_empty(),
            "cleanup commands failed:\n{}",
            problems.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("\n")
        );
        let left = self.ps_ids();
        assert!(left.is_empty(), "containers left after rm -f: {left:?}");
        self.kill_background();
        let mut why = String::new();
        let clean = wait_until(Duration::from_secs(10), || {
            why.clear();
            let links = self.links();
            for l in &links {
                if l.starts_with("veth") || l == BRIDGE {
                    why.push_str(&format!("link {l} still exists\n"));
                }
            }
            let ns: Vec<String> = self.netns_names().into_iter().filter(|n| n != "world").collect();
            if !ns.is_empty() {
                why.push_str(&format!("netns names left: {ns:?}\n"));
            }
            let rules = self.firewall_rules();
            for l in rules.lines().filter(|l| !l.starts_with('#')) {
                if l.contains("DOCKLING") || l.contains("10.131.") || l.contains(BRIDGE) {
                    why.push_str(&format!("iptables rule left: {l}\n"));
                }
            }
            for l in self.bridge_rules().lines() {
                if l.contains("dockling") || l.contains("veth") || l.contains("10.131.") {
                    why.push_str(&format!("nft rule left: {}\n", l.trim()));
                }
            }
            for m in self.mounts_under_root() {
                why.push_str(&format!("mount left: {m}\n"));
            }
            for (p, a) in self.processes() {
                why.push_str(&format!("process left: {p} {a}\n"));
            }
            for n in entries(&self.root.join("names")).into_iter().filter(|n| n != ".built") {
                why.push_str(&format!("name still claimed: names/{n}\n"));
            }
            for t in self.trash() {
                why.push_str(&format!("removed container's directory not deleted: trash/{t}\n"));
            }
            why.is_empty()
        });
        assert!(clean, "dockling left things behind after rm -f + network prune:\n{why}\n{}", self.dump());
        let ids: Vec<String> = self.seen_ids.lock().unwrap().iter().cloned().collect();
        let cg = cgroups_named_after(&ids);
        assert!(cg.is_empty(), "cgroups named after removed containers are left: {cg:?}");
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) && self.used_dockling.load(Ordering::SeqCst) {
            for o in self.remove_all_containers() {
                eprintln!("[harness] cleanup command failed:\n{o}");
            }
        }
        // Killing PID 1 of the sim host's PID namespace kills everything in it;
        // its namespaces and mounts go away with the last process.
        unsafe {
            kill(self.pid as i32, SIGKILL);
        }
        if let Some(mut h) = self.holder.lock().unwrap().take() {
            let done = wait_until(Duration::from_secs(20), || matches!(h.try_wait(), Ok(Some(_))));
            if !done {
                eprintln!("[harness] holder did not exit; killing unshare");
                let _ = h.kill();
                let _ = h.wait();
            }
        }
        let err: String = String::from_utf8_lossy(&self.holder_err.buf.lock().unwrap())
            .lines()
            .filter(|l| !l.contains("sigprocmask unblock failed")) // unshare's noise when PID 1 is killed
            .map(|l| format!("{l}\n"))
            .collect();
        if !err.trim().is_empty() && std::thread::panicking() {
            eprintln!("[harness] sim host stderr:\n{err}");
        }
        if let Err(e) = fs::remove_dir_all(&self.tmp) {
            eprintln!("[harness] cannot remove {}: {e}", self.tmp.display());
        }
    }
}
