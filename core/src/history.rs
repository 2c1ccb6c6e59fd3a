//! Point-in-time history: a feature view's values for (key, as-of time) pairs, recomputed by
//! replaying a shard's log with the same aggregation code the online path uses.
//!
//! Online, a read as of `T` sees exactly the events whose append time is at or before `T`
//! (append times follow the apply order; see docs/SQL.md). Replaying the owner's log in LSN
//! order and answering each `(key, T)` just before the first record stamped after `T` therefore
//! gives the same windows, bucket for bucket, and the same bits. The replayer obeys the logged
//! decisions — duplicate flags of producer-tagged parts, Commit/Abort of multi-shard parts —
//! so it needs no state from before the part of the log it reads, except for lifetime views
//! (see the server's retention checks).

use std::collections::{BTreeMap, HashSet};

use tarn_types::Value;

use crate::catalog::Catalog;
use crate::record::{decode_record, Events, Mutation, Record, TxnId};
use crate::schema::StreamDef;
use crate::state::ViewState;
use crate::view::ViewDef;
use crate::CoreError;

/// One answer: the aggregates' values and the newest event time held for the key.
pub type Answer = (Vec<Value>, Option<i64>);

/// Replays records for one view on one shard and answers `(key, as_of)` queries.
pub struct History<'a> {
    view: &'a ViewDef,
    stream: &'a StreamDef,
    shard: u32,
    /// `(as_of, key, query index)`, ascending by as-of time.
    queries: Vec<(i64, Vec<u8>, usize)>,
    next: usize,
    keys: HashSet<Vec<u8>>,
    state: ViewState,
    /// Prepared parts of multi-shard batches that concern the view, until Commit or Abort.
    stash: BTreeMap<TxnId, Events>,
    answers: Vec<Option<Answer>>,
    /// LSN of the last record fed (records come in log order).
    last_lsn: u64,
    /// The latest append stamp seen (stamps do not decrease along a shard's log).
    last_stamp: i64,
    /// The as-of time of the last query answered (answers go in as-of order).
    last_answered: i64,
}

impl<'a> History<'a> {
    /// `queries[i] = (canonical key, as_of_us)`; the view and its stream must be in `catalog`.
    pub fn new(
        catalog: &'a Catalog,
        view: &'a ViewDef,
        shard: u32,
        queries: Vec<(Vec<u8>, i64)>,
    ) -> History<'a> {
        let stream = catalog
            .stream_by_id(view.stream_id)
            .expect("a view's stream exists");
        let keys = queries.iter().map(|(k, _)| k.clone()).collect();
        let answers = vec![None; queries.len()];
        let mut queries: Vec<(i64, Vec<u8>, usize)> = queries
            .into_iter()
            .enumerate()
            .map(|(i, (k, t))| (t, k, i))
            .collect();
        queries.sort_by_key(|q| (q.0, q.2));
        History {
            view,
            stream,
            shard,
            queries,
            next: 0,
            keys,
            state: ViewState::new(view, stream),
            stash: BTreeMap::new(),
            answers,
            last_lsn: 0,
            last_stamp: i64::MIN,
            last_answered: i64::MIN,
        }
    }

    /// The latest as-of time asked.
    pub fn max_as_of(&self) -> Option<i64> {
        self.queries.last().map(|q| q.0)
    }

    /// Answers every query whose as-of time is before `stamp`, in as-of order. Stamps do not
    /// decrease from one call to the next: the log's append times follow its order, which is
    /// what makes the answer at `T` the online read at `T`. (A debug assertion only: after a
    /// restart the server floors new stamps at the newest *home* append time, so a clock that
    /// went back across a restart can still stamp a view-only record earlier; the answer is
    /// then inexact, not worth a crash.)
    fn answer_before(&mut self, stamp: i64) {
        debug_assert!(
            stamp >= self.last_stamp,
            "append stamp {stamp} after {}: stamps follow the log order",
            self.last_stamp
        );
        self.last_stamp = self.last_stamp.max(stamp);
        while let Some((t, key, i)) = self.queries.get(self.next) {
            if *t >= stamp {
                break;
            }
            assert!(
                *t >= self.last_answered,
                "queries are answered in as-of order"
            );
            assert!(self.answers[*i].is_none(), "each query is answered once");
            self.last_answered = *t;
            self.answers[*i] = Some(self.state.read(self.view, key, *t));
            self.next += 1;
        }
    }

    fn apply(&mut self, lsn: u64, e: &Events) {
        let Some(bit) = e.targets.iter().position(|t| *t == self.view.id) else {
            return;
        };
        for (mask, row) in &e.rows {
            if mask & (1u64 << bit) == 0 {
                continue;
            }
            let mut key = Vec::new();
            if tarn_types::encode_key(&row[self.view.key_column], &mut key).is_err()
                || !self.keys.contains(&key)
            {
                continue;
            }
            self.state
                .apply(self.view, self.stream, lsn, e.append_time_us, row);
        }
    }

    /// Feeds the next record of the log (LSN order). Returns false once every query is
    /// answered (the caller may stop reading).
    ///
    /// Precondition (asserted): LSNs strictly increase from one call to the next.
    pub fn feed(&mut self, lsn: u64, payload: &[u8]) -> Result<bool, CoreError> {
        assert!(
            lsn > self.last_lsn,
            "record {lsn} fed after record {}: history replays the log in order",
            self.last_lsn
        );
        self.last_lsn = lsn;
        let rec = decode_record(payload)?;
        let relevant = |e: &Events| e.stream_id == self.view.stream_id && !e.duplicate;
        match rec {
            Record::Apply(Mutation::Events(e)) => {
                self.answer_before(e.append_time_us);
                if relevant(&e) {
                    self.apply(lsn, &e);
                }
            }
            Record::Prepare {
                txn,
                mutation: Mutation::Events(e),
            } => {
                if relevant(&e) {
                    if let Some(id) = txn.id_on(self.shard) {
                        self.stash.insert(id, e);
                    }
                }
            }
            Record::Commit(id, stamp) => {
                self.answer_before(stamp);
                if let Some(mut e) = self.stash.remove(&id) {
                    e.append_time_us = stamp;
                    self.apply(lsn, &e);
                }
            }
            Record::Abort(id) => {
                self.stash.remove(&id);
            }
            Record::Apply(_) | Record::Prepare { .. } | Record::Index(_) => {}
        }
        Ok(self.next < self.queries.len())
    }

    /// Answers the queries still open (as of times after every record read) and returns the
    /// answers in query order.
    pub fn finish(mut self) -> Vec<Answer> {
        self.answer_before(i64::MAX);
        self.answers
            .into_iter()
            .map(|a| a.expect("every query answered"))
            .collect()
    }
}

