//! What one index remembers about its recent filters: per filter, the planner's sample (valid
//! while the table is unchanged) and the filter's verdict on each row id it was asked about
//! (valid until that row is written).
//!
//! A filtered kNN search asks the filter about every row that could enter its results, and the
//! planner about 512 more; each answer is a key → row lookup and an expression, about as much
//! work as a distance. The same few filters (a named context's, a query's) come back on every
//! call, and the rows they read change far more rarely than they are searched: so the verdicts
//! are kept, two bits per row id, and forgotten exactly when their row changes.
//!
//! **Invalidation rule.** A verdict on row id `r` is dropped by every write that touches the
//! row under `r` ([`FilterMemos::forget`]: a write of its key, its deletion, the reuse of `r`
//! for another key) and by a write the index is told about without its rows (a merge of
//! columns that are not the vector: [`FilterMemos::forget_all`]). Every table write reaches the
//! index through one of the two (`state/tables.rs`), so a verdict kept is the filter's verdict
//! on the row as it is now.

use tarn_vectors::Selectivity;

use crate::expr::Expr;

/// Filters per index whose sample and verdicts a shard keeps.
///
/// Why 8: a deployment's filtered searches come from a few named contexts and queries, each
/// with one filter. What it costs: per filter its expression and 2 bits per row id of the
/// index's table on this shard (16 KiB at 65,536 rows); a ninth filter evicts the oldest.
pub const PLANNER_CACHED_FILTERS: usize = 8;

/// One filter's memory.
#[derive(Clone, Debug)]
struct Memo {
    filter: Expr<usize>,
    /// The planner's sample and the (table epoch, live rows) it was taken at.
    sample: Option<(u64, usize, Selectivity)>,
    /// Bit `r`: a verdict on row id `r` is known; `pass` holds it.
    known: Vec<u64>,
    pass: Vec<u64>,
}

/// The memories of one index's recent filters, oldest first.
#[derive(Clone, Debug, Default)]
pub(super) struct FilterMemos {
    memos: Vec<Memo>,
}

fn bit(r: u64) -> (usize, u64) {
    ((r / 64) as usize, 1u64 << (r % 64))
}

impl FilterMemos {
    /// The slot of `filter`, made (evicting the oldest at [`PLANNER_CACHED_FILTERS`]) if
    /// absent. Slots move when one is evicted: look them up again after any other call.
    pub(super) fn slot(&mut self, filter: &Expr<usize>) -> usize {
        if let Some(i) = self.find(filter) {
            return i;
        }
        if self.memos.len() == PLANNER_CACHED_FILTERS {
            self.memos.remove(0);
        }
        self.memos.push(Memo {
            filter: filter.clone(),
            sample: None,
            known: Vec::new(),
            pass: Vec::new(),
        });
        self.memos.len() - 1
    }

    /// The slot of `filter`, if it has one.
    pub(super) fn find(&self, filter: &Expr<usize>) -> Option<usize> {
        self.memos.iter().position(|m| &m.filter == filter)
    }

    /// The sample kept in `slot` if it was taken at `epoch` with `live` rows.
    pub(super) fn sample(&self, slot: usize, epoch: u64, live: usize) -> Option<Selectivity> {
        match self.memos[slot].sample {
            Some((e, l, s)) if e == epoch && l == live => Some(s),
            _ => None,
        }
    }

    pub(super) fn keep_sample(&mut self, slot: usize, epoch: u64, live: usize, s: Selectivity) {
        self.memos[slot].sample = Some((epoch, live, s));
    }

    /// The verdict of `slot`'s filter on row id `r`, if known.
    pub(super) fn verdict(&self, slot: usize, r: u64) -> Option<bool> {
        let m = &self.memos[slot];
        let (w, b) = bit(r);
        let known = m.known.get(w).is_some_and(|x| x & b != 0);
        known.then(|| m.pass[w] & b != 0)
    }

    pub(super) fn remember(&mut self, slot: usize, r: u64, passes: bool) {
        let m = &mut self.memos[slot];
        let (w, b) = bit(r);
        if m.known.len() <= w {
            m.known.resize(w + 1, 0);
            m.pass.resize(w + 1, 0);
        }
        m.known[w] |= b;
        if passes {
            m.pass[w] |= b;
        } else {
            m.pass[w] &= !b;
        }
    }

    /// Drops every verdict on row id `r`.
    pub(super) fn forget(&mut self, r: u64) {
        let (w, b) = bit(r);
        for m in &mut self.memos {
            if let Some(x) = m.known.get_mut(w) {
                *x &= !b;
            }
        }
    }

    /// Drops every verdict (samples are dropped by the epoch instead).
    pub(super) fn forget_all(&mut self) {
        for m in &mut self.memos {
            m.known.clear();
            m.pass.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CmpOp;
    use tarn_types::Value;

    fn below(n: i64) -> Expr<usize> {
        Expr::Cmp(
            CmpOp::Lt,
            Box::new(Expr::Column(0)),
            Box::new(Expr::Literal(Value::Int(n))),
        )
    }

    #[test]
    fn verdicts_are_kept_per_filter_until_their_row_is_forgotten() {
        let mut m = FilterMemos::default();
        let (a, b) = (m.slot(&below(1)), m.slot(&below(2)));
        assert_ne!(a, b);
        assert_eq!(m.slot(&below(1)), a, "one slot per filter");
        assert_eq!(m.verdict(a, 700), None);
        m.remember(a, 700, true);
        m.remember(a, 3, false);
        m.remember(b, 700, false);
        assert_eq!(
            (m.verdict(a, 700), m.verdict(a, 3), m.verdict(b, 700)),
            (Some(true), Some(false), Some(false))
        );
        m.remember(a, 700, false);
        assert_eq!(
            m.verdict(a, 700),
            Some(false),
            "a new verdict replaces the old"
        );
        m.forget(700);
        assert_eq!((m.verdict(a, 700), m.verdict(b, 700)), (None, None));
        assert_eq!(m.verdict(a, 3), Some(false), "other rows keep theirs");
        m.forget(1 << 20); // beyond every bitmap: nothing to drop
        m.forget_all();
        assert_eq!(m.verdict(a, 3), None);
    }

    #[test]
    fn a_ninth_filter_evicts_the_oldest_and_samples_need_their_epoch() {
        let mut m = FilterMemos::default();
        for n in 0..PLANNER_CACHED_FILTERS as i64 {
            let s = m.slot(&below(n));
            m.remember(s, 1, true);
        }
        assert_eq!(m.find(&below(0)), Some(0));
        let s = m.slot(&below(100));
        assert_eq!(s, PLANNER_CACHED_FILTERS - 1);
        assert_eq!(m.find(&below(0)), None, "the oldest went");
        assert_eq!(m.verdict(m.find(&below(1)).unwrap(), 1), Some(true));
        let sel = Selectivity {
            accepted: 3,
            sampled: 9,
        };
        m.keep_sample(s, 7, 100, sel);
        assert_eq!(m.sample(s, 7, 100), Some(sel));
        assert_eq!(m.sample(s, 8, 100), None, "the table changed");
        assert_eq!(m.sample(s, 7, 101), None, "the index changed");
    }
}
