//! runc's `--log`: with `--log-format json`, one JSON object per line, the last of a
//! failure being `{"level":"error","msg":...,"time":...}`; containerd's shim decodes the
//! file line by line and reports that message, so nothing else may be written there.

use std::io::Write;
use std::path::PathBuf;

pub struct Log {
    path: Option<PathBuf>,
    json: bool,
}

impl Log {
    pub fn new(path: Option<PathBuf>, json: bool) -> Log {
        Log { path, json }
    }

    /// Records a failure: in the log when there is one (the shim's case), else on stderr.
    pub fn error(&self, msg: &str) {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = if self.json {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level=error msg={msg:?}")
        };
        let written = self.path.as_ref().is_some_and(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .and_then(|mut f| writeln!(f, "{line}"))
                .is_ok()
        });
        if !written {
            eprintln!("{line}");
        }
    }
}
