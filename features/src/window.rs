//! [`WindowState`]: the buckets of one (view, key) and their per-aggregate partial states,
//! stored column-wise, and the window combine.

use tarn_types::{ColumnType, Value};

use crate::distinct::{self, distinct_hash, DistinctSet};
use crate::exact::{self, Addend, ACC_FLAG_BITS, BUF, F_NONNEGZERO, MAX_LIMBS};
use crate::simd::{self, Kernels};
use crate::spec::{AggKind, AggSpec};

/// Most aggregates one [`WindowState`] (one view) can hold.
pub const MAX_AGGREGATES: usize = 4096;

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
    fn insert_default(&mut self, pos: usize) {
        match self {
            SideCol::Distinct(v) => v.insert(pos, DistinctSet::default()),
            SideCol::Blob(v) => v.insert(pos, Box::default()),
        }
    }

    fn drop_front(&mut self, k: usize) {
        match self {
            SideCol::Distinct(v) => {
                v.drain(..k);
            }
            SideCol::Blob(v) => {
                v.drain(..k);
            }
        }
    }

    fn clear(&mut self) {
        match self {
            SideCol::Distinct(v) => *v = Vec::new(),
            SideCol::Blob(v) => *v = Vec::new(),
        }
    }

    fn shrink(&mut self) {
        match self {
            SideCol::Distinct(v) => v.shrink_to_fit(),
            SideCol::Blob(v) => v.shrink_to_fit(),
        }
    }

    fn heap_bytes(&self) -> usize {
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

/// The window state of one (view, key): its buckets, sorted by id, and one partial state per
/// bucket and aggregate, laid out column-wise.
///
/// # Layout
///
/// One allocation, `arena: Box<[u64]>`, holds `ncols` columns of `cap` words each (column `c`
/// is `arena[c·cap .. c·cap + cap]`, its first `len` entries valid, entry `i` belonging to the
/// `i`-th bucket in id order), so the buckets of an id range are one contiguous slice of every
/// column (found by binary search on column 0), which the read reduces with SIMD:
///
/// | columns | content |
/// |---|---|
/// | 1 | bucket ids (i64) |
/// | F = ⌈flag bits / 64⌉ | flag bits, OR-merged: a presence bit for `sum`, `min`, `max`, `first`, `last`, and 4 bits (NaN, +inf, −inf, not-−0.0) per exact accumulator; an aggregate's bits (1, 4, 5 or 8) start at a multiple of their count rounded up to a power of two, so they never straddle two words |
/// | C (fixed) | per aggregate: `count(*)`/`count`: count; `sum` BIGINT: wrapping sum; `min`/`max`: i64 key; `avg` and variances: count; `first`/`last`: time, plus the value's i64 key for fixed-width types |
/// | A × W | per exact accumulator (`sum` DOUBLE: 1, `avg`: 1, variances: 2) W limbs of the fixed-point sum (see `exact`), limb `j` weighing 2^(64·(acc_lo + j) − 1074), two's complement |
///
/// `acc_lo`/`W` form one limb window shared by every accumulator of the key, widened when a
/// value needs it and narrowed to the minimal one when buckets expire; typical data needs
/// W = 1–3. Min/max keys: the value for BIGINT/TIMESTAMP, for DOUBLE the total-order key
/// `b ^ (((b >> 63) as u64) >> 1) as i64` of its bits `b` (integer order = `f64::total_cmp`).
/// An absent min/max/first/last holds the identity of its reduction (`i64::MAX`/`i64::MIN`)
/// so that a range reduces with a plain SIMD min/max; the presence bits say whether any value
/// was seen. `count(DISTINCT)` sets and TEXT/BYTES `first`/`last` values live in side vectors
/// parallel to the buckets.
///
/// # Memory
///
/// `size_of::<WindowState>()` = 56 bytes inline, plus [`WindowState::heap_bytes`]:
///
/// `8 · cap · (1 + F + C + A·W)` for the arena, plus, when the view has side columns, 32 bytes
/// per side column and per side column `capacity · 24` (`count(DISTINCT)`: one `DistinctSet` per
/// bucket, plus 8 bytes per exact hash held, or 4096 bytes once the bucket switched to
/// HyperLogLog) or `capacity · 16` (TEXT/BYTES `first`/`last`: a boxed byte string per bucket,
/// plus the value's length).
///
/// `cap` = `len` for up to 4 buckets, then grows by half (and shrinks back to `len` when expiry
/// leaves less than half used). Example: 10 aggregates (`count(*)`, `sum` DOUBLE, `min`,
/// `max`, `avg`, `count`, `stddev`, `first`, `last` over DOUBLE, `sum` BIGINT): F = 1, C = 11,
/// A = 4, so 8 · (13 + 4W) bytes per bucket: 136 bytes at W = 1, 168 at W = 2; a key with one
/// bucket costs 56 + 168 bytes (+ allocator overhead).
///
/// # Determinism
///
/// Every partial is a commutative, associative function of the bucket's multiset of events
/// (wrapping sums, exact integer sums, min/max under total orders, set union, register max),
/// so the state — and [`WindowState::encode`], which writes the canonical minimal limb window —
/// is identical for any arrival order, and merging buckets equals putting all events into one
/// bucket (except `count(DISTINCT)` over several exact buckets whose union exceeds
/// [`crate::DISTINCT_EXACT_MAX`]: that stays exact, where one bucket would have switched to
/// HyperLogLog).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowState {
    pub(crate) arena: Box<[u64]>,
    pub(crate) side: Box<[SideCol]>,
    /// Largest event time applied; meaningful only when `len > 0`.
    pub(crate) newest: i64,
    pub(crate) len: u32,
    pub(crate) cap: u32,
    /// First accumulator column; `= 1 + flag_words + fixed columns`.
    pub(crate) acc_base: u16,
    pub(crate) accs: u16,
    pub(crate) flag_words: u16,
    pub(crate) acc_lo: u8,
    pub(crate) acc_w: u8,
}

