//! The rules every model's input names follow.

use std::collections::HashSet;

use crate::error::{echo, ModelError};
use crate::limits::{MAX_INPUT_NAME_BYTES, MAX_MODEL_INPUTS};

/// Checks a model's input names: at least one and at most [`MAX_MODEL_INPUTS`], each non-empty,
/// at most [`MAX_INPUT_NAME_BYTES`] bytes, all distinct (compared exactly: a request binds
/// values by name, so two names differing only in case are still two inputs).
pub(crate) fn check_input_names<'a, I>(names: I) -> Result<(), ModelError>
where
    I: ExactSizeIterator<Item = &'a str>,
{
    let count = names.len();
    if count == 0 {
        return Err(ModelError::Invalid(
            "a model needs at least one input".into(),
        ));
    }
    ModelError::check_limit("inputs", count, MAX_MODEL_INPUTS)?;
    let mut seen = HashSet::with_capacity(count);
    for (position, name) in names.enumerate() {
        if name.is_empty() {
            return Err(ModelError::Invalid(format!(
                "input {position} has an empty name"
            )));
        }
        if name.len() > MAX_INPUT_NAME_BYTES {
            return Err(ModelError::Invalid(format!(
                "input {position} (`{}`) has a {}-byte name, longer than the limit \
                 {MAX_INPUT_NAME_BYTES}",
                echo(name),
                name.len()
            )));
        }
        if !seen.insert(name) {
            return Err(ModelError::Invalid(format!(
                "duplicate input name `{}` (input {position})",
                echo(name)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str]) -> Result<(), ModelError> {
        check_input_names(names.iter().copied())
    }

    #[test]
    fn names_on_both_sides_of_each_rule() {
        assert!(check(&["a"]).is_ok());
        assert!(check(&["a", "A"]).is_ok());
        assert!(check(&[]).is_err());
        assert!(check(&[""]).is_err());
        assert!(check(&["a", "a"])
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        let longest = "n".repeat(MAX_INPUT_NAME_BYTES);
        assert!(check(&[&longest]).is_ok());
        let too_long = "n".repeat(MAX_INPUT_NAME_BYTES + 1);
        assert!(check(&[&too_long]).is_err());
    }

    #[test]
    fn input_count_limit_on_both_sides() {
        let names: Vec<String> = (0..=MAX_MODEL_INPUTS).map(|i| format!("x{i}")).collect();
        let at = check_input_names(names[..MAX_MODEL_INPUTS].iter().map(String::as_str));
        assert!(at.is_ok());
        let over = check_input_names(names.iter().map(String::as_str));
        assert!(matches!(over, Err(ModelError::LimitExceeded { .. })));
    }
}
