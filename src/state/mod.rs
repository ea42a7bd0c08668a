//! Where dockling keeps things, and the container records.
//!
//! Layout under the root (default `/var/lib/dockling`):
//! `images/` (image store), `containers/<id>/` (record, upper and work dirs, logs),
//! `names/` (each name a hard link to its holder's first record), `trash/` (removed containers'
//! directories while a background process deletes them).
//! Runtime state (network leases, locks) lives in `/run/dockling`, or `<root>/run` when
//! `--root` is given, so a reboot forgets what the kernel forgot too.

mod container;
pub mod name_index;
mod trash;

pub use container::{Container, Liveness, NetworkRecord, PortFilter, Status};

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error;
use crate::sys::lock::FileLock;
use crate::types::FirewallDriver;

const DEFAULT_ROOT: &str = "/var/lib/dockling";
const DEFAULT_RUN: &str = "/run/dockling";

/// The state root and the operations on container records.
pub struct Store {
    pub root: PathBuf,
    /// Runtime state (locks, leases): forgotten at reboot, as the kernel forgets.
    pub runtime_dir: PathBuf,
    /// Subnet asked for on the command line or in DOCKLING_SUBNET, if any.
    pub subnet: Option<String>,
    /// Firewall driver asked for (`--firewall-driver`, DOCKLING_FIREWALL_DRIVER), if any.
    pub firewall: Option<FirewallDriver>,
}

impl Store {
    pub fn open(root: Option<PathBuf>, subnet: Option<&str>) -> Result<Store> {
        let (root, run) = match root {
            Some(r) => {
                let r = if r.is_absolute() { r } else { std::env::current_dir()?.join(r) };
                let run = r.join("run");
                (r, run)
            }
            None => (PathBuf::from(DEFAULT_ROOT), PathBuf::from(DEFAULT_RUN)),
        };
        for dir in [root.join("containers"), root.join("images"), root.join("names"), root.join("trash"), run.clone()] {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // Like Docker's 0710: other users must not reach a container's upper dir or an
        // image's layers (a setuid file in there would be theirs to run).
        use std::os::unix::fs::PermissionsExt;
        for dir in [&root, &run] {
            let mode = fs::metadata(dir).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0);
            if mode & 0o007 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o710))
                    .with_context(|| format!("restricting {}", dir.display()))?;
            }
        }
        Ok(Store { root, runtime_dir: run, subnet: subnet.map(String::from), firewall: None })
    }

    /// A store whose directories exist already (the monitor's exit handler).
    pub fn at(root: PathBuf, runtime_dir: PathBuf) -> Store {
        Store { root, runtime_dir, subnet: None, firewall: None }
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// Serialises creating and removing containers (name uniqueness).
    pub fn lock_names(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.runtime_dir.join("names.lock"))
    }

    /// Serialises changes to one container's record.
    pub fn lock_container(&self, id: &str) -> Result<FileLock> {
        FileLock::exclusive_dir(&self.container_dir(id))
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        let path = self.container_dir(id).join("config.json");
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the record atomically (temp file + rename), so a crash never leaves half a file.
    pub fn save(&self, c: &Container) -> Result<()> {
        let dir = self.container_dir(&c.id);
        // A name of our own: two writers must never rename each other's half-written file.
        let tmp = dir.join(format!("config.json.tmp.{}", std::process::id()));
        let data = serde_json::to_vec_pretty(c)?;
        fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, dir.join("config.json")).context("saving container record")?;
        Ok(())
    }

    /// Loads, changes and saves a record under its lock.
    pub fn update<T>(&self, id: &str, f: impl FnOnce(&mut Container) -> Result<T>) -> Result<T> {
        let _lock = self.lock_container(id)?;
        let mut c = self.load(id)?;
        let out = f(&mut c)?;
        self.save(&c)?;
        Ok(out)
    }

    /// Every container record, oldest first.
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.containers_dir()).context("listing containers")? {
            let entry = entry?;
            let id = entry.file_name().to_string_lossy().to_string();
            if let Ok(c) = self.load(&id) {
                out.push(c);
            }
        }
        out.sort_by_key(|c| c.created);
        Ok(out)
    }

    /// Finds a container by name, full id or unique id prefix, as Docker does.
    pub fn resolve(&self, key: &str) -> Result<Container> {
        let key = key.trim_start_matches('/');
        if let Some(c) = self.resolve_quickly(key) {
            return Ok(c);
        }
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.name == key || c.id == key) {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = if key.is_empty() || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            Vec::new()
        } else {
            all.iter().filter(|c| c.id.starts_with(key)).collect()
        };
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(error::exit(1, format!("No such container: {key}"))),
            _ => Err(error::exit(1, format!("Multiple IDs found with provided prefix: {key}"))),
        }
    }

    /// [`Store::resolve`] without reading every record (`rm -f` of 200 keys read 200 x 200):
    /// a full id is a directory, a name is in the names index, an id prefix is among the
    /// directories' names. None when that cannot tell; the full scan then decides.
    fn resolve_quickly(&self, key: &str) -> Option<Container> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return None;
        }
        let hex = key.chars().all(|c| c.is_ascii_hexdigit());
        if hex && key.len() == 64 {
            if let Ok(c) = self.load(key) {
                return Some(c);
            }
        }
        if let Some(c) = name_index::lookup(self, key).and_then(|id| self.load(&id).ok()) {
            if c.name == key {
                return Some(c);
            }
        }
        if !hex || !name_index::is_built(self) {
            return None;
        }
        let mut found = fs::read_dir(self.containers_dir())
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .filter(|id| id.starts_with(key));
        match (found.next(), found.next()) {
            (Some(id), None) => self.load(&id).ok(),
            _ => None,
        }
    }

    /// Removes everything a container keeps on disk: gone from every listing at once,
    /// deleted from the disk in the background (see `trash`).
    /// Its name is given up first. The caller holds the names lock.
    pub fn remove_dir(&self, id: &str, name: &str) -> Result<()> {
        name_index::release(self, name, id)?;
        trash::discard(&self.root, &self.container_dir(id))
    }

    /// Removes a container's directory before returning (a `run` that never started its
    /// container leaves nothing behind, not even in the trash).
    pub fn remove_dir_now(&self, id: &str, name: &str) -> Result<()> {
        name_index::release(self, name, id)?;
        remove_tree(&self.container_dir(id))
    }
}

/// `rm -rf`, tolerant of a tree that is already gone.
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// 64 random hex characters, like Docker's ids.
pub fn new_id() -> Result<String> {
    let mut buf = [0u8; 32];
    let mut f = fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut buf).context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
