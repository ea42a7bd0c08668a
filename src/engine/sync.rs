//! The one protocol between `run`, the container's init, `exec`'s child and the monitor.
//!
//! Each message is one line on a pipe made before the fork or clone:
//! - `run` → init, on the *go* pipe: [`Message::Go`] once the host side (network) is ready;
//! - monitor → `run`, on the *report* pipe: [`Message::Started`] with the container's pid;
//! - init or `exec`'s child (or the monitor) → their parent, on a close-on-exec *error*
//!   pipe: [`Message::Failed`] with Docker's exit code (125 setup, 126 cannot execute,
//!   127 not found). EOF instead means `execve` succeeded (or the peer went away).

use std::fmt;
use std::io::{self, Read, Write};

use crate::error::RUNTIME_ERROR;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Go,
    /// `dockling-runc create`'s init: namespaces, root and terminal exist (hooks may run).
    Ready,
    /// ...and the process settings are applied: it waits for `start`.
    Created,
    Started {
        pid: i32,
    },
    Failed(Failure),
}

/// Why a process on the container side gave up, and the exit code that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    /// A setup failure (exit 125), with the whole chain of an anyhow error.
    pub fn setup(err: impl fmt::Display) -> Failure {
        Failure::new(RUNTIME_ERROR, format!("{err:#}"))
    }

    /// The error `run` or `exec` ends with: the failure's own exit code and message.
    pub fn into_error(self) -> anyhow::Error {
        crate::error::exit(self.code, self.message)
    }

    /// `what: error` as a setup failure, for `map_err`.
    pub fn context<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
        move |e| Failure::new(RUNTIME_ERROR, format!("{what}: {e}"))
    }
}

impl Message {
    fn encode(&self) -> String {
        match self {
            Message::Go => "go\n".to_string(),
            Message::Ready => "ready\n".to_string(),
            Message::Created => "created\n".to_string(),
            Message::Started { pid } => format!("started\t{pid}\n"),
            // One line: a message never carries a newline of its own.
            Message::Failed(f) => format!("failed\t{}\t{}\n", f.code, f.message.replace('\n', " ")),
        }
    }

    fn decode(line: &str) -> Option<Message> {
        let mut fields = line.trim_end_matches('\n').splitn(3, '\t');
        match (fields.next()?, fields.next(), fields.next()) {
            ("go", None, None) => Some(Message::Go),
            ("ready", None, None) => Some(Message::Ready),
            ("created", None, None) => Some(Message::Created),
            ("started", Some(pid), None) => Some(Message::Started { pid: pid.parse().ok()? }),
            ("failed", Some(code), message) => Some(Message::Failed(Failure::new(
                code.parse().unwrap_or(RUNTIME_ERROR),
                message.unwrap_or_default().trim(),
            ))),
            _ => None,
        }
    }
}

/// The end of a child that failed before its exec: says why to its parent and returns
/// the exit status that says so too.
pub fn report_failure(to: &mut impl Write, failure: Failure) -> i32 {
    let code = failure.code;
    let _ = send(to, &Message::Failed(failure));
    code
}

/// Writes one message, whole (messages are far below PIPE_BUF: one atomic write).
pub fn send(to: &mut impl Write, msg: &Message) -> io::Result<()> {
    to.write_all(msg.encode().as_bytes())
}

/// Reads one message; `Ok(None)` at EOF (the peer exec'd or went away without a word).
/// Reads byte by byte, so nothing after the message is consumed.
pub fn receive(from: &mut impl Read) -> io::Result<Option<Message>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match from.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    if line.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&line);
    Message::decode(&text)
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unexpected message {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Message) -> Option<Message> {
        let mut buf = Vec::new();
        send(&mut buf, &msg).unwrap();
        receive(&mut buf.as_slice()).unwrap()
    }

    #[test]
    fn every_message_round_trips() {
        for msg in [
            Message::Go,
            Message::Ready,
            Message::Created,
            Message::Started { pid: 4242 },
            Message::Failed(Failure::new(127, "exec: \"nope\": executable file not found in $PATH")),
            Message::Failed(Failure::new(125, "tab\tinside")),
        ] {
            assert_eq!(round_trip(msg.clone()), Some(msg));
        }
    }

    #[test]
    fn newlines_in_a_failure_stay_on_one_line() {
        let got = round_trip(Message::Failed(Failure::new(126, "first\nsecond")));
        assert_eq!(got, Some(Message::Failed(Failure::new(126, "first second"))));
    }

    #[test]
    fn eof_is_none_and_garbage_is_an_error() {
        assert_eq!(receive(&mut &b""[..]).unwrap(), None);
        assert!(receive(&mut &b"hello\n"[..]).is_err());
        assert!(receive(&mut &b"started\tx\n"[..]).is_err());
    }

    #[test]
    fn only_one_message_is_consumed() {
        let mut buf = Vec::new();
        send(&mut buf, &Message::Started { pid: 7 }).unwrap();
        send(&mut buf, &Message::Go).unwrap();
        let mut r = buf.as_slice();
        assert_eq!(receive(&mut r).unwrap(), Some(Message::Started { pid: 7 }));
        assert_eq!(receive(&mut r).unwrap(), Some(Message::Go));
        assert_eq!(receive(&mut r).unwrap(), None);
    }
}