/// Finds, in a shard's log, the home copies of events a new view never received: events of
/// its stream appended on this shard as their home, routed with a catalog version older than
/// the view's (`ViewDef::created_version`), not duplicates, that pass the view's WHERE and
/// have a non-NULL key. Multi-shard parts count once committed.
pub struct BackfillScan<'a> {
    view: &'a ViewDef,
    shard: u32,
    stash: BTreeMap<TxnId, Events>,
}

impl<'a> BackfillScan<'a> {
    /// A scan for `view` over shard `shard`'s log.
    pub fn new(view: &'a ViewDef, shard: u32) -> BackfillScan<'a> {
        BackfillScan {
            view,
            shard,
            stash: BTreeMap::new(),
        }
    }

    fn emit(&self, e: &Events, out: &mut impl FnMut(&[Value])) {
        if e.stream_id != self.view.stream_id
            || e.duplicate
            || e.routing_version >= self.view.created_version
        {
            return;
        }
        let Some(bit) = e
            .targets
            .iter()
            .position(|t| *t == crate::record::HOME_TARGET)
        else {
            return;
        };
        for (mask, row) in &e.rows {
            if mask & (1u64 << bit) == 0
                || matches!(row.get(self.view.key_column), None | Some(Value::Null))
                || self.view.filter.as_ref().is_some_and(|f| !f.matches(row))
            {
                continue;
            }
            out(row);
        }
    }

    /// Feeds the next record of the log (LSN order); calls `out` with every row to back-fill.
    pub fn feed(
        &mut self,
        payload: &[u8],
        out: &mut impl FnMut(&[Value]),
    ) -> Result<(), CoreError> {
        match decode_record(payload)? {
            Record::Apply(Mutation::Events(e)) => self.emit(&e, out),
            Record::Prepare {
                txn,
                mutation: Mutation::Events(e),
            } => {
                if let Some(id) = txn.id_on(self.shard) {
                    self.stash.insert(id, e);
                }
            }
            Record::Commit(id, _) => {
                if let Some(e) = self.stash.remove(&id) {
                    self.emit(&e, out);
                }
            }
            Record::Abort(id) => {
                self.stash.remove(&id);
            }
            Record::Apply(_) | Record::Prepare { .. } | Record::Index(_) => {}
        }
        Ok(())
    }
}
