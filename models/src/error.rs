//! The one error type of the crate.

/// Longest piece of user text (an input name, an objective) echoed in an error; longer text
/// is cut (with `…`) so an error never carries a whole model.
const MAX_ECHOED_CHARS: usize = 80;

/// Everything that can be wrong with a model definition, an imported or encoded model, or the
/// inputs of a score.
///
/// Four kinds are kept apart because the caller answers them differently: [`Self::Invalid`]
/// and [`Self::InvalidJson`] (the definition or file given is wrong: fix it),
/// [`Self::Unsupported`] (valid for XGBoost, not supported here), [`Self::LimitExceeded`]
/// (valid but too large), and [`Self::Corrupt`] (stored bytes are damaged: the catalog, not the
/// user, is at fault). [`Self::InputCount`] and [`Self::InvalidInput`] concern one score (or
/// one training row); [`Self::InvalidTraining`] and [`Self::TrainingFailed`] concern training.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A model definition that is wrong: duplicate or empty input names, a non-finite number,
    /// `std <= 0`, mismatched lengths, a broken tree (child out of range, a node reached twice,
    /// a feature index ≥ `num_feature`)…: what was wrong, naming the input, tree or node.
    #[error("invalid model: {0}")]
    Invalid(String),

    /// Model JSON that does not parse, lacks a field or has a field of the wrong type: the
    /// parser's message, or the dotted path of the missing field.
    #[error("invalid model JSON: {0}")]
    InvalidJson(String),

    /// A valid XGBoost model using something this crate does not implement: `feature` says what
    /// (an objective, a booster, several output groups, a categorical split naming its input).
    #[error("unsupported model: {feature}")]
    Unsupported { feature: String },

    /// A model beyond one of the limits of [`crate::limits`].
    #[error("model has {value} {what}, more than the limit {max}")]
    LimitExceeded {
        what: &'static str,
        value: usize,
        max: usize,
    },

    /// An encoded model ([`crate::LinearModel::decode`]) that is damaged or not an encoding
    /// (bad magic, version, checksum, length, a value out of range): what was wrong. Distinct
    /// from every other error: the bytes, not the request, are at fault.
    #[error("corrupt model encoding: {0}")]
    Corrupt(String),

    /// A score given another number of inputs than the model has.
    #[error("model takes {expected} inputs, got {got}")]
    InputCount { expected: usize, got: usize },

    /// A training set or training options the trainer cannot use: a label other than 0 or 1,
    /// an infinite value or a bad sample weight (naming the input and row), only one class,
    /// an input with no non-NULL value or a constant one, log1p of a value ≤ −1, a negative
    /// or non-finite `l2`…: what was wrong, naming the input and row where there is one.
    #[error("invalid training data: {0}")]
    InvalidTraining(String),

    /// Training that cannot go on from valid data: a Hessian that is not positive definite
    /// (collinear inputs or separable classes without a penalty), a loss that no step along
    /// the Newton direction decreases, a non-finite gradient or Hessian.
    #[error("training failed: {0}")]
    TrainingFailed(String),

    /// One input of a score that the model cannot use (log1p of a value ≤ −1, an infinite
    /// value, for trees a value beyond the f32 range), or a linear margin that overflowed.
    #[error("input `{input}`: {reason}")]
    InvalidInput { input: String, reason: String },
}

impl ModelError {
    /// [`ModelError::Unsupported`] with `feature` cut to a readable length.
    pub(crate) fn unsupported(feature: impl Into<String>) -> ModelError {
        ModelError::Unsupported {
            feature: echo(&feature.into()),
        }
    }

    /// [`ModelError::InputCount`] unless `got == expected`.
    pub(crate) fn check_input_count(expected: usize, got: usize) -> Result<(), ModelError> {
        if got == expected {
            Ok(())
        } else {
            Err(ModelError::InputCount { expected, got })
        }
    }

    /// [`ModelError::LimitExceeded`] when `value > max`.
    pub(crate) fn check_limit(what: &'static str, value: usize, max: usize) -> Result<(), Self> {
        if value > max {
            Err(ModelError::LimitExceeded { what, value, max })
        } else {
            Ok(())
        }
    }
}

/// `text` cut to [`MAX_ECHOED_CHARS`] characters, with `…` when cut.
pub(crate) fn echo(text: &str) -> String {
    let mut chars = text.chars();
    let mut shown: String = chars.by_ref().take(MAX_ECHOED_CHARS).collect();
    if chars.next().is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_cuts_long_text_only() {
        assert_eq!(echo("binary:logistic"), "binary:logistic");
        let exact = "x".repeat(MAX_ECHOED_CHARS);
        assert_eq!(echo(&exact), exact);
        let long = "y".repeat(MAX_ECHOED_CHARS + 1);
        let shown = echo(&long);
        assert_eq!(shown.chars().count(), MAX_ECHOED_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn limits_and_counts_on_both_sides() {
        assert!(ModelError::check_limit("trees", 10, 10).is_ok());
        assert_eq!(
            ModelError::check_limit("trees", 11, 10),
            Err(ModelError::LimitExceeded {
                what: "trees",
                value: 11,
                max: 10
            })
        );
        assert!(ModelError::check_input_count(3, 3).is_ok());
        assert!(ModelError::check_input_count(3, 2).is_err());
        assert!(ModelError::check_input_count(3, 4).is_err());
    }
}
