//! Point-in-time snapshots of an [`HnswIndex`], for checkpoints taken while writes go on.
//!
//! A shard saves each index with its checkpoint exactly as of one log position, but encoding
//! a million-node graph takes about a second, far too long to hold the reactor. So the shard
//! takes an [`HnswSnapshot`] synchronously at that position and encodes it in small steps
//! between requests while the live index keeps changing. A snapshot is cheap because the
//! graph is stored in copy-on-write blocks (`store` module): taking one costs O(blocks), and
//! each block the index writes afterwards is copied once, on its first write.

use super::store::{BlockCount, Graph};
use super::{HnswIndex, HnswParams, Rebuild};
use crate::error::VectorError;
use crate::index::VectorIndex;
use crate::metric::Metric;

/// An [`HnswIndex`] frozen at the moment [`HnswIndex::snapshot`] was called: what the encoder
/// needs, sharing every block of the graph with the index (and unaffected by its later writes,
/// which copy the blocks they touch). It borrows nothing: it may outlive the index.
///
/// The row map is not kept (the decoder rebuilds it from the nodes' rows and tombstones).
pub struct HnswSnapshot {
    pub(super) metric: Metric,
    pub(super) dim: usize,
    pub(super) params: HnswParams,
    pub(super) graph: Graph,
    pub(super) entry: Option<u32>,
    pub(super) epoch: u64,
    pub(super) max_norm2: f32,
    /// Live rows (the header's count).
    pub(super) live: usize,
    /// A rebuild in progress: the fresh graph's snapshot and the next old node to copy.
    rebuild: Option<Box<(HnswSnapshot, u32)>>,
}

impl HnswSnapshot {
    /// Nodes, live and tombstoned.
    pub fn nodes(&self) -> usize {
        self.graph.nodes()
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Writes the index had applied.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The rebuild in progress at the snapshot, if any: the fresh graph's snapshot and the
    /// next old node to copy (for [`HnswIndex::resume_rebuild`]).
    pub fn rebuild(&self) -> Option<(&HnswSnapshot, u32)> {
        self.rebuild.as_deref().map(|(s, next)| (s, *next))
    }

    /// The main snapshot without its rebuild, and the rebuild (fresh snapshot, next node):
    /// two streams to encode separately.
    pub fn split_rebuild(mut self) -> (HnswSnapshot, Option<(HnswSnapshot, u32)>) {
        let rebuild = self.rebuild.take().map(|b| *b);
        (self, rebuild)
    }

    /// Blocks of the graph (the rebuild's included) and how many the index still shares.
    pub fn block_count(&self) -> BlockCount {
        self.graph.block_count()
            + self
                .rebuild()
                .map_or_else(BlockCount::default, |(s, _)| s.block_count())
    }
}

impl HnswIndex {
    /// A point-in-time snapshot of the index and of a rebuild in progress, in O(blocks + upper
    /// lists blocks): no node, vector or link is copied now. Each block the index writes
    /// afterwards is copied once, on its first write (up to [`crate::BLOCK_BYTES`] each), so
    /// holding a snapshot costs at most the blocks written while it is held.
    pub fn snapshot(&self) -> HnswSnapshot {
        HnswSnapshot {
            metric: self.metric,
            dim: self.dim,
            params: self.params,
            graph: self.graph.clone(),
            entry: self.entry,
            epoch: self.epoch,
            max_norm2: self.max_norm2,
            live: self.nodes.len(),
            rebuild: self
                .rebuild
                .as_ref()
                .map(|r| Box::new((r.fresh.snapshot(), r.next))),
        }
    }

    /// Blocks of the graph (a rebuild's included) and how many a snapshot still shares.
    pub fn block_count(&self) -> BlockCount {
        self.graph.block_count()
            + self
                .rebuild
                .as_ref()
                .map_or_else(BlockCount::default, |r| r.fresh.block_count())
    }

    /// Restores a rebuild that was in progress when this index was snapshotted: `fresh` and
    /// `next` are [`HnswSnapshot::rebuild`]'s, decoded. Afterwards [`HnswIndex::rebuild_step`]
    /// continues exactly as the original would have.
    ///
    /// Checked, since both come from stored bytes (anything wrong is [`VectorError::Corrupt`],
    /// nothing is changed): no rebuild in progress here or in `fresh`; the same metric,
    /// dimension and parameters; `next ≤ nodes`; every row of `fresh` is live here with the
    /// same vector; every live node before `next` has its row in `fresh`. Costs
    /// O(rows of `fresh` · dim + next).
    pub fn resume_rebuild(&mut self, fresh: HnswIndex, next: u32) -> Result<(), VectorError> {
        self.check_resume(&fresh, next)
            .map_err(VectorError::Corrupt)?;
        self.rebuild = Some(Box::new(Rebuild { fresh, next }));
        Ok(())
    }

    fn check_resume(&self, fresh: &HnswIndex, next: u32) -> Result<(), String> {
        if self.rebuild.is_some() {
            return Err("resume_rebuild: a rebuild is already in progress".into());
        }
        if fresh.rebuild.is_some() {
            return Err("resume_rebuild: the fresh graph is itself rebuilding".into());
        }
        if (fresh.metric, fresh.dim, fresh.params) != (self.metric, self.dim, self.params) {
            return Err(format!(
                "resume_rebuild: the fresh graph is {} dim {} {:?}, the index {} dim {} {:?}",
                fresh.metric.name(),
                fresh.dim,
                fresh.params,
                self.metric.name(),
                self.dim,
                self.params
            ));
        }
        if next as usize > self.nodes() {
            return Err(format!(
                "resume_rebuild: next node {next} beyond the index's {} nodes",
                self.nodes()
            ));
        }
        for (&row, &n) in &fresh.nodes {
            match self.vector(row) {
                None => return Err(format!("resume_rebuild: fresh row {row} is not live")),
                Some(v) if !same_bits(v, fresh.graph.vector(n)) => {
                    return Err(format!(
                        "resume_rebuild: fresh row {row} has another vector"
                    ))
                }
                Some(_) => {}
            }
        }
        for n in 0..next {
            let row = self.graph.rows[n as usize];
            if self.graph.is_alive(n) && !fresh.contains(row) {
                return Err(format!(
                    "resume_rebuild: row {row} (node {n} < next {next}) missing from the fresh graph"
                ));
            }
        }
        Ok(())
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
