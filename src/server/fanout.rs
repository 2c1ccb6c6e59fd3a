//! Fan-out: ask several shards (or the local shard and its peers) at once and collect every
//! answer. The one place that spawns a task per target: each target is asked concurrently,
//! and every task is awaited even after one failed — dropping a task would cancel it mid-way,
//! e.g. between a part's log append and its apply.

use std::future::Future;

use tarn_core::batch::OwnerPart;

use super::error::ServerError;

/// Runs `ask(item)` for every item concurrently (one local task each) and returns the
/// answers in the items' order once all finished; the first error (in item order) wins.
pub async fn each<I, T, F, Fut>(
    items: impl IntoIterator<Item = I>,
    ask: F,
) -> Result<Vec<T>, ServerError>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, ServerError>> + 'static,
    T: 'static,
{
    let tasks: Vec<_> = items
        .into_iter()
        .map(|item| glommio::spawn_local(ask(item)))
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    let mut first_err = None;
    for task in tasks {
        match task.await {
            Ok(answer) => answers.push(answer),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(answers),
    }
}

/// [`each`] of counts (rows written, events back-filled): their sum.
pub async fn sum<I, F, Fut>(items: impl IntoIterator<Item = I>, ask: F) -> Result<u64, ServerError>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<u64, ServerError>> + 'static,
{
    Ok(each(items, ask).await?.into_iter().sum())
}

/// Asks every owner of a request's keys for its part at once (`ask(shard, items)` answers one
/// value per item, in order) and puts the answers back in request order: `n` values, one per
/// key of the request that `parts` (from `tarn_core::batch::by_owner`) were grouped from.
pub async fn ask_owners<T, R, F, Fut>(
    parts: Vec<OwnerPart<T>>,
    n: usize,
    ask: F,
) -> Result<Vec<R>, ServerError>
where
    F: Fn(u32, Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<R>, ServerError>> + 'static,
    R: 'static,
{
    let (indexes, asks): (Vec<_>, Vec<_>) = parts
        .into_iter()
        .map(|p| (p.indexes, (p.shard, p.items)))
        .unzip();
    let answers = each(asks, |(shard, items)| ask(shard, items)).await?;
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for (idx, values) in indexes.into_iter().zip(answers) {
        assert_eq!(
            idx.len(),
            values.len(),
            "an owner answers every key it was sent"
        );
        for (i, v) in idx.into_iter().zip(values) {
            assert!(out[i].replace(v).is_none(), "key {i} answered twice");
        }
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("every key has one owner"))
        .collect())
}
