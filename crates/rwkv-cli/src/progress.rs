//! Progress bars on stderr (indicatif hides them when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting bytes, e.g. a model upload.
pub fn bytes_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// A bar counting tokens, e.g. a long prefill; hidden for short work.
pub fn tokens_bar(what: &str, total: usize, min_to_show: usize) -> ProgressBar {
    if total < min_to_show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} tokens {per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}
