//! A progress bar on stderr for long work, drawn only when stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar that may be hidden; every method is a no-op when it is.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total` bytes labelled `what`, unless `quiet` or stderr is not a terminal.
    pub fn bytes(what: &str, total: u64, quiet: bool) -> Progress {
        Progress::new(
            what,
            total,
            quiet,
            "{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
    }

    /// A bar that counts percent (for engine work that reports 0..=100).
    pub fn percent(what: &str, quiet: bool) -> Progress {
        Progress::new(what, 100, quiet, "{msg:>10} [{bar:40}] {pos}%")
    }

    fn new(what: &str, total: u64, quiet: bool, template: &str) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    /// Advances by `n` units.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Sets the position (engine callbacks report percent).
    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    /// Sets the position of a bytes bar from engine work that reports percent (0..=100).
    pub fn set_percent(&self, percent: u32) {
        if let Some(b) = &self.bar {
            let total = b.length().unwrap_or(0);
            let pos = u128::from(total) * u128::from(percent.min(100)) / 100;
            b.set_position(pos as u64);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
