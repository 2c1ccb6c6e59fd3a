//! kNN search over one shard's index, in bounded steps: the graph (or exact) part through
//! the planner, and an exact scan of the rows not built into the graph yet.

use tarn_vectors as planner;
use tarn_vectors::{Neighbor, SearchParams, Step, VectorIndex};

use super::{keep_best, passes, row_vector, IndexState, KnnHit, KnnOutcome, KnnQuery, KnnSearch};
use crate::expr::Expr;
use crate::state::ShardState;
use crate::CoreError;

fn bad_query(e: tarn_vectors::VectorError) -> CoreError {
    use tarn_vectors::VectorError as V;
    match e {
        V::KOutOfRange { .. } | V::ParameterOutOfRange { .. } => {
            CoreError::LimitExceeded(e.to_string())
        }
        _ => crate::vector::bad(None, None, format!("query vector: {e}")),
    }
}

impl ShardState {
    /// Opens a search: checks the query against the index, plans it (the planner samples
    /// `filter` on a few rows) and visits nothing yet. Errors: no such index here
    /// (`UnknownIndex`), a query of the wrong dimension, non-finite or a zero vector under
    /// cosine (`BadVector`), `k` or `ef` out of range (`LimitExceeded`; the server checks both first).
    pub fn knn_start(
        &self,
        q: &KnnQuery<'_>,
        filter: Option<&Expr<usize>>,
    ) -> Result<KnnSearch, CoreError> {
        let ix = self.index_state(q.index_id)?;
        let index = &ix.index;
        let query = index
            .metric()
            .prepare(q.vector, index.dim())
            .map_err(bad_query)?;
        let params = SearchParams { ef: q.ef };
        let table = self.tables.get(&ix.table_id);
        let slot = filter.map(|f| ix.memos.borrow_mut().slot(f));
        let accept = |r: u64| ix.row_passes(table, r, filter, slot);
        let plan = match index {
            tarn_vectors::Index::Hnsw(h) => {
                let sel = ix.selectivity(h, slot, &accept);
                planner::plan_hnsw_with(h, q.k, sel, &params)
            }
            other => planner::plan(other, q.k, &accept, &params),
        }
        .map_err(bad_query)?;
        let cursor = if index.is_empty() {
            None
        } else {
            Some(planner::start_planned(index, &query, q.k, plan).map_err(bad_query)?)
        };
        Ok(KnnSearch {
            index_id: q.index_id,
            epoch: ix.epoch,
            k: q.k,
            query,
            plan,
            cursor,
            unbuilt: ix.unbuilt.clone(),
            unbuilt_pos: ix.build_pos,
            unbuilt_best: Vec::new(),
            unbuilt_distances: 0,
        })
    }

    fn index_state(&self, index_id: u32) -> Result<&IndexState, CoreError> {
        self.indexes
            .by_id
            .get(&index_id)
            // Only a DROP INDEX between the service's check and this shard's step gets here.
            .ok_or_else(|| CoreError::UnknownIndex(format!("#{index_id} (dropped)")))
    }

    /// Visits up to `max_rows` more rows of `s`. Returns whether the search is done. If the
    /// table changed since the search started, stops at once (the finish says `Changed`).
    pub fn knn_step(
        &self,
        s: &mut KnnSearch,
        filter: Option<&Expr<usize>>,
        max_rows: usize,
    ) -> bool {
        let Ok(ix) = self.index_state(s.index_id) else {
            return true;
        };
        if ix.epoch != s.epoch {
            return true;
        }
        let table = self.tables.get(&ix.table_id);
        if let Some(c) = s.cursor.as_mut().filter(|c| !c.is_done()) {
            // Slots move when another search's filter evicts one: looked up again each step.
            let slot = filter.and_then(|f| ix.memos.borrow().find(f));
            let accept = |r: u64| ix.row_passes(table, r, filter, slot);
            let _ = ix.index.search_step(c, &accept, max_rows) == Step::More;
            return s.is_done();
        }
        let end = s
            .unbuilt_pos
            .saturating_add(max_rows.max(1))
            .min(s.unbuilt.len());
        let metric = ix.index.metric();
        let kernels = tarn_vectors::Kernels::detected();
        for i in s.unbuilt_pos..end {
            let row = s.unbuilt[i];
            let Some(v) = ix.pending_vector(table, row, filter) else {
                continue;
            };
            let Ok(p) = metric.prepare(v, ix.index.dim()) else {
                continue;
            };
            let key = metric.key(kernels, &s.query, &p);
            s.unbuilt_distances += 1;
            let n = Neighbor {
                row,
                distance: metric.distance_from_key(key),
                key,
            };
            keep_best(&mut s.unbuilt_best, n, s.k);
        }
        s.unbuilt_pos = end;
        s.is_done()
    }

