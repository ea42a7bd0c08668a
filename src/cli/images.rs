//! `dockling import` and `dockling images`.

use std::path::Path;

use anyhow::Result;

use super::{humanize, table};
use crate::image::{self, ImageStore};
use crate::state::Store;

pub fn import(store: &Store, source: &Path, reference: &str) -> Result<()> {
    image::import(store, source, reference).map(|_| ())
}

pub fn list(store: &Store, quiet: bool) -> Result<()> {
    let images = ImageStore::new(store).list()?;
    if quiet {
        for (_, img) in images {
            println!("{}", &img.id[..12]);
        }
        return Ok(());
    }
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from).to_vec()];
    for (_, img) in images {
        rows.push(vec![
            img.repository.clone(),
            img.tag.clone(),
            img.id[..12].to_string(),
            format!("{} ago", humanize::since(img.created)),
            humanize::size(img.size),
        ]);
    }
    table::print(&rows);
    Ok(())
}
