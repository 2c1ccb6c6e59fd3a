//! The vector indexes in a checkpoint: taken exactly as of one log position, written in
//! bounded steps while the shard keeps writing to them, and restored with that position so
//! that replay applies only the later records to them.
//!
//! # Why exactly, and why not fuzzy like the rows
//!
//! Table rows are saved fuzzily (a row may reflect writes after the checkpoint's LSN) because
//! replaying a write over a row that already has it changes nothing. A graph is not like
//! that: inserting a row twice, or in another order, gives another graph, and the issue asks
//! for identical answers after a restart. So the indexes are saved as they are at one log
//! position `as_of` — the position applied when the row phase of the checkpoint ends, so
//! `as_of` ≥ the checkpoint's LSN — and recovery replays the records after the checkpoint's
//! LSN to the tables but gives the indexes only those after `as_of`
//! (`ShardState::indexes_cover`). After replaying up to `as_of` the rows are exact as of
//! `as_of` too (the fuzzy rule), so rows and indexes agree from there on.
//!
//! Taking the indexes at one position without holding the shard: the graphs, row-key maps and
//! lists are copy-on-write blocks ([`tarn_vectors::CowVec`], [`tarn_vectors::HnswSnapshot`]),
//! so the snapshot costs a reference per block and each block the shard writes to afterwards
//! is copied once; the snapshot is then encoded a chunk per step.
//!
//! # Chunks (after every table and view chunk)
//!
//! ```text
//! kind 3  CkIndexesAt { as_of_lsn, indexes }            once, even with no index
//! per index, in index-id order:
//! kind 4  CkIndex { index_id, table_id, column, rows, free, unbuilt, build_pos, skipped,
//!                   rebuild_next (u32::MAX: no rebuild) }
//! kind 5  CkIndexKeys { index_id, first_row, keys: [ { live, key } ] }   row ids in order
//! kind 6  CkIndexGraph { index_id, fresh, chunk }  one framed chunk of the HNSW format
//!                                                  (vectors/FORMAT.md): the graph's, then,
//!                                                  during a rebuild, the fresh graph's
//! ```

use std::rc::Rc;

use rkyv::rancor;
use rkyv::with::InlineAsBox;
use tarn_vectors::{CowVec, Decoder, Encoder, Index, RowId};

use super::{FastMap, IndexState, Indexes};
use crate::catalog::Catalog;
use crate::state::checkpoint::{
    chunk, Chunk, CHUNK_INDEX, CHUNK_INDEXES_AT, CHUNK_INDEX_GRAPH, CHUNK_INDEX_KEYS,
};
use crate::state::ShardState;
use crate::CoreError;

/// Row keys per key chunk: bounds one archive (keys of ~10–100 bytes: 0.2–2 MiB).
const KEY_CHUNK_ROWS: usize = 16_384;

/// Graph bytes per graph chunk (one framed chunk of the HNSW encoder): about a millisecond
/// of encoding per step.
const GRAPH_CHUNK_BYTES: usize = 1 << 20;

/// `rebuild_next` of an index that is not being rebuilt.
const NO_REBUILD: u32 = u32::MAX;

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
pub(super) struct CkIndexesAt {
    as_of_lsn: u64,
    indexes: u32,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
pub(super) struct CkIndex {
    index_id: u32,
    table_id: u32,
    column: u32,
    rows: u64,
    free: Vec<u64>,
    unbuilt: Vec<u64>,
    build_pos: u64,
    skipped: u64,
    rebuild_next: u32,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkRowKey<'a> {
    live: bool,
    #[rkyv(with = InlineAsBox)]
    key: &'a [u8],
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkIndexKeys<'a> {
    index_id: u32,
    first_row: u64,
    keys: Vec<CkRowKey<'a>>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkIndexGraph {
    index_id: u32,
    fresh: bool,
    chunk: Vec<u8>,
}

fn corrupt(what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("checkpoint: {what}"))
}

