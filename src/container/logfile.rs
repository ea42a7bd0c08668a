//! Container logs as JSON lines, like Docker's json-file driver:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-27T20:00:00.000000000Z"}`.

use std::fs::File;
use std::io::Write;

use chrono::Utc;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Splits each stream into lines and appends them to the log file.
pub struct LogWriter {
    file: File,
    partial: [Vec<u8>; 2],
}

pub const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// The longest piece of a line kept in memory before it is written out.
const MAX_PARTIAL: usize = 16 * 1024;

impl LogWriter {
    pub fn new(file: File) -> LogWriter {
        LogWriter { file, partial: [Vec::new(), Vec::new()] }
    }

    pub fn write(&mut self, stream: usize, data: &[u8]) {
        // Scan only the new bytes; a line that grows past MAX_PARTIAL is written in pieces
        // (as Docker does at 16 KiB), so the monitor never buffers without bound.
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.partial[stream].extend_from_slice(&rest[..=pos]);
            let line = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &line);
            rest = &rest[pos + 1..];
        }
        self.partial[stream].extend_from_slice(rest);
        if self.partial[stream].len() >= MAX_PARTIAL {
            let chunk = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &chunk);
        }
    }

    /// Writes what is left of a stream that ended without a newline.
    pub fn finish(&mut self, stream: usize) {
        let rest = std::mem::take(&mut self.partial[stream]);
        if !rest.is_empty() {
            self.emit(stream, &rest);
        }
    }

    fn emit(&mut self, stream: usize, line: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: STREAMS[stream].to_string(),
            time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        if let Ok(mut text) = serde_json::to_vec(&entry) {
            text.push(b'\n');
            let _ = self.file.write_all(&text);
        }
    }
}
