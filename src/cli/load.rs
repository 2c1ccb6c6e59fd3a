//! The bulk loads, `tarn upsert` (rows through `upsert`'s batcher and engine) and
//! `tarn ingest` (events through `ingest::Ingester`), and their input: the numbered lines of a
//! file or stdin, and the batch-size options.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal};
use std::time::Instant;

use tarn_client::UpsertMode;

use super::output::{plural, print_load_summary, progress_bar, tick_progress};
use super::upsert::{self, Batcher, ClientSink, Engine, Stop};
use super::{connect, describe, ingest, Cli, IngestArgs, Result, UpsertArgs};

/// Lines of the input: (line number, bytes without the line end, file bytes consumed so far).
pub(super) type LineIter = Box<dyn Iterator<Item = std::io::Result<(u64, Vec<u8>, u64)>>>;

fn file_lines(reader: impl BufRead + 'static) -> LineIter {
    let mut reader = reader;
    let mut line = 0u64;
    let mut consumed = 0u64;
    Box::new(std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(n) => {
                line += 1;
                consumed += n as u64;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                Some(Ok((line, buf, consumed)))
            }
            Err(e) => Some(Err(e)),
        }
    }))
}

/// The batch size from option `flag`: default 1000, at least 1, at most the server's limit.
pub(super) fn batch_size(
    flag: &str,
    given: Option<usize>,
    info: &tarn_client::HelloReply,
) -> Result<usize> {
    let server_max = (info.max_batch_rows as usize).max(1);
    match given {
        Some(0) => Err(format!("{flag} must be at least 1").into()),
        Some(n) if n > server_max => {
            Err(format!("{flag} {n} exceeds the server's max_batch_rows of {server_max}").into())
        }
        Some(n) => Ok(n),
        None => Ok(1000.min(server_max)),
    }
}

/// The lines of `path` ('-' = standard input) and its size when known (for the progress bar).
pub(super) fn open_lines(path: &std::path::Path) -> Result<(LineIter, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((
            file_lines(BufReader::with_capacity(1 << 20, std::io::stdin())),
            None,
        ));
    }
    let f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = f.metadata().ok().map(|m| m.len());
    Ok((file_lines(BufReader::with_capacity(1 << 20, f)), len))
}

