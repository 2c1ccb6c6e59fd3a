//! A search on an HNSW graph, advanced in bounded steps: greedy descent of the upper layers,
//! an `ef`-bounded beam on layer 0 with the filter inside it, and an exact scan when the beam
//! ends with fewer than `k` rows while unvisited rows remain.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::rc::Rc;

use super::build::{greedy, Cand, Space};
use super::store::{Graph, Visited};
use crate::index::exact::Candidate as Found;
use crate::index::{Neighbor, RowId};
use crate::limits::HNSW_POOLED_VISITED_LISTS;
use crate::metric::Metric;

/// Visited lists shared by an index and its cursors (a cursor takes one at its start and
/// gives it back when dropped). Borrowed only inside a call, never across a yield.
pub(super) type Pool = Rc<RefCell<Vec<Visited>>>;

/// Adds `f` to the max-heap `best` of at most `cap` results if it is better than the worst.
#[inline]
fn keep_best(best: &mut BinaryHeap<Found>, f: Found, cap: usize) {
    if best.len() < cap {
        best.push(f);
    } else if let Some(mut top) = best.peek_mut() {
        if f < *top {
            *top = f;
        }
    }
}

/// Asks the CPU to start loading the cache lines of `v`: a hint, it changes no result.
#[inline]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let (first, last) = (
            v.as_ptr(),
            v.as_ptr().wrapping_add(v.len().saturating_sub(1)),
        );
        // SAFETY: a prefetch never faults and reads nothing the program sees; both addresses
        // are inside `v` anyway. SSE is part of the x86-64 baseline.
        unsafe {
            _mm_prefetch(first.cast::<i8>(), _MM_HINT_T0);
            _mm_prefetch(last.cast::<i8>(), _MM_HINT_T0);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Where a search is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Greedy descent; the next layer to walk (0: start the beam).
    Descend(usize),
    /// The layer-0 beam.
    Beam,
    /// Exact scan of the snapshot's nodes from this one on.
    Scan(u32),
    Done,
}

/// The state of one HNSW search. Its snapshot: nodes `0..end` that were alive after `epoch`
/// writes. Nodes are never removed or overwritten while a cursor is open (a write tombstones
/// and appends, a rebuild is swapped in only when no cursor is open), so the snapshot stays
/// readable; links may change between steps, which only changes the route.
pub(crate) struct HnswCursor {
    pub(super) pin: Rc<()>,
    pool: Pool,
    metric: Metric,
    query: Vec<f32>,
    k: usize,
    ef: usize,
    epoch: u64,
    end: u32,
    phase: Phase,
    ep: Cand,
    candidates: BinaryHeap<Reverse<Cand>>,
    results: BinaryHeap<Found>,
    visited: Visited,
    distances: usize,
    /// Live rows the search evaluated: in the beam, those that could enter the results when
    /// reached (filtered out ones included); in the scan, every live row.
    rows_seen: usize,
    filter_calls: usize,
    matched: usize,
}

/// What a cursor needs from its index at the start.
pub(super) struct Start<'a> {
    pub(super) graph: &'a Graph,
    pub(super) pin: &'a Rc<()>,
    pub(super) pool: &'a Pool,
    pub(super) space: Space,
    pub(super) entry: Option<u32>,
    pub(super) epoch: u64,
}