/// One index as of the snapshot.
struct IndexSnap {
    index_id: u32,
    meta: CkIndex,
    meta_done: bool,
    keys: CowVec<Option<Rc<[u8]>>>,
    next_key: usize,
    graph: Encoder,
    fresh: Option<Encoder>,
}

/// Every index of a shard as of one log position, written out in steps.
pub(crate) struct IndexesSnapshot {
    indexes: Vec<IndexSnap>,
    /// The next index to write; `indexes.len()` when done.
    pos: usize,
}

impl Indexes {
    /// Takes every index as of now (`as_of_lsn`: the last record applied), in O(blocks), and
    /// the chunk that says so.
    pub(crate) fn snapshot(&self, as_of_lsn: u64) -> (Chunk, IndexesSnapshot) {
        let mut ids: Vec<u32> = self.by_id.keys().copied().collect();
        ids.sort_unstable();
        let indexes: Vec<IndexSnap> = ids.iter().map(|&id| self.by_id[&id].snap(id)).collect();
        let at = CkIndexesAt {
            as_of_lsn,
            indexes: indexes.len() as u32,
        };
        (
            chunk(CHUNK_INDEXES_AT, &at),
            IndexesSnapshot { indexes, pos: 0 },
        )
    }
}

impl IndexState {
    fn snap(&self, index_id: u32) -> IndexSnap {
        let Index::Hnsw(h) = &self.index else {
            unreachable!("shards hold HNSW indexes only");
        };
        let (graph, fresh) = h.snapshot().split_rebuild();
        let meta = CkIndex {
            index_id,
            table_id: self.table_id,
            column: self.column as u32,
            rows: self.keys.len() as u64,
            free: self.free.clone(),
            unbuilt: self.unbuilt[self.build_pos..].to_vec(),
            build_pos: 0,
            skipped: self.skipped,
            rebuild_next: fresh.as_ref().map_or(NO_REBUILD, |f| f.1),
        };
        IndexSnap {
            index_id,
            meta,
            meta_done: false,
            keys: self.keys.clone(),
            next_key: 0,
            graph: graph.encode(GRAPH_CHUNK_BYTES),
            fresh: fresh.map(|(f, _)| f.encode(GRAPH_CHUNK_BYTES)),
        }
    }
}

impl IndexesSnapshot {
    /// Whether every index is written.
    pub(crate) fn is_done(&self) -> bool {
        self.pos == self.indexes.len()
    }

    /// Appends the next chunk (about a millisecond of work) to `parts`; true when every
    /// index is written.
    pub(crate) fn step(&mut self, parts: &mut Vec<Chunk>) -> bool {
        let Some(ix) = self.indexes.get_mut(self.pos) else {
            return true;
        };
        if !ix.meta_done {
            parts.push(chunk(CHUNK_INDEX, &ix.meta));
            ix.meta_done = true;
        } else if ix.next_key < ix.keys.len() {
            let end = (ix.next_key + KEY_CHUNK_ROWS).min(ix.keys.len());
            let keys = (ix.next_key..end)
                .map(|r| match ix.keys.get(r) {
                    Some(k) => CkRowKey { live: true, key: k },
                    None => CkRowKey {
                        live: false,
                        key: &[],
                    },
                })
                .collect();
            let c = CkIndexKeys {
                index_id: ix.index_id,
                first_row: ix.next_key as u64,
                keys,
            };
            parts.push(chunk(CHUNK_INDEX_KEYS, &c));
            ix.next_key = end;
        } else if let Some(bytes) = ix.graph.next() {
            parts.push(graph_chunk(ix.index_id, false, bytes));
        } else if let Some(bytes) = ix.fresh.as_mut().and_then(Iterator::next) {
            parts.push(graph_chunk(ix.index_id, true, bytes));
        } else {
            self.pos += 1;
        }
        self.pos == self.indexes.len()
    }
}

