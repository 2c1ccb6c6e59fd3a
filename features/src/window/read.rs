//! The read side of a [`WindowState`]: the combine of the buckets of an id range into one
//! value per aggregate. [`WindowState::read`] and [`WindowState::read_scalar`] share one
//! implementation and differ only in the [`Kernels`] (AVX2 or scalar, see [`crate::simd`])
//! that reduce the columns, so their results are bit-identical.

use tarn_types::{ColumnType, Value};

use super::keys::{better, blob_value, value_of};
use super::{Cursor, Plan, SideCol, WindowState};
use crate::distinct;
use crate::exact::{self, ACC_FLAG_BITS, BUF};
use crate::simd::{self, Kernels};
use crate::spec::{AggKind, AggSpec};

impl WindowState {
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
}
