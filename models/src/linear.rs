//! Linear and logistic regression over named numeric inputs: [`LinearModel`].
//!
//! # Scoring
//!
//! Per input `i` (in declaration order) with value `xᵢ`:
//!
//! 1. `tᵢ = xᵢ`, or `imputeᵢ` when `xᵢ` is NULL (`None`) or NaN. An infinite `tᵢ` is an error
//!    ([`ModelError::InvalidInput`]).
//! 2. With `log1p`: `tᵢ = ln(1 + tᵢ)` ([`f64::ln_1p`]); `tᵢ ≤ −1` is an error naming the
//!    input (ln(0) = −∞ and ln of a negative number is NaN: neither is a usable score).
//! 3. `sᵢ = (tᵢ − meanᵢ) / stdᵢ`.
//!
//! The margin is `z = intercept + Σ wᵢ·sᵢ`, evaluated in f64 left to right from the intercept
//! (`((intercept + w₀s₀) + w₁s₁) + …`). A margin that overflows to ±infinity is an error
//! naming the input whose term overflowed. The score is `z` for [`LinearKind::Linear`] and
//! `σ(z) = 1/(1 + e^−z)` for [`LinearKind::Logistic`], computed as `1/(1 + exp(−z))` when
//! `z ≥ 0` and `exp(z)/(1 + exp(z))` when `z < 0`, so `exp` never overflows and tiny
//! probabilities keep their relative precision.
//!
//! # Validation
//!
//! [`LinearModel::new`] refuses (with [`ModelError::Invalid`] or
//! [`ModelError::LimitExceeded`]): no inputs or more than [`MAX_MODEL_INPUTS`], empty,
//! too long or duplicate names, a number of weights other than the number of inputs, any
//! non-finite number, `std ≤ 0`, and an `impute ≤ −1` under `log1p`.
//!
//! # Encoding
//!
//! [`LinearModel::encode`] writes a versioned little-endian encoding for the catalog; every
//! integer and float is little-endian, floats are IEEE-754 binary64 bit patterns:
//!
//! ```text
//! ┌────────┬─────────┬──────┬──────────┬───────────┬───────────────────┬────────┐
//! │ magic  │ version │ kind │ n_inputs │ intercept │ input record × n  │ crc32c │
//! │ "TMLN" │ u8 = 1  │ u8   │ u16      │ f64       │ (below)           │ u32    │
//! └────────┴─────────┴──────┴──────────┴───────────┴───────────────────┴────────┘
//!   4 bytes  1         1      2          8                               4
//!
//! input record:
//! ┌──────────┬─────────────┬───────┬────────┬──────┬─────┬────────┐
//! │ name_len │ name        │ flags │ impute │ mean │ std │ weight │
//! │ u16      │ UTF-8 bytes │ u8    │ f64    │ f64  │ f64 │ f64    │
//! └──────────┴─────────────┴───────┴────────┴──────┴─────┴────────┘
//!   2          name_len      1       8        8      8     8
//!
//! kind: 0 = linear, 1 = logistic.  flags: bit 0 = log1p; bits 1–7 must be 0.
//! crc32c: CRC-32C (Castagnoli) of every byte before it.
//! ```
//!
//! [`LinearModel::decode`] checks the magic, version, checksum, every length, that nothing
//! follows the checksum, and then every rule of [`LinearModel::new`]; any failure is
//! [`ModelError::Corrupt`], never a panic. The encoding is canonical: equal models give equal
//! bytes, and decode(encode(m)) == m bit for bit (so it scores identically).

use crate::codec::Reader;
use crate::error::{echo, ModelError};
use crate::limits::{MAX_INPUT_NAME_BYTES, MAX_MODEL_INPUTS};
use crate::names::check_input_names;
use crate::Scorer;

/// First bytes of [`LinearModel::encode`].
pub const LINEAR_MAGIC: [u8; 4] = *b"TMLN";

/// Version byte of [`LinearModel::encode`].
pub const LINEAR_FORMAT_VERSION: u8 = 1;

/// Bytes before the first input record: magic, version, kind, n_inputs, intercept.
const HEADER_BYTES: usize = 4 + 1 + 1 + 2 + 8;
/// Bytes of the checksum trailer.
const CRC_BYTES: usize = 4;
/// Flag bit of an input record: `log1p` is applied.
const FLAG_LOG1P: u8 = 1;

