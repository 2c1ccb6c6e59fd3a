//! Checkpoint encoding of a [`WindowState`]: see [`WindowState::encode`].

use crate::distinct::{DistinctSet, DISTINCT_EXACT_MAX, HLL_MAX_RANK, HLL_REGISTERS};
use crate::exact::MAX_LIMBS;
use crate::spec::AggSpec;
use crate::window::{Cursor, Layout, Plan, SideCol, WindowState};

/// Version byte of [`WindowState::encode`].
pub const WINDOW_FORMAT_VERSION: u8 = 1;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.b.len() - self.pos < n {
            return Err(format!(
                "window state truncated: {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                self.b.len() - self.pos
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    fn left(&self) -> usize {
        self.b.len() - self.pos
    }
}

impl WindowState {
    /// Appends the canonical checkpoint encoding of this state to `out`, little-endian,
    /// versioned ([`WINDOW_FORMAT_VERSION`]):
    ///
    /// ```text
    /// u8   version (= 1)
    /// u16  first accumulator column, u16 accumulators, u16 flag words, u16 side columns: the
    ///      shape of the aggregate list, checked against the specs at decode
    /// u32  len: number of buckets
    /// i64  newest event time (0 when len = 0)
    /// u8   acc_lo, u8 acc_w: the minimal limb window of the exact accumulators (0, 0 if all zero)
    /// columns, each len × u64: bucket ids, flag words, fixed columns (in aggregate order), then
    ///      per exact accumulator its acc_w limbs (limb j weighs 2^(64·(acc_lo + j) − 1074))
    /// side columns, in aggregate order, per bucket:
    ///      count(DISTINCT): u8 0, u32 n, n × u64 sorted hashes | u8 1, 4096 register bytes
    ///      first/last TEXT/BYTES: u32 n, n bytes (n = 0 when absent)
    /// ```
    ///
    /// The encoding is canonical: the same aggregates and the same multiset of events per bucket
    /// give the same bytes, whatever the arrival order and the in-memory capacity or limb window.
    /// [`WindowState::decode`] validates everything (lengths, order of ids and hashes, flag bits,
    /// sentinels of absent values, register ranges, UTF-8) and never panics on bad bytes. The
    /// aggregates themselves are not recorded, only their storage shape: a checkpoint must keep
    /// which view definition a state belongs to (e.g. `min` and `max` have the same shape).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.len as usize;
        out.push(WINDOW_FORMAT_VERSION);
        out.extend_from_slice(&self.acc_base.to_le_bytes());
        out.extend_from_slice(&self.accs.to_le_bytes());
        out.extend_from_slice(&self.flag_words.to_le_bytes());
        out.extend_from_slice(&(self.side.len() as u16).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        let newest = if len == 0 { 0 } else { self.newest };
        out.extend_from_slice(&newest.to_le_bytes());
        let (lo, hi) = self.minimal_acc_window().unwrap_or((0, 0));
        out.push(lo as u8);
        out.push((hi - lo) as u8);
        out.reserve(8 * len * (usize::from(self.acc_base) + usize::from(self.accs) * (hi - lo)));
        for c in 0..usize::from(self.acc_base) {
            for i in 0..len {
                out.extend_from_slice(&self.cell(c, i).to_le_bytes());
            }
        }
        for k in 0..usize::from(self.accs) {
            for abs in lo..hi {
                for i in 0..len {
                    out.extend_from_slice(&self.acc_limb(k, i, abs).to_le_bytes());
                }
            }
        }
        for s in self.side.iter() {
            match s {
                SideCol::Distinct(sets) => {
                    for set in sets {
                        match set {
                            DistinctSet::Exact(v) => {
                                out.push(0);
                                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                                for h in v {
                                    out.extend_from_slice(&h.to_le_bytes());
                                }
                            }
                            DistinctSet::Hll(r) => {
                                out.push(1);
                                out.extend_from_slice(&r[..]);
                            }
                        }
                    }
                }
                SideCol::Blob(vals) => {
                    for v in vals {
                        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                        out.extend_from_slice(v);
                    }
                }
            }
        }
    }

    /// Decodes [`WindowState::encode`] output for these aggregates. Errors (never panics) on
    /// a different version, different aggregates, truncated, trailing or inconsistent bytes.
    pub fn decode(specs: &[AggSpec], bytes: &[u8]) -> Result<WindowState, String> {
        let mut st = WindowState::new(specs);
        let layout = Layout::of(specs);
        let mut r = Reader { b: bytes, pos: 0 };
        let v = r.u8("version")?;
        if v != WINDOW_FORMAT_VERSION {
            return Err(format!(
                "window state version {v}, this build reads {WINDOW_FORMAT_VERSION}"
            ));
        }
        let shape = r.take(8, "aggregate shape")?;
        let want = {
            let mut w = Vec::with_capacity(8);
            w.extend_from_slice(&st.acc_base.to_le_bytes());
            w.extend_from_slice(&st.accs.to_le_bytes());
            w.extend_from_slice(&st.flag_words.to_le_bytes());
            w.extend_from_slice(&(st.side.len() as u16).to_le_bytes());
            w
        };
        if shape != &want[..] {
            return Err("window state was written for other aggregates".into());
        }
        let len = r.u32("bucket count")? as usize;
        let newest = r.u64("newest event time")? as i64;
        let lo = usize::from(r.u8("limb window")?);
        let w = usize::from(r.u8("limb window")?);
        if lo + w > MAX_LIMBS || (layout.accs == 0 && (lo, w) != (0, 0)) {
            return Err(format!("bad limb window {lo}+{w}"));
        }
        let ncols = layout.acc_base() + layout.accs * w;
        if len > u32::MAX as usize / 2 || len.saturating_mul(ncols).saturating_mul(8) > r.left() {
            return Err(format!("window state truncated: {len} buckets do not fit"));
        }
        let mut arena = vec![0u64; ncols * len].into_boxed_slice();
        for x in arena.iter_mut() {
            *x = r.u64("columns")?;
        }
        st.arena = arena;
        st.len = len as u32;
        st.cap = len as u32;
        st.acc_lo = lo as u8;
        st.acc_w = w as u8;
        st.newest = if len == 0 { 0 } else { newest };
        // Bucket ids strictly increasing.
        if st.arena[..len]
            .windows(2)
            .any(|p| (p[0] as i64) >= (p[1] as i64))
        {
            return Err("bucket ids not strictly increasing".into());
        }
        // Only the flag bits the aggregates use may be set.
        let mut used = vec![0u64; layout.flag_words];
        let mut cur = Cursor::default();
        for s in specs {
            let plan = Plan::of(s);
            cur.align(plan);
            for b in cur.bit..cur.bit + plan.shape().1 {
                used[(b / 64) as usize] |= 1 << (b % 64);
            }
            cur.advance(plan);
        }
        for (wd, mask) in used.iter().enumerate() {
            if (0..len).any(|i| st.cell(1 + wd, i) & !mask != 0) {
                return Err("unknown flag bits".into());
            }
        }
        // Absent min/max/first/last hold their sentinels.
        let mut cur = Cursor::default();
        for s in specs {
            let plan = Plan::of(s);
            cur.align(plan);
            let (f, ..) = plan.shape();
            let bit = cur.bit;
            if matches!(plan, Plan::MinMax { .. } | Plan::FirstLast { .. }) {
                let init = plan.init();
                let c = 1 + layout.flag_words + cur.fixed;
                for i in 0..len {
                    let present = (st.cell(1 + (bit / 64) as usize, i) >> (bit % 64)) & 1 == 1;
                    if !present && (0..f.min(2)).any(|j| st.cell(c + j, i) != init[j]) {
                        return Err("absent value without its sentinel".into());
                    }
                }
            }
            cur.advance(plan);
        }
        // Side columns.
        let mut side_idx = 0usize;
        let mut cur = Cursor::default();
        for s in specs {
            let plan = Plan::of(s);
            cur.align(plan);
            let bit = cur.bit;
            match plan {
                Plan::Distinct => {
                    let mut sets = Vec::with_capacity(len);
                    for _ in 0..len {
                        sets.push(match r.u8("distinct tag")? {
                            0 => {
                                let n = r.u32("distinct size")? as usize;
                                if n > DISTINCT_EXACT_MAX {
                                    return Err(format!("exact distinct set of {n} > max"));
                                }
                                let raw = r.take(8 * n, "distinct hashes")?;
                                let v: Vec<u64> = raw
                                    .chunks_exact(8)
                                    .map(|c| {
                                        let mut a = [0u8; 8];
                                        a.copy_from_slice(c);
                                        u64::from_le_bytes(a)
                                    })
                                    .collect();
                                if v.windows(2).any(|p| p[0] >= p[1]) {
                                    return Err("distinct hashes not sorted".into());
                                }
                                DistinctSet::Exact(v)
                            }
                            1 => {
                                let raw = r.take(HLL_REGISTERS, "HyperLogLog registers")?;
                                if raw.iter().any(|&x| x > HLL_MAX_RANK) {
                                    return Err("HyperLogLog register out of range".into());
                                }
                                let mut regs = Box::new([0u8; HLL_REGISTERS]);
                                regs.copy_from_slice(raw);
                                DistinctSet::Hll(regs)
                            }
                            t => return Err(format!("bad distinct tag {t}")),
                        });
                    }
                    st.side[side_idx] = SideCol::Distinct(sets);
                    side_idx += 1;
                }
                Plan::FirstLast { ty, blob: true, .. } => {
                    let mut vals = Vec::with_capacity(len);
                    for i in 0..len {
                        let n = r.u32("value length")? as usize;
                        if n > tarn_types::MAX_VALUE_BYTES {
                            return Err(format!("value of {n} bytes is too long"));
                        }
                        let raw = r.take(n, "value")?;
                        if ty == tarn_types::ColumnType::Text && std::str::from_utf8(raw).is_err() {
                            return Err("TEXT value is not UTF-8".into());
                        }
                        let present = (st.cell(1 + (bit / 64) as usize, i) >> (bit % 64)) & 1 == 1;
                        if !present && n != 0 {
                            return Err("absent value with bytes".into());
                        }
                        vals.push(Box::<[u8]>::from(raw));
                    }
                    st.side[side_idx] = SideCol::Blob(vals);
                    side_idx += 1;
                }
                _ => {}
            }
            cur.advance(plan);
        }
        if r.left() != 0 {
            return Err(format!("{} trailing bytes after window state", r.left()));
        }
        Ok(st)
    }
}
