//! The one error type of the server: what the client of a request will be told, wherever in
//! the server (validation, a shard, the log, another shard over the mesh) it arose.
//!
//! It carries the protocol code, a message for a human, and where in the request the problem
//! is (`row`: the row, key, event, pair or statement index the opcode defines; `column`). It
//! becomes the wire's `ErrorReply` only when the reply is encoded (`From<ServerError>`).
//! Start-up and shutdown problems are told to the operator, not a client: those are plain
//! text (`server::run` returns it to `main`).

use tarn_core::{CoreError, ErrorKind};
use tarn_net::{ErrorCode, ErrorReply};

/// An error a client will see.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ServerError {
    pub code: ErrorCode,
    pub message: String,
    /// The index in the request the error is about (see docs/PROTOCOL.md, per opcode).
    pub row: Option<u32>,
    /// The column the error is about.
    pub column: Option<String>,
}

impl ServerError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ServerError {
        ServerError {
            code,
            message: message.into(),
            row: None,
            column: None,
        }
    }

    pub fn with_row(mut self, row: u32) -> ServerError {
        self.row = Some(row);
        self
    }

    pub fn with_column(mut self, column: impl Into<String>) -> ServerError {
        self.column = Some(column.into());
        self
    }

    /// The server is stopping: the request was not executed.
    pub fn shutting_down() -> ServerError {
        ServerError::new(ErrorCode::ShuttingDown, "server is shutting down")
    }
}

impl From<ServerError> for ErrorReply {
    fn from(e: ServerError) -> ErrorReply {
        ErrorReply {
            code: e.code,
            message: e.message,
            row: e.row,
            column: e.column,
        }
    }
}

/// A core error keeps its row and column.
impl From<CoreError> for ServerError {
    fn from(e: CoreError) -> ServerError {
        ServerError {
            code: error_code(e.kind()),
            row: e.row().map(|r| r as u32),
            column: e.column().map(str::to_string),
            message: e.to_string(),
        }
    }
}

/// The protocol error code for a core error kind.
pub fn error_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::SqlParse => ErrorCode::SqlParse,
        ErrorKind::Unsupported => ErrorCode::Unsupported,
        ErrorKind::UnknownTable => ErrorCode::UnknownTable,
        ErrorKind::TableExists => ErrorCode::TableExists,
        ErrorKind::UnknownColumn => ErrorCode::UnknownColumn,
        ErrorKind::DuplicateColumn => ErrorCode::DuplicateColumn,
        ErrorKind::TypeMismatch => ErrorCode::TypeMismatch,
        ErrorKind::NullKey => ErrorCode::NullKey,
        ErrorKind::MissingKey => ErrorCode::MissingKey,
        ErrorKind::ValueTooLong => ErrorCode::ValueTooLong,
        ErrorKind::NonFiniteDouble => ErrorCode::NonFiniteDouble,
        ErrorKind::BadVector => ErrorCode::BadVector,
        ErrorKind::BatchEmpty => ErrorCode::BatchEmpty,
        ErrorKind::RowArity => ErrorCode::Malformed,
        ErrorKind::LimitExceeded => ErrorCode::LimitExceeded,
        ErrorKind::Corrupt => ErrorCode::Internal,
        ErrorKind::UnknownStream => ErrorCode::UnknownStream,
        ErrorKind::StreamExists => ErrorCode::StreamExists,
        ErrorKind::BadEvent => ErrorCode::BadEvent,
        ErrorKind::MissingValue => ErrorCode::MissingValue,
        ErrorKind::FutureEvent => ErrorCode::FutureEvent,
        ErrorKind::UnknownView => ErrorCode::UnknownView,
        ErrorKind::UnknownIndex => ErrorCode::UnknownIndex,
        ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
        ErrorKind::UnknownContext => ErrorCode::UnknownContext,
        ErrorKind::UnknownModel => ErrorCode::UnknownModel,
        // A feature view's or an index's name: the code views have always had.
        ErrorKind::ObjectExists => ErrorCode::StreamExists,
    }
}
