//! KNN: the nearest rows of a vector index's table to a query vector (or to the vector of a
//! given row), through an optional filter on the table's columns. Checked here completely,
//! then fanned out to every shard; each answers its best `k` and the answers merge into the
//! `k` best overall, ordered as one index over all rows would order them.

use std::rc::Rc;

use tarn_core::expr::check::{check_condition, Scope};
use tarn_core::expr::Expr;
use tarn_core::schema::{IndexDef, TableDef};
use tarn_core::sql::knn_select::{KnnOutput, KnnPlan, KnnSelect};
use tarn_net::limits::{MAX_FILTER_BYTES, MAX_KNN_EF, MAX_KNN_K};
use tarn_net::{Column, ErrorCode, KnnQuery, KnnReply, KnnRequest, KnnRow};
use tarn_types::{shard_for, ColumnType, Value};

use crate::server::error::ServerError;
use crate::server::fanout;
use crate::server::shard::{KnnAsk, KnnHits, Shard};

const _: () = assert!(MAX_KNN_K as usize == tarn_vectors::MAX_K);
const _: () = assert!(MAX_KNN_EF as usize == tarn_vectors::HNSW_EF_SEARCH_MAX);

fn invalid(message: String) -> ServerError {
    ServerError::new(ErrorCode::InvalidArgument, message)
}

/// Answers a KNN request.
pub(crate) async fn knn(shard: &Rc<Shard>, req: KnnRequest) -> Result<KnnReply, ServerError> {
    let catalog = shard.catalog();
    let index = catalog.index(&req.index).ok_or_else(|| {
        ServerError::new(
            ErrorCode::UnknownIndex,
            format!("index {:?} does not exist", req.index),
        )
    })?;
    let table = catalog
        .table_by_id(index.table_id)
        .expect("an index's table exists while the index does");
    let ask = KnnArgs {
        query: req.query,
        k: u64::from(req.k),
        ef: req.ef,
        filter: KnnFilter::Text(&req.filter),
        columns: (!req.columns.is_empty()).then_some(&req.columns[..]),
    };
    knn_checked(shard, index, table, ask).await
}

/// The filter of a kNN search, before it is checked against the table.
pub(crate) enum KnnFilter<'a> {
    /// The KNN opcode's text (empty for none), at most `MAX_FILTER_BYTES`.
    Text(&'a str),
    /// A SQL `WHERE`, already lowered.
    Lowered(Option<&'a Expr<String>>),
}

/// A kNN search as asked, before its checks.
pub(crate) struct KnnArgs<'a> {
    /// The vector, or the row whose vector it is.
    pub(crate) query: KnnQuery,
    /// Checked to be in `1..=MAX_KNN_K` (wide, so that a SQL `LIMIT` is checked here too).
    pub(crate) k: u64,
    /// The search's candidate list (`None`: the index's own `ef_search`).
    pub(crate) ef: Option<u32>,
    /// Rows that fail it are skipped by the search, never counted against `k`.
    pub(crate) filter: KnnFilter<'a>,
    /// The columns to return, each once; `None` for every column.
    pub(crate) columns: Option<&'a [String]>,
}

/// The one kNN path (the KNN opcode and SQL `ORDER BY … <-> … LIMIT k`): `ask` checked
/// completely against `index` over `table` (k and ef, then the filter, the columns, the
/// vector), then fanned out to every shard and merged.
pub(crate) async fn knn_checked(
    shard: &Rc<Shard>,
    index: &IndexDef,
    table: &TableDef,
    ask: KnnArgs<'_>,
) -> Result<KnnReply, ServerError> {
    assert_eq!(index.table_id, table.id, "the index's own table");
    let (k, ef) = check_k_ef(ask.k, ask.ef)?;
    let filter = match ask.filter {
        KnnFilter::Text(text) => filter_of(table, text)?,
        KnnFilter::Lowered(parsed) => parsed.map(|p| check_filter(table, p)).transpose()?,
    };
    let (columns, positions) = columns_of(table, ask.columns)?;
    let vector = query_vector(shard, index, table, ask.query).await?;
    let ask = KnnAsk {
        index_id: index.id,
        vector,
        k,
        ef,
        filter,
        columns: positions,
    };
    let answers = fanout::each(0..shard.count, |target| {
        let shard = shard.clone();
        let ask = ask.clone();
        async move { shard.knn(target, ask).await }
    })
    .await?;
    let reply = merge(answers, k, columns);
    assert!(reply.rows.len() <= k, "at most k rows");
    Ok(reply)
}

/// `k` in `1..=MAX_KNN_K`, `ef` (when given) in the HNSW range.
fn check_k_ef(k: u64, ef: Option<u32>) -> Result<(usize, Option<usize>), ServerError> {
    if k == 0 {
        return Err(invalid("k must be at least 1".into()));
    }
    if k > u64::from(MAX_KNN_K) {
        return Err(ServerError::new(
            ErrorCode::LimitExceeded,
            format!("k is {k}, the limit is {MAX_KNN_K}"),
        ));
    }
    let min = tarn_vectors::HNSW_EF_SEARCH_MIN as u32;
    match ef {
        Some(e) if !(min..=MAX_KNN_EF).contains(&e) => Err(invalid(format!(
            "ef is {e}, it must be in {min}..={MAX_KNN_EF}"
        ))),
        _ => Ok((k as usize, ef.map(|e| e as usize))),
    }
}