pub(super) fn cmd_ingest(cli: &Cli, a: &IngestArgs) -> Result<()> {
    let (lines, total_bytes) = open_lines(&a.file)?;
    let mut client = connect(cli)?;
    let info = client.server_info().clone();
    let batch_events = batch_size("--batch-events", a.batch_events, &info)?;
    // Leave room for the frame's other fields.
    let max_batch_bytes = (info.max_frame_payload_bytes as usize / 2).max(1);
    let in_flight = 4.min(info.max_in_flight.max(1) as usize);
    let mut ing = ingest::Ingester::new(&mut client, a.stream.clone(), in_flight);

    let pb = progress_bar(!cli.json && std::io::stderr().is_terminal(), total_bytes);
    let start = Instant::now();
    let mut batch: ingest::Batch = Vec::new();
    let mut batch_bytes = 0usize;
    let mut read_error = None;
    let mut last_update = Instant::now();
    for item in lines {
        let (line, bytes, consumed) = match item {
            Ok(x) => x,
            Err(e) => {
                read_error = Some(format!("cannot read input: {e}"));
                break;
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if bytes.len() + 1 > max_batch_bytes {
            ing.rejected.push(ingest::Rejection {
                line,
                reason: format!(
                    "line is {} bytes, more than one request holds ({max_batch_bytes})",
                    bytes.len()
                ),
            });
            continue;
        }
        if batch.len() == batch_events || batch_bytes + bytes.len() + 1 > max_batch_bytes {
            ing.submit(std::mem::take(&mut batch));
            batch_bytes = 0;
        }
        batch_bytes += bytes.len() + 1;
        batch.push((line, bytes));
        if ing.stop.is_some() {
            break;
        }
        tick_progress(
            &pb,
            &mut last_update,
            start,
            consumed,
            ing.ingested,
            "events",
        );
    }
    if read_error.is_none() {
        ing.submit(batch);
    }
    ing.finish();
    pb.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    let mut rejected: Vec<(u64, String)> = ing
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    rejected.sort_by_key(|r| r.0);
    print_load_summary(
        cli,
        "ingested",
        "event",
        ing.ingested,
        &rejected,
        elapsed,
        true,
    )?;
    if let Some(e) = ing.stop.clone().or(read_error) {
        return Err(e.into());
    }
    if !rejected.is_empty() {
        return Err(format!("{} line(s) rejected", rejected.len()).into());
    }
    Ok(())
}

pub(super) fn cmd_upsert(cli: &Cli, a: &UpsertArgs) -> Result<()> {
    let (lines, total_bytes, label): (LineIter, Option<u64>, &str) = match &a.file {
        Some(p) if p.as_os_str() == "-" => (
            file_lines(BufReader::with_capacity(1 << 20, std::io::stdin())),
            None,
            "line",
        ),
        Some(p) => {
            let f = File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (
                file_lines(BufReader::with_capacity(1 << 20, f)),
                len,
                "line",
            )
        }
        None => {
            let rows: Vec<_> = a
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| Ok((i as u64 + 1, r.clone().into_bytes(), 0)))
                .collect();
            (Box::new(rows.into_iter()), None, "row")
        }
    };

    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.table)?;
    let info = client.server_info().clone();
    let batch_rows = batch_size("--batch-rows", a.batch_rows, &info)?;
    let mode = if a.merge {
        UpsertMode::Merge
    } else {
        UpsertMode::Replace
    };
    let in_flight = 4.min(info.max_in_flight.max(1) as usize);
    let mut batcher = Batcher::new(
        &schema,
        mode,
        batch_rows,
        info.max_frame_payload_bytes as usize,
    );
    let sink = ClientSink {
        client: &mut client,
        table: a.table.clone(),
        mode,
        names: schema.columns.iter().map(|c| c.name.clone()).collect(),
    };
    let mut engine = Engine::new(sink, in_flight, a.keep_going);

    let pb = progress_bar(
        a.file.is_some() && !cli.json && std::io::stderr().is_terminal(),
        total_bytes,
    );

    let start = Instant::now();
    let mut read_error = None;
    let mut rows_read = 0u64;
    let mut last_update = Instant::now();
    for item in lines {
        let (line, bytes, consumed) = match item {
            Ok(x) => x,
            Err(e) => {
                read_error = Some(format!("cannot read input: {e}"));
                break;
            }
        };
        let converted = match std::str::from_utf8(&bytes) {
            Err(_) => Err("invalid UTF-8".to_string()),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => upsert::convert_row(&schema, line, text),
        };
        let result = converted.and_then(|row| match batcher.push(row) {
            Ok(Some(batch)) => {
                engine.submit(batch);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err((_, msg)) => Err(msg),
        });
        if let Err(msg) = result {
            if !a.keep_going {
                // Everything before the bad line is applied; nothing from it on.
                if let Some(b) = batcher.flush() {
                    engine.submit(b);
                }
            }
            engine.reject_local(line, msg);
        }
        rows_read += 1;
        if engine.stop.is_some() {
            break;
        }
        tick_progress(&pb, &mut last_update, start, consumed, rows_read, "rows");
    }
    if engine.stop.is_none() && read_error.is_none() {
        if let Some(b) = batcher.flush() {
            engine.submit(b);
        }
    }
    engine.finish();
    pb.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();

    let mut rejected = engine.rejected.clone();
    rejected.sort_by_key(|r| r.line);
    let pairs: Vec<(u64, String)> = rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    print_load_summary(
        cli,
        "upserted",
        "row",
        engine.upserted,
        &pairs,
        elapsed,
        false,
    )?;
    let stop = engine.stop.clone();
    if !cli.json && a.keep_going {
        for r in &rejected {
            eprintln!("rejected {label} {}: {}", r.line, r.reason);
        }
    }
    if let Some(e) = read_error {
        return Err(e.into());
    }
    match stop {
        Some(Stop::Fatal(msg)) => Err(msg.into()),
        Some(Stop::Rejected(r)) => Err(format!("{label} {}: {}", r.line, r.reason).into()),
        None if !rejected.is_empty() => Err(format!(
            "{} row{} rejected",
            rejected.len(),
            plural(rejected.len() as u64)
        )
        .into()),
        None => Ok(()),
    }
}
