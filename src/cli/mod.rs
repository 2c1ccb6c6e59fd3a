//! The `tarn` command-line client.
//!
//! Every command connects to `--addr`, does one job and exits: 0 on success, 1 on any error
//! (one `error: …` line on stderr), 2 on a usage error. Results go to stdout as aligned tables,
//! or as exactly one JSON document with `--json`.

mod ingest;
mod schema;
mod sqlsplit;
mod table;
mod upsert;
mod value;

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tarn_client::{Client, ClientError, ClientOptions, SqlReply, UpsertMode};
use tarn_types::Value;

use schema::Schema;
use table::{num_cell, text_cell, value_cell, Table};
use upsert::{Batcher, ClientSink, Engine, Stop};
use value::{json_to_value, parse_text_value, value_to_json};

const VALUES_HELP: &str = "\
Values:
  Input (JSON rows, key arguments) is typed by the column type from DESCRIBE:
    BOOLEAN    true / false
    BIGINT     integer (JSON: no fraction or exponent)
    DOUBLE     number
    TEXT       string
    BYTES      string \\x<hex>, e.g. \\x00ff (in JSON: \"\\\\x00ff\")
    TIMESTAMP  integer microseconds since the Unix epoch (UTC), or an RFC 3339 string
               such as 2024-05-01T12:00:00.5Z or 2024-05-01 14:00:00+02:00
               (digits past microseconds must be 0; the rules of docs/SQL.md, Timestamps)
    NULL       JSON null (never allowed for the primary key)
  Table output prints NULL, true, 12, 1.5, text (control characters escaped), \\x<hex>
  and timestamps as RFC 3339 UTC. JSON output uses null, booleans, numbers, strings,
  \"\\\\x<hex>\" strings for BYTES and integer microseconds for TIMESTAMP, so it can be fed
  back to `tarn upsert`; non-finite doubles become \"NaN\", \"Infinity\", \"-Infinity\".

Exit status: 0 on success, 1 on any error (one 'error: ...' line on stderr), 2 on a usage error.";

#[derive(Parser, Debug)]
#[command(
    name = "tarn",
    version,
    about = "Command-line client for the Tarn appliance (tarnd)",
    after_help = VALUES_HELP,
    max_term_width = 100
)]
struct Cli {
    /// Server address (host:port)
    #[arg(
        long,
        global = true,
        env = "TARN_ADDR",
        default_value = "127.0.0.1:7070",
        value_name = "HOST:PORT"
    )]
    addr: String,

    /// Print one machine-readable JSON document instead of tables
    #[arg(long, global = true)]
    json: bool,

    /// Auth token, if the server requires one
    #[arg(long, global = true, env = "TARN_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Seconds to wait for any one reply (0 = forever); connecting waits at most 5 s
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    timeout: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a SQL statement, or a file of ';'-separated statements
    #[command(after_help = "\
With -f, statements run one by one in file order; the first failing statement stops the run
and is named by number and line. '--' and '/* */' comments and quoted ';' are handled.
--json prints the reply object {message, columns: [{name, type}], rows: [[...]]}, or with -f
an array of the replies of the statements that ran.")]
    Sql(SqlArgs),
    /// Insert or update rows given as JSON objects
    #[command(after_help = "\
