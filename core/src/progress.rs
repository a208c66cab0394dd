//! Progress for long work: a live bar on a terminal, and plain periodic lines ([`LogLines`])
//! for logs (a batch job's output file, a pipe), where a bar draws nothing.

pub use indicatif::ProgressBar;
use indicatif::{ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Environment variable: seconds between plain progress lines (default [`LOG_INTERVAL`]).
pub const LOG_INTERVAL_ENV: &str = "ARCLIGHT_LOG_INTERVAL_S";
/// Default interval between plain progress lines.
pub const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A progress bar with position/length, rate, ETA and a free-form message (loss, ...).
/// Hidden when stderr is not a terminal or `ARCLIGHT_QUIET` is set, so tests and CI logs stay clean.
pub fn bar(len: u64, prefix: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if std::env::var_os("ARCLIGHT_QUIET").is_some() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10.bold} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

/// Plain progress lines on stdout, for when the output is a log rather than a person at a
/// terminal: on when stdout or stderr is not a terminal (the bar lives on stderr) and
/// `ARCLIGHT_QUIET` is unset. [`LogLines::due`] rate-limits to one line per interval
/// (`ARCLIGHT_LOG_INTERVAL_S`, default 30 s); [`LogLines::print`] prints unconditionally (e.g.
/// at the end of an epoch).
#[derive(Debug)]
pub struct LogLines {
    enabled: bool,
    interval: Duration,
    last: Instant,
}

impl LogLines {
    /// Decide from the environment whether lines are wanted.
    pub fn from_env() -> LogLines {
        let on_terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let interval = std::env::var(LOG_INTERVAL_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(LOG_INTERVAL, Duration::from_secs_f64);
        LogLines::new(
            !on_terminal && std::env::var_os("ARCLIGHT_QUIET").is_none(),
            interval,
        )
    }

    /// Lines on or off, one per `interval` at most from [`LogLines::due`].
    pub fn new(enabled: bool, interval: Duration) -> LogLines {
        LogLines {
            enabled,
            interval,
            last: Instant::now(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a periodic line is due now (then the interval restarts).
    pub fn due(&mut self) -> bool {
        if self.enabled && self.last.elapsed() >= self.interval {
            self.last = Instant::now();
            true
        } else {
            false
        }
    }

    /// Print `line` (if enabled) and flush, so it reaches the log at once; restarts the interval.
    pub fn print(&mut self, line: &str) {
        if self.enabled {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            self.last = Instant::now();
        }
    }
}

/// Seconds as `42s`, `3m05s`, `2h07m` for ETAs in log lines.
pub fn short_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_rate_limited_and_off_when_disabled() {
        let mut on = LogLines::new(true, Duration::from_millis(50));
        assert!(!on.due(), "the first line waits one interval");
        std::thread::sleep(Duration::from_millis(60));
        assert!(on.due());
        assert!(!on.due());
        let mut off = LogLines::new(false, Duration::ZERO);
        assert!(!off.due() && !off.enabled());
        assert_eq!(short_duration(3725.0), "1h02m");
        assert_eq!(short_duration(65.0), "1m05s");
        assert_eq!(short_duration(f64::NAN), "?");
    }
}