// Encoded counts and name lengths are u16.
const _: () = assert!(MAX_MODEL_INPUTS <= u16::MAX as usize);
const _: () = assert!(MAX_INPUT_NAME_BYTES <= u16::MAX as usize);

/// What the margin becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinearKind {
    /// Linear regression: the score is the margin.
    Linear,
    /// Logistic regression: the score is `σ(margin)`, a probability.
    Logistic,
}

impl LinearKind {
    fn code(self) -> u8 {
        match self {
            LinearKind::Linear => 0,
            LinearKind::Logistic => 1,
        }
    }

    fn from_code(code: u8) -> Option<LinearKind> {
        match code {
            0 => Some(LinearKind::Linear),
            1 => Some(LinearKind::Logistic),
            _ => None,
        }
    }
}

/// One input of a [`LinearModel`] and its preprocessing (module docs, steps 1–3).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearInput {
    /// The input's name, as requests bind it.
    pub name: String,
    /// Value used when the input is NULL or NaN (before `log1p`).
    pub impute: f64,
    /// Whether `ln(1 + t)` is applied after imputation.
    pub log1p: bool,
    /// Standardisation: subtracted after `log1p`.
    pub mean: f64,
    /// Standardisation: divided by after subtracting `mean`; finite and > 0.
    pub std: f64,
}

/// A validated linear or logistic regression model (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    kind: LinearKind,
    inputs: Vec<LinearInput>,
    weights: Vec<f64>,
    intercept: f64,
}

impl LinearModel {
    /// A model of `kind` with one weight per input, in input order; see the module docs for
    /// what is refused.
    pub fn new(
        kind: LinearKind,
        inputs: Vec<LinearInput>,
        weights: Vec<f64>,
        intercept: f64,
    ) -> Result<LinearModel, ModelError> {
        check_input_names(inputs.iter().map(|input| input.name.as_str()))?;
        if weights.len() != inputs.len() {
            return Err(ModelError::Invalid(format!(
                "{} weights for {} inputs: one weight per input is needed",
                weights.len(),
                inputs.len()
            )));
        }
        check_finite("the intercept", intercept)?;
        for (input, &weight) in inputs.iter().zip(&weights) {
            check_input(input, weight)?;
        }
        Ok(LinearModel {
            kind,
            inputs,
            weights,
            intercept,
        })
    }

    /// Linear or logistic.
    pub fn kind(&self) -> LinearKind {
        self.kind
    }

    /// The inputs, in the order scores take their values.
    pub fn inputs(&self) -> &[LinearInput] {
        &self.inputs
    }

    /// One weight per input.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The intercept (the margin when every standardised input is 0).
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// The margin `z` of one row (module docs), `values` in input order.
    pub fn margin(&self, values: &[Option<f64>]) -> Result<f64, ModelError> {
        ModelError::check_input_count(self.inputs.len(), values.len())?;
        let mut z = self.intercept;
        for ((input, &weight), &value) in self.inputs.iter().zip(&self.weights).zip(values) {
            z += weight * standardised(input, value)?;
            if !z.is_finite() {
                return Err(invalid_input(
                    input,
                    "the margin overflowed at this input's term (the value is too large in \
                     magnitude for the model)"
                        .into(),
                ));
            }
        }
        Ok(z)
    }
}

impl Scorer for LinearModel {
    fn input_names(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .map(|input| input.name.as_str())
            .collect()
    }

    fn score(&self, inputs: &[Option<f64>]) -> Result<f64, ModelError> {
        let z = self.margin(inputs)?;
        Ok(match self.kind {
            LinearKind::Linear => z,
            LinearKind::Logistic => logistic(z),
        })
    }
}

/// `σ(z) = 1/(1 + e^−z)` without overflow: for `z < 0` as `e^z/(1 + e^z)`.
pub fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `sᵢ` of the module docs for one input value.
fn standardised(input: &LinearInput, value: Option<f64>) -> Result<f64, ModelError> {
    let mut t = match value {
        Some(v) if !v.is_nan() => v,
        _ => input.impute,
    };
    if t.is_infinite() {
        return Err(invalid_input(input, format!("{t} is not a finite number")));
    }
    if input.log1p {
        if t <= -1.0 {
            return Err(invalid_input(
                input,
                format!("log1p of {t} is undefined: log1p needs a value > -1"),
            ));
        }
        t = t.ln_1p();
    }
    Ok((t - input.mean) / input.std)
}