Each row is a JSON object {\"column\": value, ...}; values are typed by the table's schema
(from DESCRIBE; see 'tarn --help' for the spellings). Unknown keys are errors. A file has one
object per line (blank lines are skipped); '-' reads standard input.

Replace mode (default) writes whole rows: keys missing from a row become NULL. --merge writes
only the keys present and keeps the other stored columns.

Rows are sent in batches of --batch-rows, several batches in flight. A batch is applied
entirely or not at all. By default the first bad row stops the load: rows before its batch
are applied, the rest of the file is not read (batches already in flight may be applied and
are counted). Upserts are idempotent, so re-running a fixed file is safe. With --keep-going
every bad row is skipped and reported, and all other rows are applied in file order; the
exit status is still 1 when any row was rejected.

Prints rows upserted, rows rejected (with line numbers) and the rate; a progress bar is shown
on a terminal without --json. --json prints
{upserted, rejected, rejections: [{line, reason}], elapsed_seconds}.")]
    Upsert(UpsertArgs),
    /// Append events (JSON lines) to a stream
    #[command(after_help = "\
FILE has one JSON object per line ('-' reads standard input; blank lines are skipped). The
server parses and validates them (see docs/SQL.md for the JSON rules: TIMESTAMP as RFC 3339
text or integer microseconds, BYTES as base64). Lines go in batches of --batch-events, several
batches in flight, each tagged with this run's producer id and a sequence number so that the
server applies it at most once. A bad event is reported with its line number and the
server's reason and the rest of its batch is sent again without it: every good line is
ingested. The exit status is 1 when any line was rejected.

Prints events ingested, lines rejected (with reasons) and the rate; a progress bar is shown on
a terminal without --json. --json prints
{ingested, rejected, rejections: [{line, reason}], elapsed_seconds}.")]
    Ingest(IngestArgs),
    /// Read a feature view for some keys
    #[command(after_help = "\
Keys are typed by the view's key column (see 'tarn --help'). Every key gets a row: a key with no
events gets the aggregates' empty values (count 0, NULL otherwise). The reply states its as-of
time: every event appended at or before it is included, none after. With --as-of the values
are recomputed from the retained stream log as of that past time (see docs/SQL.md). --json prints
{as_of, as_of_us, rows: [{<column>: value, ..., newest_event_time}]}.")]
    Features(FeaturesArgs),
    /// Point-in-time history: a feature view's values at past times, as JSON lines
    #[command(
        name = "features-history",
        after_help = "\
PAIRS has one JSON object per line: {\"key\": <key value>, \"as_of\": <µs since the epoch or RFC 3339
text>} ('-' reads standard input; blank lines are skipped). For every pair, one JSON object is
written to standard output, in input order: {\"as_of_us\": …, <key column>: …, <aggregate>: value,
…, \"newest_event_time\": µs or null}. The values are recomputed from the retained stream log with
the code the online path uses, so they equal what an online read as of that time returned.
Pairs go in batches of --batch-pairs (each batch replays the owners' logs once); a progress
bar is shown on a terminal. A bad line stops the run (exit status 1) after the lines before it
were written."
    )]
    FeaturesHistory(HistoryArgs),
    /// Look up rows by primary key
    #[command(after_help = "\
Keys are typed by the key column (integer text for BIGINT, \\x<hex> for BYTES, microseconds
or RFC 3339 for TIMESTAMP). Keys with no row are listed as 'not found' (exit status 0).
--json prints an array with one entry per key, in order: an object {column: value} or null.")]
    Get(KeysArgs),
    /// Delete rows by primary key
    #[command(after_help = "--json prints {\"deleted\": N}.")]
    Delete(KeysArgs),
    /// Per-shard counters and per-operation latencies
    #[command(after_help = "\
--json prints {shards: [{shard, cpu, rows, log_bytes, durable_lsn, connections,
ops: [{op, count, p50_us, p99_us, p999_us, max_us}]}]}; cpu -1 means not pinned.")]
    Stats,
    /// Measure the round-trip time to the server
    #[command(after_help = "\
--json prints {addr, server_version, protocol_version, shard_count, rtt_us: [...]}.")]
    Ping(PingArgs),
}

#[derive(Args, Debug)]
struct SqlArgs {
    /// The statement
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    statement: Option<String>,
    /// Read ';'-separated statements from FILE ('-' = stdin)
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct UpsertArgs {
    /// Table name
    table: String,
    /// Rows as JSON objects, e.g. '{"id": 1, "name": "a"}'
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    rows: Vec<String>,
    /// Read rows from FILE, one JSON object per line ('-' = stdin)
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Merge into existing rows instead of replacing them
    #[arg(long)]
    merge: bool,
    /// Rows per batch [default: 1000, at most the server's max_batch_rows]
    #[arg(long, value_name = "N")]
    batch_rows: Option<usize>,
    /// Skip and report bad rows instead of stopping at the first
    #[arg(long)]
    keep_going: bool,
}

#[derive(Args, Debug)]
struct FeaturesArgs {
    /// Feature view name
    view: String,
    /// Key values
    #[arg(required = true)]
    keys: Vec<String>,
    /// Read as of a past time (RFC 3339 or µs since the epoch), recomputed from the retained log
    #[arg(long, value_name = "T")]
    as_of: Option<String>,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    /// Feature view name
    view: String,
    /// JSON lines of {"key": …, "as_of": …} ('-' = stdin)
    pairs: PathBuf,
    /// Pairs per request [default: the server's max_batch_rows]
    #[arg(long, value_name = "N")]
    batch_pairs: Option<usize>,
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Stream name
    stream: String,
    /// JSON lines file ('-' = stdin)
    file: PathBuf,
    /// Events per batch [default: 1000, at most the server's max_batch_rows]
    #[arg(long, value_name = "N")]
    batch_events: Option<usize>,
}

#[derive(Args, Debug)]
struct KeysArgs {
    /// Table name
    table: String,
    /// Primary key values
    #[arg(required = true)]
    keys: Vec<String>,
}

#[derive(Args, Debug)]
struct PingArgs {
    /// Number of pings
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    count: u32,
}

/// A failure, printed as `error: <msg>`.
#[derive(Debug)]
pub struct CliError(String);

impl<S: Into<String>> From<S> for CliError {
    fn from(s: S) -> Self {
        CliError(s.into())
    }
}

type Result<T> = std::result::Result<T, CliError>;

fn client_err(e: ClientError) -> CliError {
    CliError(match e {
        ClientError::Server(s) => s.to_string(),
        ClientError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "timed out waiting for the server (see --timeout)".to_string()
        }
        other => other.to_string(),
    })
}

