//! Aggregate specifications: which aggregate over which input type, and its result type.

use tarn_types::ColumnType;

/// The aggregates a feature view supports. The numeric tags ([`AggKind::tag`]) are part of the
/// checkpoint encoding of a [`crate::WindowState`]: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AggKind {
    /// `count(*)`: events that pass the filter.
    CountStar = 1,
    /// `count(col)`: non-NULL values.
    Count = 2,
    /// `sum(col)`: wrapping i64 for BIGINT, exactly rounded for DOUBLE.
    Sum = 3,
    /// `min(col)`: BIGINT, TIMESTAMP, DOUBLE (IEEE total order).
    Min = 4,
    /// `max(col)`: BIGINT, TIMESTAMP, DOUBLE (IEEE total order).
    Max = 5,
    /// `avg(col)`: exact sum / count.
    Avg = 6,
    /// `variance(col)` (= `var_samp`, n − 1 denominator).
    Variance = 7,
    /// `stddev(col)` (= `stddev_samp`, n − 1 denominator).
    Stddev = 8,
    /// `var_pop(col)` (n denominator).
    VarPop = 9,
    /// `stddev_pop(col)` (n denominator).
    StddevPop = 10,
    /// `count(DISTINCT col)`: exact up to [`crate::DISTINCT_EXACT_MAX`] per bucket, then HLL.
    CountDistinct = 11,
    /// `first(col)`: the value with the smallest event time.
    First = 12,
    /// `last(col)`: the value with the largest event time.
    Last = 13,
}

impl AggKind {
    /// Every kind, in tag order.
    pub const ALL: [AggKind; 13] = [
        AggKind::CountStar,
        AggKind::Count,
        AggKind::Sum,
        AggKind::Min,
        AggKind::Max,
        AggKind::Avg,
        AggKind::Variance,
        AggKind::Stddev,
        AggKind::VarPop,
        AggKind::StddevPop,
        AggKind::CountDistinct,
        AggKind::First,
        AggKind::Last,
    ];

    /// The stable numeric tag (checkpoint format).
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// Inverse of [`AggKind::tag`].
    pub fn from_tag(tag: u8) -> Option<AggKind> {
        AggKind::ALL.get(usize::from(tag).wrapping_sub(1)).copied()
    }

    /// The SQL spelling, as error messages print it.
    pub fn sql_name(self) -> &'static str {
        match self {
            AggKind::CountStar => "count(*)",
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Avg => "avg",
            AggKind::Variance => "variance",
            AggKind::Stddev => "stddev",
            AggKind::VarPop => "var_pop",
            AggKind::StddevPop => "stddev_pop",
            AggKind::CountDistinct => "count(DISTINCT)",
            AggKind::First => "first",
            AggKind::Last => "last",
        }
    }
}

/// One aggregate of a feature view: its kind and the type of its input column (`None` only for
/// `count(*)`). A `FILTER (WHERE …)` is not part of the spec: the caller evaluates it and passes
/// `None` as the aggregate's input in [`crate::WindowState::update`] when it rejects an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AggSpec {
    pub kind: AggKind,
    pub input: Option<ColumnType>,
}

impl AggSpec {
    pub fn new(kind: AggKind, input: Option<ColumnType>) -> AggSpec {
        AggSpec { kind, input }
    }

    /// Validates the kind against the input type and returns the result type:
    ///
    /// | aggregate | accepted input | result |
    /// |---|---|---|
    /// | `count(*)` | none | BIGINT |
    /// | `count`, `count(DISTINCT)` | any | BIGINT |
    /// | `sum` | BIGINT, DOUBLE | same as input |
    /// | `min`, `max` | BIGINT, TIMESTAMP, DOUBLE | same as input |
    /// | `avg`, `variance`, `stddev`, `var_pop`, `stddev_pop` | BIGINT, DOUBLE | DOUBLE |
    /// | `first`, `last` | any | same as input |
    ///
    /// A [`crate::WindowState`] must only be used with specs accepted here.
    pub fn result_type(&self) -> Result<ColumnType, String> {
        use ColumnType::*;
        let name = self.kind.sql_name();
        let input = match (self.kind, self.input) {
            (AggKind::CountStar, None) => return Ok(BigInt),
            (AggKind::CountStar, Some(t)) => {
                return Err(format!("count(*) takes no input column (got a {t} column)"))
            }
            (_, None) => return Err(format!("{name} needs an input column")),
            (_, Some(t)) => t,
        };
        let bad = |allowed: &str| {
            Err(format!(
                "{name} accepts {allowed} input, not {}",
                input.sql_name()
            ))
        };
        match self.kind {
            AggKind::CountStar | AggKind::Count | AggKind::CountDistinct => Ok(BigInt),
            AggKind::Sum => match input {
                BigInt | Double => Ok(input),
                _ => bad("BIGINT or DOUBLE"),
            },
            AggKind::Min | AggKind::Max => match input {
                BigInt | Timestamp | Double => Ok(input),
                _ => bad("BIGINT, TIMESTAMP or DOUBLE"),
            },
            AggKind::Avg
            | AggKind::Variance
            | AggKind::Stddev
            | AggKind::VarPop
            | AggKind::StddevPop => match input {
                BigInt | Double => Ok(Double),
                _ => bad("BIGINT or DOUBLE"),
            },
            AggKind::First | AggKind::Last => Ok(input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType::*;

    const TYPES: [ColumnType; 6] = [Boolean, BigInt, Double, Text, Bytes, Timestamp];

    #[test]
    fn tags_round_trip() {
        for k in AggKind::ALL {
            assert_eq!(AggKind::from_tag(k.tag()), Some(k));
        }
        assert_eq!(AggKind::from_tag(0), None);
        assert_eq!(AggKind::from_tag(14), None);
    }

    #[test]
    fn result_types() {
        let rt = |k, t| AggSpec::new(k, t).result_type();
        assert_eq!(rt(AggKind::CountStar, None), Ok(BigInt));
        assert!(rt(AggKind::CountStar, Some(BigInt))
            .unwrap_err()
            .contains("no input"));
        for t in TYPES {
            assert_eq!(rt(AggKind::Count, Some(t)), Ok(BigInt));
            assert_eq!(rt(AggKind::CountDistinct, Some(t)), Ok(BigInt));
            assert_eq!(rt(AggKind::First, Some(t)), Ok(t));
            assert_eq!(rt(AggKind::Last, Some(t)), Ok(t));
            let num = matches!(t, BigInt | Double);
            assert_eq!(rt(AggKind::Sum, Some(t)).is_ok(), num);
            for k in [
                AggKind::Avg,
                AggKind::Variance,
                AggKind::Stddev,
                AggKind::VarPop,
                AggKind::StddevPop,
            ] {
                assert_eq!(rt(k, Some(t)).ok(), num.then_some(Double));
            }
            let ord = matches!(t, BigInt | Double | Timestamp);
            assert_eq!(rt(AggKind::Min, Some(t)).ok(), ord.then_some(t));
            assert_eq!(rt(AggKind::Max, Some(t)).ok(), ord.then_some(t));
        }
        assert_eq!(rt(AggKind::Sum, Some(Double)), Ok(Double));
        assert_eq!(
            rt(AggKind::Sum, Some(Text)),
            Err("sum accepts BIGINT or DOUBLE input, not TEXT".into())
        );
        assert!(rt(AggKind::Min, None)
            .unwrap_err()
            .contains("needs an input"));
    }
}
