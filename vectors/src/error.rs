//! The one error type of the crate.

use crate::limits::{MAX_COMPONENT_MAGNITUDE, MAX_DIMENSIONS, MAX_K};

/// Longest metric name kept in [`VectorError::UnknownMetric`]; longer input is cut (with `…`)
/// so an error never carries a whole SQL statement.
const MAX_ECHOED_NAME_CHARS: usize = 64;

/// Everything that can be wrong with a vector, a metric name or a search request. Component
/// positions are 0-based, as in the JSON array the vector came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VectorError {
    /// The vector has another number of components than the index or column it is for.
    #[error("vector has {got} dimensions, expected {expected}")]
    DimensionMismatch { expected: usize, got: usize },

    /// A declared dimension (`VECTOR(n)`, an index) outside `1..=MAX_DIMENSIONS`.
    #[error("vector dimension {dim} is out of range: must be 1..={max}")]
    DimensionsOutOfRange { dim: usize, max: usize },

    /// The first non-finite component: `what` is `"NaN"`, `"+infinity"` or `"-infinity"`.
    #[error("vector component {index} is {what}: NaN and infinities are not allowed")]
    NonFinite { index: usize, what: &'static str },

    /// The first component whose magnitude exceeds [`MAX_COMPONENT_MAGNITUDE`].
    #[error(
        "vector component {index} is {value:e}, larger in magnitude than the limit {max:e} \
         (the limit keeps every distance finite)"
    )]
    TooLarge { index: usize, value: f32, max: f32 },

    /// The zero vector given to a cosine index, to insert or as a query.
    #[error(
        "the zero vector has no direction, so its cosine distance is undefined: a cosine index \
         neither stores it nor searches for it (use a non-zero vector, or the l2 or ip metric)"
    )]
    ZeroVector,

    /// A metric name that is none of `l2`, `cosine`, `ip`, `vector_l2_ops`,
    /// `vector_cosine_ops`, `vector_ip_ops` (ASCII case-insensitive).
    #[error(
        "unknown vector metric `{0}`: expected l2, cosine or ip (or pgvector's vector_l2_ops, \
         vector_cosine_ops, vector_ip_ops)"
    )]
    UnknownMetric(String),

    /// An index parameter (`m`, `ef_construction`, `ef_search`, a query's `ef`) outside its
    /// range.
    #[error("{name} = {value} is out of range: must be {min}..={max}")]
    ParameterOutOfRange {
        name: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },

    /// `ef_construction` smaller than `m`: an insert could not find `m` neighbours to link.
    #[error("ef_construction = {ef_construction} is smaller than m = {m}: it must be at least m")]
    EfConstructionBelowM { ef_construction: usize, m: usize },

    /// A serialized index that is damaged or not an index (bad magic, version, checksum,
    /// length, value out of range, broken graph): what was wrong. Distinct from every
    /// other error: the bytes, not the request, are at fault.
    #[error("corrupt vector index: {0}")]
    Corrupt(String),

    /// `k` of a search outside `1..=MAX_K`.
    #[error("k = {k} is out of range: must be 1..={max}")]
    KOutOfRange { k: usize, max: usize },
}

impl VectorError {
    /// [`VectorError::UnknownMetric`] for `name`, cut to a readable length.
    pub(crate) fn unknown_metric(name: &str) -> VectorError {
        let mut chars = name.chars();
        let mut shown: String = chars.by_ref().take(MAX_ECHOED_NAME_CHARS).collect();
        if chars.next().is_some() {
            shown.push('…');
        }
        VectorError::UnknownMetric(shown)
    }

    /// [`VectorError::DimensionsOutOfRange`] for `dim`.
    pub(crate) fn dimensions_out_of_range(dim: usize) -> VectorError {
        VectorError::DimensionsOutOfRange {
            dim,
            max: MAX_DIMENSIONS,
        }
    }

    /// [`VectorError::KOutOfRange`] for `k`.
    pub(crate) fn k_out_of_range(k: usize) -> VectorError {
        VectorError::KOutOfRange { k, max: MAX_K }
    }

    /// [`VectorError::TooLarge`] for component `index` of value `value`.
    pub(crate) fn too_large(index: usize, value: f32) -> VectorError {
        VectorError::TooLarge {
            index,
            value,
            max: MAX_COMPONENT_MAGNITUDE,
        }
    }
}
