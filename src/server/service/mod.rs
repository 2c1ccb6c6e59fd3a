//! Request → reply: what each opcode does, independent of the connection it came on. Entered
//! from `conn::session::dispatch` for every request not answered inline; answers with a
//! `Response` or the error the client sees.

mod context;
mod knn;
mod read;
mod sql;
mod write;

use std::rc::Rc;

use crate::server::error::ServerError;
use tarn_core::batch;
use tarn_core::record::Mutation;
use tarn_net::{
    DeleteReply, ErrorCode, FeaturesReply, GetReply, HistoryReply, Request, Response, StatsReply,
    UpsertReply,
};

use crate::server::shard::Shard;
use read::{get_rows, read_features, read_history, read_recent};
use sql::sql_request;
use write::{ingest, run_parts};

pub(crate) async fn handle(shard: &Rc<Shard>, request: Request) -> Result<Response, ServerError> {
    match request {
        Request::Sql(sql) => sql_request(shard, &sql).await,
        Request::Upsert(up) => {
            let rows = upsert(shard, &up.table, up.mode, &up.columns, up.rows).await?;
            Ok(Response::Upsert(UpsertReply { rows_applied: rows }))
        }
        Request::Get(req) => {
            let (columns, rows) = get(shard, &req.table, &req.keys).await?;
            Ok(Response::Get(GetReply { columns, rows }))
        }
        Request::Delete(req) => {
            let catalog = shard.catalog();
            let def = catalog
                .table(&req.table)
                .ok_or_else(|| unknown_table(&req.table))?;
            let keys = batch::validate_keys(def, &req.keys).map_err(ServerError::from)?;
            let parts = batch::by_owner(keys, shard.count, |_, k| k)
                .into_iter()
                .map(|p| {
                    let delete = Mutation::Delete {
                        table_id: def.id,
                        keys: p.items,
                    };
                    (p.shard, delete)
                })
                .collect();
            let rows = run_parts(shard, parts, None).await?;
            Ok(Response::Delete(DeleteReply { rows_deleted: rows }))
        }
        Request::Stats => Ok(Response::Stats(StatsReply {
            shards: shard.stats_all().await?,
        })),
        Request::Ingest(req) => ingest(shard, req).await,
        Request::History(req) => {
            let (columns, rows) = read_history(shard, &req.view, req.pairs).await?;
            Ok(Response::History(HistoryReply { columns, rows }))
        }
        Request::Features(req) => {
            let (as_of_us, columns, rows) =
                read_features(shard, &req.view, &req.keys, req.as_of_us)
                    .await
                    .map_err(|mut e| {
                        // FEATURES' as-of time belongs to no key: no row.
                        if e.code == ErrorCode::InvalidArgument {
                            e.row = None;
                        }
                        e
                    })?;
            Ok(Response::Features(FeaturesReply {
                as_of_us,
                columns,
                rows,
            }))
        }
        Request::Knn(req) => Ok(Response::Knn(knn::knn(shard, req).await?)),
        Request::Context(req) => Ok(Response::Context(context::context(shard, req).await?)),
        Request::Recent(req) => Ok(Response::Recent(read_recent(shard, req).await?)),
        Request::Hello(_) | Request::Ping(_) => unreachable!("answered inline"),
    }
}

/// Validates an upsert of `table` completely, splits it by owner and writes it (atomically
/// across shards): UPSERT and SQL INSERT. Returns the rows applied.
pub(crate) async fn upsert(
    shard: &Rc<Shard>,
    table: &str,
    mode: tarn_types::UpsertMode,
    columns: &[String],
    rows: Vec<Vec<tarn_types::Value>>,
) -> Result<u64, ServerError> {
    let catalog = shard.catalog();
    let def = catalog.table(table).ok_or_else(|| unknown_table(table))?;
    let valid = batch::validate_upsert(def, mode, columns, rows).map_err(ServerError::from)?;
    batch::check_indexed_vectors(&valid, &catalog, def).map_err(ServerError::from)?;
    let parts = batch::split_by_shard(valid, shard.count)
        .into_iter()
        .enumerate()
        .filter_map(|(s, part)| part.map(|p| (s as u32, p.into_mutation())))
        .collect();
    run_parts(shard, parts, None).await
}

/// The rows of `keys` in `table` (request order, `None` where absent) and the reply columns:
/// GET and SQL SELECT from a table.
pub(crate) async fn get(
    shard: &Rc<Shard>,
    table: &str,
    keys: &[tarn_types::Value],
) -> Result<(Vec<tarn_net::Column>, Vec<Option<Vec<tarn_types::Value>>>), ServerError> {
    let catalog = shard.catalog();
    let def = catalog.table(table).ok_or_else(|| unknown_table(table))?;
    let keys = batch::validate_keys(def, keys).map_err(ServerError::from)?;
    let columns = shard.reply_columns(def).to_vec();
    let rows = get_rows(shard, def.id, keys).await?;
    Ok((columns, rows))
}

pub(crate) fn unknown_table(name: &str) -> ServerError {
    ServerError {
        code: ErrorCode::UnknownTable,
        message: format!("table {name:?} does not exist"),
        row: None,
        column: None,
    }
}