fn invalid_input(input: &LinearInput, reason: String) -> ModelError {
    ModelError::InvalidInput {
        input: echo(&input.name),
        reason,
    }
}

fn check_finite(what: &str, value: f64) -> Result<(), ModelError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ModelError::Invalid(format!(
            "{what} is {value}: every number of a model must be finite"
        )))
    }
}

/// The per-input rules of [`LinearModel::new`] (names are checked together, elsewhere).
fn check_input(input: &LinearInput, weight: f64) -> Result<(), ModelError> {
    let name = echo(&input.name);
    check_finite(&format!("the weight of input `{name}`"), weight)?;
    check_finite(&format!("impute of input `{name}`"), input.impute)?;
    check_finite(&format!("mean of input `{name}`"), input.mean)?;
    check_finite(&format!("std of input `{name}`"), input.std)?;
    if input.std <= 0.0 {
        return Err(ModelError::Invalid(format!(
            "std of input `{name}` is {}: it must be > 0 (it divides the input)",
            input.std
        )));
    }
    if input.log1p && input.impute <= -1.0 {
        return Err(ModelError::Invalid(format!(
            "impute of input `{name}` is {} under log1p: log1p needs a value > -1",
            input.impute
        )));
    }
    Ok(())
}

impl LinearModel {
    /// The canonical encoding of this model (module docs, "Encoding").
    pub fn encode(&self) -> Vec<u8> {
        let names: usize = self.inputs.iter().map(|i| i.name.len()).sum();
        let mut out = Vec::with_capacity(HEADER_BYTES + self.inputs.len() * 35 + names + 4);
        out.extend_from_slice(&LINEAR_MAGIC);
        out.push(LINEAR_FORMAT_VERSION);
        out.push(self.kind.code());
        // Both fit u16: checked at construction (≤ MAX_MODEL_INPUTS, ≤ MAX_INPUT_NAME_BYTES).
        out.extend_from_slice(&(self.inputs.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.intercept.to_le_bytes());
        for (input, weight) in self.inputs.iter().zip(&self.weights) {
            out.extend_from_slice(&(input.name.len() as u16).to_le_bytes());
            out.extend_from_slice(input.name.as_bytes());
            out.push(if input.log1p { FLAG_LOG1P } else { 0 });
            for v in [input.impute, input.mean, input.std, *weight] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The model [`LinearModel::encode`] wrote; anything else is [`ModelError::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<LinearModel, ModelError> {
        let body = check_envelope(bytes)?;
        let mut r = Reader::new(body);
        r.take(LINEAR_MAGIC.len(), "magic")?;
        r.u8("version")?;
        let code = r.u8("kind")?;
        let kind = LinearKind::from_code(code)
            .ok_or_else(|| ModelError::Corrupt(format!("unknown model kind {code}")))?;
        let n = r.u16("input count")? as usize;
        if n > MAX_MODEL_INPUTS {
            return Err(ModelError::Corrupt(format!(
                "{n} inputs, more than the limit {MAX_MODEL_INPUTS}"
            )));
        }
        let intercept = r.f64("intercept")?;
        let mut inputs = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        for index in 0..n {
            let (input, weight) = read_input(&mut r, index)?;
            inputs.push(input);
            weights.push(weight);
        }
        if r.left() != 0 {
            return Err(ModelError::Corrupt(format!(
                "{} bytes after the last input record",
                r.left()
            )));
        }
        LinearModel::new(kind, inputs, weights, intercept)
            .map_err(|e| ModelError::Corrupt(format!("decoded model breaks a model rule: {e}")))
    }
}

/// Checks magic, version and checksum; returns the bytes before the checksum.
fn check_envelope(bytes: &[u8]) -> Result<&[u8], ModelError> {
    if bytes.len() < HEADER_BYTES + CRC_BYTES {
        return Err(ModelError::Corrupt(format!(
            "truncated: {} bytes, a linear model encoding has at least {}",
            bytes.len(),
            HEADER_BYTES + CRC_BYTES
        )));
    }
    if bytes[..4] != LINEAR_MAGIC {
        return Err(ModelError::Corrupt(
            "bad magic: not a linear model encoding".into(),
        ));
    }
    if bytes[4] != LINEAR_FORMAT_VERSION {
        return Err(ModelError::Corrupt(format!(
            "unsupported linear model format version {} (this build reads {})",
            bytes[4], LINEAR_FORMAT_VERSION
        )));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - CRC_BYTES);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(ModelError::Corrupt(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(body)
}

/// One input record of the encoding.
fn read_input(r: &mut Reader<'_>, index: usize) -> Result<(LinearInput, f64), ModelError> {
    let len = r.u16("name length")? as usize;
    if len > MAX_INPUT_NAME_BYTES {
        return Err(ModelError::Corrupt(format!(
            "input {index}: name of {len} bytes, more than the limit {MAX_INPUT_NAME_BYTES}"
        )));
    }
    let name = std::str::from_utf8(r.take(len, "input name")?)
        .map_err(|_| ModelError::Corrupt(format!("input {index}: name is not UTF-8")))?
        .to_owned();
    let flags = r.u8("input flags")?;
    if flags & !FLAG_LOG1P != 0 {
        return Err(ModelError::Corrupt(format!(
            "input {index}: unknown flag bits {flags:#04x}"
        )));
    }
    let input = LinearInput {
        name,
        log1p: flags & FLAG_LOG1P != 0,
        impute: r.f64("impute")?,
        mean: r.f64("mean")?,
        std: r.f64("std")?,
    };
    Ok((input, r.f64("weight")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str) -> LinearInput {
        LinearInput {
            name: name.into(),
            impute: 0.0,
            log1p: false,
            mean: 0.0,
            std: 1.0,
        }
    }

    #[test]
    fn logistic_is_stable_on_both_sides_of_zero() {
        assert_eq!(logistic(0.0), 0.5);
        assert_eq!(logistic(-0.0), 0.5);
        assert_eq!(logistic(800.0), 1.0);
        // exp(-800) underflows to 0 in 1/(1+exp(800)); the stable branch keeps it tiny > 0
        // down to exp's subnormal range.
        assert!(logistic(-700.0) > 0.0);
        assert!((logistic(-700.0) / (-700.0f64).exp() - 1.0).abs() < 1e-15);
        assert_eq!(logistic(-800.0), 0.0);
        for z in [-30.0, -1.0, -1e-9, 1e-9, 1.0, 30.0] {
            assert!((logistic(z) + logistic(-z) - 1.0).abs() < 1e-15, "{z}");
        }
    }

    #[test]
    fn std_on_both_sides_of_zero() {
        let model = |std: f64| {
            let mut x = input("x");
            x.std = std;
            LinearModel::new(LinearKind::Linear, vec![x], vec![1.0], 0.0)
        };
        assert!(model(f64::MIN_POSITIVE).is_ok());
        assert!(model(0.0).is_err());
        assert!(model(-1.0).is_err());
        assert!(model(f64::INFINITY).is_err());
    }

    #[test]
    fn log1p_domain_on_both_sides_of_minus_one() {
        let mut x = input("x");
        x.log1p = true;
        let m = LinearModel::new(LinearKind::Linear, vec![x], vec![1.0], 0.0).unwrap();
        let just_above = -1.0 + f64::EPSILON;
        assert!(m.margin(&[Some(just_above)]).unwrap().is_finite());
        assert!(m.margin(&[Some(-1.0)]).is_err());
        assert!(m.margin(&[Some(-1.0 - f64::EPSILON)]).is_err());
    }

    #[test]
    fn header_constant_matches_the_encoding() {
        let m = LinearModel::new(LinearKind::Logistic, vec![input("")], vec![1.0], 0.0);
        assert!(m.is_err(), "empty names are refused");
        let m = LinearModel::new(LinearKind::Logistic, vec![input("ab")], vec![1.0], 0.0);
        let bytes = m.unwrap().encode();
        assert_eq!(bytes.len(), HEADER_BYTES + (2 + 2 + 1 + 32) + CRC_BYTES);
    }
}
