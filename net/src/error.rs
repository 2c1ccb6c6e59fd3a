//! Error codes carried in ERROR replies, and the decoder's error type.

use serde::{Deserialize, Serialize};

/// Error codes (u16 on the wire). Never renumber; new codes get new numbers.
///
/// Decoding an ERROR reply whose code this build does not know yields [`ErrorCode::Unknown`]
/// (the numeric code is prepended to the message) rather than failing, so an older client still
/// surfaces a newer server's error. `Unknown` (0) is never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u16)]
pub enum ErrorCode {
    /// Catch-all for codes this build does not know. Never sent.
    Unknown = 0,
    Malformed = 1,
    UnknownOpcode = 2,
    FrameTooLarge = 3,
    UnsupportedVersion = 4,
    AuthFailed = 5,
    HandshakeRequired = 6,
    BatchTooLarge = 7,
    TooManyInFlight = 8,
    TooManyConnections = 9,
    InvalidUtf8 = 10,
    /// A request frame with request id 0 (reserved for connection-level errors). Not executed;
    /// answered with request id 0 (the only request error sent with id 0).
    BadRequestId = 11,
    /// The server closed the connection because a frame did not complete within the frame
    /// timeout or the connection stayed idle for the idle timeout (server settings). Sent with
    /// request id 0, best-effort (a client that does not read may not get it), then the
    /// connection is closed.
    Timeout = 12,
    SqlParse = 20,
    Unsupported = 21,
    UnknownTable = 22,
    TableExists = 23,
    UnknownColumn = 24,
    DuplicateColumn = 25,
    TypeMismatch = 26,
    NullKey = 27,
    MissingKey = 28,
    ValueTooLong = 29,
    NonFiniteDouble = 30,
    BatchEmpty = 31,
    UnknownStream = 32,
    StreamExists = 33,
    BadEvent = 34,
    MissingValue = 35,
    FutureEvent = 36,
    UnknownView = 37,
    /// A named limit other than the batch/frame size (aggregates per view, buckets per window,
    /// expression nodes, identifier length, tables, streams, views per stream, columns, …).
    LimitExceeded = 38,
    /// A request field whose value the operation does not accept, where no more specific code
    /// applies (e.g. an as-of time that is not in the past).
    InvalidArgument = 39,
    Busy = 40,
    ShuttingDown = 41,
    /// A vector value or type that breaks the vector rules: wrong dimension, empty, a NaN,
    /// infinite, too large or non-numeric component, more than `MAX_VECTOR_COMPONENTS`
    /// components in a frame, or a `VECTOR(n)` dimension outside `1..=4096`.
    BadVector = 42,
    /// A vector-index name not in the catalog (`DROP INDEX`, a kNN request), or the name of
    /// another kind of object given where an index is needed.
    UnknownIndex = 43,
    /// A named-context name not in the catalog (`DROP CONTEXT`, a CONTEXT request).
    UnknownContext = 44,
    /// A model name not in the catalog (`DROP MODEL`, `DESCRIBE MODEL`), also when the name
    /// is another kind of object's.
    UnknownModel = 45,
    Storage = 50,
    Internal = 60,
}

impl ErrorCode {
    /// Every code, in numeric order (excluding `Unknown`).
    pub const ALL: [ErrorCode; 40] = [
        ErrorCode::Malformed,
        ErrorCode::UnknownOpcode,
        ErrorCode::FrameTooLarge,
        ErrorCode::UnsupportedVersion,
        ErrorCode::AuthFailed,
        ErrorCode::HandshakeRequired,
        ErrorCode::BatchTooLarge,
        ErrorCode::TooManyInFlight,
        ErrorCode::TooManyConnections,
        ErrorCode::InvalidUtf8,
        ErrorCode::BadRequestId,
        ErrorCode::Timeout,
        ErrorCode::SqlParse,
        ErrorCode::Unsupported,
        ErrorCode::UnknownTable,
        ErrorCode::TableExists,
        ErrorCode::UnknownColumn,
        ErrorCode::DuplicateColumn,
        ErrorCode::TypeMismatch,
        ErrorCode::NullKey,
        ErrorCode::MissingKey,
        ErrorCode::ValueTooLong,
        ErrorCode::NonFiniteDouble,
        ErrorCode::BatchEmpty,
        ErrorCode::UnknownStream,
        ErrorCode::StreamExists,
        ErrorCode::BadEvent,
        ErrorCode::MissingValue,
        ErrorCode::FutureEvent,
        ErrorCode::UnknownView,
        ErrorCode::LimitExceeded,
        ErrorCode::InvalidArgument,
        ErrorCode::Busy,
        ErrorCode::ShuttingDown,
        ErrorCode::BadVector,
        ErrorCode::UnknownIndex,
        ErrorCode::UnknownContext,
        ErrorCode::UnknownModel,
        ErrorCode::Storage,
        ErrorCode::Internal,
    ];

