//! Bucket maintenance of a [`WindowState`]: finding or inserting a bucket in id order,
//! applying one event to every aggregate's partial state (exact accumulators included), and
//! expiry of old buckets.

use tarn_types::Value;

use super::keys::{better, blob_of, key_of, num_of};
use super::{Cursor, Plan, SideCol, WindowState};
use crate::distinct::distinct_hash;
use crate::exact::{self, Addend, ACC_FLAG_BITS, BUF, F_NONNEGZERO, MAX_LIMBS};
use crate::spec::AggSpec;

impl WindowState {
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
}