    /// The answer of a done search: up to `k` rows nearest first, each with its rank key,
    /// distance and stored row (borrowed). `Err(Changed)` if the table was written while the
    /// search yielded (rows it found may have other vectors now): run it again.
    pub fn knn_finish(&self, s: KnnSearch) -> Result<Vec<KnnHit<'_>>, KnnOutcome> {
        assert!(
            s.is_done() || self.knn_changed(&s),
            "finish of a search not done"
        );
        let ix = self
            .index_state(s.index_id)
            .map_err(|_| KnnOutcome::Changed)?;
        if ix.epoch != s.epoch {
            return Err(KnnOutcome::Changed);
        }
        let graph = s.cursor.map(|c| c.finish()).unwrap_or_default();
        let merged = tarn_vectors::merge_neighbors([graph, s.unbuilt_best], s.k);
        // A shard that never held a row of the table has no table state: no hits, not a change.
        let table = self.tables.get(&ix.table_id);
        merged
            .into_iter()
            .map(|n| {
                let key = ix
                    .keys
                    .get(n.row as usize)
                    .as_ref()
                    .ok_or(KnnOutcome::Changed)?;
                let row = table
                    .and_then(|t| t.rows.get(key))
                    .ok_or(KnnOutcome::Changed)?;
                Ok(KnnHit {
                    key: n.key,
                    distance: n.distance,
                    row,
                })
            })
            .collect()
    }

    /// Whether the table of `s`'s index was written since `s` started (or the index went).
    pub fn knn_changed(&self, s: &KnnSearch) -> bool {
        self.index_state(s.index_id)
            .map_or(true, |ix| ix.epoch != s.epoch)
    }

    /// The vector of the row stored under canonical key `key` of index `index_id`'s table,
    /// for a search "like this row". None: no such row, or its vector is NULL.
    pub fn knn_row_vector(&self, index_id: u32, key: &[u8]) -> Option<&[f32]> {
        let ix = self.indexes.by_id.get(&index_id)?;
        let row = self.tables.get(&ix.table_id)?.rows.get(key)?;
        row_vector(row, ix.column)
    }
}

impl IndexState {
    /// The planner's sample for the filter of `slot`: the one taken earlier if the table and
    /// the index's live rows have not changed since (every write to the table bumps `epoch`),
    /// else a fresh one, kept for the next search. A kept sample gives the plan a fresh one
    /// would, up to where a rebuild since moved the sampled nodes; a plan only decides how fast
    /// a search is, never what it returns (`tarn_vectors::planner`). No filter: sampled each
    /// time (the sample then costs no lookups).
    fn selectivity(
        &self,
        h: &tarn_vectors::HnswIndex,
        slot: Option<usize>,
        accept: &dyn Fn(u64) -> bool,
    ) -> tarn_vectors::Selectivity {
        let live = h.len();
        let Some(slot) = slot else {
            return planner::sample_selectivity(h, accept);
        };
        if let Some(sel) = self.memos.borrow().sample(slot, self.epoch, live) {
            return sel;
        }
        // No borrow of the memos while sampling: `accept` remembers verdicts in them.
        let sel = planner::sample_selectivity(h, accept);
        self.memos
            .borrow_mut()
            .keep_sample(slot, self.epoch, live, sel);
        sel
    }

    /// The filter's verdict on graph row `r` (false for a row id no key holds now); `slot`:
    /// the filter's memory (`filter_memo.rs`), asked first and told after.
    fn row_passes(
        &self,
        table: Option<&super::super::tables::Table>,
        r: u64,
        filter: Option<&Expr<usize>>,
        slot: Option<usize>,
    ) -> bool {
        let Some(f) = filter else {
            return true;
        };
        if let Some(v) = slot.and_then(|s| self.memos.borrow().verdict(s, r)) {
            return v;
        }
        let key = (r < self.keys.len() as u64)
            .then(|| self.keys.get(r as usize).as_ref())
            .flatten();
        let v = key
            .and_then(|k| table?.rows.get(k))
            .is_some_and(|row| passes(Some(f), row));
        if let Some(s) = slot {
            self.memos.borrow_mut().remember(s, r, v);
        }
        v
    }

    /// The table vector of row `r`, pending when the search started, if it still has a key
    /// and passes `filter` (module docs of `indexes`: why no graph check is needed).
    fn pending_vector<'t>(
        &self,
        table: Option<&'t super::super::tables::Table>,
        r: u64,
        filter: Option<&Expr<usize>>,
    ) -> Option<&'t [f32]> {
        if r >= self.keys.len() as u64 {
            return None;
        }
        let key = self.keys.get(r as usize).as_ref()?;
        let row = table?.rows.get(key)?;
        if !passes(filter, row) {
            return None;
        }
        row_vector(row, self.column)
    }
}
