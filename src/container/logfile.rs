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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `feed` on a writer into a fresh temp file; returns the entries as
    /// (log, stream) after checking each line's exact form and time.
    fn logged(tag: &str, feed: impl FnOnce(&mut LogWriter)) -> Vec<(String, String)> {
        let path = std::env::temp_dir().join(format!("dockling-test-log-{tag}-{}", std::process::id()));
        let before = Utc::now();
        let mut w = LogWriter::new(File::create(&path).unwrap());
        feed(&mut w);
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let after = Utc::now();
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|line| {
                let e: Entry = serde_json::from_str(line).unwrap();
                assert_eq!(
                    line,
                    format!(
                        "{{\"log\":{},\"stream\":\"{}\",\"time\":\"{}\"}}",
                        serde_json::to_string(&e.log).unwrap(),
                        e.stream,
                        e.time
                    )
                );
                // Docker's form: UTC, nanoseconds, Z.
                assert_eq!(e.time.len(), 30, "{}", e.time);
                assert!(e.time.ends_with('Z') && e.time.as_bytes()[10] == b'T', "{}", e.time);
                let t = chrono::DateTime::parse_from_rfc3339(&e.time).unwrap();
                assert!(before <= t && t <= after, "{} not in [{before}, {after}]", e.time);
                (e.log, e.stream)
            })
            .collect()
    }

    fn e(log: &str, stream: &str) -> (String, String) {
        (log.to_string(), stream.to_string())
    }

    #[test]
    fn one_entry_per_line() {
        let got = logged("lines", |w| w.write(0, b"hello\nworld\n\n"));
        assert_eq!(got, [e("hello\n", "stdout"), e("world\n", "stdout"), e("\n", "stdout")]);
        assert_eq!(logged("nothing", |w| w.write(0, b"")), []);
    }

    #[test]
    fn partial_lines_wait_for_their_end_per_stream() {
        let got = logged("partial", |w| {
            w.write(0, b"par");
            w.write(1, b"err \"quoted\" \\ \t\n");
            w.write(0, b"tial\nnext");
            w.write(1, b"no newline");
            w.finish(0);
            w.finish(1);
            w.finish(1); // nothing left: no entry
        });
        assert_eq!(
            got,
            [
                e("err \"quoted\" \\ \t\n", "stderr"),
                e("partial\n", "stdout"),
                e("next", "stdout"),
                e("no newline", "stderr")
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let raw = b"bad \xff\xfe, cut \xe2\x82, ok \xe2\x82\xac\x01\n";
        let got = logged("utf8", |w| w.write(1, raw));
        assert_eq!(got, [e("bad \u{FFFD}\u{FFFD}, cut \u{FFFD}, ok \u{20AC}\u{1}\n", "stderr")]);
    }

    #[test]
    fn long_lines_are_written_in_pieces() {
        // A line reaching MAX_PARTIAL without a newline is written out at once...
        let got = logged("long", |w| {
            w.write(0, &[b'x'; MAX_PARTIAL]);
            w.write(0, b"end\n");
        });
        assert_eq!(got, [e(&"x".repeat(MAX_PARTIAL), "stdout"), e("end\n", "stdout")]);
        // ...with all it has gathered by then (pieces are not cut at exactly 16 KiB).
        let got = logged("long2", |w| {
            w.write(0, &[b'y'; 10_000]);
            w.write(0, &[b'y'; 10_000]);
            w.write(0, b"\n");
        });
        assert_eq!(got, [e(&"y".repeat(20_000), "stdout"), e("\n", "stdout")]);
        // Below the limit it waits.
        let got = logged("short", |w| {
            w.write(0, &[b'z'; MAX_PARTIAL - 1]);
            w.write(0, b"\n");
        });
        assert_eq!(got, [e(&format!("{}\n", "z".repeat(MAX_PARTIAL - 1)), "stdout")]);
    }
}
