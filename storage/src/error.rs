use std::{fmt, io, path::Path, path::PathBuf};

/// Every error tarn-storage returns. Corruption (bad bytes on disk: refuse to start, an
/// operator must look) is distinct from I/O errors (the OS said no).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system failed an operation on `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Bytes on disk fail validation (header, length, CRC, LSN sequence, missing records).
    #[error("{} corrupt: {} at offset {offset}: {reason}", file_kind(path), path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A record payload exceeds the log's limit ([`crate::Log::max_record_payload_bytes`]).
    #[error("record of {len} bytes is larger than the maximum of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    /// The log was closed (or is closing); no more appends.
    #[error("log is closed")]
    Closed,
    /// The options passed to [`crate::Log::open`] are unusable.
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
}

impl StorageError {
    pub(crate) fn io(path: impl AsRef<Path>, source: impl Into<io::Error>) -> Self {
        StorageError::Io {
            path: path.as_ref().to_path_buf(),
            source: source.into(),
        }
    }

    pub(crate) fn corrupt(path: impl AsRef<Path>, offset: u64, reason: impl Into<String>) -> Self {
        StorageError::Corrupt {
            path: path.as_ref().to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`StorageError::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StorageError::Corrupt { .. })
    }
}

fn file_kind(path: &Path) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with("log-") {
        "log"
    } else if name.starts_with("checkpoint-") {
        "checkpoint"
    } else {
        "file"
    }
}

/// Error of [`crate::Log::open`]: either storage failed, or the caller's replay callback did.
#[derive(Debug)]
pub enum OpenError<E> {
    Storage(StorageError),
    Replay(E),
}

impl<E> From<StorageError> for OpenError<E> {
    fn from(e: StorageError) -> Self {
        OpenError::Storage(e)
    }
}

impl<E: fmt::Display> fmt::Display for OpenError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Storage(e) => write!(f, "{e}"),
            OpenError::Replay(e) => write!(f, "log replay failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for OpenError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Storage(e) => Some(e),
            OpenError::Replay(e) => Some(e),
        }
    }
}
