//! Vector indexes on a shard: their containers follow the catalog, a maintenance task builds
//! and rebuilds them in bounded steps, and kNN searches run in bounded steps between which
//! the shard serves its other requests.

use std::rc::Rc;
use std::time::Duration;

use tarn_core::catalog::Catalog;
use tarn_core::expr::Expr;
use tarn_core::record::{self, IndexOp, Record};
use tarn_core::state::{
    IndexProgress, IndexWork, KnnOutcome, KnnQuery, ShardState, INDEX_BUILD_STEP_ROWS,
    KNN_STEP_ROWS,
};
use tarn_types::Value;

use super::{ServerError, Shard};
use crate::server::limits::{
    INDEX_IDLE_POLL_MS, INDEX_STEP_PAUSE_US, INDEX_STEP_TARGET_US, KNN_ATTEMPTS,
};
use crate::server::mesh::MsgBody;

/// What one shard is asked to search (the service checked every field).
#[derive(Clone, Debug)]
pub struct KnnAsk {
    pub index_id: u32,
    pub vector: Vec<f32>,
    pub k: usize,
    pub ef: Option<usize>,
    pub filter: Option<Expr<usize>>,
    /// Positions of the columns to return.
    pub columns: Vec<usize>,
}

/// One shard's answer: its best rows (rank key, distance, the asked columns), nearest
/// first, and the distances it computed.
#[derive(Clone, Debug, Default)]
pub struct KnnHits {
    pub hits: Vec<(f32, f32, Vec<Value>)>,
    pub distances: u64,
}

/// Drops the index containers `catalog` no longer has. Missing ones are not created here:
/// an index comes into being on a shard through an [`IndexOp::Create`] record in its log
/// ([`Shard::log_index_creates`]), so that replay creates it at the same point among the
/// writes.
pub(super) fn sync_indexes(state: &mut ShardState, catalog: &Catalog) {
    let gone: Vec<u32> = state
        .index_ids()
        .filter(|&id| catalog.index_by_id(id).is_none())
        .collect();
    for id in gone {
        state.drop_index(id);
    }
}

impl Shard {
    /// Logs (and applies) an [`IndexOp::Create`] for every catalog index this shard does not
    /// have: after a CREATE INDEX, and at start-up for one whose record a crash left
    /// unlogged. Returns once each is applied.
    pub async fn log_index_creates(self: &Rc<Self>) -> Result<(), ServerError> {
        let missing: Vec<u32> = {
            let state = self.state.borrow();
            self.catalog()
                .indexes()
                .filter(|def| state.index_progress(def.id).is_none())
                .map(|def| def.id)
                .collect()
        };
        for index_id in missing {
            self.log_index_op(IndexOp::Create { index_id }).await?;
        }
        Ok(())
    }

    async fn log_index_op(self: &Rc<Self>, op: IndexOp) -> Result<(), ServerError> {
        let rec = Record::Index(op);
        let bytes = record::encode_record_to_vec(&rec);
        // In sync mode a record is applied once durable: wait for it like a write does.
        let wait_durable = self.cfg.durability == tarn_storage::Durability::Sync;
        self.log_and_apply(rec, &bytes, wait_durable)
            .await
            .map(|_| ())
    }

    /// Runs until shutdown: gives every index with work left (rows to build, a tombstone
    /// rebuild) one bounded step at a time, each logged as an [`IndexOp::Step`] record and
    /// done when the record is applied, pausing after each; sleeps while none has work (or
    /// the log refuses).
    pub async fn maintain_indexes(self: Rc<Self>) {
        let idle = Duration::from_millis(INDEX_IDLE_POLL_MS);
        while !self.is_shutting_down() {
            let ids: Vec<u32> = {
                let state = self.state.borrow();
                state
                    .index_ids()
                    .filter(|&id| state.index_work(id) == IndexWork::Step)
                    .collect()
            };
            if ids.is_empty() {
                glommio::timer::sleep(idle).await;
                continue;
            }
            for index_id in ids {
                let rows = self.index_step_rows();
                if let Err(e) = self.log_index_op(IndexOp::Step { index_id, rows }).await {
                    tracing::warn!(shard = self.id, index_id, "index step not logged: {e}");
                    glommio::timer::sleep(idle).await;
                }
                glommio::timer::sleep(Duration::from_micros(INDEX_STEP_PAUSE_US)).await;
            }
        }
    }

    /// Rows for the next index step: [`INDEX_STEP_TARGET_US`] over the time per row the last
    /// steps took (measured where they are applied), `1..=INDEX_BUILD_STEP_ROWS`.
    fn index_step_rows(&self) -> u32 {
        let per_row_ns = self.index_step_ns_per_row.get().max(1);
        let rows = INDEX_STEP_TARGET_US * 1000 / per_row_ns;
        rows.clamp(1, INDEX_BUILD_STEP_ROWS as u64) as u32
    }

