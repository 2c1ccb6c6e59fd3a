//! What the commands print: a document on stdout (a closed pipe is not an error), `--json`
//! documents, plurals, the byte-progress bar on stderr and the summary of a bulk load.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{Cli, Result};

/// Writes to stdout; a closed pipe (`tarn sql … | head`) is not an error.
pub(super) fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write output: {e}").into()),
    }
}

pub(super) fn emit_json(v: &serde_json::Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    s.push('\n');
    emit(&s)
}

pub(super) fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Updates `pb` at most every 100 ms: bytes consumed, items so far and their rate.
pub(super) fn tick_progress(
    pb: &ProgressBar,
    last_update: &mut Instant,
    start: Instant,
    consumed: u64,
    items: u64,
    noun: &str,
) {
    if last_update.elapsed() < Duration::from_millis(100) {
        return;
    }
    *last_update = Instant::now();
    pb.set_position(consumed);
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    pb.set_message(format!(
        "{items} {noun}, {:.0} {noun}/s",
        items as f64 / secs
    ));
}

/// A byte-progress bar on stderr, or a hidden one when `show` is false.
pub(super) fn progress_bar(show: bool, total_bytes: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr());
    let template = if total_bytes.is_some() {
        "{spinner} {elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {msg}"
    } else {
        "{spinner} {elapsed_precise} {binary_bytes} {msg}"
    };
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb
}

/// Prints a load summary: `--json` {<verb>: n, rejected, rejections, elapsed_seconds}, or a
/// text line plus one line per rejection when `list` is set.
pub(super) fn print_load_summary(
    cli: &Cli,
    verb: &str,
    noun: &str,
    n: u64,
    rejected: &[(u64, String)],
    elapsed: f64,
    list: bool,
) -> Result<()> {
    let rate = if elapsed > 0.0 {
        n as f64 / elapsed
    } else {
        0.0
    };
    if cli.json {
        return emit_json(&json!({
            verb: n,
            "rejected": rejected.len(),
            "rejections": rejected.iter().map(|(line, reason)| json!({"line": line, "reason": reason})).collect::<Vec<_>>(),
            "elapsed_seconds": (elapsed * 1000.0).round() / 1000.0,
        }));
    }
    let rejected_noun = if noun == "row" { "row" } else { "line" };
    let mut out = format!(
        "{verb} {n} {noun}{}, rejected {} {rejected_noun}{} in {elapsed:.3} s ({rate:.0} {noun}s/s)\n",
        plural(n),
        rejected.len(),
        plural(rejected.len() as u64),
    );
    if list {
        for (line, reason) in rejected {
            out.push_str(&format!("  line {line}: {reason}\n"));
        }
    }
    emit(&out)
}