#[inline]
pub(crate) fn f64_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

#[inline]
pub(crate) fn f64_from_key(k: i64) -> f64 {
    f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64)
}

/// The i64 key of a fixed-width value of type `ty` (None for NULL or another type).
#[inline]
fn key_of(ty: ColumnType, v: &Value) -> Option<i64> {
    match (ty, v) {
        (ColumnType::BigInt, Value::Int(i)) => Some(*i),
        (ColumnType::Timestamp, Value::Timestamp(t)) => Some(*t),
        (ColumnType::Double, Value::Double(d)) => Some(f64_key(*d)),
        (ColumnType::Boolean, Value::Bool(b)) => Some(i64::from(*b)),
        _ => None,
    }
}

fn value_of(ty: ColumnType, k: i64) -> Value {
    match ty {
        ColumnType::BigInt => Value::Int(k),
        ColumnType::Timestamp => Value::Timestamp(k),
        ColumnType::Double => Value::Double(f64_from_key(k)),
        _ => Value::Bool(k != 0),
    }
}

fn blob_of(ty: ColumnType, v: &Value) -> Option<&[u8]> {
    match (ty, v) {
        (ColumnType::Text, Value::Text(s)) => Some(s.as_bytes()),
        (ColumnType::Bytes, Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

fn blob_value(ty: ColumnType, b: &[u8]) -> Value {
    match ty {
        ColumnType::Text => Value::Text(String::from_utf8_lossy(b).into_owned()),
        _ => Value::Bytes(b.to_vec()),
    }
}

/// The f64 an `avg`/variance input contributes (BIGINT inputs are converted with `as f64`,
/// round to nearest).
#[inline]
fn num_of(int: bool, v: &Value) -> Option<f64> {
    match (int, v) {
        (true, Value::Int(i)) => Some(*i as f64),
        (false, Value::Double(d)) => Some(*d),
        _ => None,
    }
}

/// Is (t, candidate) a better first (`!last`) / last pick than (cur_t, cur)?
#[inline]
fn better<T: Ord + ?Sized>(last: bool, t: i64, v: &T, cur_t: i64, cur: &T) -> bool {
    if last {
        t > cur_t || (t == cur_t && v > cur)
    } else {
        t < cur_t || (t == cur_t && v < cur)
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

impl WindowState {
    /// An empty state for these aggregates (specs should be validated with
    /// [`AggSpec::result_type`]; the same specs must be passed to every other call).
    ///
    /// # Panics
    ///
    /// With more than [`MAX_AGGREGATES`] specs.
    pub fn new(specs: &[AggSpec]) -> Self {
        assert!(
            specs.len() <= MAX_AGGREGATES,
            "a feature view has at most {MAX_AGGREGATES} aggregates"
        );
        let l = Layout::of(specs);
        let side = specs
            .iter()
            .filter_map(|s| match Plan::of(s) {
                Plan::Distinct => Some(SideCol::Distinct(Vec::new())),
                Plan::FirstLast { blob: true, .. } => Some(SideCol::Blob(Vec::new())),
                _ => None,
            })
            .collect();
        WindowState {
            arena: Box::default(),
            side,
            newest: 0,
            len: 0,
            cap: 0,
            acc_base: l.acc_base() as u16,
            accs: l.accs as u16,
            flag_words: l.flag_words as u16,
            acc_lo: 0,
            acc_w: 0,
        }
    }

    #[inline]
    fn ncols(&self) -> usize {
        usize::from(self.acc_base) + usize::from(self.accs) * usize::from(self.acc_w)
    }

    #[inline]
    fn fixed_col(&self, i: usize) -> usize {
        1 + usize::from(self.flag_words) + i
    }

    #[inline]
    fn acc_col(&self, k: usize, j: usize) -> usize {
        usize::from(self.acc_base) + k * usize::from(self.acc_w) + j
    }

    #[inline]
    pub(crate) fn cell(&self, c: usize, i: usize) -> u64 {
        self.arena[c * self.cap as usize + i]
    }

    #[inline]
    fn cell_mut(&mut self, c: usize, i: usize) -> &mut u64 {
        &mut self.arena[c * self.cap as usize + i]
    }

    /// Entries `a..b` of column `c`.
    #[inline]
    fn col(&self, c: usize, a: usize, b: usize) -> &[u64] {
        let base = c * self.cap as usize;
        &self.arena[base + a..base + b]
    }

    #[inline]
    fn set_bits(&mut self, i: usize, bit: u32, bits: u64) {
        if bits != 0 {
            *self.cell_mut(1 + (bit / 64) as usize, i) |= bits << (bit % 64);
        }
    }

    #[inline]
    fn has_bit(&self, i: usize, bit: u32) -> bool {
        (self.cell(1 + (bit / 64) as usize, i) >> (bit % 64)) & 1 == 1
    }

    /// Number of buckets held.
    pub fn bucket_count(&self) -> usize {
        self.len as usize
    }

    /// The ids of the buckets held, ascending.
    pub fn bucket_ids(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        self.arena[..self.len as usize].iter().map(|&x| x as i64)
    }

    /// The largest event time applied, if any bucket is still held. (Assumes, as
    /// `bucket = floor(event_time / width)` guarantees, that a later event never lands in an
    /// older bucket than an earlier one's: expiry then never drops the newest event.)
    pub fn newest_event_time(&self) -> Option<i64> {
        (self.len > 0).then_some(self.newest)
    }

    /// Heap bytes owned by this state (see the memory formula on [`WindowState`]); add
    /// `size_of::<WindowState>()` for the inline part.
    pub fn heap_bytes(&self) -> usize {
        self.arena.len() * 8
            + self.side.len() * std::mem::size_of::<SideCol>()
            + self.side.iter().map(SideCol::heap_bytes).sum::<usize>()
    }

    /// Re-allocates the arena with `cap` buckets and the accumulator window `[lo, lo + w)`;
    /// limbs outside the old window are zero below it and sign extension above it. A narrower
    /// window must still hold every value (the caller checked with `minimal_acc_window`).
    fn rebuild(&mut self, cap: usize, lo: usize, w: usize) {
        let len = self.len as usize;
        let old_cap = self.cap as usize;
        let (old_lo, old_w) = (usize::from(self.acc_lo), usize::from(self.acc_w));
        let base = usize::from(self.acc_base);
        let accs = usize::from(self.accs);
        let ncols = base + accs * w;
        let mut arena = vec![0u64; ncols * cap].into_boxed_slice();
        for c in 0..base {
            arena[c * cap..c * cap + len].copy_from_slice(&self.arena[c * old_cap..][..len]);
        }
        for k in 0..accs {
            for j in 0..w {
                let abs = lo + j;
                let dst = &mut arena[(base + k * w + j) * cap..][..len];
                if old_w == 0 || abs < old_lo {
                    continue; // zeros
                }
                if abs < old_lo + old_w {
                    let c = base + k * old_w + (abs - old_lo);
                    dst.copy_from_slice(&self.arena[c * old_cap..][..len]);
                } else {
                    let c = base + k * old_w + old_w - 1;
                    for (d, &s) in dst.iter_mut().zip(&self.arena[c * old_cap..][..len]) {
                        *d = ((s as i64) >> 63) as u64;
                    }
                }
            }
        }
        self.arena = arena;
        self.cap = cap as u32;
        self.acc_lo = lo as u8;
        self.acc_w = w as u8;
    }

    /// Limb at absolute index `abs` of accumulator `k` in bucket `i`.
    pub(crate) fn acc_limb(&self, k: usize, i: usize, abs: usize) -> u64 {
        let (lo, w) = (usize::from(self.acc_lo), usize::from(self.acc_w));
        if w == 0 || abs < lo {
            0
        } else if abs < lo + w {
            self.cell(self.acc_col(k, abs - lo), i)
        } else {
            ((self.cell(self.acc_col(k, w - 1), i) as i64) >> 63) as u64
        }
    }

    /// The smallest limb window `[lo, hi)` (absolute) holding every accumulator of every
    /// bucket; `None` when they are all zero.
    pub(crate) fn minimal_acc_window(&self) -> Option<(usize, usize)> {
        let (lo, w) = (usize::from(self.acc_lo), usize::from(self.acc_w));
        if w == 0 {
            return None;
        }
        let mut buf = [0u64; MAX_LIMBS];
        let mut out: Option<(usize, usize)> = None;
        for k in 0..usize::from(self.accs) {
            for i in 0..self.len as usize {
                for (j, b) in buf[..w].iter_mut().enumerate() {
                    *b = self.cell(self.acc_col(k, j), i);
                }
                if let Some((a, b)) = exact::minimal_window(&buf[..w]) {
                    let (a, b) = (lo + a, lo + b);
                    out = Some(match out {
                        None => (a, b),
                        Some((x, y)) => (x.min(a), y.max(b)),
                    });
                }
            }
        }
        out
    }

    fn acc_add(&mut self, k: usize, i: usize, x: f64, flag_bit: u32) {
        match exact::classify(x) {
            Addend::Flags(f) => self.set_bits(i, flag_bit, f),
            Addend::Finite { m, shift, neg } => {
                self.set_bits(i, flag_bit, F_NONNEGZERO);
                self.acc_add_finite(k, i, m, shift, neg);
            }
        }
    }

    fn acc_add_finite(&mut self, k: usize, i: usize, m: u64, shift: u32, neg: bool) {
        let (lo, w) = (usize::from(self.acc_lo), usize::from(self.acc_w));
        let kk = (shift / 64) as usize;
        // Working window: the current one and the addend's two limbs, plus a carry limb.
        let (wlo, whi) = if w == 0 {
            (kk, kk + 3)
        } else {
            (lo.min(kk), (lo + w).max(kk + 2) + 1)
        };
        let n = (whi - wlo).min(BUF);
        let mut buf = [0u64; BUF];
        for (j, b) in buf[..n].iter_mut().enumerate() {
            *b = self.acc_limb(k, i, wlo + j);
        }
        exact::add_shifted(&mut buf[..n], wlo, m, shift, neg);
        let Some((rl, rh)) = exact::minimal_window(&buf[..n]) else {
            for j in 0..w {
                *self.cell_mut(self.acc_col(k, j), i) = 0;
            }
            return;
        };
        let (al, ah) = (wlo + rl, wlo + rh);
        if w == 0 || al < lo || ah > lo + w {
            let (nl, nh) = if w == 0 {
                (al, ah)
            } else {
                (al.min(lo), ah.max(lo + w))
            };
            // Unreachable clamp (it would take > 2^64 values near f64::MAX in one bucket, or a
            // forged checkpoint): keeps the limb index in range; the sum then wraps.
            let nh = nh.min(MAX_LIMBS).max(nl + 1);
            self.rebuild(self.cap as usize, nl, nh - nl);
        }
        let (lo, w) = (usize::from(self.acc_lo), usize::from(self.acc_w));
        let top_sign = ((buf[n - 1] as i64) >> 63) as u64;
        for j in 0..w {
            let abs = lo + j;
            let v = if abs < wlo {
                0
            } else if abs - wlo < n {
                buf[abs - wlo]
            } else {
                top_sign
            };
            *self.cell_mut(self.acc_col(k, j), i) = v;
        }
    }

    /// Index of bucket `bucket`, inserting it (in id order) when absent.
    fn find_or_insert(&mut self, specs: &[AggSpec], bucket: i64) -> usize {
        let len = self.len as usize;
        let ids = &self.arena[..len];
        if len > 0 && ids[len - 1] as i64 == bucket {
            return len - 1;
        }
        let pos = ids.partition_point(|&x| (x as i64) < bucket);
        if pos < len && ids[pos] as i64 == bucket {
            return pos;
        }
        if len == self.cap as usize {
            let cap = if len < 4 { len + 1 } else { len + len / 2 };
            self.rebuild(cap, usize::from(self.acc_lo), usize::from(self.acc_w));
        }
        let cap = self.cap as usize;
        for c in 0..self.ncols() {
            let base = c * cap;
            self.arena
                .copy_within(base + pos..base + len, base + pos + 1);
            self.arena[base + pos] = 0;
        }
        self.arena[pos] = bucket as u64;
        let mut fixed = 0;
        for s in specs {
            let plan = Plan::of(s);
            let (f, ..) = plan.shape();
            let init = plan.init();
            for (j, &v) in init.iter().enumerate().take(f) {
                let c = self.fixed_col(fixed + j);
                *self.cell_mut(c, pos) = v;
            }
            fixed += f;
        }
        for s in self.side.iter_mut() {
            s.insert_default(pos);
        }
        self.len += 1;
        pos
    }

    /// Applies one event to bucket `bucket` (created if absent, inserted in order).
    /// `inputs[i]` is `None` when aggregate `i`'s filter rejected the event, else
    /// `Some(value)` (`Value::Null` allowed; for `count(*)` pass `Some(&Value::Null)`). A value
    /// of another type than the aggregate's input type is ignored like NULL (callers validate
    /// types before). The bucket is created (and the event time recorded) even if every filter
    /// rejects the event.
    pub fn update(
        &mut self,
        specs: &[AggSpec],
        bucket: i64,
        event_time_us: i64,
        inputs: &[Option<&Value>],
    ) {
        debug_assert_eq!(inputs.len(), specs.len(), "one input per aggregate");
        debug_assert!(self.matches(specs), "specs differ from WindowState::new");
        let was_empty = self.len == 0;
        let i = self.find_or_insert(specs, bucket);
        self.newest = if was_empty {
            event_time_us
        } else {
            self.newest.max(event_time_us)
        };
        let mut cur = Cursor::default();
        for (spec, input) in specs.iter().zip(inputs) {
            let plan = Plan::of(spec);
            cur.align(plan);
            if let Some(v) = input {
                self.apply(plan, cur, i, event_time_us, v);
            }
            cur.advance(plan);
        }
    }

    fn apply(&mut self, plan: Plan, cur: Cursor, i: usize, t: i64, v: &Value) {
        let fc = self.fixed_col(cur.fixed);
        match plan {
            Plan::Count { star } => {
                if star || !v.is_null() {
                    let c = self.cell_mut(fc, i);
                    *c = c.wrapping_add(1);
                }
            }
            Plan::SumInt => {
                if let Value::Int(x) = v {
                    let c = self.cell_mut(fc, i);
                    *c = c.wrapping_add(*x as u64);
                    self.set_bits(i, cur.bit, 1);
                }
            }
            Plan::SumDouble => {
                if let Value::Double(x) = v {
                    self.set_bits(i, cur.bit, 1);
                    self.acc_add(cur.acc, i, *x, cur.bit + 1);
                }
            }
            Plan::MinMax { max, ty } => {
                if let Some(key) = key_of(ty, v) {
                    self.set_bits(i, cur.bit, 1);
                    let c = self.cell_mut(fc, i);
                    let old = *c as i64;
                    *c = if max { old.max(key) } else { old.min(key) } as u64;
                }
            }
            Plan::Avg { int } => {
                if let Some(x) = num_of(int, v) {
                    let c = self.cell_mut(fc, i);
                    *c = c.wrapping_add(1);
                    self.acc_add(cur.acc, i, x, cur.bit);
                }
            }
            Plan::Moments { int, .. } => {
                if let Some(x) = num_of(int, v) {
                    let c = self.cell_mut(fc, i);
                    *c = c.wrapping_add(1);
                    self.acc_add(cur.acc, i, x, cur.bit);
                    self.acc_add(cur.acc + 1, i, x * x, cur.bit + ACC_FLAG_BITS);
                }
            }
            Plan::Distinct => {
                if let (Some(h), SideCol::Distinct(sets)) =
                    (distinct_hash(v), &mut self.side[cur.side])
                {
                    sets[i].insert(h);
                }
            }
            Plan::FirstLast {
                last,
                ty,
                blob: false,
            } => {
                if let Some(key) = key_of(ty, v) {
                    let present = self.has_bit(i, cur.bit);
                    let (ct, cv) = (self.cell(fc, i) as i64, self.cell(fc + 1, i) as i64);
                    if !present || better(last, t, &key, ct, &cv) {
                        *self.cell_mut(fc, i) = t as u64;
                        *self.cell_mut(fc + 1, i) = key as u64;
                        self.set_bits(i, cur.bit, 1);
                    }
                }
            }
            Plan::FirstLast {
                last,
                ty,
                blob: true,
            } => {
                if let Some(bytes) = blob_of(ty, v) {
                    let present = self.has_bit(i, cur.bit);
                    let ct = self.cell(fc, i) as i64;
                    if let SideCol::Blob(vals) = &mut self.side[cur.side] {
                        if !present || better(last, t, bytes, ct, &vals[i][..]) {
                            vals[i] = bytes.into();
                            *self.cell_mut(fc, i) = t as u64;
                            self.set_bits(i, cur.bit, 1);
                        }
                    }
                }
            }
        }
    }

    /// Drops every bucket with id < `bucket` (expiry). Memory is given back: the arena shrinks
    /// when less than half of it is used, the limb window narrows to what the remaining buckets
    /// need, and a state without buckets owns no heap beyond its side-column headers.
    pub fn expire_before(&mut self, bucket: i64) {
        let len = self.len as usize;
        let k = self.arena[..len].partition_point(|&x| (x as i64) < bucket);
        if k == 0 {
            return;
        }
        if k == len {
            self.arena = Box::default();
            self.len = 0;
            self.cap = 0;
            self.acc_lo = 0;
            self.acc_w = 0;
            self.newest = 0;
            for s in self.side.iter_mut() {
                s.clear();
            }
            return;
        }
        let cap = self.cap as usize;
        for c in 0..self.ncols() {
            let base = c * cap;
            self.arena.copy_within(base + k..base + len, base);
        }
        for s in self.side.iter_mut() {
            s.drop_front(k);
        }
        let len = len - k;
        self.len = len as u32;
        let (lo, w) = (usize::from(self.acc_lo), usize::from(self.acc_w));
        let (nl, nw) = match self.minimal_acc_window() {
            Some((a, b)) => (a, b - a),
            None => (0, 0),
        };
        let shrink = cap >= 2 * len + 2;
        if shrink || (nl, nw) != (lo, w) {
            self.rebuild(if shrink { len } else { cap }, nl, nw);
        }
        if shrink {
            for s in self.side.iter_mut() {
                s.shrink();
            }
        }
    }

    /// Bucket index range `[a, b)` of the ids in `[lo, hi]`.
    fn range(&self, lo: i64, hi: i64) -> (usize, usize) {
        if lo > hi {
            return (0, 0);
        }
        let ids = &self.arena[..self.len as usize];
        let a = ids.partition_point(|&x| (x as i64) < lo);
        let b = a + ids[a..].partition_point(|&x| (x as i64) <= hi);
        (a, b)
    }

    /// Combines the buckets with id in `[lo, hi]` into one value per aggregate (the
    /// aggregates' empty values when no bucket is in range: 0 for the counts, NULL for the
    /// others). Uses the AVX2 kernels when the CPU has them; bit-identical to
    /// [`WindowState::read_scalar`].
    pub fn read(&self, specs: &[AggSpec], lo: i64, hi: i64) -> Vec<Value> {
        self.read_with(specs, lo, hi, simd::detect())
    }

    /// [`WindowState::read`] with the scalar kernels forced (benchmarks and tests).
    pub fn read_scalar(&self, specs: &[AggSpec], lo: i64, hi: i64) -> Vec<Value> {
        self.read_with(specs, lo, hi, Kernels::Scalar)
    }

    fn read_with(&self, specs: &[AggSpec], lo: i64, hi: i64, kern: Kernels) -> Vec<Value> {
        debug_assert!(self.matches(specs), "specs differ from WindowState::new");
        let (a, b) = self.range(lo, hi);
        let fw = usize::from(self.flag_words);
        let mut small = [0u64; 4];
        let mut large = Vec::new();
        let flags: &mut [u64] = if fw <= small.len() {
            &mut small[..fw]
        } else {
            large.resize(fw, 0);
            &mut large
        };
        for (w, f) in flags.iter_mut().enumerate() {
            *f = kern.or_all(self.col(1 + w, a, b));
        }
        let flags: &[u64] = flags;
        let bits = |bit: u32, n: u32| -> u64 {
            (flags[(bit / 64) as usize] >> (bit % 64)) & ((1u64 << n) - 1)
        };
        let mut out = Vec::with_capacity(specs.len());
        let mut cur = Cursor::default();
        for spec in specs {
            let plan = Plan::of(spec);
            cur.align(plan);
            let fc = self.fixed_col(cur.fixed);
            let v = match plan {
                Plan::Count { .. } => Value::Int(kern.sum_wrapping(self.col(fc, a, b)) as i64),
                Plan::SumInt => {
                    if bits(cur.bit, 1) == 1 {
                        Value::Int(kern.sum_wrapping(self.col(fc, a, b)) as i64)
                    } else {
                        Value::Null
                    }
                }
                Plan::SumDouble => {
                    if bits(cur.bit, 1) == 1 {
                        let f = bits(cur.bit + 1, ACC_FLAG_BITS);
                        Value::Double(exact::finish(f, self.acc_sum(kern, cur.acc, a, b)))
                    } else {
                        Value::Null
                    }
                }
                Plan::MinMax { max, ty } => {
                    if bits(cur.bit, 1) == 1 {
                        let col = self.col(fc, a, b);
                        let k = if max {
                            kern.max_i64(col)
                        } else {
                            kern.min_i64(col)
                        };
                        value_of(ty, k)
                    } else {
                        Value::Null
                    }
                }
                Plan::Avg { .. } => {
                    let n = kern.sum_wrapping(self.col(fc, a, b));
                    if n == 0 {
                        Value::Null
                    } else {
                        let s = exact::finish(
                            bits(cur.bit, ACC_FLAG_BITS),
                            self.acc_sum(kern, cur.acc, a, b),
                        );
                        Value::Double(s / n as f64)
                    }
                }
                Plan::Moments { kind, .. } => {
                    let n = kern.sum_wrapping(self.col(fc, a, b));
                    let sample = matches!(kind, AggKind::Variance | AggKind::Stddev);
                    if n == 0 || (sample && n < 2) {
                        Value::Null
                    } else {
                        let s = exact::finish(
                            bits(cur.bit, ACC_FLAG_BITS),
                            self.acc_sum(kern, cur.acc, a, b),
                        );
                        let q = exact::finish(
                            bits(cur.bit + ACC_FLAG_BITS, ACC_FLAG_BITS),
                            self.acc_sum(kern, cur.acc + 1, a, b),
                        );
                        match exact::variance_from_sums(n, s, q, sample) {
                            Some(var) if matches!(kind, AggKind::Stddev | AggKind::StddevPop) => {
                                Value::Double(var.sqrt())
                            }
                            Some(var) => Value::Double(var),
                            None => Value::Null,
                        }
                    }
                }
                Plan::Distinct => match &self.side[cur.side] {
                    SideCol::Distinct(sets) => Value::Int(distinct::combine(sets[a..b].iter())),
                    SideCol::Blob(_) => Value::Int(0),
                },
                Plan::FirstLast { last, ty, blob } => {
                    if bits(cur.bit, 1) == 1 {
                        self.read_first_last(kern, cur, fc, a, b, last, ty, blob)
                    } else {
                        Value::Null
                    }
                }
            };
            out.push(v);
            cur.advance(plan);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn read_first_last(
        &self,
        kern: Kernels,
        cur: Cursor,
        fc: usize,
        a: usize,
        b: usize,
        last: bool,
        ty: ColumnType,
        blob: bool,
    ) -> Value {
        let times = self.col(fc, a, b);
        let best_t = if last {
            kern.max_i64(times)
        } else {
            kern.min_i64(times)
        };
        let mut pick: Option<usize> = None;
        for (off, &t) in times.iter().enumerate() {
            let i = a + off;
            if t as i64 != best_t || !self.has_bit(i, cur.bit) {
                continue;
            }
            pick = Some(match pick {
                None => i,
                Some(p) => {
                    let better_here = if blob {
                        match &self.side[cur.side] {
                            SideCol::Blob(v) => better(last, 0, &v[i][..], 0, &v[p][..]),
                            SideCol::Distinct(_) => false,
                        }
                    } else {
                        let (x, y) = (self.cell(fc + 1, i) as i64, self.cell(fc + 1, p) as i64);
                        better(last, 0, &x, 0, &y)
                    };
                    if better_here {
                        i
                    } else {
                        p
                    }
                }
            });
        }
        match pick {
            None => Value::Null,
            Some(i) if blob => match &self.side[cur.side] {
                SideCol::Blob(v) => blob_value(ty, &v[i]),
                SideCol::Distinct(_) => Value::Null,
            },
            Some(i) => value_of(ty, self.cell(fc + 1, i) as i64),
        }
    }

    /// The exactly rounded sum of accumulator `k` over buckets `a..b` (finite part only).
    fn acc_sum(&self, kern: Kernels, k: usize, a: usize, b: usize) -> f64 {
        let w = usize::from(self.acc_w);
        if w == 0 {
            return 0.0;
        }
        // Avoid zeroing a full BUF-limb scratch for the usual narrow windows.
        let mut small = [0u64; 8];
        let mut large_buf;
        let out: &mut [u64] = if w + 2 <= small.len() {
            &mut small[..w + 2]
        } else {
            large_buf = [0u64; BUF];
            &mut large_buf[..w + 2]
        };
        let mut carry: i128 = 0;
        for (j, limb) in out.iter_mut().enumerate().take(w) {
            let col = self.col(self.acc_col(k, j), a, b);
            let s = if j == w - 1 {
                kern.sum_signed_wide(col)
            } else {
                kern.sum_wide(col) as i128
            };
            let t = s.wrapping_add(carry);
            *limb = t as u64;
            carry = t >> 64;
        }
        out[w] = carry as u64;
        out[w + 1] = (carry >> 64) as u64;
        exact::round_to_f64(out, usize::from(self.acc_lo))
    }

    /// Whether `specs` have the shape this state was created with.
    pub(crate) fn matches(&self, specs: &[AggSpec]) -> bool {
        let l = Layout::of(specs);
        l.acc_base() == usize::from(self.acc_base)
            && l.accs == usize::from(self.accs)
            && l.flag_words == usize::from(self.flag_words)
            && l.sides == self.side.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_order_key() {
        let xs = [
            f64::NEG_INFINITY,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::from_bits(1),
            1.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for w in xs.windows(2) {
            assert!(f64_key(w[0]) < f64_key(w[1]), "{} {}", w[0], w[1]);
            assert_eq!(w[0].total_cmp(&w[1]), f64_key(w[0]).cmp(&f64_key(w[1])));
        }
        for x in xs {
            assert_eq!(f64_from_key(f64_key(x)).to_bits(), x.to_bits());
        }
        assert!(f64_key(-f64::NAN) < f64_key(f64::NEG_INFINITY));
    }

    #[test]
    fn inline_size() {
        assert_eq!(std::mem::size_of::<WindowState>(), 56);
        assert_eq!(std::mem::size_of::<DistinctSet>(), 24);
        assert_eq!(std::mem::size_of::<SideCol>(), 32);
        assert_eq!(std::mem::size_of::<Box<[u8]>>(), 16);
    }
}
