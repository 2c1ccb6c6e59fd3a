//! The single error type of `tarn-core`.

use tarn_types::ColumnType;

use crate::catalog::ObjectKind;

/// Error class of a [`CoreError`]. Stable: the server maps each kind to one protocol error code,
/// so kinds are never renumbered or merged. [`ErrorKind::Corrupt`] is the only kind that means
/// "stored bytes are bad"; every other kind is the client's (or the SQL author's) mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// SQL text that sqlparser cannot parse.
    SqlParse,
    /// Parsed SQL (or a request) using a construct Tarn does not support.
    Unsupported,
    /// A table name or id not in the catalog.
    UnknownTable,
    /// A CREATE of a name a table has (catalog names are one namespace; `IF NOT EXISTS` skips
    /// only a CREATE TABLE).
    TableExists,
    /// A column name the table does not have.
    UnknownColumn,
    /// A column named twice (in `CREATE TABLE` or in an upsert's column list).
    DuplicateColumn,
    /// A value whose type does not match its column.
    TypeMismatch,
    /// A NULL primary key.
    NullKey,
    /// An upsert whose column list lacks the primary key column.
    MissingKey,
    /// A TEXT/BYTES value longer than [`tarn_types::MAX_VALUE_BYTES`].
    ValueTooLong,
    /// NaN or ±infinity in a DOUBLE column.
    NonFiniteDouble,
    /// A batch with no rows (or a key list with no keys).
    BatchEmpty,
    /// A row with more or fewer values than the column list.
    RowArity,
    /// A documented limit ([`crate::MAX_TABLES`], [`crate::MAX_COLUMNS`],
    /// [`crate::MAX_IDENTIFIER_BYTES`]) would be exceeded.
    LimitExceeded,
    /// Undecodable log-record, checkpoint or catalog bytes.
    Corrupt,
    /// A stream name not in the catalog.
    UnknownStream,
    /// A CREATE of a name a stream has (`IF NOT EXISTS` skips only a CREATE STREAM).
    StreamExists,
    /// An ingested event that cannot be read: malformed JSON, not an object, a value that
    /// cannot be converted (bad timestamp text, bad base64, out-of-range number).
    BadEvent,
    /// A missing or NULL value where one is required (an event's event-time column).
    MissingValue,
    /// An event dated further in the future than its stream allows.
    FutureEvent,
    /// A feature-view name not in the catalog.
    UnknownView,
    /// A CREATE of a name an object of another kind has — a feature view, a vector index, a
    /// context or a model (tables and streams have their own kinds above).
    /// The server answers it with the protocol code those objects have always had.
    ObjectExists,
    /// A vector value or `VECTOR(n)` type that breaks the vector rules (dimension, empty,
    /// NaN/±infinity, f32 overflow, a non-numeric component, not an array).
    BadVector,
    /// A vector-index name not in the catalog.
    UnknownIndex,
    /// A request value the statement does not accept where no more specific kind applies
    /// (an unknown vector metric, an index parameter out of range).
    InvalidArgument,
    /// A named-context name not in the catalog.
    UnknownContext,
    /// A model name not in the catalog.
    UnknownModel,
}

impl ErrorKind {
    /// A stable snake_case name, e.g. for logs and JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SqlParse => "sql_parse",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::UnknownTable => "unknown_table",
            ErrorKind::TableExists => "table_exists",
            ErrorKind::UnknownColumn => "unknown_column",
            ErrorKind::DuplicateColumn => "duplicate_column",
            ErrorKind::TypeMismatch => "type_mismatch",
            ErrorKind::NullKey => "null_key",
            ErrorKind::MissingKey => "missing_key",
            ErrorKind::ValueTooLong => "value_too_long",
            ErrorKind::NonFiniteDouble => "non_finite_double",
            ErrorKind::BatchEmpty => "batch_empty",
            ErrorKind::RowArity => "row_arity",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::UnknownStream => "unknown_stream",
            ErrorKind::StreamExists => "stream_exists",
            ErrorKind::BadEvent => "bad_event",
            ErrorKind::MissingValue => "missing_value",
            ErrorKind::FutureEvent => "future_event",
            ErrorKind::UnknownView => "unknown_view",
            ErrorKind::ObjectExists => "object_exists",
            ErrorKind::BadVector => "bad_vector",
            ErrorKind::UnknownIndex => "unknown_index",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::UnknownContext => "unknown_context",
            ErrorKind::UnknownModel => "unknown_model",
        }
    }
}