impl HnswCursor {
    /// A graph search (`exact == false`) or an exact scan of the snapshot.
    pub(super) fn new(s: Start<'_>, query: Vec<f32>, k: usize, ef: usize, exact: bool) -> Self {
        let end = s.graph.nodes() as u32;
        let mut visited = s.pool.borrow_mut().pop().unwrap_or_default();
        visited.reset(end as usize);
        let mut c = HnswCursor {
            pin: Rc::clone(s.pin),
            pool: Rc::clone(s.pool),
            metric: s.space.metric,
            query,
            k,
            ef: ef.max(k),
            epoch: s.epoch,
            end,
            phase: Phase::Done,
            ep: Cand { key: 0.0, node: 0 },
            candidates: BinaryHeap::new(),
            results: BinaryHeap::with_capacity(ef.max(k) + 1),
            visited,
            distances: 0,
            rows_seen: 0,
            filter_calls: 0,
            matched: 0,
        };
        c.phase = match s.entry {
            _ if end == 0 => Phase::Done,
            _ if exact => Phase::Scan(0),
            None => Phase::Done,
            Some(e) => {
                c.ep = Cand {
                    key: s.space.key(&c.query, s.graph.vector(e)),
                    node: e,
                };
                c.distances += 1;
                Phase::Descend(s.graph.level[e as usize] as usize)
            }
        };
        c
    }

    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Distance computations so far.
    pub(crate) fn distances(&self) -> usize {
        self.distances
    }

    pub(crate) fn rows_visited(&self) -> usize {
        self.rows_seen
    }

    /// Rows passed through the filter so far (at most [`Self::rows_visited`]).
    pub(crate) fn filter_calls(&self) -> usize {
        self.filter_calls
    }

    pub(crate) fn rows_matched(&self) -> usize {
        self.matched
    }

    /// Whether node `n` is in the snapshot (alive at the start, not inserted later).
    #[inline]
    fn in_snapshot(&self, g: &Graph, n: u32) -> bool {
        n < self.end && g.died[n as usize] > self.epoch
    }

    /// Evaluates node `n` reached at `key`: offers it to the results if it is in the
    /// snapshot and the filter accepts it. Returns the work done (filter calls).
    #[inline]
    fn offer(&mut self, g: &Graph, filter: &dyn Fn(RowId) -> bool, n: u32, key: f32) -> usize {
        // A node that cannot enter the full results (no nearer than the worst kept) changes
        // nothing: its liveness, its row and its filter verdict are not needed. Deciding that
        // from the key alone, before `died[n]` and `rows[n]` are read, saves the two cache
        // misses per neighbour that were most of a beam's time; a filter call (a row lookup
        // and an expression on a shard) costs several distance computations more. Only a tie
        // on the key needs the row (ties are broken by row id).
        let full = self.results.len() >= self.ef;
        if full && self.results.peek().is_some_and(|w| key > w.key) {
            return 0;
        }
        if !self.in_snapshot(g, n) {
            return 0;
        }
        self.rows_seen += 1;
        let row = g.rows[n as usize];
        let found = Found { key, row };
        if full && self.results.peek().is_some_and(|w| found >= *w) {
            return 0;
        }
        self.filter_calls += 1;
        if !filter(row) {
            return 1;
        }
        self.matched += 1;
        keep_best(&mut self.results, found, self.ef);
        1
    }

    /// Starts the beam at the entry found by the descent.
    fn begin_beam(&mut self, g: &Graph, filter: &dyn Fn(RowId) -> bool) {
        let ep = self.ep;
        self.visited.test_and_set(ep.node);
        self.candidates.push(Reverse(ep));
        self.offer(g, filter, ep.node, ep.key);
        self.phase = Phase::Beam;
    }

    /// Advances by about `max_work` distance computations and filter calls (at least one
    /// unit, at most one node's list more).
    pub(super) fn step(
        &mut self,
        g: &Graph,
        space: Space,
        filter: &dyn Fn(RowId) -> bool,
        max_work: usize,
    ) {
        let max_work = max_work.max(1);
        let mut work = 0;
        while work < max_work {
            match self.phase {
                Phase::Done => return,
                Phase::Descend(0) => {
                    self.begin_beam(g, filter);
                    work += 1;
                }
                Phase::Descend(layer) => {
                    let (ep, d) = greedy(g, space, &self.query, self.ep, layer, self.end);
                    self.ep = ep;
                    self.distances += d;
                    work += d.max(1);
                    self.phase = Phase::Descend(layer - 1);
                }
                Phase::Beam => work += self.beam_step(g, space, filter, max_work - work),
                Phase::Scan(next) => {
                    work += self.scan_step(g, space, filter, next, max_work - work)
                }
            }
        }
    }

