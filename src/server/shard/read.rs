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
