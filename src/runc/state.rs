//! What dockling-runc keeps of a container under `--root`: `<root>/<id>/state.json` (its
//! pid, bundle, groups, poststop hooks) and the exec fifo while it waits for `start`.
//! The record is written before anything is made on the host (the groups), so `delete
//! --force` can undo a `create` that died halfway.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Where runc-style state lives when `--root` is not given.
pub const DEFAULT_ROOT: &str = "/run/dockling-runc";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// 0 until init exists.
    pub pid: i32,
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub cgroups: Vec<PathBuf>,
    pub annotations: serde_json::Value,
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
}

/// The runtime's view of a container, as `state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: Option<&Path>) -> Root {
        Root { dir: dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)) }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn exec_fifo(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("exec.fifo")
    }

    /// Makes the container's directory: fails if the id is taken.
    pub fn claim(&self, id: &str) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        // Only root may reach the exec fifos (writable by the containers' users) inside.
        std::fs::set_permissions(&self.dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("making {} private", self.dir.display()))?;
        match std::fs::create_dir(self.container_dir(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                anyhow::bail!("container with id exists: {id}")
            }
            Err(e) => Err(e).context("creating the container's state directory"),
        }
    }

    /// Writes the record (whole, by rename).
    pub fn save(&self, r: &Record) -> Result<()> {
        let path = self.container_dir(&r.id).join("state.json");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(r)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// The record, or None when no container has that id.
    pub fn load(&self, id: &str) -> Result<Option<Record>> {
        let path = self.container_dir(id).join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The ids with a directory under the root, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().map(String::from)).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Whether init is the process we made (not a reused pid).
    pub fn alive(r: &Record) -> bool {
        // (An exited init the shim has not reaped yet is not the same process: stopped.)
        r.pid > 0 && crate::sys::process::same_process(r.pid, r.pid_start)
    }

    pub fn status(&self, r: &Record) -> Status {
        if r.pid == 0 {
            return Status::Creating;
        }
        if !Root::alive(r) {
            return Status::Stopped;
        }
        if crate::cgroups::frozen(&r.cgroups) {
            return Status::Paused;
        }
        if self.exec_fifo(&r.id).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }
}
