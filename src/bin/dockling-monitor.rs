//! `dockling-monitor`: what stays behind for a detached container (Docker has
//! containerd-shim, Podman has conmon). `dockling run -d` forks, clones the container as
//! the fork's child, then execs this small program in the fork, which:
//!
//! 1. copies the container's stdout and stderr into its json-file log, line by line;
//! 2. waits for the container (its child) to exit;
//! 3. execs `dockling _monitor-exit ...` (same pid), which records the exit code and
//!    tears down what `run` set up.
//!
//! It is `no_std` and linked statically against libc alone, so an idle monitor maps a few
//! pages instead of a 10 MB runtime: it is the one dockling process that lives as long as
//! its container.
//!
//! Usage (dockling runs it; not for people):
//! `dockling-monitor PID LOG OUT_FD ERR_FD -- PROGRAM ARGS...` (ERR_FD -1 for a terminal);
//! PROGRAM is run with ARGS plus the exit code (`128+N` for signal N, `none` if unknown).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// Unit tests build it as an ordinary std program (cargo's test harness has its own main
// and panic handler): what only the real program uses is left out of that build.
#![cfg_attr(test, allow(dead_code, unused_imports))]

use core::ffi::{c_char, c_int, CStr};

// Without std nothing links the C library for us: statically in the static build
// (scripts/cargo-env.sh), dynamically otherwise. The static libraries go to the linker
// in this order, libc twice (libgcc's pieces and libc need each other): one block each,
// as the blocks' order is the link order.
#[cfg(not(test))]
#[cfg_attr(target_feature = "crt-static", link(name = "c", kind = "static", modifiers = "-bundle"))]
#[cfg_attr(not(target_feature = "crt-static"), link(name = "c"))]
extern "C" {}
#[cfg(all(not(test), target_feature = "crt-static"))]
#[link(name = "gcc_eh", kind = "static", modifiers = "-bundle")]
extern "C" {}
#[cfg(all(not(test), target_feature = "crt-static"))]
#[link(name = "gcc", kind = "static", modifiers = "-bundle")]
extern "C" {}
#[cfg(all(not(test), target_feature = "crt-static"))]
#[link(name = "c", kind = "static", modifiers = "-bundle")]
extern "C" {}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort is always safe to call.
    unsafe { libc::abort() }
}

/// The prebuilt `core` still names the unwinder's personality routine; with panic=abort
/// it is never called.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// The longest piece of a line kept before it is written out (Docker's 16 KiB).
const MAX_PARTIAL: usize = 16 * 1024;
/// One log entry: the escaped piece (at most 6 bytes per input byte) plus the fields.
const ENTRY_MAX: usize = MAX_PARTIAL * 6 + 128;
const STREAMS: [&[u8]; 2] = [b"stdout", b"stderr"];

/// The big buffers live in .bss: zero pages cost nothing until first written, so an
/// idle monitor's resident set is what it has actually touched.
struct Buffers {
    partial: [[u8; MAX_PARTIAL]; 2],
    read: [u8; 16 * 1024],
    entry: [u8; ENTRY_MAX],
}
static mut BUFFERS: Buffers = Buffers { partial: [[0; MAX_PARTIAL]; 2], read: [0; 16 * 1024], entry: [0; ENTRY_MAX] };