/// Parses arguments, runs the command, prints errors; returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    2
                }
                _ => {
                    // clap's first paragraph, on one line (it may list missing arguments).
                    let text = e.render().to_string();
                    let first: Vec<&str> = text
                        .lines()
                        .take_while(|l| !l.trim().is_empty())
                        .map(str::trim)
                        .collect();
                    eprintln!("{} (see 'tarn --help')", first.join(" "));
                    2
                }
            };
        }
    };
    match run(&cli) {
        Ok(()) => 0,
        Err(CliError(msg)) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

/// Writes to stdout; a closed pipe (`tarn sql … | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write output: {e}").into()),
    }
}

fn emit_json(v: &serde_json::Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    s.push('\n');
    emit(&s)
}

fn connect(cli: &Cli) -> Result<Client> {
    let opts = ClientOptions {
        auth_token: cli.token.clone().filter(|t| !t.is_empty()),
        client_name: format!("tarn-cli/{}", env!("CARGO_PKG_VERSION")),
        connect_timeout: Duration::from_secs(5),
        io_timeout: (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout)),
    };
    Client::connect_with(&cli.addr, opts).map_err(|e| match e {
        ClientError::Io(io) => CliError(format!("cannot connect to {}: {io}", cli.addr)),
        other => client_err(other),
    })
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Sql(a) => cmd_sql(cli, a),
        Command::Upsert(a) => cmd_upsert(cli, a),
        Command::Ingest(a) => cmd_ingest(cli, a),
        Command::Features(a) => cmd_features(cli, a),
        Command::FeaturesHistory(a) => cmd_features_history(cli, a),
        Command::Get(a) => cmd_get(cli, a),
        Command::Delete(a) => cmd_delete(cli, a),
        Command::Stats => cmd_stats(cli),
        Command::Ping(a) => cmd_ping(cli, a),
    }
}

// ---------------------------------------------------------------------------------------------
// sql