    /// The wire value.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// Strict lookup: `None` for codes this build does not know (and for 0).
    pub fn try_from_u16(code: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_u16() == code)
    }

    /// Lenient lookup: unknown codes map to [`ErrorCode::Unknown`].
    pub fn from_u16(code: u16) -> ErrorCode {
        ErrorCode::try_from_u16(code).unwrap_or(ErrorCode::Unknown)
    }

    /// Whether the server closes the connection after sending this error. True for
    /// FRAME_TOO_LARGE (the stream cannot be resynchronised), HANDSHAKE_REQUIRED, AUTH_FAILED,
    /// UNSUPPORTED_VERSION (the handshake failed), TOO_MANY_CONNECTIONS and TIMEOUT. Every other
    /// error answers one request and the connection keeps serving, except an error answering
    /// the first frame of a connection (before a successful HELLO), which always closes it.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::FrameTooLarge
                | ErrorCode::HandshakeRequired
                | ErrorCode::AuthFailed
                | ErrorCode::UnsupportedVersion
                | ErrorCode::TooManyConnections
                | ErrorCode::Timeout
        )
    }

    /// The stable upper-case name, e.g. `UNKNOWN_TABLE`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Unknown => "UNKNOWN",
            ErrorCode::Malformed => "MALFORMED",
            ErrorCode::UnknownOpcode => "UNKNOWN_OPCODE",
            ErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::HandshakeRequired => "HANDSHAKE_REQUIRED",
            ErrorCode::BatchTooLarge => "BATCH_TOO_LARGE",
            ErrorCode::TooManyInFlight => "TOO_MANY_IN_FLIGHT",
            ErrorCode::TooManyConnections => "TOO_MANY_CONNECTIONS",
            ErrorCode::InvalidUtf8 => "INVALID_UTF8",
            ErrorCode::BadRequestId => "BAD_REQUEST_ID",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::SqlParse => "SQL_PARSE",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::UnknownTable => "UNKNOWN_TABLE",
            ErrorCode::TableExists => "TABLE_EXISTS",
            ErrorCode::UnknownColumn => "UNKNOWN_COLUMN",
            ErrorCode::DuplicateColumn => "DUPLICATE_COLUMN",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::NullKey => "NULL_KEY",
            ErrorCode::MissingKey => "MISSING_KEY",
            ErrorCode::ValueTooLong => "VALUE_TOO_LONG",
            ErrorCode::NonFiniteDouble => "NON_FINITE_DOUBLE",
            ErrorCode::BatchEmpty => "BATCH_EMPTY",
            ErrorCode::UnknownStream => "UNKNOWN_STREAM",
            ErrorCode::StreamExists => "STREAM_EXISTS",
            ErrorCode::BadEvent => "BAD_EVENT",
            ErrorCode::MissingValue => "MISSING_VALUE",
            ErrorCode::FutureEvent => "FUTURE_EVENT",
            ErrorCode::UnknownView => "UNKNOWN_VIEW",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Busy => "BUSY",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::BadVector => "BAD_VECTOR",
            ErrorCode::UnknownIndex => "UNKNOWN_INDEX",
            ErrorCode::UnknownContext => "UNKNOWN_CONTEXT",
            ErrorCode::UnknownModel => "UNKNOWN_MODEL",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a header or payload could not be decoded. `code` is what the server sends back in the
/// ERROR reply (MALFORMED, UNKNOWN_OPCODE, FRAME_TOO_LARGE, INVALID_UTF8, BATCH_TOO_LARGE,
/// VALUE_TOO_LONG); `message` says what was wrong and at which payload offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
}

impl DecodeError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> DecodeError {
        DecodeError {
            code,
            message: message.into(),
        }
    }
}
