//! nf_tables over netlink (the nlink crate): a change is one transaction sent on a
//! netlink socket, ~0.1 ms, where running `nft` costs ~11 ms (it loads and parses the
//! whole ruleset first). Like [`super::netlink`], each call runs on a current-thread
//! runtime of its own, on the calling thread, so it never runs on a tokio worker.

use std::future::Future;
use std::os::fd::AsFd;

use anyhow::{anyhow, Context, Result};
use nlink::netlink::nftables::connection::{RawMessage, Transaction};
use nlink::netlink::nftables::expr::Expr;
use nlink::netlink::nftables::{CmpOp, Family, PayloadBase, Register, RuleInfo};
use nlink::netlink::{Connection, Nftables};

use crate::sys::last_close;

/// A current-thread runtime for one call (nlink needs its IO and timers).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().context("starting tokio")
}

/// Runs `f` with an nf_tables netlink connection on this thread. For reading only: see
/// [`commit`] for why a change's socket is closed elsewhere.
fn with_connection<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Connection<Nftables>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    runtime()?.block_on(async move {
        let conn = Connection::<Nftables>::new().context("opening an nf_tables netlink socket")?;
        f(conn).await
    })
}

/// Commits the transaction `build` makes: all of it happens, or none of it. The socket's
/// last close goes to a grandchild ([`last_close`]): after a deletion, closing an
/// nf_tables socket waits a whole RCU grace period (10-20 ms), which would otherwise be
/// most of the time a container's exit takes.
pub fn commit(build: impl FnOnce(Transaction) -> Result<Transaction>) -> Result<()> {
    let rt = runtime()?;
    let conn = rt.block_on(async { Connection::<Nftables>::new() }).context("opening an nf_tables netlink socket")?;
    let result = rt.block_on(async {
        let tx = build(conn.transaction())?;
        tx.commit(&conn).await.map_err(|e| anyhow!("nf_tables: {e}"))
    });
    match conn.socket().as_fd().try_clone_to_owned() {
        Ok(dup) => last_close::close_elsewhere(dup, move || {
            drop(conn);
            drop(rt);
        }),
        Err(_) => drop((conn, rt)),
    }
    result
}

/// [`commit`] for a transaction that only adds: its socket's close waits only when some
/// other deletion's clean-up is still pending, so it is closed here, which spares the
/// two forks of handing it off.
pub fn commit_adding(build: impl FnOnce(Transaction) -> Result<Transaction>) -> Result<()> {
    let rt = runtime()?;
    let conn = rt.block_on(async { Connection::<Nftables>::new() }).context("opening an nf_tables netlink socket")?;
    rt.block_on(async {
        let tx = build(conn.transaction())?;
        tx.commit(&conn).await.map_err(|e| anyhow!("nf_tables: {e}"))
    })
}

/// One step of a [`Change`]: adds its messages to the transaction being built.
type Step = Box<dyn FnOnce(Transaction) -> Result<Transaction> + Send>;

/// Changes gathered from several owners (a container's published ports and its port
/// filter) and committed as one transaction. Committed apart they cost more than the
/// messages: each commit is a socket, and after a deletion the next commit waits a whole
/// RCU grace period for the kernel to free what the first removed (the first socket's
/// close flushes that work under the commit lock, see [`commit`]).
#[derive(Default)]
pub struct Change {
    steps: Vec<Step>,
    /// The same change as `nft` commands, for `--explain`.
    pub text: Vec<String>,
    deletes: bool,
}

impl Change {
    /// Adds something; `text` is the `nft` command for it.
    pub fn add(&mut self, text: String, step: impl FnOnce(Transaction) -> Result<Transaction> + Send + 'static) {
        self.text.push(text);
        self.steps.push(Box::new(step));
    }

    /// Deletes something; `text` is the `nft` command for it.
    pub fn delete(&mut self, text: String, step: impl FnOnce(Transaction) -> Result<Transaction> + Send + 'static) {
        self.deletes = true;
        self.add(text, step);
    }

    pub fn delete_rule(&mut self, family: Family, table: &str, chain: &str, handle: u64) {
        let (t, c) = (table.to_string(), chain.to_string());
        self.delete(format!("delete rule {} {table} {chain} handle {handle}", family.name()), move |tx| {
            Ok(tx.del_rule(&t, &c, family, handle))
        });
    }

    pub fn delete_chain(&mut self, family: Family, table: &str, chain: &str) {
        let (t, c) = (table.to_string(), chain.to_string());
        self.delete(format!("delete chain {} {table} {chain}", family.name()), move |tx| {
            Ok(tx.del_chain(&t, &c, family))
        });
    }

