//! DDL: shard 0 serialises it, makes the new catalog durable, installs it on every shard.

use std::rc::Rc;

use tarn_core::catalog::Catalog;
use tarn_core::sql::Statement;
use tarn_net::ErrorCode;

use super::ServerError;
use super::Shard;
use crate::datadir::CATALOG_FILE;
use crate::server::mesh::MsgBody;

impl Shard {
    /// Runs a DDL statement: shard 0 serialises DDL, makes the new catalog durable, then
    /// installs it on every shard before answering. Returns the statement's message and, when
    /// it created a feature view, the events back-filled into it.
    pub async fn ddl(
        self: &Rc<Self>,
        stmt: Statement,
    ) -> Result<(String, Option<u64>), ServerError> {
        if self.id != 0 {
            return self.peers.ask(0, MsgBody::Ddl(stmt)).await;
        }
        let _turn = self
            .ddl_lock
            .acquire_permit(1)
            .await
            .map_err(|_| ServerError::shutting_down())?;
        let current = self.catalog();
        let (next, message) = current.apply_ddl(&stmt).map_err(ServerError::from)?;
        if next.version == current.version {
            return Ok((message, None));
        }
        tarn_storage::write_file_atomic(&self.data_dir, CATALOG_FILE, &next.to_bytes())
            .await
            .map_err(|e| {
                ServerError::new(ErrorCode::Storage, format!("cannot write the catalog: {e}"))
            })?;
        for peer in 0..self.count {
            if peer != self.id {
                self.peers
                    .ask::<String>(peer, MsgBody::Catalog(next.clone()))
                    .await?;
            }
        }
        let created_view = match &stmt {
            Statement::CreateView { spec, .. } => next.view(&spec.name).map(|v| v.id),
            _ => None,
        };
        self.install_catalog(next);
        self.log_index_creates().await?;
        if let Some(view_id) = created_view {
            // Every shard routes new events to the view now; what came before is in the
            // streams' home copies.
            let n = self.backfill_all(view_id).await?;
            return Ok((format!("{message} (back-filled {n} events)"), Some(n)));
        }
        Ok((message, None))
    }

    pub(super) fn install_catalog(&self, next: Catalog) {
        let old = self.catalog();
        {
            let mut state = self.state.borrow_mut();
            for def in old.tables() {
                if next.table_by_id(def.id).is_none() {
                    state.drop_table(def.id);
                }
            }
            for def in old.streams() {
                if next.stream_by_id(def.id).is_none() {
                    state.drop_stream(def.id);
                }
            }
            for def in old.views() {
                if next.view_by_id(def.id).is_none() {
                    state.drop_view(def.id);
                }
            }
            super::knn::sync_indexes(&mut state, &next);
        }
        *self.catalog.borrow_mut() = Rc::new(next);
        self.columns_cache.borrow_mut().clear();
    }
}
