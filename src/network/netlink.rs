//! rtnetlink plumbing: a current-thread tokio runtime per batch of requests, on the
//! calling thread (tokio's own threads must never `setns`; nothing here enters a
//! container's netns: init configures its own end, see [`super::inside`]).

use std::future::Future;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::Handle;

/// Runs `f` with a fresh netlink handle on this thread.
pub fn with_handle<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().context("starting tokio")?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection().context("opening a netlink socket")?;
        tokio::spawn(conn);
        f(handle).await
    })
}

pub async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(e).with_context(|| format!("looking up link {name}")),
    }
}

/// Deletes a link by name; a link that is already gone is fine.
pub async fn delete_link(handle: &Handle, name: &str) -> Result<()> {
    if let Some(link) = link_by_name(handle, name).await? {
        match handle.link().del(link.header.index).execute().await {
            Ok(()) => {}
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
            Err(e) => return Err(e).with_context(|| format!("deleting link {name}")),
        }
    }
    Ok(())
}

/// Disables a bridge port (`bridge link set dev X state 0`): the bridge neither forwards
/// to it nor takes anything from it. Unlike switching the link off, which waits for an RCU
/// grace period (~1 ms), this is immediate. A link that is already gone is fine.
pub async fn disable_port(handle: &Handle, index: u32) -> Result<()> {
    use rtnetlink::packet_route::link::LinkAttribute;
    use rtnetlink::packet_route::AddressFamily;
    use rtnetlink::packet_utils::nla::DefaultNla;
    // As `bridge link set` sends it: RTM_SETLINK for the bridge family, whose
    // IFLA_PROTINFO (not nested) is the port's new STP state; 0 is "disabled".
    const IFLA_PROTINFO: u16 = 12;
    let mut msg = rtnetlink::LinkUnspec::new_with_index(index).build();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.attributes.push(LinkAttribute::ProtoInfoUnknown(DefaultNla::new(IFLA_PROTINFO, vec![0])));
    match handle.link().set(msg).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
        Err(e) => Err(e).context("disabling the bridge port"),
    }
}