#[cfg(not(test))]
#[no_mangle]
/// Called by the C runtime, with `argc` valid NUL-terminated strings in `argv`.
unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the C runtime passes argc valid, NUL-terminated strings.
    let args: &[*const c_char] = unsafe { core::slice::from_raw_parts(argv, argc.max(0) as usize) };
    let arg = |i: usize| -> &[u8] {
        // SAFETY: see above; i < argc is checked by the callers.
        unsafe { CStr::from_ptr(args[i]) }.to_bytes()
    };
    if args.len() < 7 || arg(5) != b"--" {
        fail(b"usage: dockling-monitor PID LOG OUT_FD ERR_FD -- PROGRAM ARGS...\n");
    }
    let (Some(pid), Some(out_fd), Some(err_fd)) = (parse_int(arg(1)), parse_int(arg(3)), parse_int(arg(4))) else {
        fail(b"dockling-monitor: bad pid or descriptor\n");
    };
    // SAFETY: a NUL-terminated path; the flags and mode are plain integers.
    let log = unsafe { libc::open(args[2], libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC, 0o640) };

    // The streams came without close-on-exec (to survive the exec into this program);
    // the exit handler exec'd below must not inherit them.
    for fd in [out_fd, err_fd] {
        if fd >= 0 {
            // SAFETY: setting a flag on a descriptor number; an invalid one just fails.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    // SAFETY: single-threaded; this is the only reference ever made to BUFFERS.
    let bufs = unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) };
    let mut pump = Pump { log, partial: &mut bufs.partial, len: [0; 2], entry: &mut bufs.entry };
    pump.run([out_fd, err_fd], &mut bufs.read);

    let code = wait_for(pid);
    // argv for the exit handler: PROGRAM ARGS... CODE, NULL.
    let mut code_text = [0u8; 16];
    let code_len = match code {
        Some(c) => format_uint(c as u64, &mut code_text),
        None => {
            code_text[..4].copy_from_slice(b"none");
            4
        }
    };
    code_text[code_len] = 0;
    let mut next: [*const c_char; 64] = [core::ptr::null(); 64];
    let rest = &args[6..];
    if rest.len() + 2 > next.len() {
        fail(b"dockling-monitor: too many arguments\n");
    }
    next[..rest.len()].copy_from_slice(rest);
    next[rest.len()] = code_text.as_ptr() as *const c_char;
    // SAFETY: a NULL-terminated array of NUL-terminated strings that outlive the call.
    unsafe { libc::execv(rest[0], next.as_ptr()) };
    fail(b"dockling-monitor: cannot run the exit handler\n")
}

fn fail(message: &[u8]) -> ! {
    // SAFETY: writing a valid buffer to stderr, then exiting.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(1)
    }
}

fn parse_int(s: &[u8]) -> Option<i32> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut v: i32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as i32;
    }
    Some(if neg { -v } else { v })
}

/// Writes `v` in decimal at the start of `out`; returns the length.
fn format_uint(mut v: u64, out: &mut [u8]) -> usize {
    let mut tmp = [0u8; 20];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = tmp[n - 1 - i];
    }
    n
}

/// Docker's exit code for the container: its code, or 128+N for signal N.
fn wait_for(pid: i32) -> Option<i32> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: waiting for our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return Some(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return Some(128 + libc::WTERMSIG(status));
            }
            continue; // stopped or continued: keep waiting
        }
        // SAFETY: reading errno right after the failed call.
        if r < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        return None;
    }
}

/// Splits each stream into lines and appends them to the log as json-file entries.
struct Pump<'a> {
    log: c_int,
    partial: &'a mut [[u8; MAX_PARTIAL]; 2],
    len: [usize; 2],
    entry: &'a mut [u8; ENTRY_MAX],
}