    /// Called by the apply loop after it applied an index step of `rows` rows in `ns`: keeps
    /// a moving average of the time per row (weight 1/4 for the newest step).
    pub(super) fn note_index_step(&self, rows: u32, ns: u64) {
        let sample = ns / u64::from(rows.max(1));
        let old = self.index_step_ns_per_row.get();
        let avg = if old == 0 {
            sample
        } else {
            (3 * old + sample) / 4
        };
        self.index_step_ns_per_row.set(avg.max(1));
    }

    /// Build progress of every index on this shard.
    pub fn local_index_progress(&self) -> Vec<(u32, IndexProgress)> {
        let state = self.state.borrow();
        let mut out: Vec<_> = state
            .index_ids()
            .filter_map(|id| Some((id, state.index_progress(id)?)))
            .collect();
        out.sort_by_key(|p| p.0);
        out
    }

    /// This shard's part of every index, for STATS, in index name order.
    pub fn local_index_stats(&self) -> Vec<tarn_net::IndexStats> {
        let catalog = self.catalog();
        let state = self.state.borrow();
        catalog
            .indexes()
            .filter_map(|def| {
                let p = state.index_progress(def.id)?;
                Some(tarn_net::IndexStats {
                    index: def.name.clone(),
                    rows_indexed: p.indexed,
                    rows_pending: p.pending,
                    tombstones: p.tombstones,
                    memory_bytes: p.memory_bytes,
                })
            })
            .collect()
    }

    /// [`Shard::local_index_progress`] of every shard, summed per index.
    pub async fn index_progress_all(
        self: &Rc<Self>,
    ) -> Result<Vec<(u32, IndexProgress)>, ServerError> {
        let mut sum: std::collections::BTreeMap<u32, IndexProgress> = Default::default();
        for peer in 0..self.count {
            let part = if peer == self.id {
                self.local_index_progress()
            } else {
                self.peers.ask(peer, MsgBody::IndexProgress).await?
            };
            for (id, p) in part {
                sum.entry(id).or_default().add(&p);
            }
        }
        Ok(sum.into_iter().collect())
    }

    /// Searches shard `target`'s part of an index.
    pub async fn knn(self: &Rc<Self>, target: u32, ask: KnnAsk) -> Result<KnnHits, ServerError> {
        if target == self.id {
            return self.knn_local(&ask).await;
        }
        self.peers.ask(target, MsgBody::Knn(Box::new(ask))).await
    }

    /// This shard's answer. A search visits [`KNN_STEP_ROWS`] rows per step and yields
    /// between steps; a write to the table in between makes it start again (its rows could
    /// have other vectors now), at most [`KNN_ATTEMPTS`] times, the last one in one go.
    pub async fn knn_local(&self, ask: &KnnAsk) -> Result<KnnHits, ServerError> {
        let q = KnnQuery {
            index_id: ask.index_id,
            vector: &ask.vector,
            k: ask.k,
            ef: ask.ef,
        };
        let filter = ask.filter.as_ref();
        for attempt in 1..=KNN_ATTEMPTS {
            let step = if attempt == KNN_ATTEMPTS {
                usize::MAX
            } else {
                KNN_STEP_ROWS
            };
            let mut s = self
                .state
                .borrow()
                .knn_start(&q, filter)
                .map_err(ServerError::from)?;
            while !self.state.borrow().knn_step(&mut s, filter, step) {
                if attempt < KNN_ATTEMPTS {
                    glommio::executor().yield_now().await;
                }
            }
            let distances = s.distances();
            let state = self.state.borrow();
            match state.knn_finish(s) {
                Ok(found) => {
                    let hits = found
                        .into_iter()
                        .map(|h| {
                            let values = ask.columns.iter().map(|&c| h.row[c].clone()).collect();
                            (h.key, h.distance, values)
                        })
                        .collect();
                    return Ok(KnnHits { hits, distances });
                }
                Err(KnnOutcome::Changed) => continue,
            }
        }
        unreachable!("the last attempt does not yield, so nothing can change it")
    }

    /// The vector of the row under canonical key `key` of index `index_id`'s table, asked of
    /// its owner `target` (None: no such row, or a NULL vector).
    pub async fn row_vector(
        self: &Rc<Self>,
        target: u32,
        index_id: u32,
        key: Vec<u8>,
    ) -> Result<Option<Vec<f32>>, ServerError> {
        if target == self.id {
            return Ok(self.local_row_vector(index_id, &key));
        }
        self.peers
            .ask(target, MsgBody::RowVector { index_id, key })
            .await
    }

    pub(super) fn local_row_vector(&self, index_id: u32, key: &[u8]) -> Option<Vec<f32>> {
        debug_assert_eq!(tarn_types::shard_for(key, self.count), self.id);
        let state = self.state.borrow();
        state.knn_row_vector(index_id, key).map(<[f32]>::to_vec)
    }
}
