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
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};

// Without std nothing links the C library for us: statically in the static build
// (scripts/cargo-env.sh), dynamically otherwise.
#[cfg_attr(target_feature = "crt-static", link(name = "c", kind = "static", modifiers = "-bundle"))]
#[cfg_attr(target_feature = "crt-static", link(name = "gcc_eh", kind = "static", modifiers = "-bundle"))]
#[cfg_attr(target_feature = "crt-static", link(name = "gcc", kind = "static", modifiers = "-bundle"))]
#[cfg_attr(target_feature = "crt-static", link(name = "c", kind = "static", modifiers = "-bundle"))]
#[cfg_attr(not(target_feature = "crt-static"), link(name = "c"))]
extern "C" {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort is always safe to call.
    unsafe { libc::abort() }
}

/// The prebuilt `core` still names the unwinder's personality routine; with panic=abort
/// it is never called.
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

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
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
    let secs = ts.tv_sec.max(0) as u64;
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
    field(ts.tv_nsec.max(0) as u64, 9, b"Z");
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
