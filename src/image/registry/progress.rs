//! Pull progress: a bar per layer (indicatif) when stderr is a terminal, otherwise
//! Docker's plain status lines. No ticker thread: bars redraw as bytes arrive, so
//! nothing outlives the pull (`run` clones right after).
//!
//! The one terminal writer below `cli`, on purpose: `run` pulls through
//! `image::for_run`, below `cli`, and must show the same progress as `pull`.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::rc::Rc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    to_stderr: bool,
    quiet: bool,
    /// When `run` pulls without a terminal: status lines wait here and are shown only
    /// if the pull succeeds, so a failed one leaves exactly one line (the error).
    held: Option<Rc<RefCell<Vec<String>>>>,
}

impl Progress {
    pub fn new(quiet: bool, to_stderr: bool) -> Progress {
        let bars = !quiet && std::io::stderr().is_terminal();
        let multi = bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        let held = (to_stderr && !bars).then(|| Rc::new(RefCell::new(Vec::new())));
        Progress { multi, to_stderr, quiet, held }
    }

    /// Shows the held status lines (the pull succeeded).
    pub fn release(&self) {
        if let Some(held) = &self.held {
            for line in held.borrow_mut().drain(..) {
                eprintln!("{line}");
            }
        }
    }

    /// A status line (on stdout for `pull`, stderr when `run` pulls).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if let Some(held) = &self.held {
            held.borrow_mut().push(text.to_string());
            return;
        }
        if let Some(m) = &self.multi {
            if self.to_stderr {
                let _ = m.println(text);
                return;
            }
        }
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    pub fn layer(&self, short: &str, total: u64) -> LayerBar {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            let style = ProgressStyle::with_template(
                "{prefix}: {msg:<12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(short.to_string());
            bar.set_message("Waiting");
            bar
        });
        LayerBar { bar, short: short.to_string(), progress: self.clone() }
    }
}

pub struct LayerBar {
    bar: Option<ProgressBar>,
    short: String,
    progress: Progress,
}

impl LayerBar {
    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// A passing state: the bar's message on a terminal (plain output skips it).
    pub fn state(&self, text: &str) {
        if let Some(b) = &self.bar {
            b.set_message(text.to_string());
        }
    }

    /// A milestone: the bar's message on a terminal, a status line otherwise.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(b) => b.set_message(text.to_string()),
            None => self.progress.line(&format!("{}: {text}", self.short)),
        }
    }

    pub fn finish(&self, text: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(text.to_string()),
            None => self.progress.line(&format!("{}: {text}", self.short)),
        }
    }
}