fn graph_chunk(index_id: u32, fresh: bool, chunk_bytes: Vec<u8>) -> Chunk {
    chunk(
        CHUNK_INDEX_GRAPH,
        &CkIndexGraph {
            index_id,
            fresh,
            chunk: chunk_bytes,
        },
    )
}

/// An index being read back from its chunks.
pub(crate) struct Loading {
    table_id: u32,
    column: usize,
    rows: usize,
    free: Vec<RowId>,
    unbuilt: Vec<RowId>,
    skipped: u64,
    rebuild_next: u32,
    keys: Vec<Option<Rc<[u8]>>>,
    graph: Decoder,
    fresh: Option<Decoder>,
}

/// The index chunks of one checkpoint while it loads.
#[derive(Default)]
pub(crate) struct IndexesLoad {
    as_of_lsn: Option<u64>,
    announced: u32,
    seen: u32,
    /// Indexes the catalog has, by id; `None` for one it dropped (its chunks are skipped).
    loading: FastMap<u32, Option<Loading>>,
}

impl IndexesLoad {
    /// Reads one index chunk (kinds 3–6) at `pos`.
    pub(crate) fn chunk(
        &mut self,
        catalog: &Catalog,
        kind: u8,
        body: &[u8],
        pos: usize,
    ) -> Result<(), CoreError> {
        let bad = |e: rancor::Error| corrupt(format_args!("chunk at offset {pos}: {e}"));
        if kind == CHUNK_INDEXES_AT {
            let t = rkyv::access::<ArchivedCkIndexesAt, rancor::Error>(body).map_err(bad)?;
            if self.as_of_lsn.is_some() {
                return Err(corrupt("a second index position chunk"));
            }
            self.as_of_lsn = Some(t.as_of_lsn.to_native());
            self.announced = t.indexes.to_native();
            return Ok(());
        }
        if self.as_of_lsn.is_none() {
            return Err(corrupt(format_args!(
                "chunk at offset {pos}: an index chunk before the index position"
            )));
        }
        match kind {
            CHUNK_INDEX => {
                let t = rkyv::access::<ArchivedCkIndex, rancor::Error>(body).map_err(bad)?;
                self.start(catalog, t)
            }
            CHUNK_INDEX_KEYS => {
                let t = rkyv::access::<ArchivedCkIndexKeys<'static>, rancor::Error>(body)
                    .map_err(bad)?;
                let Some(l) = self.get(t.index_id.to_native())? else {
                    return Ok(());
                };
                if t.first_row.to_native() != l.keys.len() as u64
                    || l.keys.len() + t.keys.len() > l.rows
                {
                    return Err(corrupt("index keys out of order or beyond the row count"));
                }
                l.keys.extend(
                    t.keys
                        .iter()
                        .map(|k| k.live.then(|| Rc::<[u8]>::from(&*k.key))),
                );
                Ok(())
            }
            _ => {
                debug_assert_eq!(kind, CHUNK_INDEX_GRAPH);
                let t = rkyv::access::<ArchivedCkIndexGraph, rancor::Error>(body).map_err(bad)?;
                let Some(l) = self.get(t.index_id.to_native())? else {
                    return Ok(());
                };
                let d = if t.fresh {
                    l.fresh
                        .as_mut()
                        .ok_or_else(|| corrupt("a fresh graph chunk of an index not rebuilding"))?
                } else {
                    &mut l.graph
                };
                d.feed(&t.chunk)
                    .map_err(|e| corrupt(format_args!("index graph: {e}")))
            }
        }
    }