    pub fn append(&mut self, other: Change) {
        self.steps.extend(other.steps);
        self.text.extend(other.text);
        self.deletes |= other.deletes;
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many steps (each is one `nft` command).
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// The `nft` command a person would type for the same transaction.
    pub fn command(&self) -> String {
        format!("nft '{}'", self.text.join("; "))
    }

    /// All of it, or none.
    pub fn commit(self) -> Result<()> {
        if self.steps.is_empty() {
            return Ok(());
        }
        let steps = self.steps;
        let build = move |tx: Transaction| steps.into_iter().try_fold(tx, |tx, step| step(tx));
        if self.deletes {
            commit(build)
        } else {
            commit_adding(build)
        }
    }
}

/// Does `family` have a table called `name`?
pub fn table_exists(family: Family, name: &str) -> Result<bool> {
    with_connection(|conn| async move {
        let tables = conn.list_tables_in(family).await.map_err(|e| anyhow!("listing nf_tables tables: {e}"))?;
        Ok(tables.iter().any(|t| t.name == name))
    })
}

/// Does the table have a chain called `chain`?
pub fn chain_exists(family: Family, table: &str, chain: &str) -> Result<bool> {
    let table = table.to_string();
    with_connection(|conn| async move {
        let chains =
            conn.list_chains_in(table.as_str(), family).await.map_err(|e| anyhow!("listing nf_tables chains: {e}"))?;
        Ok(chains.iter().any(|c| c.name == chain))
    })
}

/// Loads `len` bytes at `offset` of a header into register 1 (`payload load`).
pub fn load(base: PayloadBase, offset: u32, len: u32) -> Expr {
    Expr::Payload { dreg: Register::R1, base, offset, len }
}

/// Compares register 1 with `data` (`cmp eq` / `cmp neq`).
pub fn compare(equal: bool, data: &[u8]) -> Expr {
    Expr::Cmp { sreg: Register::R1, op: if equal { CmpOp::Eq } else { CmpOp::Neq }, data: data.to_vec() }
}

/// `NFT_MSG_NEWSET`: the kernel's message that makes a set or map.
const NFT_MSG_NEWSET: u8 = 9;

/// A verdict map keyed by interface name (`type ifname : verdict`), made from raw
/// attributes: nlink does not write the set's user data, where `nft` reads that an
/// ifname key is a host-order string. Without it `nft list` shows every key as `""`.
pub fn ifname_verdict_map(family: Family, table: &str, name: &str) -> RawMessage {
    // enum nft_set_attributes, NFT_SET_MAP, the ifname type and NFT_DATA_VERDICT.
    const TABLE: u16 = 1;
    const NAME: u16 = 2;
    const FLAGS: u16 = 3;
    const KEY_TYPE: u16 = 4;
    const KEY_LEN: u16 = 5;
    const DATA_TYPE: u16 = 6;
    const ID: u16 = 10;
    const USERDATA: u16 = 13;
    const MAP: u32 = 0x8;
    // libnftnl's NFTNL_UDATA_SET_KEYBYTEORDER, holding nft's BYTEORDER_HOST_ENDIAN.
    let mut userdata = vec![0u8, 4];
    userdata.extend_from_slice(&1u32.to_ne_bytes());
    let mut attrs = Vec::new();
    push_attr(&mut attrs, TABLE, &nul_terminated(table));
    push_attr(&mut attrs, NAME, &nul_terminated(name));
    push_attr(&mut attrs, FLAGS, &MAP.to_be_bytes());
    push_attr(&mut attrs, KEY_TYPE, &41u32.to_be_bytes());
    push_attr(&mut attrs, KEY_LEN, &16u32.to_be_bytes());
    push_attr(&mut attrs, DATA_TYPE, &0xffff_ff00u32.to_be_bytes());
    // The kernel requires an id, by which later messages of the batch may name the set.
    push_attr(&mut attrs, ID, &1u32.to_be_bytes());
    push_attr(&mut attrs, USERDATA, &userdata);
    RawMessage::new(NFT_MSG_NEWSET, family).flags(libc::NLM_F_CREATE as u16).attrs(attrs)
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// One netlink attribute: length, type, value, padded to 4 bytes.
fn push_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// The rules of a table, with their handles, comments and counters.
pub fn rules_of(family: Family, table: &str) -> Result<Vec<RuleInfo>> {
    let table = table.to_string();
    with_connection(|conn| async move {
        conn.list_rules(&table, family).await.map_err(|e| anyhow!("listing the rules of nf_tables table {table}: {e}"))
    })
}
