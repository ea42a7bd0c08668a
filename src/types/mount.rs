//! `-v` and `--tmpfs` as recorded with the container (parsed and applied in `container::mounts`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mount {
    Bind { source: PathBuf, target: String, read_only: bool },
    Tmpfs { target: String },
}
