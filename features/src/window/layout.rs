//! How the aggregates of a view map onto the columns of a [`WindowState`](super::WindowState):
//! the storage [`Plan`] of each aggregate, the column counts of a spec list ([`Layout`]), the
//! [`Cursor`] that walks the columns spec by spec, and the per-bucket side columns
//! ([`SideCol`]) of variable-size state.

use tarn_types::ColumnType;

use crate::distinct::DistinctSet;
use crate::exact::ACC_FLAG_BITS;
use crate::spec::{AggKind, AggSpec};

/// How one aggregate is stored (derived from its [`AggSpec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// `count(*)` (`star`) or `count(col)`: one u64 count column.
    Count { star: bool },
    /// `sum` over BIGINT: one wrapping i64 column + a presence bit.
    SumInt,
    /// `sum` over DOUBLE: one exact accumulator + presence bit + 4 accumulator flag bits.
    SumDouble,
    /// `min`/`max`: one i64 key column (identity sentinel when absent) + presence bit.
    MinMax { max: bool, ty: ColumnType },
    /// `avg`: a count column + one exact accumulator (+ 4 flag bits).
    Avg { int: bool },
    /// Variances: a count column + accumulators Σx and Σx² (+ 2 × 4 flag bits).
    Moments { kind: AggKind, int: bool },
    /// `count(DISTINCT)`: a side column of [`DistinctSet`]s.
    Distinct,
    /// `first`/`last`: a time column (sentinel when absent) + a value key column (fixed-width
    /// types) or a side column of byte strings (TEXT, BYTES) + presence bit.
    FirstLast {
        last: bool,
        ty: ColumnType,
        blob: bool,
    },
}

impl Plan {
    /// Specs rejected by [`AggSpec::result_type`] still get a plan (they simply never see a
    /// value they accept), so a bad spec cannot make the state panic.
    pub(crate) fn of(spec: &AggSpec) -> Plan {
        let ty = spec.input.unwrap_or(ColumnType::Boolean);
        let int = ty == ColumnType::BigInt;
        match spec.kind {
            AggKind::CountStar => Plan::Count { star: true },
            AggKind::Count => Plan::Count { star: false },
            AggKind::Sum if ty == ColumnType::Double => Plan::SumDouble,
            AggKind::Sum => Plan::SumInt,
            AggKind::Min => Plan::MinMax { max: false, ty },
            AggKind::Max => Plan::MinMax { max: true, ty },
            AggKind::Avg => Plan::Avg { int },
            AggKind::Variance | AggKind::Stddev | AggKind::VarPop | AggKind::StddevPop => {
                Plan::Moments {
                    kind: spec.kind,
                    int,
                }
            }
            AggKind::CountDistinct => Plan::Distinct,
            AggKind::First | AggKind::Last => Plan::FirstLast {
                last: spec.kind == AggKind::Last,
                ty,
                blob: matches!(ty, ColumnType::Text | ColumnType::Bytes),
            },
        }
    }

    /// (fixed u64 columns, flag bits, exact accumulators, side columns).
    pub(crate) fn shape(self) -> (usize, u32, usize, usize) {
        match self {
            Plan::Count { .. } => (1, 0, 0, 0),
            Plan::SumInt => (1, 1, 0, 0),
            Plan::SumDouble => (0, 1 + ACC_FLAG_BITS, 1, 0),
            Plan::MinMax { .. } => (1, 1, 0, 0),
            Plan::Avg { .. } => (1, ACC_FLAG_BITS, 1, 0),
            Plan::Moments { .. } => (1, 2 * ACC_FLAG_BITS, 2, 0),
            Plan::Distinct => (0, 0, 0, 1),
            Plan::FirstLast { blob: false, .. } => (2, 1, 0, 0),
            Plan::FirstLast { blob: true, .. } => (1, 1, 0, 1),
        }
    }

    /// Initial values of the fixed columns of a new bucket.
    pub(crate) fn init(self) -> [u64; 2] {
        match self {
            Plan::MinMax { max: false, .. } => [i64::MAX as u64, 0],
            Plan::MinMax { max: true, .. } => [i64::MIN as u64, 0],
            Plan::FirstLast { last: false, .. } => [i64::MAX as u64, 0],
            Plan::FirstLast { last: true, .. } => [i64::MIN as u64, 0],
            _ => [0, 0],
        }
    }
}

/// Column counts of a spec list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) flag_words: usize,
    pub(crate) fixed: usize,
    pub(crate) accs: usize,
    pub(crate) sides: usize,
}

impl Layout {
    pub(crate) fn of(specs: &[AggSpec]) -> Layout {
        let mut cur = Cursor::default();
        for s in specs {
            let plan = Plan::of(s);
            cur.align(plan);
            cur.advance(plan);
        }
        Layout {
            flag_words: cur.bit.div_ceil(64) as usize,
            fixed: cur.fixed,
            accs: cur.acc,
            sides: cur.side,
        }
    }

    /// First accumulator column (= number of non-accumulator columns).
    pub(crate) fn acc_base(&self) -> usize {
        1 + self.flag_words + self.fixed
    }
}

/// Per-bucket variable-size state, one entry per bucket (parallel to the bucket ids).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SideCol {
    Distinct(Vec<DistinctSet>),
    /// `first`/`last` of TEXT/BYTES: the value's bytes (empty when absent).
    Blob(Vec<Box<[u8]>>),
}

impl SideCol {
    pub(super) fn insert_default(&mut self, pos: usize) {
        match self {
            SideCol::Distinct(v) => v.insert(pos, DistinctSet::default()),
            SideCol::Blob(v) => v.insert(pos, Box::default()),
        }
    }

    pub(super) fn drop_front(&mut self, k: usize) {
        match self {
            SideCol::Distinct(v) => {
                v.drain(..k);
            }
            SideCol::Blob(v) => {
                v.drain(..k);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        match self {
            SideCol::Distinct(v) => *v = Vec::new(),
            SideCol::Blob(v) => *v = Vec::new(),
        }
    }

    pub(super) fn shrink(&mut self) {
        match self {
            SideCol::Distinct(v) => v.shrink_to_fit(),
            SideCol::Blob(v) => v.shrink_to_fit(),
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            SideCol::Distinct(v) => {
                v.capacity() * std::mem::size_of::<DistinctSet>()
                    + v.iter().map(DistinctSet::heap_bytes).sum::<usize>()
            }
            SideCol::Blob(v) => {
                v.capacity() * std::mem::size_of::<Box<[u8]>>()
                    + v.iter().map(|b| b.len()).sum::<usize>()
            }
        }
    }
}

/// Cursors over the columns while walking the specs in order: call [`Cursor::align`], use
/// the fields for the aggregate, then [`Cursor::advance`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Cursor {
    pub(crate) fixed: usize,
    /// First flag bit of the aggregate. An aggregate's flag bits (1, 4, 5 or 8) start at a
    /// multiple of their size rounded up to a power of two, so they never straddle two words.
    pub(crate) bit: u32,
    pub(crate) acc: usize,
    pub(crate) side: usize,
}

impl Cursor {
    pub(crate) fn align(&mut self, plan: Plan) {
        let size = plan.shape().1.next_power_of_two();
        self.bit = self.bit.next_multiple_of(size);
    }

    pub(crate) fn advance(&mut self, plan: Plan) {
        let (f, b, a, s) = plan.shape();
        self.fixed += f;
        self.bit += b;
        self.acc += a;
        self.side += s;
    }
}
