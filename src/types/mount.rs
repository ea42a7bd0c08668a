//! `-v` and `--tmpfs` as recorded with the container (parsed and applied in `container::mounts`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mount {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
        #[serde(default)]
        options: TmpfsOptions,
    },
}

/// `--tmpfs PATH:OPTIONS`. The default is Docker's: writable, `noexec,nosuid,nodev`,
/// mode 1777, the kernel's size (half of RAM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsOptions {
    pub read_only: bool,
    pub exec: bool,
    pub suid: bool,
    pub dev: bool,
    /// Bytes.
    pub size: Option<u64>,
    /// Permission bits of the root directory (1777 when unset).
    pub mode: Option<u32>,
}

impl TmpfsOptions {
    /// The `-o` list mount(8) takes for these options, as `--explain` shows it.
    pub fn mount_options(&self) -> String {
        let mut o = vec![if self.read_only { "ro" } else { "rw" }.to_string()];
        o.push(if self.exec { "exec" } else { "noexec" }.into());
        o.push(if self.suid { "suid" } else { "nosuid" }.into());
        o.push(if self.dev { "dev" } else { "nodev" }.into());
        o.push(self.data());
        o.join(",")
    }

    /// The filesystem-specific part, handed to mount(2) as its data.
    pub fn data(&self) -> String {
        let mut d = Vec::new();
        if let Some(size) = self.size {
            d.push(format!("size={size}"));
        }
        d.push(format!("mode={:o}", self.mode.unwrap_or(0o1777)));
        d.join(",")
    }
}