/// The checked filter (None for an empty one): the table's columns, the expression language
/// of `tarn_core::expr`, at most `MAX_FILTER_BYTES` of text.
fn filter_of(table: &TableDef, text: &str) -> Result<Option<Expr<usize>>, ServerError> {
    if text.len() > MAX_FILTER_BYTES as usize {
        return Err(ServerError::new(
            ErrorCode::LimitExceeded,
            format!(
                "the filter is {} bytes, the limit is {MAX_FILTER_BYTES}",
                text.len()
            ),
        ));
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    let parsed = tarn_core::sql::parse_condition(text).map_err(ServerError::from)?;
    check_filter(table, &parsed).map(Some)
}

/// A parsed filter checked against the table's columns (the expression checker's rules).
fn check_filter(table: &TableDef, parsed: &Expr<String>) -> Result<Expr<usize>, ServerError> {
    let scope = Scope::new(&table.name, &table.columns);
    check_condition(parsed, &scope, "kNN filter").map_err(ServerError::from)
}

/// The reply columns and their positions: the listed ones (each once), or every column.
fn columns_of(
    table: &TableDef,
    names: Option<&[String]>,
) -> Result<(Vec<Column>, Vec<usize>), ServerError> {
    let positions: Vec<usize> = if let Some(names) = names {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let i = table.column_index(name).ok_or_else(|| {
                ServerError::from(tarn_core::CoreError::UnknownColumn {
                    table: table.name.clone(),
                    column: name.clone(),
                })
            })?;
            if out.contains(&i) {
                return Err(ServerError::from(tarn_core::CoreError::DuplicateColumn {
                    column: name.clone(),
                }));
            }
            out.push(i);
        }
        out
    } else {
        (0..table.columns.len()).collect()
    };
    let columns = positions
        .iter()
        .map(|&i| Column {
            name: table.columns[i].name.clone(),
            ty: table.columns[i].ty,
        })
        .collect();
    Ok((columns, positions))
}

/// The query vector, checked against the index: given, or the vector of the row `Like` names
/// (asked of its owner).
async fn query_vector(
    shard: &Rc<Shard>,
    index: &IndexDef,
    table: &TableDef,
    query: KnnQuery,
) -> Result<Vec<f32>, ServerError> {
    let column = &table.columns[usize::from(index.column)].name;
    let v = match query {
        KnnQuery::Vector(v) => v,
        KnnQuery::Like(key) => {
            let keys = tarn_core::batch::validate_keys(table, std::slice::from_ref(&key))
                .map_err(ServerError::from)?;
            let key_bytes = keys.into_iter().next().expect("one key validated");
            let owner = shard_for(&key_bytes, shard.count);
            let found = shard.row_vector(owner, index.id, key_bytes).await?;
            found.ok_or_else(|| {
                invalid(format!(
                    "table {:?} has no row with key {key:?} and a vector in {column:?}",
                    table.name
                ))
            })?
        }
    };
    index.metric.check(&v, index.dim as usize).map_err(|e| {
        ServerError::from(tarn_core::vector::bad(
            None,
            Some(column),
            format!("query vector: {e}"),
        ))
    })?;
    Ok(v)
}

/// The `k` best of every shard's answer, in rank order (key, then shard, then the shard's
/// own order — row ids are per shard).
pub(super) fn merge(answers: Vec<KnnHits>, k: usize, columns: Vec<Column>) -> KnnReply {
    let distances = answers.iter().map(|a| a.distances).sum();
    let mut all: Vec<(f32, usize, usize, f32, Vec<tarn_types::Value>)> = answers
        .into_iter()
        .enumerate()
        .flat_map(|(s, a)| {
            a.hits
                .into_iter()
                .enumerate()
                .map(move |(i, (key, d, values))| (key, s, i, d, values))
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    all.truncate(k);
    KnnReply {
        columns,
        rows: all
            .into_iter()
            .map(|(_, _, _, distance, values)| KnnRow { distance, values })
            .collect(),
        distances,
    }
}

/// `SELECT … ORDER BY col <op> <vector> LIMIT k`: the query planned against the catalog (its
/// index chosen by the column and the operator's metric), searched by [`knn_checked`] with the
/// index's own `ef_search`, and the rows laid out in select-list order (a distance is a DOUBLE
/// holding the f32 exactly).
pub(super) async fn select_knn(
    shard: &Rc<Shard>,
    query: &KnnSelect,
) -> Result<(Vec<Column>, Vec<Vec<Value>>), ServerError> {
    let catalog = shard.catalog();
    let KnnPlan {
        table,
        index,
        vector,
        filter,
        columns,
        outputs,
        k,
    } = query.plan(&catalog).map_err(ServerError::from)?;
    let ask = KnnArgs {
        query: KnnQuery::Vector(vector),
        k,
        ef: None,
        filter: KnnFilter::Lowered(filter.as_ref()),
        columns: Some(&columns),
    };
    let reply = knn_checked(shard, index, table, ask).await?;
    assert_eq!(reply.columns.len(), columns.len(), "the columns asked for");
    let result_columns = outputs
        .iter()
        .map(|o| match o {
            KnnOutput::Column(i) => reply.columns[*i].clone(),
            KnnOutput::Distance(name) => Column {
                name: name.clone(),
                ty: ColumnType::Double,
            },
        })
        .collect();
    let rows = reply
        .rows
        .into_iter()
        .map(|row| {
            outputs
                .iter()
                .map(|o| match o {
                    KnnOutput::Column(i) => row.values[*i].clone(),
                    KnnOutput::Distance(_) => Value::Double(f64::from(row.distance)),
                })
                .collect()
        })
        .collect();
    Ok((result_columns, rows))
}
