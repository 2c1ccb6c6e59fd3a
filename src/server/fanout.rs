//! Fan-out: ask several shards (or the local shard and its peers) at once and collect every
//! answer. The one place that spawns a task per target: each target is asked concurrently,
//! and every task is awaited even after one failed — dropping a task would cancel it mid-way,
//! e.g. between a part's log append and its apply.

use std::future::Future;

use super::shard::Failure;

/// Runs `ask(item)` for every item concurrently (one local task each) and returns the
/// answers in the items' order once all finished; the first error (in item order) wins.
pub async fn each<I, T, F, Fut>(
    items: impl IntoIterator<Item = I>,
    ask: F,
) -> Result<Vec<T>, Failure>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, Failure>> + 'static,
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
pub async fn sum<I, F, Fut>(items: impl IntoIterator<Item = I>, ask: F) -> Result<u64, Failure>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<u64, Failure>> + 'static,
{
    Ok(each(items, ask).await?.into_iter().sum())
}