    /// Expands candidates until the beam converges or `budget` is spent; returns the work.
    fn beam_step(
        &mut self,
        g: &Graph,
        space: Space,
        filter: &dyn Fn(RowId) -> bool,
        budget: usize,
    ) -> usize {
        let mut work = 0;
        while work < budget {
            let Some(&Reverse(c)) = self.candidates.peek() else {
                self.end_beam();
                return work.max(1);
            };
            // hnswlib's stop rule: the nearest unexpanded candidate is farther than the
            // worst result, and the results are full (with a filter, a beam that has not
            // found `ef` matching rows keeps going).
            let full = self.results.len() >= self.ef;
            if full && c.key > self.results.peek().map_or(f32::INFINITY, |w| w.key) {
                self.end_beam();
                return work.max(1);
            }
            self.candidates.pop();
            let links = g.links(c.node, 0);
            // The neighbours' vectors lie anywhere in memory: start loading them all before
            // the first distance (hnswlib does the same), so their cache misses overlap.
            for &n in links {
                if n < self.end && !self.visited.contains(n) {
                    prefetch(g.vector(n));
                }
            }
            for &n in links {
                if n >= self.end || self.visited.test_and_set(n) {
                    continue;
                }
                let key = space.key(&self.query, g.vector(n));
                self.distances += 1;
                work += 1;
                let worst = self.results.peek().map_or(f32::INFINITY, |w| w.key);
                if self.results.len() < self.ef || key < worst {
                    self.candidates.push(Reverse(Cand { key, node: n }));
                }
                work += self.offer(g, filter, n, key);
            }
        }
        work
    }

    /// After the beam: done if it found `k` rows or visited the whole snapshot, else scan.
    fn end_beam(&mut self) {
        self.candidates = BinaryHeap::new();
        self.phase = if self.results.len() >= self.k {
            Phase::Done
        } else {
            Phase::Scan(0)
        };
    }

    /// Scans up to `budget` nodes from `next` that the beam did not evaluate.
    fn scan_step(
        &mut self,
        g: &Graph,
        space: Space,
        filter: &dyn Fn(RowId) -> bool,
        next: u32,
        budget: usize,
    ) -> usize {
        let mut work = 0;
        let mut n = next;
        while n < self.end && work < budget {
            if !self.visited.contains(n) && self.in_snapshot(g, n) {
                work += 1;
                self.rows_seen += 1;
                self.filter_calls += 1;
                let row = g.rows[n as usize];
                if filter(row) {
                    self.matched += 1;
                    let key = space.key(&self.query, g.vector(n));
                    self.distances += 1;
                    work += 1;
                    keep_best(&mut self.results, Found { key, row }, self.k);
                }
            }
            n += 1;
        }
        self.phase = if n == self.end {
            Phase::Done
        } else {
            Phase::Scan(n)
        };
        work.max(1)
    }

    pub(crate) fn finish(mut self) -> Vec<Neighbor> {
        assert!(
            self.is_done(),
            "search cursor finished before its last step"
        );
        let metric = self.metric;
        let mut all = std::mem::take(&mut self.results).into_sorted_vec();
        all.truncate(self.k);
        all.into_iter()
            .map(|f| Neighbor {
                row: f.row,
                distance: metric.distance_from_key(f.key),
                key: f.key,
            })
            .collect()
    }
}

impl Drop for HnswCursor {
    fn drop(&mut self) {
        let mut pool = self.pool.borrow_mut();
        if pool.len() < HNSW_POOLED_VISITED_LISTS {
            pool.push(std::mem::take(&mut self.visited));
        }
    }
}

impl fmt::Debug for HnswCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswCursor")
            .field("metric", &self.metric)
            .field("k", &self.k)
            .field("ef", &self.ef)
            .field("epoch", &self.epoch)
            .field("end", &self.end)
            .field("phase", &self.phase)
            .field("kept", &self.results.len())
            .field("distances", &self.distances)
            .finish()
    }
}