    fn start(&mut self, catalog: &Catalog, t: &ArchivedCkIndex) -> Result<(), CoreError> {
        let id = t.index_id.to_native();
        self.seen += 1;
        let fresh = t.rebuild_next.to_native() != NO_REBUILD;
        let l = match catalog.index_by_id(id) {
            None => None, // dropped since
            Some(def) => {
                if def.table_id != t.table_id.to_native()
                    || u32::from(def.column) != t.column.to_native()
                {
                    return Err(corrupt(format_args!(
                        "index {id}: its table or column differs from the catalog's"
                    )));
                }
                Some(Loading {
                    table_id: def.table_id,
                    column: usize::from(def.column),
                    rows: t.rows.to_native() as usize,
                    free: t.free.iter().map(|r| r.to_native()).collect(),
                    unbuilt: t.unbuilt.iter().map(|r| r.to_native()).collect(),
                    skipped: t.skipped.to_native(),
                    rebuild_next: t.rebuild_next.to_native(),
                    keys: Vec::new(),
                    graph: Decoder::new(),
                    fresh: fresh.then(Decoder::new),
                })
            }
        };
        if self.loading.insert(id, l).is_some() {
            return Err(corrupt(format_args!("index {id} appears twice")));
        }
        Ok(())
    }

    fn get(&mut self, id: u32) -> Result<Option<&mut Loading>, CoreError> {
        match self.loading.get_mut(&id) {
            Some(l) => Ok(l.as_mut()),
            None => Err(corrupt(format_args!(
                "a chunk of index {id} before its index chunk"
            ))),
        }
    }

    /// Installs every loaded index in `state` (whose tables are loaded) after checking that
    /// keys, graph and lists agree.
    /// `required`: the format has index chunks (version 6 on), so the position chunk must be
    /// there even without indexes.
    pub(crate) fn finish(self, state: &mut ShardState, required: bool) -> Result<(), CoreError> {
        let Some(as_of) = self.as_of_lsn else {
            if required {
                return Err(corrupt("the index position chunk is missing"));
            }
            return Ok(()); // a checkpoint from before indexes were saved
        };
        if self.seen != self.announced {
            return Err(corrupt(format_args!(
                "{} of {} indexes present",
                self.seen, self.announced
            )));
        }
        state.indexes.as_of_lsn = as_of;
        let mut ids: Vec<u32> = self.loading.keys().copied().collect();
        ids.sort_unstable();
        let mut loading = self.loading;
        for id in ids {
            let Some(l) = loading.remove(&id).flatten() else {
                continue;
            };
            let ix = l
                .into_state(state)
                .map_err(|e| corrupt(format_args!("index {id}: {e}")))?;
            state.install_index(id, ix);
        }
        Ok(())
    }
}

impl Loading {
    fn into_state(self, state: &ShardState) -> Result<IndexState, String> {
        if self.keys.len() != self.rows {
            return Err(format!(
                "{} of {} row keys present",
                self.keys.len(),
                self.rows
            ));
        }
        let mut index = self.graph.finish().map_err(|e| e.to_string())?;
        if let Some(fresh) = self.fresh {
            let fresh = fresh.finish().map_err(|e| e.to_string())?;
            index
                .resume_rebuild(fresh, self.rebuild_next)
                .map_err(|e| e.to_string())?;
        }
        let table = state.tables.get(&self.table_id);
        let mut keys = CowVec::new();
        let mut ids = FastMap::default();
        for (r, k) in self.keys.into_iter().enumerate() {
            // Share the table's key when it has the row (it may not: fuzzy rows).
            let k = k.map(|k| {
                table
                    .and_then(|t| t.rows.get_key_value(&*k))
                    .map_or(k, |(rc, _)| rc.clone())
            });
            if let Some(k) = &k {
                if ids.insert(k.clone(), r as RowId).is_some() {
                    return Err(format!("row {r}: a key held by two row ids"));
                }
            }
            keys.push(k);
        }
        let ix = IndexState::restored(
            self.table_id,
            self.column,
            Index::Hnsw(index),
            keys,
            ids,
            self.free,
            self.unbuilt,
            self.skipped,
        )?;
        Ok(ix)
    }
}
