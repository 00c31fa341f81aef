//! Progress on long work, on stderr (indicatif draws nothing when stderr is not a terminal).

/// A counter of rows done, with the rate: `scoring big.csv  1,234,567 rows (812,345/s)`.
pub fn rows(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix} {human_pos} rows ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
