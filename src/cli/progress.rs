//! Pull progress on the terminal: a bar per layer (indicatif) when stderr is a terminal,
//! otherwise Docker's plain status lines. No ticker thread: bars redraw as bytes arrive,
//! so nothing outlives the pull (`run` clones right after). `pull` and `run` hand it to
//! the image code, which only reports (`image::Progress`).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::rc::Rc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::image::{LayerProgress, Progress};

#[derive(Clone)]
pub struct Terminal {
    multi: Option<MultiProgress>,
    to_stderr: bool,
    quiet: bool,
    /// When `run` pulls without a terminal: status lines wait here and are shown only
    /// if the pull succeeds, so a failed one leaves exactly one line (the error).
    held: Option<Rc<RefCell<Vec<String>>>>,
}

impl Terminal {
    /// `quiet`: nothing at all (`pull -q`); `to_stderr`: status on stderr (when `run`
    /// pulls: its stdout is the container's).
    pub fn new(quiet: bool, to_stderr: bool) -> Terminal {
        let bars = !quiet && std::io::stderr().is_terminal();
        let multi = bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        let held = (to_stderr && !bars).then(|| Rc::new(RefCell::new(Vec::new())));
        Terminal { multi, to_stderr, quiet, held }
    }
}

impl Progress for Terminal {
    /// Shows the held status lines (the pull succeeded).
    fn succeeded(&self) {
        if let Some(held) = &self.held {
            for line in held.borrow_mut().drain(..) {
                eprintln!("{line}");
            }
        }
    }

    /// A status line (on stdout for `pull`, stderr when `run` pulls).
    fn line(&self, text: &str) {
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

    fn layer(&self, short: &str, total: u64) -> Box<dyn LayerProgress> {
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
        Box::new(LayerBar { bar, short: short.to_string(), progress: self.clone() })
    }
}

struct LayerBar {
    bar: Option<ProgressBar>,
    short: String,
    progress: Terminal,
}

impl LayerProgress for LayerBar {
    fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// A passing state: the bar's message on a terminal (plain output skips it).
    fn state(&self, text: &str) {
        if let Some(b) = &self.bar {
            b.set_message(text.to_string());
        }
    }

    /// A milestone: the bar's message on a terminal, a status line otherwise.
    fn note(&self, text: &str) {
        match &self.bar {
            Some(b) => b.set_message(text.to_string()),
            None => self.progress.line(&format!("{}: {text}", self.short)),
        }
    }

    fn finish(&self, text: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(text.to_string()),
            None => self.progress.line(&format!("{}: {text}", self.short)),
        }
    }
}