/// Formats the `row 3, column "risk": ` prefix of row-level messages.
fn at(row: &Option<usize>, column: &Option<String>) -> String {
    match (row, column) {
        (Some(r), Some(c)) => format!("row {r}, column \"{c}\": "),
        (Some(r), None) => format!("row {r}: "),
        (None, Some(c)) => format!("column \"{c}\": "),
        (None, None) => String::new(),
    }
}

/// Every error `tarn-core` returns. Row-level variants carry `row` (0-based index in the batch)
/// and `column`; their messages name both, e.g. `row 3, column "risk": expected DOUBLE, got TEXT`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// SQL text that does not parse; the message is sqlparser's.
    #[error("SQL parse error: {0}")]
    SqlParse(String),
    /// A construct Tarn does not support; the message names it.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Unknown table name (or id, printed as `#id`).
    #[error("unknown table \"{0}\"")]
    UnknownTable(String),
    /// A CREATE of the name of an existing table.
    #[error("table \"{0}\" already exists")]
    TableExists(String),
    /// A column the table does not have.
    #[error("table \"{table}\" has no column \"{column}\"")]
    UnknownColumn {
        /// Table name.
        table: String,
        /// The unknown column name, as given.
        column: String,
    },
    /// A column named twice.
    #[error("column \"{column}\" is listed more than once")]
    DuplicateColumn {
        /// The repeated column name.
        column: String,
    },
    /// A value of the wrong type.
    #[error("{}expected {expected}, got {got}", at(row, column))]
    TypeMismatch {
        /// Row index in the batch.
        row: Option<usize>,
        /// Column name.
        column: Option<String>,
        /// The column's type.
        expected: ColumnType,
        /// The value's type.
        got: ColumnType,
    },
    /// A NULL primary key.
    #[error("{}primary key is NULL", at(row, column))]
    NullKey {
        /// Row (or key) index in the batch.
        row: Option<usize>,
        /// Key column name.
        column: Option<String>,
    },
    /// The upsert's column list lacks the key column.
    #[error("primary key column \"{column}\" is missing from the column list")]
    MissingKey {
        /// Key column name.
        column: String,
    },
    /// A TEXT/BYTES value over [`tarn_types::MAX_VALUE_BYTES`].
    #[error("{}value is {len} bytes, the limit is {max}", at(row, column))]
    ValueTooLong {
        /// Row index in the batch.
        row: Option<usize>,
        /// Column name.
        column: Option<String>,
        /// The value's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// NaN or ±infinity in a DOUBLE column.
    #[error(
        "{}DOUBLE value must be finite (NaN and infinity are not allowed)",
        at(row, column)
    )]
    NonFiniteDouble {
        /// Row index in the batch.
        row: Option<usize>,
        /// Column name.
        column: Option<String>,
    },
    /// No rows / no keys.
    #[error("batch is empty")]
    BatchEmpty,
    /// A row whose length differs from the column list.
    #[error("{}has {got} values, expected {expected} (one per listed column)", at(row, &None))]
    RowArity {
        /// Row index in the batch.
        row: Option<usize>,
        /// Number of listed columns.
        expected: usize,
        /// Number of values in the row.
        got: usize,
    },
    /// A documented limit would be exceeded; the message names it.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// Undecodable stored bytes (log record, checkpoint or catalog payload).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Unknown stream name.
    #[error("unknown stream \"{0}\"")]
    UnknownStream(String),
    /// Unknown feature-view name.
    #[error("unknown feature view \"{0}\"")]
    UnknownView(String),
    /// Unknown vector-index name.
    #[error("unknown index \"{0}\"")]
    UnknownIndex(String),
    /// A context name not in the catalog.
    #[error("unknown context \"{0}\"")]
    UnknownContext(String),
    /// A model name not in the catalog.
    #[error("unknown model \"{0}\"")]
    UnknownModel(String),
    /// A name that belongs to an object of another kind than the statement needs (`DROP
    /// INDEX t` of a table, `CREATE INDEX … ON s` of a stream). Its kind is the "unknown" kind
    /// of the kind wanted (`UnknownIndex`, `UnknownTable`, …).
    #[error("\"{name}\" is {}, not {}", kind.a_noun(), wanted.a_noun())]
    WrongKind {
        /// The name.
        name: String,
        /// The kind of the object that has it.
        kind: ObjectKind,
        /// The kind the statement needs.
        wanted: ObjectKind,
    },
    /// A value of the wrong kind where no more specific error applies; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `CREATE INDEX` over a column that is not a VECTOR.
    #[error("column \"{column}\" of table \"{table}\" is {got}: expected VECTOR (a vector index covers a VECTOR column)")]
    NotAVectorColumn {
        /// Table name.
        table: String,
        /// The column.
        column: String,
        /// Its type.
        got: ColumnType,
    },
    /// A CREATE of the name of an existing stream.
    #[error("stream \"{0}\" already exists")]
    StreamExists(String),
    /// A CREATE of the name of an existing object of another kind (a feature view).
    #[error("{} \"{name}\" already exists", kind.noun())]
    ObjectExists {
        /// The existing object's kind.
        kind: ObjectKind,
        /// The name.
        name: String,
    },
    /// A vector value that breaks the rules of its `VECTOR(n)` column, or a `VECTOR(n)` type
    /// out of range; `reason` names the component (0-based) where one is at fault, e.g.
    /// `row 2, column "emb": vector component 1 is NaN: NaN and infinities are not allowed`.
    #[error("{}{reason}", at(row, column))]
    BadVector {
        /// Row index in the batch (0-based).
        row: Option<usize>,
        /// The vector column.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// An event that cannot be read; `reason` says why (e.g. `expected a JSON object`,
    /// `field "foo" is not a column of stream "tx"`, `invalid RFC 3339 timestamp "…"`).
    #[error("{}{reason}", at(row, column))]
    BadEvent {
        /// Event index in the batch (0-based).
        row: Option<usize>,
        /// Column (JSON field) concerned, if any.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A required value is missing or NULL.
    #[error("{}a value is required (missing or null)", at(row, column))]
    MissingValue {
        /// Event index in the batch.
        row: Option<usize>,
        /// The column.
        column: Option<String>,
    },
    /// Event time beyond `now + max_future`.
    #[error("{}event time {event_time_us} µs is more than {max_future_us} µs after the server's clock ({now_us} µs)", at(row, column))]
    FutureEvent {
        /// Event index in the batch.
        row: Option<usize>,
        /// The event-time column.
        column: Option<String>,
        /// The event's time (µs since the epoch).
        event_time_us: i64,
        /// The server clock at validation (µs since the epoch).
        now_us: i64,
        /// The stream's allowance.
        max_future_us: i64,
    },
}

impl CoreError {
    /// The stable error class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::SqlParse(_) => ErrorKind::SqlParse,
            CoreError::Unsupported(_) => ErrorKind::Unsupported,
            CoreError::UnknownTable(_) => ErrorKind::UnknownTable,
            CoreError::TableExists(_) => ErrorKind::TableExists,
            CoreError::UnknownColumn { .. } => ErrorKind::UnknownColumn,
            CoreError::DuplicateColumn { .. } => ErrorKind::DuplicateColumn,
            CoreError::TypeMismatch { .. } => ErrorKind::TypeMismatch,
            CoreError::NullKey { .. } => ErrorKind::NullKey,
            CoreError::MissingKey { .. } => ErrorKind::MissingKey,
            CoreError::ValueTooLong { .. } => ErrorKind::ValueTooLong,
            CoreError::NonFiniteDouble { .. } => ErrorKind::NonFiniteDouble,
            CoreError::BatchEmpty => ErrorKind::BatchEmpty,
            CoreError::RowArity { .. } => ErrorKind::RowArity,
            CoreError::LimitExceeded(_) => ErrorKind::LimitExceeded,
            CoreError::Corrupt(_) => ErrorKind::Corrupt,
            CoreError::UnknownStream(_) => ErrorKind::UnknownStream,
            CoreError::StreamExists(_) => ErrorKind::StreamExists,
            CoreError::BadEvent { .. } => ErrorKind::BadEvent,
            CoreError::MissingValue { .. } => ErrorKind::MissingValue,
            CoreError::FutureEvent { .. } => ErrorKind::FutureEvent,
            CoreError::UnknownView(_) => ErrorKind::UnknownView,
            CoreError::ObjectExists { .. } => ErrorKind::ObjectExists,
            CoreError::BadVector { .. } => ErrorKind::BadVector,
            CoreError::UnknownIndex(_) => ErrorKind::UnknownIndex,
            CoreError::UnknownContext(_) => ErrorKind::UnknownContext,
            CoreError::UnknownModel(_) => ErrorKind::UnknownModel,
            CoreError::WrongKind { wanted, .. } => match wanted {
                ObjectKind::Table => ErrorKind::UnknownTable,
                ObjectKind::Stream => ErrorKind::UnknownStream,
                ObjectKind::View => ErrorKind::UnknownView,
                ObjectKind::Index => ErrorKind::UnknownIndex,
                ObjectKind::Context => ErrorKind::UnknownContext,
                ObjectKind::Model => ErrorKind::UnknownModel,
            },
            CoreError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            CoreError::NotAVectorColumn { .. } => ErrorKind::TypeMismatch,
        }
    }

    /// The 0-based batch row (or key) index the error is about, if any.
    pub fn row(&self) -> Option<usize> {
        match self {
            CoreError::TypeMismatch { row, .. }
            | CoreError::NullKey { row, .. }
            | CoreError::ValueTooLong { row, .. }
            | CoreError::NonFiniteDouble { row, .. }
            | CoreError::BadEvent { row, .. }
            | CoreError::BadVector { row, .. }
            | CoreError::MissingValue { row, .. }
            | CoreError::FutureEvent { row, .. }
            | CoreError::RowArity { row, .. } => *row,
            _ => None,
        }
    }

    /// The column the error is about, if any.
    pub fn column(&self) -> Option<&str> {
        match self {
            CoreError::TypeMismatch { column, .. }
            | CoreError::NullKey { column, .. }
            | CoreError::ValueTooLong { column, .. }
            | CoreError::NonFiniteDouble { column, .. }
            | CoreError::BadEvent { column, .. }
            | CoreError::BadVector { column, .. }
            | CoreError::MissingValue { column, .. }
            | CoreError::FutureEvent { column, .. } => column.as_deref(),
            CoreError::UnknownColumn { column, .. }
            | CoreError::DuplicateColumn { column }
            | CoreError::MissingKey { column }
            | CoreError::NotAVectorColumn { column, .. } => Some(column),
            _ => None,
        }
    }

    /// The error for creating an object named `name` that an object of kind `existing`
    /// already has: [`CoreError::TableExists`], [`CoreError::StreamExists`], or
    /// [`CoreError::ObjectExists`] for the other kinds.
    pub fn exists(existing: ObjectKind, name: &str) -> CoreError {
        let name = name.to_string();
        match existing {
            ObjectKind::Table => CoreError::TableExists(name),
            ObjectKind::Stream => CoreError::StreamExists(name),
            kind => CoreError::ObjectExists { kind, name },
        }
    }

    /// True for [`CoreError::Corrupt`]: stored bytes are bad, not the client's input.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, CoreError::Corrupt(_))
    }
}
