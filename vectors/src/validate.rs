//! Validation of vectors before they are stored or searched for.

use crate::error::VectorError;
use crate::limits::{MAX_COMPONENT_MAGNITUDE, MAX_DIMENSIONS};

/// Refuses a declared dimension outside `1..=MAX_DIMENSIONS`.
pub fn check_dimensions(dim: usize) -> Result<(), VectorError> {
    if dim == 0 || dim > MAX_DIMENSIONS {
        return Err(VectorError::dimensions_out_of_range(dim));
    }
    Ok(())
}

/// Checks a vector for a column or index of `dim` dimensions: `dim` itself must be in
/// `1..=MAX_DIMENSIONS`, `v` must have exactly `dim` components, each finite (the first NaN
/// or ±infinity is named by its 0-based position) and of magnitude at most
/// [`MAX_COMPONENT_MAGNITUDE`]. The first problem found is returned, in that order.
pub fn check_vector(v: &[f32], dim: usize) -> Result<(), VectorError> {
    check_dimensions(dim)?;
    if v.len() != dim {
        return Err(VectorError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    // One pass without early exit for the common case (it vectorizes); `abs() <= MAX` is false
    // for NaN and ±infinity.
    if v.iter()
        .fold(true, |ok, x| ok & (x.abs() <= MAX_COMPONENT_MAGNITUDE))
    {
        return Ok(());
    }
    for (index, &x) in v.iter().enumerate() {
        if x.is_nan() {
            return Err(VectorError::NonFinite { index, what: "NaN" });
        }
        if x.is_infinite() {
            let what = if x > 0.0 { "+infinity" } else { "-infinity" };
            return Err(VectorError::NonFinite { index, what });
        }
        if x.abs() > MAX_COMPONENT_MAGNITUDE {
            return Err(VectorError::too_large(index, x));
        }
    }
    unreachable!("some component failed the magnitude check")
}
