//! Progress bars for long loops. They draw on stderr only when it is a terminal, so logs and CI stay clean.

pub use indicatif::ProgressBar;
use indicatif::ProgressStyle;

/// A bar of `len` steps labelled `message`, e.g. `progress::bar(epochs, "pretrain epochs")`.
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {prefix}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.into());
    bar
}
