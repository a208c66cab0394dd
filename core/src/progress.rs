//! Progress bars for long work (a live line on a terminal, quiet lines in logs).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
