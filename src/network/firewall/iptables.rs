//! The iptables driver: dockling's own chains, hooked from the built-in ones, so they are
//! easy to list and remove. Every change is one `iptables-restore --noflush` run (one
//! netfilter transaction), and what exists is read with one `iptables-save`: a container's
//! rules cost one process to add and one to remove, whatever their number.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};

use super::rules::{self, bound_address, Network, Rule, Stage};
use super::{CountedRule, Firewall, Publishing};
use crate::explain;
use crate::network::nftables::{self, Change};
use crate::types::PortRule;
use nlink::netlink::nftables::Family;

pub const NAT_POSTROUTING: &str = "DOCKLING-POSTROUTING";
pub const NAT_DNAT: &str = "DOCKLING-DNAT";
pub const FILTER_FORWARD: &str = "DOCKLING-FORWARD";
pub const RAW_PREROUTING: &str = "DOCKLING-PREROUTING";

/// Our chains: (table, chain).
const CHAINS: [(&str, &str); 4] =
    [("raw", RAW_PREROUTING), ("nat", NAT_POSTROUTING), ("nat", NAT_DNAT), ("filter", FILTER_FORWARD)];
/// The tables we touch, in the order a batch writes them.
const TABLES: [&str; 3] = ["raw", "nat", "filter"];

pub struct Iptables;

/// Where each stage lives: (table, our chain).
fn chain_of(stage: Stage) -> (&'static str, &'static str) {
    match stage {
        Stage::Dnat => ("nat", NAT_DNAT),
        Stage::Postrouting => ("nat", NAT_POSTROUTING),
        Stage::Forward => ("filter", FILTER_FORWARD),
        Stage::Raw => ("raw", RAW_PREROUTING),
    }
}

