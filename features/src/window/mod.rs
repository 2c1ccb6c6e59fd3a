//! [`WindowState`]: the buckets of one (view, key) and their per-aggregate partial states,
//! stored column-wise, and the window combine.
//!
//! This module holds the state itself and its column storage (the arena, its accessors, the
//! limb window of the exact accumulators); the rest lives in:
//!
//! * [`layout`] — how the aggregates map onto columns ([`Plan`], [`Layout`], [`Cursor`]) and
//!   the side columns ([`SideCol`]);
//! * [`keys`] — the i64 keys of fixed-width values and the first/last pick order;
//! * [`update`] — bucket maintenance: inserting buckets, applying events, expiry;
//! * [`read`] — the combine of a bucket range, through the SIMD or scalar kernels of
//!   [`crate::simd`] (bit-identical results).

mod keys;
mod layout;
mod read;
mod update;

pub(crate) use layout::{Cursor, Layout, Plan, SideCol};

use crate::exact::{self, MAX_LIMBS};
use crate::spec::AggSpec;

/// Most aggregates one [`WindowState`] (one view) can hold.
pub const MAX_AGGREGATES: usize = 4096;

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
    use crate::distinct::DistinctSet;

    #[test]
    fn inline_size() {
        assert_eq!(std::mem::size_of::<WindowState>(), 56);
        assert_eq!(std::mem::size_of::<DistinctSet>(), 24);
        assert_eq!(std::mem::size_of::<SideCol>(), 32);
        assert_eq!(std::mem::size_of::<Box<[u8]>>(), 16);
    }
}
