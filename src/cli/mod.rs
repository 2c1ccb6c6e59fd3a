//! The `tarn` command-line client.
//!
//! Every command connects to `--addr`, does one job and exits: 0 on success, 1 on any error
//! (one `error: …` line on stderr), 2 on a usage error. Results go to stdout as aligned tables,
//! or as exactly one JSON document with `--json`.
//!
//! This module parses the arguments and dispatches; each command lives in its own file:
//! `sql.rs` (sql), `load.rs` (upsert, ingest: reading input lines in batches), `features.rs`
//! (features), `history.rs` (features-history), `get.rs` (get, delete), `knn.rs` (knn),
//! `recent.rs` (recent), `stats.rs` (stats, ping), with `output.rs` for what they print (stdout, progress bars, load
//! summaries).

mod context;
mod features;
mod get;
mod history;
mod ingest;
mod knn;
mod load;
mod output;
mod recent;
mod schema;
mod sql;
mod sqlsplit;
mod stats;
mod table;
mod upsert;
mod value;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tarn_client::{Client, ClientError, ClientOptions};
use tarn_types::Value;

use context::cmd_context;
use features::cmd_features;
use get::{cmd_delete, cmd_get};
use history::cmd_features_history;
use knn::{cmd_knn, KnnArgs};
use load::{cmd_ingest, cmd_upsert};
use recent::{cmd_recent, RecentArgs};
use schema::Schema;
use sql::cmd_sql;
use stats::{cmd_ping, cmd_stats};
use value::parse_text_value;

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
    /// Nearest rows to a vector in a vector index
    #[command(after_help = "\
Exactly one query: --vector '[x, y, …]' (the index's dimension, finite numbers) or --like KEY
(the vector of the row with that primary key, typed by the table's key column; the row itself
is among the results when it matches the filter). -k is 1..=1000, --ef 1..=1000 (an ef below
k searches with k). --filter is a SQL condition on the table's columns, applied during the
search (fewer than k rows come back when fewer match). The distance is the index metric's: l2 = Euclidean distance,
cosine = 1 - cos, ip = -(a·b); smaller is nearer. Prints a table, nearest first, with the
distance first and a line with the rows and the distances the search computed. --json prints
an array, nearest first, of objects {distance, column: value, …} (\"_distance\" when the table
has a column named distance).")]
    Knn(KnnArgs),
    /// Call a named context (or ad hoc items): rows, features, neighbours, recent events
    #[command(after_help = "\
'tarn context NAME param=value …' calls a context made with CREATE CONTEXT; each value is typed
by its parameter (see SHOW CONTEXTS; 'null' for NULL). '--items \"row(cards, 'c-1') AS card, …\"'
runs items in the syntax of CREATE CONTEXT … AS (docs/SQL.md) without creating a context. Prints
each shard's as-of time, then one table per item (a 'key' column when an item has several keys).
--json prints {shards: [{shard, as_of_us}], items: {<item>: [{key, rows: [{column: value}]}]}}.")]
    Context(ContextArgs),
    /// The newest events of some partition keys of a stream (kept with recent = N)
    #[command(after_help = "\
Keys are typed by the stream's partition column. Each key's newest events (by event time, ties
by arrival order) are listed newest first, at most -n per key (a key keeps at most the
stream's recent = N); keys with no events are listed after the table. --json prints an array,
one entry per key in order: {key, events: [{column: value, …}, …]}.")]
    Recent(RecentArgs),
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
struct ContextArgs {
    /// Context name (CREATE CONTEXT)
    #[arg(required_unless_present = "items")]
    name: Option<String>,
    /// Parameters as name=value
    #[arg(requires = "name")]
    params: Vec<String>,
    /// Ad hoc items instead of a named context
    #[arg(long, value_name = "ITEMS", conflicts_with = "name")]
    items: Option<String>,
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
        Command::Knn(a) => cmd_knn(cli, a),
        Command::Context(a) => cmd_context(cli, a),
        Command::Recent(a) => cmd_recent(cli, a),
        Command::Stats => cmd_stats(cli),
        Command::Ping(a) => cmd_ping(cli, a),
    }
}

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

    fn knn_args(args: &[&str]) -> std::result::Result<KnnArgs, clap::Error> {
        let argv = ["tarn", "knn"].iter().chain(args);
        Cli::try_parse_from(argv).map(|c| match c.command {
            Command::Knn(a) => a,
            other => panic!("parsed as {other:?}"),
        })
    }

    #[test]
    fn knn_arguments_parse() {
        let a = knn_args(&[
            "docs_emb",
            "--vector",
            "[0.1, -0.2]",
            "-k",
            "5",
            "--ef",
            "64",
            "--filter",
            "lang = 'en'",
            "--columns",
            "id,title",
        ])
        .unwrap();
        assert_eq!(a.index, "docs_emb");
        assert_eq!(a.vector.as_deref(), Some("[0.1, -0.2]"));
        assert_eq!((a.k, a.ef), (5, Some(64)));
        assert_eq!(a.filter.as_deref(), Some("lang = 'en'"));
        assert_eq!(a.columns, ["id", "title"]);
        let a = knn_args(&["i", "--like", "-7", "-k", "1000", "--json"]).unwrap();
        assert_eq!(a.like.as_deref(), Some("-7"));
        assert_eq!((a.k, a.ef, a.filter), (1000, None, None));
        assert!(a.columns.is_empty());
    }

    #[test]
    fn knn_argument_errors_are_usage_errors() {
        use clap::error::ErrorKind;
        for (args, kind) in [
            // Neither or both queries.
            (&["i", "-k", "3"][..], ErrorKind::MissingRequiredArgument),
            (
                &["i", "--vector", "[1]", "--like", "7", "-k", "3"][..],
                ErrorKind::ArgumentConflict,
            ),
            // k missing, 0, over MAX_KNN_K or not a number; ef out of range.
            (
                &["i", "--vector", "[1]"][..],
                ErrorKind::MissingRequiredArgument,
            ),
            (
                &["i", "--vector", "[1]", "-k", "0"][..],
                ErrorKind::ValueValidation,
            ),
            (
                &["i", "--vector", "[1]", "-k", "1001"][..],
                ErrorKind::ValueValidation,
            ),
            (
                &["i", "--vector", "[1]", "-k", "x"][..],
                ErrorKind::ValueValidation,
            ),
            (
                &["i", "--like", "7", "-k", "3", "--ef", "0"][..],
                ErrorKind::ValueValidation,
            ),
            (
                &["i", "--like", "7", "-k", "3", "--ef", "1001"][..],
                ErrorKind::ValueValidation,
            ),
            // No index.
            (
                &["--like", "7", "-k", "3"][..],
                ErrorKind::MissingRequiredArgument,
            ),
        ] {
            let e = knn_args(args).unwrap_err();
            assert_eq!(e.kind(), kind, "{args:?}: {e}");
        }
    }
}