impl Pump<'_> {
    /// Copies until every stream is closed (the container and all its processes are done).
    fn run(&mut self, fds: [c_int; 2], buf: &mut [u8]) {
        let mut open = [fds[0] >= 0, fds[1] >= 0];
        while open[0] || open[1] {
            let mut polled = [libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; 2];
            for i in 0..2 {
                if open[i] {
                    polled[i].fd = fds[i];
                }
            }
            // SAFETY: two valid pollfd structs (fd -1 entries are ignored by the kernel).
            let r = unsafe { libc::poll(polled.as_mut_ptr(), 2, -1) };
            if r < 0 {
                // SAFETY: reading errno right after the failed call.
                if unsafe { *libc::__errno_location() } == libc::EINTR {
                    continue;
                }
                for i in 0..2 {
                    if open[i] {
                        self.finish(i);
                        // SAFETY: closing a descriptor we were given and no longer use.
                        unsafe { libc::close(fds[i]) };
                    }
                }
                break;
            }
            for i in 0..2 {
                if !open[i] || polled[i].revents == 0 {
                    continue;
                }
                // SAFETY: reading into a buffer we own, no longer than it.
                let n = unsafe { libc::read(fds[i], buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    self.write(i, &buf[..n as usize]);
                } else if n == 0 || unsafe { *libc::__errno_location() } != libc::EINTR {
                    open[i] = false;
                    self.finish(i);
                    // SAFETY: closing a descriptor we were given and no longer use.
                    unsafe { libc::close(fds[i]) };
                }
            }
        }
    }

    fn write(&mut self, stream: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let room = MAX_PARTIAL - self.len[stream];
            let (take, line_end) = match data.iter().position(|&b| b == b'\n') {
                Some(pos) if pos < room => (pos + 1, true),
                _ => (data.len().min(room), false),
            };
            let start = self.len[stream];
            self.partial[stream][start..start + take].copy_from_slice(&data[..take]);
            self.len[stream] += take;
            data = &data[take..];
            if line_end {
                self.emit(stream, self.len[stream]);
            } else if self.len[stream] == MAX_PARTIAL {
                // A piece of a long line: cut before a character split by the boundary,
                // which then starts the next piece.
                let cut = utf8_cut(&self.partial[stream]);
                self.emit(stream, cut);
            }
        }
    }

    /// Writes what is left of a stream that ended without a newline.
    fn finish(&mut self, stream: usize) {
        if self.len[stream] > 0 {
            self.emit(stream, self.len[stream]);
        }
    }

    /// One entry, one write (O_APPEND), so `logs -f` never reads half an entry:
    /// `{"log":"hello\n","stream":"stdout","time":"2026-11-27T20:00:00.000000000Z"}`.
    /// Logs the first `n` buffered bytes of `stream` and keeps the rest for later.
    fn emit(&mut self, stream: usize, n: usize) {
        let mut out = Out { buf: &mut self.entry[..], len: 0 };
        out.push(b"{\"log\":\"");
        let line = &self.partial[stream][..n];
        for chunk in line.utf8_chunks() {
            escape_json(chunk.valid().as_bytes(), &mut out);
            if !chunk.invalid().is_empty() {
                out.push("\u{FFFD}".as_bytes()); // as String::from_utf8_lossy
            }
        }
        out.push(b"\",\"stream\":\"");
        out.push(STREAMS[stream]);
        out.push(b"\",\"time\":\"");
        rfc3339_now(&mut out);
        out.push(b"\"}\n");
        let len = out.len;
        self.partial[stream].copy_within(n..self.len[stream], 0);
        self.len[stream] -= n;
        if self.log >= 0 {
            write_all(self.log, &self.entry[..len]);
        }
    }
}

/// Writes all of `data` (a short write would leave half an entry, and the next one glued
/// to it); gives up on an error other than EINTR: the entry is lost, as Docker loses it.
fn write_all(fd: c_int, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a buffer we own, no longer than it.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n > 0 {
            data = &data[n as usize..];
        } else if n == 0 || unsafe { *libc::__errno_location() } != libc::EINTR {
            return;
        }
    }
}

/// Where to cut a full buffer so that no UTF-8 character is split: before the start of
/// a sequence the buffer's end cuts short, else at the end.
fn utf8_cut(buf: &[u8]) -> usize {
    let n = buf.len();
    for back in 1..=n.min(3) {
        let b = buf[n - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: its lead is further back
        }
        let needed = match b {
            0xF0..=0xFF => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if needed > back { n - back } else { n };
    }
    n
}

struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }
}

/// JSON string escaping as serde_json writes it.
fn escape_json(s: &[u8], out: &mut Out) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' => out.push(b"\\\""),
            b'\\' => out.push(b"\\\\"),
            b'\n' => out.push(b"\\n"),
            b'\r' => out.push(b"\\r"),
            b'\t' => out.push(b"\\t"),
            0x08 => out.push(b"\\b"),
            0x0c => out.push(b"\\f"),
            0..=0x1f => out.push(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
            _ => out.push(&[b]),
        }
    }
}

/// The time now as `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` (UTC, nanoseconds, as Docker logs).
fn rfc3339_now(out: &mut Out) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    rfc3339(ts.tv_sec.max(0) as u64, ts.tv_nsec.max(0) as u64, out);
}