fn sql_json(r: &SqlReply) -> serde_json::Value {
    json!({
        "message": r.message,
        "columns": r.columns.iter().map(|c| json!({"name": c.name, "type": c.ty.sql_name()})).collect::<Vec<_>>(),
        "rows": r.rows.iter().map(|row| row.iter().map(value_to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
    })
}

fn sql_text(r: &SqlReply) -> String {
    let mut s = String::new();
    if !r.columns.is_empty() {
        let mut t = Table::new(r.columns.iter().map(|c| c.name.clone()));
        for row in &r.rows {
            t.row(row.iter().map(value_cell).collect());
        }
        s.push_str(&t.render());
    }
    if !r.message.is_empty() {
        s.push_str(&r.message);
        s.push('\n');
    }
    s
}

fn read_input(path: &PathBuf) -> Result<String> {
    let mut text = String::new();
    let r = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    r.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text)
}

fn cmd_sql(cli: &Cli, a: &SqlArgs) -> Result<()> {
    let Some(path) = &a.file else {
        let stmt = a.statement.as_deref().unwrap_or_default();
        let mut client = connect(cli)?;
        let reply = client.sql(stmt).map_err(client_err)?;
        return if cli.json {
            emit_json(&sql_json(&reply))
        } else {
            emit(&sql_text(&reply))
        };
    };
    let script = read_input(path)?;
    let statements = sqlsplit::split(&script);
    let mut client = connect(cli)?;
    let mut replies = Vec::new();
    let mut failure = None;
    for st in &statements {
        match client.sql(&st.text) {
            Ok(r) => {
                if cli.json {
                    replies.push(sql_json(&r));
                } else {
                    emit(&sql_text(&r))?;
                }
            }
            Err(e) => {
                let mut first: String = st.first_line.chars().take(60).collect();
                if first.len() < st.first_line.len() {
                    first.push('…');
                }
                failure = Some(format!(
                    "statement {} at line {} `{first}`: {}",
                    st.number,
                    st.line,
                    client_err(e).0
                ));
                break;
            }
        }
    }
    if cli.json {
        emit_json(&serde_json::Value::Array(replies))?;
    }
    match failure {
        Some(f) => Err(f.into()),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// schema-typed commands

fn describe(client: &mut Client, table: &str) -> Result<Schema> {
    let r = client
        .sql(&format!("DESCRIBE {table}"))
        .map_err(client_err)?;
    let headers: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
    Ok(Schema::from_describe(table, &headers, &r.rows)?)
}

fn parse_keys(schema: &Schema, keys: &[String]) -> Result<Vec<Value>> {
    let (_, ty) = schema.key_column()?;
    keys.iter()
        .map(|k| parse_text_value(k, ty).map_err(|e| CliError(format!("key {k:?}: {e}"))))
        .collect()
}

fn cmd_features(cli: &Cli, a: &FeaturesArgs) -> Result<()> {
    let as_of_us = match &a.as_of {
        None => None,
        Some(t) => Some(match t.parse::<i64>() {
            Ok(us) => us,
            Err(_) => tarn_core::timestamp::parse_rfc3339_us(t)
                .map_err(|e| format!("--as-of {t:?}: not µs since the epoch nor RFC 3339: {e}"))?,
        }),
    };
    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.view)?;
    let keys = parse_keys(&schema, &a.keys)?;
    let reply = client
        .features(&a.view, keys, as_of_us)
        .map_err(client_err)?;
    let as_of = tarn_core::timestamp::format_rfc3339_us(reply.as_of_us);
    if cli.json {
        let rows = reply
            .rows
            .iter()
            .map(|r| {
                let mut obj: serde_json::Map<String, serde_json::Value> = reply
                    .columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                    .collect();
                obj.insert("newest_event_time".into(), json!(r.newest_event_time_us));
                serde_json::Value::Object(obj)
            })
            .collect::<Vec<_>>();
        return emit_json(&json!({"as_of": as_of, "as_of_us": reply.as_of_us, "rows": rows}));
    }
    let mut t = Table::new(
        reply
            .columns
            .iter()
            .map(|c| c.name.clone())
            .chain(std::iter::once("newest_event_time".to_string())),
    );
    for r in &reply.rows {
        let mut cells: Vec<_> = r.values.iter().map(value_cell).collect();
        cells.push(value_cell(
            &r.newest_event_time_us.map_or(Value::Null, Value::Timestamp),
        ));
        t.row(cells);
    }
    emit(&format!("as of {as_of}\n{}", t.render()))
}

fn cmd_features_history(cli: &Cli, a: &HistoryArgs) -> Result<()> {
    let (lines, total_bytes) = open_lines(&a.pairs)?;
    let mut client = connect(cli)?;
    let info = client.server_info().clone();
    let batch = match a.batch_pairs {
        None => info.max_batch_rows.max(1) as usize,
        Some(_) => batch_size("--batch-pairs", a.batch_pairs, &info)?,
    };
    let schema = describe(&mut client, &a.view)?;
    let key_ty = schema
        .columns
        .iter()
        .find(|c| c.key)
        .ok_or_else(|| format!("DESCRIBE {} names no key column", a.view))?
        .ty
        .clone()
        .map_err(|t| format!("key type {t} is not supported by the CLI"))?;
    let pb = progress_bar(std::io::stderr().is_terminal(), total_bytes);
    let start = Instant::now();
    let mut last_update = Instant::now();
    let mut pending: Vec<(Value, i64)> = Vec::with_capacity(batch);
    let mut written = 0u64;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let send =
        |client: &mut Client, pairs: &mut Vec<(Value, i64)>, out: &mut dyn Write| -> Result<u64> {
            if pairs.is_empty() {
                return Ok(0);
            }
            let batch = std::mem::take(pairs);
            let reply = client.history(&a.view, batch.clone()).map_err(client_err)?;
            for ((_, t), row) in batch.iter().zip(&reply.rows) {
                let mut obj = serde_json::Map::new();
                obj.insert("as_of_us".into(), json!(t));
                for (c, v) in reply.columns.iter().zip(&row.values) {
                    obj.insert(c.name.clone(), value_to_json(v));
                }
                obj.insert("newest_event_time".into(), json!(row.newest_event_time_us));
                serde_json::to_writer(&mut *out, &serde_json::Value::Object(obj))
                    .map_err(|e| format!("cannot write output: {e}"))?;
                out.write_all(b"\n")
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            Ok(batch.len() as u64)
        };
    for item in lines {
        let (line, bytes, consumed) = item.map_err(|e| format!("cannot read input: {e}"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let pair = (|| -> std::result::Result<(Value, i64), String> {
            let j: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
            let key = j.get("key").ok_or("no \"key\" field")?;
            let key = json_to_value(key, key_ty)?;
            let as_of = match j.get("as_of") {
                Some(serde_json::Value::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| format!("as_of {n} is not an integer of µs"))?,
                Some(serde_json::Value::String(t)) => value::parse_timestamp(t)?,
                _ => return Err("no \"as_of\" field (µs or RFC 3339)".into()),
            };
            Ok((key, as_of))
        })()
        .map_err(|e| format!("line {line}: {e}"))?;
        pending.push(pair);
        if pending.len() == batch {
            written += send(&mut client, &mut pending, &mut out)?;
        }
        tick_progress(&pb, &mut last_update, start, consumed, written, "pairs");
    }
    written += send(&mut client, &mut pending, &mut out)?;
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    pb.finish_and_clear();
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{written} pair{} in {:.3} s",
            plural(written),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn cmd_get(cli: &Cli, a: &KeysArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.table)?;
    let keys = parse_keys(&schema, &a.keys)?;
    let reply = client.get(&a.table, keys).map_err(client_err)?;
    if cli.json {
        let arr = reply
            .rows
            .iter()
            .map(|r| match r {
                None => serde_json::Value::Null,
                Some(vals) => serde_json::Value::Object(
                    reply
                        .columns
                        .iter()
                        .zip(vals)
                        .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                        .collect(),
                ),
            })
            .collect();
        return emit_json(&serde_json::Value::Array(arr));
    }
    let mut out = String::new();
    let mut t = Table::new(reply.columns.iter().map(|c| c.name.clone()));
    let mut missing = Vec::new();
    for (key, row) in a.keys.iter().zip(&reply.rows) {
        match row {
            Some(vals) => t.row(vals.iter().map(value_cell).collect()),
            None => missing.push(key),
        }
    }
    if t.len() > 0 {
        out.push_str(&t.render());
    }
    for k in missing {
        out.push_str(&format!("not found: {k}\n"));
    }
    emit(&out)
}

fn cmd_delete(cli: &Cli, a: &KeysArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.table)?;
    let keys = parse_keys(&schema, &a.keys)?;
    let n = client.delete(&a.table, keys).map_err(client_err)?;
    if cli.json {
        emit_json(&json!({ "deleted": n }))
    } else {
        emit(&format!("deleted {n} row{}\n", plural(n)))
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

// ---------------------------------------------------------------------------------------------
// upsert

/// Lines of the input: (line number, bytes without the line end, file bytes consumed so far).
type LineIter = Box<dyn Iterator<Item = std::io::Result<(u64, Vec<u8>, u64)>>>;

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
fn batch_size(flag: &str, given: Option<usize>, info: &tarn_client::HelloReply) -> Result<usize> {
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

/// Updates `pb` at most every 100 ms: bytes consumed, items so far and their rate.
fn tick_progress(
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
fn progress_bar(show: bool, total_bytes: Option<u64>) -> ProgressBar {
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
fn print_load_summary(
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

/// The lines of `path` ('-' = standard input) and its size when known (for the progress bar).
fn open_lines(path: &std::path::Path) -> Result<(LineIter, Option<u64>)> {
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

fn cmd_ingest(cli: &Cli, a: &IngestArgs) -> Result<()> {
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

fn cmd_upsert(cli: &Cli, a: &UpsertArgs) -> Result<()> {
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

// ---------------------------------------------------------------------------------------------
// stats, ping

fn cmd_stats(cli: &Cli) -> Result<()> {
    let mut client = connect(cli)?;
    let s = client.stats().map_err(client_err)?;
    if cli.json {
        let shards: Vec<_> = s
            .shards
            .iter()
            .map(|sh| {
                json!({
                    "shard": sh.shard,
                    "cpu": sh.cpu,
                    "rows": sh.rows,
                    "log_bytes": sh.log_bytes,
                    "durable_lsn": sh.durable_lsn,
                    "connections": sh.connections,
                    "ops": sh.ops.iter().map(|o| json!({
                        "op": o.op,
                        "count": o.count,
                        "p50_us": o.p50_us,
                        "p99_us": o.p99_us,
                        "p999_us": o.p999_us,
                        "max_us": o.max_us,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return emit_json(&json!({ "shards": shards }));
    }
    let mut t = Table::new([
        "shard",
        "cpu",
        "rows",
        "log bytes",
        "durable lsn",
        "connections",
    ]);
    for sh in &s.shards {
        t.row(vec![
            num_cell(sh.shard),
            if sh.cpu < 0 {
                text_cell("-")
            } else {
                num_cell(sh.cpu)
            },
            num_cell(sh.rows),
            num_cell(sh.log_bytes),
            num_cell(sh.durable_lsn),
            num_cell(sh.connections),
        ]);
    }
    let mut ops = Table::new([
        "shard",
        "op",
        "count",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
    ]);
    for sh in &s.shards {
        for o in &sh.ops {
            ops.row(vec![
                num_cell(sh.shard),
                text_cell(o.op.clone()),
                num_cell(o.count),
                num_cell(o.p50_us),
                num_cell(o.p99_us),
                num_cell(o.p999_us),
                num_cell(o.max_us),
            ]);
        }
    }
    emit(&format!("{}\n{}", t.render(), ops.render()))
}

fn cmd_ping(cli: &Cli, a: &PingArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let info = client.server_info().clone();
    let mut rtts = Vec::new();
    for _ in 0..a.count.max(1) {
        let t0 = Instant::now();
        client.ping().map_err(client_err)?;
        rtts.push(t0.elapsed().as_micros() as u64);
    }
    if cli.json {
        return emit_json(&json!({
            "addr": cli.addr,
            "server_version": info.server_version,
            "protocol_version": info.version,
            "shard_count": info.shard_count,
            "rtt_us": rtts,
        }));
    }
    let mut out = format!(
        "server {} at {} (protocol {}, {} shard{})\n",
        info.server_version,
        cli.addr,
        info.version,
        info.shard_count,
        plural(u64::from(info.shard_count))
    );
    for r in &rtts {
        out.push_str(&format!("pong: {r} µs\n"));
    }
    if rtts.len() > 1 {
        let min = rtts.iter().min().copied().unwrap_or(0);
        let max = rtts.iter().max().copied().unwrap_or(0);
        let avg = rtts.iter().sum::<u64>() / rtts.len() as u64;
        out.push_str(&format!("min/avg/max: {min}/{avg}/{max} µs\n"));
    }
    emit(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_global_options_anywhere() {
        let c =
            Cli::try_parse_from(["tarn", "get", "t", "1", "2", "--json", "--addr", "h:1"]).unwrap();
        assert!(c.json);
        assert_eq!(c.addr, "h:1");
        assert!(matches!(c.command, Command::Get(KeysArgs { ref keys, .. }) if keys.len() == 2));
        assert!(Cli::try_parse_from(["tarn", "sql"]).is_err());
        assert!(Cli::try_parse_from(["tarn", "sql", "x", "-f", "y"]).is_err());
        assert!(Cli::try_parse_from(["tarn", "upsert", "t"]).is_err());
        assert!(Cli::try_parse_from(["tarn", "upsert", "t", "-f", "r.jsonl", "--merge"]).is_ok());
        assert!(Cli::try_parse_from(["tarn", "get", "t"]).is_err());
    }

    #[test]
    fn sql_replies_render() {
        use tarn_client::{Column, ColumnType};
        let r = SqlReply {
            message: "SELECT 2".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::BigInt,
                },
                Column {
                    name: "b".into(),
                    ty: ColumnType::Bytes,
                },
            ],
            rows: vec![
                vec![Value::Int(1), Value::Bytes(vec![0xab])],
                vec![Value::Int(10), Value::Null],
            ],
        };
        assert_eq!(
            sql_text(&r),
            " id |  b\n----+------\n  1 | \\xab\n 10 | NULL\nSELECT 2\n"
        );
        assert_eq!(
            sql_json(&r),
            json!({
                "message": "SELECT 2",
                "columns": [{"name": "id", "type": "BIGINT"}, {"name": "b", "type": "BYTES"}],
                "rows": [[1, "\\xab"], [10, null]],
            })
        );
        let ddl = SqlReply {
            message: "CREATE TABLE".into(),
            columns: vec![],
            rows: vec![],
        };
        assert_eq!(sql_text(&ddl), "CREATE TABLE\n");
    }
}
