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

/// Switches a link off; a link that is already gone is fine.
pub async fn set_down(handle: &Handle, index: u32) -> Result<()> {
    match handle.link().set(rtnetlink::LinkUnspec::new_with_index(index).down().build()).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
        Err(e) => Err(e).context("switching the veth off"),
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
