//! The three metrics, with pgvector's names and semantics.

use std::fmt;
use std::str::FromStr;

use crate::distance::Kernels;
use crate::error::VectorError;
use crate::validate::check_vector;

/// How two vectors are compared. Every metric is a *distance*: smaller is nearer, searches
/// return the nearest first.
///
/// | metric | names | pgvector operator | reported distance | ordering key |
/// |---|---|---|---|---|
/// | [`Metric::L2`] | `l2`, `vector_l2_ops` | `<->` | √Σ(aᵢ − bᵢ)² | Σ(aᵢ − bᵢ)² |
/// | [`Metric::Cosine`] | `cosine`, `vector_cosine_ops` | `<=>` | 1 − cos(a, b), in [0, 2] | same |
/// | [`Metric::InnerProduct`] | `ip`, `vector_ip_ops` | `<#>` | −Σ aᵢ·bᵢ | same |
///
/// Results are ordered by the *key* (then row id): the squared distance for L2 (the same order
/// as the distance, one square root cheaper), the distance itself otherwise.
///
/// Cosine compares directions, so vectors are normalized when they are *prepared*
/// ([`Metric::prepare`]): an index stores `v / ‖v‖` (norm and quotient computed in f64, then
/// rounded to f32) and the distance is `1 − clamp(â · b̂, −1, 1)`. The zero vector has no
/// direction: [`Metric::check`] refuses it for cosine with [`VectorError::ZeroVector`], so an
/// index never stores it nor searches for it (pgvector answers NaN, which sorts after
/// everything and hides the mistake). [`Metric::distance`] on unchecked input is still total:
/// a zero vector stays zero when prepared, so its cosine distance to anything is exactly 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    L2,
    Cosine,
    InnerProduct,
}

impl Metric {
    /// Every metric, in the order of the table above.
    pub const ALL: [Metric; 3] = [Metric::L2, Metric::Cosine, Metric::InnerProduct];

    /// The short name: `l2`, `cosine`, `ip` (what `WITH (metric = …)` takes and listings show).
    pub const fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::InnerProduct => "ip",
        }
    }

    /// pgvector's operator class: `vector_l2_ops`, `vector_cosine_ops`, `vector_ip_ops`.
    pub const fn opclass(self) -> &'static str {
        match self {
            Metric::L2 => "vector_l2_ops",
            Metric::Cosine => "vector_cosine_ops",
            Metric::InnerProduct => "vector_ip_ops",
        }
    }

    /// pgvector's distance operator: `<->`, `<=>`, `<#>`.
    pub const fn operator(self) -> &'static str {
        match self {
            Metric::L2 => "<->",
            Metric::Cosine => "<=>",
            Metric::InnerProduct => "<#>",
        }
    }

    /// Parses a short name or an operator class, ASCII case-insensitively (`COSINE`,
    /// `Vector_IP_Ops`); nothing else (no surrounding spaces, no aliases).
    pub fn parse(s: &str) -> Result<Metric, VectorError> {
        Metric::ALL
            .into_iter()
            .find(|m| s.eq_ignore_ascii_case(m.name()) || s.eq_ignore_ascii_case(m.opclass()))
            .ok_or_else(|| VectorError::unknown_metric(s))
    }

    /// Checks a vector to be stored or searched for with this metric: [`check_vector`], and
    /// for cosine not the zero vector (every component ±0.0).
    pub fn check(self, v: &[f32], dim: usize) -> Result<(), VectorError> {
        check_vector(v, dim)?;
        if self == Metric::Cosine && v.iter().all(|&x| x == 0.0) {
            return Err(VectorError::ZeroVector);
        }
        Ok(())
    }

    /// Checks `v` ([`Metric::check`]) and returns it prepared: normalized for cosine (see the
    /// type's docs), unchanged otherwise.
    pub fn prepare(self, v: &[f32], dim: usize) -> Result<Vec<f32>, VectorError> {
        self.check(v, dim)?;
        let mut out = vec![0.0; v.len()];
        self.prepare_into(v, &mut out);
        Ok(out)
    }

    /// Writes `v` prepared into `out` (same length), without checking it.
    pub(crate) fn prepare_into(self, v: &[f32], out: &mut [f32]) {
        assert_eq!(v.len(), out.len());
        match self {
            Metric::L2 | Metric::InnerProduct => out.copy_from_slice(v),
            Metric::Cosine => {
                // f64: the squares of f32 values neither overflow nor underflow, so only the
                // exact zero vector has norm 0 (and stays zero).
                let norm = v
                    .iter()
                    .map(|&x| f64::from(x) * f64::from(x))
                    .sum::<f64>()
                    .sqrt();
                for (o, &x) in out.iter_mut().zip(v) {
                    *o = if norm > 0.0 {
                        (f64::from(x) / norm) as f32
                    } else {
                        x
                    };
                }
            }
        }
    }

    /// The ordering key of two *prepared* vectors with `kernels` (never −0.0; finite for
    /// checked vectors, see [`crate::MAX_COMPONENT_MAGNITUDE`]).
    #[inline]
    pub fn key(self, kernels: Kernels, q: &[f32], v: &[f32]) -> f32 {
        match self {
            Metric::L2 => kernels.l2_squared(q, v),
            Metric::Cosine => 1.0 - kernels.dot(q, v).clamp(-1.0, 1.0),
            // `+ 0.0` turns −0.0 into +0.0, so equal keys have equal bits.
            Metric::InnerProduct => -kernels.dot(q, v) + 0.0,
        }
    }

    /// The reported distance for an ordering key: its square root for L2 (correctly rounded,
    /// monotone), the key itself otherwise.
    #[inline]
    pub fn distance_from_key(self, key: f32) -> f32 {
        match self {
            Metric::L2 => key.sqrt(),
            Metric::Cosine | Metric::InnerProduct => key,
        }
    }

    /// The reported distance between two raw vectors (prepared here; not checked) with
    /// [`Kernels::detected`]: the same bits an index reports for them. Panics if the lengths
    /// differ.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        self.distance_with(Kernels::detected(), a, b)
    }

    /// [`Metric::distance`] with the given kernels (the same bits with any of them).
    pub fn distance_with(self, kernels: Kernels, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "distance of vectors of different lengths");
        let key = match self {
            Metric::L2 | Metric::InnerProduct => self.key(kernels, a, b),
            Metric::Cosine => {
                let (mut pa, mut pb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
                self.prepare_into(a, &mut pa);
                self.prepare_into(b, &mut pb);
                self.key(kernels, &pa, &pb)
            }
        };
        self.distance_from_key(key)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = VectorError;

    fn from_str(s: &str) -> Result<Metric, VectorError> {
        Metric::parse(s)
    }
}