/// `secs` and `nanos` since the epoch as `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ`.
fn rfc3339(secs: u64, nanos: u64, out: &mut Out) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let mut field = |v: u64, width: usize, sep: &[u8]| {
        let mut digits = [b'0'; 20];
        let n = format_uint(v, &mut digits);
        for _ in n..width {
            out.push(b"0");
        }
        out.push(&digits[..n]);
        out.push(sep);
    };
    field(y as u64, 4, b"-");
    field(m as u64, 2, b"-");
    field(d as u64, 2, b"T");
    field(rem / 3600, 2, b":");
    field(rem % 3600 / 60, 2, b":");
    field(rem % 60, 2, b".");
    field(nanos, 9, b"Z");
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn escaped(s: &[u8]) -> String {
        let mut buf = vec![0u8; s.len() * 6];
        let mut out = Out { buf: &mut buf, len: 0 };
        escape_json(s, &mut out);
        let len = out.len;
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    #[test]
    fn escape_json_matches_serde_json() {
        // Every ASCII byte alone: quotes, backslash, the short escapes, \u00XX for the
        // other control bytes, and DEL and printable bytes as they are.
        for b in 0u8..=0x7f {
            let s = (b as char).to_string();
            let want = serde_json::to_string(&s).unwrap();
            assert_eq!(escaped(s.as_bytes()), want[1..want.len() - 1], "byte {b:#04x}");
        }
        let s = "a \"quoted\" C:\\path\n\ttab\r\x08\x0c\x00\x1f\x7f é € 😀 end";
        let want = serde_json::to_string(s).unwrap();
        assert_eq!(escaped(s.as_bytes()), want[1..want.len() - 1]);
        assert_eq!(escaped(b"\x01\x1b"), "\\u0001\\u001b");
        assert_eq!(escaped(b"\\\""), "\\\\\\\"");
        assert_eq!(escaped(b""), "");
    }

    fn date(secs: u64, nanos: u64) -> String {
        let mut buf = [0u8; 64];
        let mut out = Out { buf: &mut buf, len: 0 };
        rfc3339(secs, nanos, &mut out);
        let len = out.len;
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    fn chrono_date(secs: u64, nanos: u64) -> String {
        chrono::DateTime::from_timestamp(secs as i64, nanos as u32)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    }

    #[test]
    fn dates_as_docker_writes_them() {
        assert_eq!(date(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(date(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(date(1_709_251_199, 999_999_999), "2024-02-29T23:59:59.999999999Z");
        assert_eq!(date(4_107_542_400, 0), "2100-03-01T00:00:00.000000000Z"); // 2100 is no leap year
        for (secs, nanos) in [
            (0, 1),
            (59, 0),
            (86_399, 123_456_789),
            (946_684_799, 999_999_999),     // last second of 1999
            (946_684_800, 0),               // first of 2000
            (951_868_799, 0),               // 2000-02-29, end of day
            (1_078_099_199, 0),             // 2004-02-29 end
            (1_078_099_200, 0),             // 2004-03-01
            (1_704_067_199, 1_000),         // 2023-12-31 end
            (1_706_745_599, 0),             // 2024-01-31 end
            (1_719_791_999, 0),             // 2024-06-30 end
            (1_735_689_599, 0),             // 2024-12-31 end
            (4_107_542_399, 0),             // 2100-02-28 end
            (13_574_563_200, 0),            // 2400-02-29 (leap: divisible by 400)
            (253_402_300_799, 999_999_999), // 9999-12-31T23:59:59
        ] {
            assert_eq!(date(secs, nanos), chrono_date(secs, nanos), "{secs}.{nanos}");
        }
        // Every day from 1970 to 2400, at a time of day that moves through the day.
        let mut secs = 0u64;
        while secs < 13_600_000_000 {
            assert_eq!(date(secs, 42), chrono_date(secs, 42), "{secs}");
            secs += 86_400 + 3_607;
        }
    }

    #[test]
    fn civil_from_days_around_the_epoch() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(10_956), (1999, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn utf8_cut_keeps_characters_whole() {
        assert_eq!(utf8_cut(b""), 0);
        assert_eq!(utf8_cut(b"abc"), 3);
        assert_eq!(utf8_cut("abé".as_bytes()), 4); // complete 2-byte character
        assert_eq!(utf8_cut(&"abé".as_bytes()[..3]), 2); // its lead byte alone
        assert_eq!(utf8_cut("a€".as_bytes()), 4);
        assert_eq!(utf8_cut(&"a€".as_bytes()[..3]), 1); // 2 of 3 bytes
        assert_eq!(utf8_cut(&"a€".as_bytes()[..2]), 1); // 1 of 3 bytes
        assert_eq!(utf8_cut("a😀".as_bytes()), 5);
        assert_eq!(utf8_cut(&"a😀".as_bytes()[..4]), 1); // 3 of 4 bytes
        assert_eq!(utf8_cut(b"ab\xff"), 2); // not UTF-8: moved to the next piece too
        assert_eq!(utf8_cut(b"a\x80\x80\x80"), 4); // stray continuation bytes: no lead in reach
    }

    #[test]
    fn parse_int_and_format_uint() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"4242"), Some(4242));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"999999999"), Some(999_999_999));
        for bad in [&b""[..], b"-", b"1x", b" 1", b"+1", b"1000000000", b"--1"] {
            assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let mut out = [0u8; 20];
        for v in [0u64, 7, 10, 1234567890, u64::MAX] {
            let n = format_uint(v, &mut out);
            assert_eq!(&out[..n], v.to_string().as_bytes());
        }
    }

    /// Runs `feed` on a pump whose log is a temp file; returns the log's (log, stream)
    /// pairs after checking each line is exactly what serde_json would write.
    fn pumped(name: &str, feed: impl FnOnce(&mut Pump)) -> Vec<(String, String)> {
        let path = std::env::temp_dir().join(format!("dockling-monitor-test-{}-{name}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut partial = Box::new([[0u8; MAX_PARTIAL]; 2]);
        let mut entry: Box<[u8; ENTRY_MAX]> = vec![0u8; ENTRY_MAX].into_boxed_slice().try_into().unwrap();
        let mut pump = Pump { log: file.as_raw_fd(), partial: &mut partial, len: [0; 2], entry: &mut entry };
        feed(&mut pump);
        drop(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut entries = Vec::new();
        for line in text.split_inclusive('\n') {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let log = v["log"].as_str().unwrap().to_string();
            let stream = v["stream"].as_str().unwrap().to_string();
            let time = v["time"].as_str().unwrap();
            assert_eq!(time.len(), 30, "{time}");
            chrono::DateTime::parse_from_rfc3339(time).unwrap();
            // Byte for byte the json-file format: {"log":...,"stream":...,"time":...}\n
            let want = format!(
                "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n",
                serde_json::to_string(&log).unwrap()
            );
            assert_eq!(line, want);
            entries.push((log, stream));
        }
        entries
    }

    fn e(log: &str, stream: &str) -> (String, String) {
        (log.to_string(), stream.to_string())
    }

    #[test]
    fn pump_writes_lines_and_keeps_partial_ones() {
        let got = pumped("lines", |p| {
            p.write(0, b"one\ntw");
            p.write(1, b"err \"1\"\n");
            p.write(0, b"o\n\nthree");
            assert_eq!(p.len, [5, 0]); // "three" waits for its newline
            p.finish(0);
            p.finish(1); // nothing left: no entry
        });
        assert_eq!(
            got,
            [
                e("one\n", "stdout"),
                e("err \"1\"\n", "stderr"),
                e("two\n", "stdout"),
                e("\n", "stdout"),
                e("three", "stdout")
            ]
        );
    }

    #[test]
    fn pump_replaces_invalid_utf8_as_from_utf8_lossy() {
        let raw = b"ok \xff\xfe mid \xe2\x82 end \xf0\x9f\x98\x80\n";
        let got = pumped("lossy", |p| p.write(1, raw));
        assert_eq!(got, [(String::from_utf8_lossy(raw).into_owned(), "stderr".to_string())]);
    }

    #[test]
    fn pump_cuts_long_lines_at_16k_without_splitting_characters() {
        let mut long = vec![b'x'; MAX_PARTIAL - 1];
        long.extend_from_slice("é".as_bytes()); // straddles the 16 KiB boundary
        long.extend_from_slice(b"tail\n");
        let got = pumped("long", |p| {
            p.write(0, &long[..1000]);
            p.write(0, &long[1000..]);
        });
        assert_eq!(got, [e(&"x".repeat(MAX_PARTIAL - 1), "stdout"), e("étail\n", "stdout")]);

        // Exactly 16 KiB of ASCII, then the newline in the next read.
        let got = pumped("exact", |p| {
            p.write(0, &[b'y'; MAX_PARTIAL]);
            p.write(0, b"\n");
        });
        assert_eq!(got, [e(&"y".repeat(MAX_PARTIAL), "stdout"), e("\n", "stdout")]);
    }
}
