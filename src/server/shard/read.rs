//! Point reads of table rows, and statistics.

use std::rc::Rc;

use tarn_net::{Column, ShardStats};
use tarn_types::{shard_for, Value};

use super::{ServerError, Shard};
use crate::server::mesh::MsgBody;

impl Shard {
    /// Calls `f` with the stored rows for `keys` (borrowed; `f` must not await).
    pub fn with_local_rows<R>(
        &self,
        table_id: u32,
        keys: &[Vec<u8>],
        f: impl FnOnce(&mut dyn ExactSizeIterator<Item = Option<&[Value]>>) -> R,
    ) -> R {
        let state = self.state.borrow();
        let mut rows = keys.iter().map(|k| {
            debug_assert_eq!(
                shard_for(k, self.count),
                self.id,
                "GET routed to a non-owner"
            );
            state.get(table_id, k)
        });
        f(&mut rows)
    }

    /// The reply column list of a table, built once per catalog version.
    pub fn reply_columns(&self, def: &tarn_core::schema::TableDef) -> Rc<[Column]> {
        if let Some(c) = self.columns_cache.borrow().get(&def.id) {
            return c.clone();
        }
        let cols: Rc<[Column]> = def
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                ty: c.ty,
            })
            .collect();
        self.columns_cache.borrow_mut().insert(def.id, cols.clone());
        cols
    }

    pub fn get_local(&self, table_id: u32, keys: &[Vec<u8>]) -> Vec<Option<Vec<Value>>> {
        self.with_local_rows(table_id, keys, |rows| {
            rows.map(|r| r.map(<[Value]>::to_vec)).collect()
        })
    }

    pub async fn get(
        self: &Rc<Self>,
        target: u32,
        table_id: u32,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<Value>>>, ServerError> {
        if target == self.id {
            return Ok(self.get_local(table_id, &keys));
        }
        self.peers
            .ask(target, MsgBody::Get { table_id, keys })
            .await
    }

    pub fn local_stats(&self) -> ShardStats {
        ShardStats {
            shard: self.id,
            cpu: self.cpu.map_or(-1, |c| c as i32),
            rows: self.state.borrow().total_rows(),
            log_bytes: self.log.disk_bytes(),
            durable_lsn: self.log.durable_lsn(),
            connections: self.connections.get(),
            ops: self.stats.borrow().snapshot(),
            indexes: self.local_index_stats(),
        }
    }

    pub async fn stats_all(self: &Rc<Self>) -> Result<Vec<ShardStats>, ServerError> {
        let mut out = Vec::with_capacity(self.count as usize);
        for peer in 0..self.count {
            if peer == self.id {
                out.push(self.local_stats());
            } else {
                out.push(self.peers.ask(peer, MsgBody::Stats).await?);
            }
        }
        Ok(out)
    }
}

/// A RECENT answer: per key, its newest events (rows projected on the asked columns), newest
/// first.
pub type RecentRows = Vec<Vec<Vec<Value>>>;

impl Shard {
    /// The newest `n` events of each partition key in `keys` (canonical bytes this shard
    /// owns: it is their home) of stream `stream_id`, newest first, each projected on
    /// `columns` (indexes into the stream's columns). A plain synchronous read of the state,
    /// so a context request can call it in the middle of its own work. An unknown key has no
    /// events; a dropped stream is `UNKNOWN_STREAM`.
    pub fn recent_local(
        &self,
        stream_id: u32,
        keys: &[Vec<u8>],
        n: usize,
        columns: &[usize],
    ) -> Result<RecentRows, ServerError> {
        let catalog = self.catalog();
        let stream = catalog.stream_by_id(stream_id).ok_or_else(|| {
            ServerError::new(
                tarn_net::ErrorCode::UnknownStream,
                format!("stream #{stream_id} was dropped"),
            )
        })?;
        let state = self.state.borrow();
        Ok(keys
            .iter()
            .map(|k| {
                debug_assert_eq!(shard_for(k, self.count), self.id, "RECENT to a non-home");
                state.recent(stream, k, n, columns)
            })
            .collect())
    }

    /// [`Shard::recent_local`] on shard `target` (through the mesh unless it is this one).
    pub async fn recent(
        self: &Rc<Self>,
        target: u32,
        stream_id: u32,
        keys: Vec<Vec<u8>>,
        n: usize,
        columns: Rc<[usize]>,
    ) -> Result<RecentRows, ServerError> {
        if target == self.id {
            return self.recent_local(stream_id, &keys, n, &columns);
        }
        let body = MsgBody::Recent {
            stream_id,
            keys,
            n,
            columns: columns.to_vec(),
        };
        self.peers.ask(target, body).await
    }
}
