//! `dockling ps`, with Docker's columns.

use anyhow::Result;

use super::{humanize, table};
use crate::state::{Liveness, Store};

pub fn ps(store: &Store, all: bool, quiet: bool, no_trunc: bool) -> Result<()> {
    let mut containers = store.list()?;
    containers.reverse(); // newest first, as Docker
    let mut rows =
        vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"].map(String::from).to_vec()];
    for c in containers {
        crate::container::reconcile(store, &c);
        let live = c.liveness();
        if !all && live != Liveness::Running {
            continue;
        }
        let id = if no_trunc { c.id.clone() } else { c.short_id().to_string() };
        if quiet {
            println!("{id}");
            continue;
        }
        let mut command = c.command_line();
        if !no_trunc && command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        let status = match live {
            Liveness::Created => "Created".to_string(),
            Liveness::Running => format!("Up {}", humanize::since(c.started_at.unwrap_or(c.created))),
            Liveness::Exited(code) => {
                format!("Exited ({}) {} ago", code.unwrap_or(255), humanize::since(c.finished_at.unwrap_or(c.created)))
            }
        };
        let ports = if live == Liveness::Running {
            c.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        } else {
            String::new()
        };
        rows.push(vec![
            id,
            c.image.clone(),
            format!("\"{command}\""),
            format!("{} ago", humanize::since(c.created)),
            status,
            ports,
            c.name.clone(),
        ]);
    }
    if !quiet {
        table::print(&rows);
    }
    Ok(())
}