/// The jumps from the built-in chains into ours: (table, built-in chain, spec, first?).
/// Our FORWARD accepts come first, so they hold even when the FORWARD policy is DROP;
/// our raw drops come first too. From outside, 127.0.0.0/8 never goes to DNAT
/// ([`rules::LOOPBACK`]).
const HOOKS: [(&str, &str, &str, bool); 5] = [
    ("raw", "PREROUTING", "-j DOCKLING-PREROUTING", true),
    ("nat", "PREROUTING", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKLING-DNAT", false),
    ("nat", "OUTPUT", "-m addrtype --dst-type LOCAL -j DOCKLING-DNAT", false),
    ("nat", "POSTROUTING", "-j DOCKLING-POSTROUTING", false),
    ("filter", "FORWARD", "-j DOCKLING-FORWARD", true),
];

/// Hooks an older dockling made, removed on sight (so `network prune` can delete the
/// chain they jump to): PREROUTING once sent 127.0.0.0/8 into the DNAT chain too.
const RETIRED: [(&str, &str, &str); 1] = [("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j DOCKLING-DNAT")];

/// The rule's iptables spec (without `-A CHAIN`), as `iptables-save` prints it, so
/// rules read back compare equal.
pub fn spec(rule: &Rule) -> String {
    match rule {
        Rule::MasqueradeEgress { subnet, bridge } => format!("-s {subnet} ! -o {bridge} -j MASQUERADE"),
        Rule::MasqueradeHairpin { subnet, bridge } => {
            format!("-s {subnet} -d {subnet} -o {bridge} -m conntrack --ctstate DNAT -j MASQUERADE")
        }
        Rule::MasqueradeLocalhost { bridge } => format!("-s 127.0.0.0/8 -o {bridge} -j MASQUERADE"),
        Rule::AcceptReplies { bridge } => format!("-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        Rule::AcceptFromBridge { bridge } => format!("-i {bridge} -j ACCEPT"),
        Rule::AcceptPublished { bridge } => format!("-o {bridge} -m conntrack --ctstate DNAT -j ACCEPT"),
        Rule::DropUnpublished { bridge } => format!("! -i {bridge} -o {bridge} -j DROP"),
        Rule::DropLoopbackFromBridge { bridge } => format!("-i {bridge} -d 127.0.0.0/8 -j DROP"),
        Rule::Publish(p) => {
            let dest = bound_address(p).map(|a| format!("-d {a}/32 ")).unwrap_or_default();
            format!(
                "{dest}-p {proto} -m {proto} --dport {hp} -m comment --comment \"{tag}\" -j DNAT --to-destination {ip}:{cp}",
                proto = p.port.proto.as_str(),
                hp = p.port.host_port,
                tag = rules::owner_tag(&p.owner),
                ip = p.container_ip,
                cp = p.port.container_port,
            )
        }
    }
}

/// `-A CHAIN SPEC` for the rule.
fn append(rule: &Rule) -> (&'static str, String) {
    let (table, chain) = chain_of(rule.stage());
    (table, format!("-A {chain} {}", spec(rule)))
}

/// An `iptables-restore` input: one section per table, in the order given.
#[derive(Default)]
struct Batch {
    tables: Vec<(&'static str, Vec<String>)>,
}

impl Batch {
    fn push(&mut self, table: &'static str, line: String) {
        match self.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, lines)) => lines.push(line),
            None => self.tables.push((table, vec![line])),
        }
    }

    fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut tables: Vec<&(&str, Vec<String>)> = self.tables.iter().collect();
        tables.sort_by_key(|(t, _)| TABLES.iter().position(|x| x == t));
        for (table, lines) in tables {
            out.push(format!("*{table}"));
            out.extend(lines.iter().cloned());
            out.push("COMMIT".to_string());
        }
        out
    }

    /// The shell command a person would type for the same change.
    fn command(&self) -> String {
        let quoted: Vec<String> = self.lines().iter().map(|l| format!("'{l}'")).collect();
        format!("printf '%s\\n' {} | iptables-restore --noflush -w", quoted.join(" "))
    }

    /// Runs the batch: all of it happens, or none of it.
    fn apply(&self, why: &str) -> Result<()> {
        self.spawn(why)?.wait()
    }

    /// Starts the batch's `iptables-restore`; [`Pending::wait`] has its word.
    fn spawn(&self, why: &str) -> Result<Pending> {
        if self.is_empty() {
            return Ok(Pending { child: None, input: String::new() });
        }
        explain::step(&self.command(), why);
        let mut input = self.lines().join("\n");
        input.push('\n');
        let mut child = Command::new("iptables-restore")
            .args(["--noflush", "-w"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running iptables-restore (is the iptables package installed?)")?;
        // A few hundred bytes: the pipe takes them without waiting for the reader.
        let written = match child.stdin.take() {
            Some(mut stdin) => stdin.write_all(input.as_bytes()).context("writing to iptables-restore"),
            None => Ok(()),
        };
        let pending = Pending { child: Some(child), input };
        written?;
        Ok(pending)
    }
}

/// An `iptables-restore` run under way. Dropped without [`Pending::wait`], it is still
/// waited for, so that nothing undoes its changes while it makes them.
pub struct Pending {
    child: Option<std::process::Child>,
    input: String,
}

impl Pending {
    pub fn wait(mut self) -> Result<()> {
        let Some(child) = self.child.take() else { return Ok(()) };
        let out = child.wait_with_output().context("waiting for iptables-restore")?;
        if out.status.success() {
            return Ok(());
        }
        Err(anyhow!("iptables-restore: {}\ninput:\n{}", String::from_utf8_lossy(&out.stderr).trim(), self.input))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// What `iptables-save` shows of one table: its chains and its rules (`-A ...` lines).
struct Saved {
    chains: Vec<String>,
    /// Built-in chains with their policy: "FORWARD DROP".
    policies: Vec<String>,
    rules: Vec<String>,
    /// The rules with their counters: (packets, bytes, `-A ...`), when read with `-c`.
    counted: Vec<(u64, u64, String)>,
}

/// Runs `iptables-save` (one table, or every table) and reads what it printed.
fn run_save(table: Option<&str>, counters: bool) -> Result<Vec<(String, Saved)>> {
    let mut cmd = Command::new("iptables-save");
    if let Some(table) = table {
        cmd.args(["-t", table]);
    }
    if counters {
        cmd.arg("-c");
    }
    let out =
        cmd.stdin(Stdio::null()).output().context("running iptables-save (is the iptables package installed?)")?;
    if !out.status.success() {
        return Err(anyhow!("iptables-save: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(parse_save(&String::from_utf8_lossy(&out.stdout)))
}

/// `iptables-save` output, table by table.
fn parse_save(text: &str) -> Vec<(String, Saved)> {
    let mut tables: Vec<(String, Saved)> = Vec::new();
    for line in text.lines() {
        if let Some(table) = line.strip_prefix('*') {
            tables.push((
                table.to_string(),
                Saved { chains: Vec::new(), policies: Vec::new(), rules: Vec::new(), counted: Vec::new() },
            ));
            continue;
        }
        let Some((_, saved)) = tables.last_mut() else { continue };
        if let Some(chain) = line.strip_prefix(':') {
            let mut words = chain.split(' ');
            let name = words.next().unwrap_or_default();
            if let Some(policy) = words.next().filter(|p| *p != "-") {
                saved.policies.push(format!("{name} {policy}"));
            }
            saved.chains.push(name.to_string());
        } else if line.starts_with("-A ") {
            saved.rules.push(line.to_string());
        } else if let Some(rest) = line.strip_prefix('[') {
            // "[PACKETS:BYTES] -A CHAIN ..."
            let Some((counts, rule)) = rest.split_once("] ") else { continue };
            let (p, b) = counts.split_once(':').unwrap_or(("0", "0"));
            saved.counted.push((p.parse().unwrap_or(0), b.parse().unwrap_or(0), rule.to_string()));
            saved.rules.push(rule.to_string());
        }
    }
    tables
}

fn save(table: &str, counters: bool) -> Result<Saved> {
    let found = run_save(Some(table), counters)?.into_iter().find(|(t, _)| t == table).map(|(_, s)| s);
    Ok(found.unwrap_or(Saved { chains: Vec::new(), policies: Vec::new(), rules: Vec::new(), counted: Vec::new() }))
}

/// The tables we touch, as they are now.
struct SavedAll(Vec<(String, Saved)>);

impl SavedAll {
    fn get(&self, table: &str) -> Option<&Saved> {
        self.0.iter().find(|(t, _)| t == table).map(|(_, s)| s)
    }
    fn has_chain(&self, table: &str, chain: &str) -> bool {
        self.get(table).is_some_and(|s| s.chains.iter().any(|c| c == chain))
    }
    fn has_rule(&self, table: &str, line: &str) -> bool {
        self.get(table).is_some_and(|s| s.rules.iter().any(|r| r == line))
    }
}

/// One `iptables-save` of every table (one process, where a table at a time is three).
fn save_all() -> Result<SavedAll> {
    run_save(None, false).map(SavedAll)
}

/// Can the iptables tools work here (installed, and a nat table they can read)?
pub fn usable() -> std::result::Result<(), String> {
    match Command::new("iptables-save").args(["-t", "nat"]).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("iptables-save -t nat: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(format!("iptables-save: {e}")),
    }
}

const PUBLISH_WHY: &str = "publish the ports: rewrite the destination to the container";

/// The batch that publishes `ports`.
fn publication(ports: &[PortRule]) -> Batch {
    let mut batch = Batch::default();
    for p in ports {
        let (table, line) = append(&Rule::Publish(p.clone()));
        batch.push(table, line);
    }
    batch
}

impl Firewall for Iptables {
    fn setup_network(&self, net: &Network) -> Result<()> {
        setup(net, |_| true)
    }

    fn teardown_network(&self, _net: &Network) -> Result<()> {
        let saved = save_all()?;
        let mut batch = Batch::default();
        let hooks = HOOKS.iter().map(|(t, b, s, _)| (*t, *b, *s)).chain(RETIRED);
        for (table, builtin, spec) in hooks {
            if saved.has_rule(table, &format!("-A {builtin} {spec}")) {
                batch.push(table, format!("-D {builtin} {spec}"));
            }
        }
        for (table, chain) in CHAINS {
            if saved.has_chain(table, chain) {
                batch.push(table, format!("-F {chain}"));
                batch.push(table, format!("-X {chain}"));
            }
        }
        batch.apply("remove dockling's chains and the jumps into them")
    }

    fn publish(&self, ports: &[PortRule]) -> Result<()> {
        publication(ports).apply(PUBLISH_WHY)
    }

    fn unpublish(&self, ports: &[PortRule]) -> Result<()> {
        let lines: Vec<String> = ports.iter().map(|p| append(&Rule::Publish(p.clone())).1).collect();
        let mut batch = Batch::default();
        for line in &lines {
            batch.push("nat", line.replacen("-A ", "-D ", 1));
        }
        if batch.apply("unpublish the ports").is_ok() {
            return Ok(());
        }
        // Some rule was gone already (a crash, a second cleanup): remove what is left.
        let saved = save("nat", false)?;
        let mut left = Batch::default();
        for line in lines.iter().filter(|l| saved.rules.contains(l)) {
            left.push("nat", line.replacen("-A ", "-D ", 1));
        }
        left.apply("unpublish the ports that are left")
    }

    fn publishes_in_a_process(&self) -> bool {
        true
    }

    /// `iptables-restore` is a process of its own: started now, waited for later.
    fn publish_begin(&self, ports: &[PortRule]) -> Result<Publishing> {
        Ok(Publishing::Running(publication(ports).spawn(PUBLISH_WHY)?))
    }

    /// iptables-nft keeps its rules in nf_tables (`table ip nat`), so the published ports
    /// can go in the same transaction as the port filter, by handle: `iptables -D` would
    /// cost a process and, at its exit, a whole RCU grace period (~6 ms) on the path of
    /// every container's exit. A port's rule is found by the chain and the comment match's
    /// text (`dockling:<id12>`, alone in the match's NUL-padded data). With iptables-legacy
    /// there is no such table and `unpublish` does the work.
    fn unpublish_deletions(&self, ports: &[PortRule]) -> Result<Option<Change>> {
        let mut d = Change::default();
        if ports.is_empty() {
            return Ok(Some(d));
        }
        let Ok(listed) = nftables::rules_of(Family::Ip, "nat") else { return Ok(None) };
        let needles: Vec<Vec<u8>> = ports
            .iter()
            .map(|p| {
                // NUL on both sides: the comment fills the match data from its first byte
                // (after the attribute's header, whose last byte is 0) and is NUL-padded.
                let mut tag = vec![0];
                tag.extend(rules::owner_tag(&p.owner).into_bytes());
                tag.push(0);
                tag
            })
            .collect();
        for r in listed.iter().filter(|r| r.chain == NAT_DNAT) {
            let ours = needles.iter().any(|n| r.expression_bytes.windows(n.len()).any(|w| w == n.as_slice()));
            if ours {
                d.delete_rule(Family::Ip, "nat", NAT_DNAT, r.handle);
            }
        }
        Ok((d.len() == ports.len()).then_some(d))
    }

    fn commands(&self, ports: &[PortRule]) -> Vec<String> {
        ports.iter().map(|p| format!("iptables -t nat {}", append(&Rule::Publish(p.clone())).1)).collect()
    }

    fn counters(&self, ports: &[PortRule]) -> Result<Vec<CountedRule>> {
        let saved = save("nat", true)?;
        let mut out = Vec::new();
        for p in ports {
            let line = append(&Rule::Publish(p.clone())).1;
            if let Some((packets, bytes, _)) = saved.counted.iter().find(|(_, _, l)| *l == line) {
                let spec = line.trim_start_matches(&format!("-A {NAT_DNAT} ")).to_string();
                out.push(CountedRule {
                    table: "nat".into(),
                    chain: NAT_DNAT.into(),
                    spec,
                    packets: *packets,
                    bytes: *bytes,
                });
            }
        }
        Ok(out)
    }
}

/// Makes our chains, hooks and shared rules of the tables `wanted` picks (all of them
/// for this driver; only `filter` for the nftables driver's FORWARD accepts).
fn setup(net: &Network, wanted: impl Fn(&str) -> bool) -> Result<()> {
    let saved = save_all()?;
    let mut batch = Batch::default();
    // Our chains: the shared ones are declared, which (even with --noflush) empties
    // them before they are filled again; the DNAT chain holds the containers' ports,
    // so it is only made when missing.
    for (table, chain) in CHAINS.into_iter().filter(|(t, _)| wanted(t)) {
        if chain != NAT_DNAT || !saved.has_chain(table, chain) {
            batch.push(table, format!(":{chain} - [0:0]"));
        }
    }
    for (table, builtin, spec) in RETIRED.into_iter().filter(|(t, _, _)| wanted(t)) {
        if saved.has_rule(table, &format!("-A {builtin} {spec}")) {
            batch.push(table, format!("-D {builtin} {spec}"));
        }
    }
    for (table, builtin, spec, first) in HOOKS.into_iter().filter(|(t, _, _, _)| wanted(t)) {
        let line = format!("-A {builtin} {spec}");
        if !saved.has_rule(table, &line) {
            batch.push(table, if first { format!("-I {builtin} 1 {spec}") } else { line });
        }
    }
    for rule in rules::shared(net) {
        let (table, line) = append(&rule);
        if wanted(table) {
            batch.push(table, line);
        }
    }
    batch.apply("dockling's own chains, hooked from the built-in ones, and the network's shared rules")
}

/// A packet must pass every table at a hook: when the host's iptables FORWARD policy is
/// DROP (Docker's, or a hardened host's), what the nftables table accepts is dropped
/// there anyway. Then the nftables driver puts the same FORWARD accepts (and drop) in
/// iptables too, in our own chain, as the iptables driver does.
pub fn forward_policy_drops() -> bool {
    run_save(Some("filter"), false)
        .is_ok_and(|tables| tables.iter().any(|(t, s)| t == "filter" && s.policies.iter().any(|p| p == "FORWARD DROP")))
}

/// The FORWARD accepts alone, for the nftables driver on such a host.
pub fn setup_forward(net: &Network) -> Result<()> {
    setup(net, |t| t == "filter")
}

/// Removes whatever of ours is in iptables; nothing to do when iptables is not installed.
pub fn teardown_if_any(net: &Network) -> Result<()> {
    if usable().is_err() {
        return Ok(());
    }
    Iptables.teardown_network(net)
}

/// Removes rules recorded as (table, chain, spec) strings; rules already gone are fine.
pub fn remove_legacy(rules: &[(String, String, String)]) -> Result<()> {
    for (table, chain, spec) in rules {
        let cmd = format!("iptables -t {table} -D {chain} {spec}");
        explain::step(&cmd, "unpublish the port");
        let out = Command::new("iptables")
            .args(["-w", "-t", table, "-D", chain])
            .args(spec.split_whitespace())
            .stdin(Stdio::null())
            .output()
            .context("running iptables")?;
        let err = String::from_utf8_lossy(&out.stderr);
        let missing =
            ["does a matching rule exist", "No chain/target/match by that name", "Bad rule", "does not exist"]
                .iter()
                .any(|m| err.contains(m));
        if !out.status.success() && !missing {
            return Err(anyhow!("{cmd}: {}", err.trim()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ipam::Subnet;
    use crate::types::{PortMapping, Proto};

    fn port(host_ip: [u8; 4]) -> PortRule {
        PortRule {
            owner: "0123456789ab".into(),
            container_ip: "10.131.0.2".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST),
            port: PortMapping { host_ip: host_ip.into(), host_port: 8080, container_port: 80, proto: Proto::Tcp },
        }
    }

    #[test]
    fn port_rules_read_as_iptables_save_prints_them() {
        let (table, line) = append(&Rule::Publish(port([0, 0, 0, 0])));
        assert_eq!(table, "nat");
        assert_eq!(
            line,
            "-A DOCKLING-DNAT -p tcp -m tcp --dport 8080 -m comment --comment \"dockling:0123456789ab\" \
             -j DNAT --to-destination 10.131.0.2:80"
        );
        let (_, bound) = append(&Rule::Publish(port([127, 0, 0, 1])));
        assert!(bound.starts_with("-A DOCKLING-DNAT -d 127.0.0.1/32 -p tcp "), "{bound}");
    }

    #[test]
    fn a_batch_is_one_restore_input_and_one_shell_line() {
        let net = Network { subnet: Subnet { base: [10, 131, 0, 0].into(), prefix: 24 }, bridge: "dockling0".into() };
        let mut b = Batch::default();
        for rule in rules::shared(&net) {
            let (table, line) = append(&rule);
            b.push(table, line);
        }
        let lines = b.lines();
        assert_eq!(lines.first().map(String::as_str), Some("*raw"));
        assert_eq!(lines.iter().filter(|l| *l == "COMMIT").count(), 3, "{lines:?}");
        assert!(lines.contains(&"-A DOCKLING-FORWARD ! -i dockling0 -o dockling0 -j DROP".to_string()));
        let forward: Vec<&String> = lines.iter().filter(|l| l.starts_with("-A DOCKLING-FORWARD")).collect();
        assert!(forward.last().is_some_and(|l| l.ends_with("-j DROP")), "the drop comes last: {forward:?}");
        assert!(lines.contains(&"-A DOCKLING-POSTROUTING -s 10.131.0.0/24 ! -o dockling0 -j MASQUERADE".to_string()));
        let cmd = b.command();
        assert!(cmd.starts_with("printf '%s\\n' '*raw' "), "{cmd}");
        assert!(cmd.ends_with("'COMMIT' | iptables-restore --noflush -w"), "{cmd}");
        assert!(!cmd.contains('\n'));
    }
}
