//! A shard's part of a context call: one *visit* per phase of the call that needs this shard,
//! its reads done at one state, and the *holds* that keep that state while a call that visits
//! the shard again (or searches it in steps) is under way.
//!
//! **Hold rule.** A visit of a call that may come back (its plan has several phases) or that
//! searches an index (in steps) takes a hold on its first visit: from then on the shard
//! appends and makes durable every write as usual but applies none to its state until the
//! hold is released — by the call's last visit, by a release message after the call, or by
//! expiry: once a write has waited for it (checked every [`MAX_CONTEXT_HOLD_US`]), or after
//! [`MAX_CONTEXT_HOLD_IDLE_US`] when no write waits (a call that vanished). A later visit of
//! the call finds its hold and reads at the same state and the same as-of time; if the hold
//! expired it answers BUSY and the call starts again. Writers are never starved: while a write
//! waits for holds to end, a new call does not take a hold until that write is applied. Two
//! calls that each hold one shard and wait to take the other's (both shards have a waiting
//! write) are untied by the expiry: one hold breaks within 2 × MAX_CONTEXT_HOLD_US and that
//! call starts again.

use std::rc::Rc;
use std::time::Duration;

use tarn_net::ErrorCode;
use tarn_types::{shard_for, Value};

use super::{KnnAsk, KnnHits, ServerError, Shard};
use crate::server::limits::{CONTEXT_HOLD_POLL_US, MAX_CONTEXT_HOLD_IDLE_US, MAX_CONTEXT_HOLD_US};
use crate::server::mesh::MsgBody;

/// A call's hold: the shard that coordinates the call and the call's number there.
pub type HoldId = (u32, u64);

/// One read of a visit. Keys are canonical key bytes this shard owns.
#[derive(Clone, Debug)]
pub enum ContextOp {
    /// A table row; `positions`: the columns to return.
    Row {
        table_id: u32,
        key: Vec<u8>,
        positions: Vec<usize>,
    },
    /// A feature-view read now; `positions` index the view's result row (key first).
    Features {
        view_id: u32,
        key: Vec<u8>,
        key_value: Value,
        positions: Vec<usize>,
    },
    /// The newest `n` events of a partition key; `positions` index the stream's columns.
    Recent {
        stream_id: u32,
        key: Vec<u8>,
        n: usize,
        positions: Vec<usize>,
    },
    /// The vector of a row of an index's table (a kNN near a row).
    RowVector { index_id: u32, key: Vec<u8> },
    /// This shard's part of a kNN search.
    Knn(KnnAsk),
}

impl ContextOp {
    /// The key it reads, if any (checked on arrival: this shard must own it).
    pub fn key(&self) -> Option<&Vec<u8>> {
        match self {
            ContextOp::Row { key, .. }
            | ContextOp::Features { key, .. }
            | ContextOp::Recent { key, .. }
            | ContextOp::RowVector { key, .. } => Some(key),
            ContextOp::Knn(_) => None,
        }
    }
}

/// One visit of a context call.
#[derive(Clone, Debug)]
pub struct ContextVisit {
    /// The call's hold (None: a one-phase call without searches, answered in one step).
    pub hold: Option<HoldId>,
    /// True on the call's first visit of this shard (the hold is taken).
    pub first: bool,
    /// True when this is the call's last visit of this shard (the hold is released after).
    pub release: bool,
    pub ops: Vec<ContextOp>,
}

/// The answer to one op.
#[derive(Clone, Debug)]
pub enum OpAnswer {
    /// The row's values at the asked positions (None: no such row).
    Row(Option<Vec<Value>>),
    /// The view's values at the asked positions.
    Features(Vec<Value>),
    /// The key's newest events, newest first.
    Recent(Vec<Vec<Value>>),
    Vector(Option<Vec<f32>>),
    Knn(KnnHits),
}

/// A visit's answers, in op order, and the state they were read at.
#[derive(Clone, Debug)]
pub struct VisitAnswer {
    /// The as-of time of the reads (every event appended at or before it included).
    pub as_of_us: i64,
    /// The last LSN applied to the state the reads saw.
    pub lsn: u64,
    pub answers: Vec<OpAnswer>,
}

/// An active hold: the as-of time of the state held and when it was taken.
#[derive(Clone, Copy, Debug)]
struct Hold {
    as_of_us: i64,
    taken_us: i64,
}

/// The holds on one shard.
#[derive(Default)]
pub(super) struct Holds {
    active: std::cell::RefCell<std::collections::HashMap<HoldId, Hold>>,
    /// Set when a record ready to apply waited for a hold: no new hold until it is applied.
    pub(super) blocked: std::cell::Cell<bool>,
    /// Whether the shard's one expiry task runs (it runs while any hold is active).
    reaper: std::cell::Cell<bool>,
}

impl Holds {
    /// True while some call holds the state.
    pub(super) fn held(&self) -> bool {
        !self.active.borrow().is_empty()
    }

    /// Drops every hold (shutdown: the final applies must run).
    pub(super) fn clear(&self) {
        self.active.borrow_mut().clear();
        self.blocked.set(false);
    }

    /// The holds to break at `now_us`: once a write waits, those held at least
    /// [`MAX_CONTEXT_HOLD_US`]; whether a write waits or not, those held
    /// [`MAX_CONTEXT_HOLD_IDLE_US`] (a call that vanished).
    fn expired(&self, now_us: i64) -> Vec<HoldId> {
        let blocked = self.blocked.get();
        let old = |h: &Hold, us: u64| now_us.saturating_sub(h.taken_us) >= us as i64;
        self.active
            .borrow()
            .iter()
            .filter(|(_, h)| {
                (blocked && old(h, MAX_CONTEXT_HOLD_US)) || old(h, MAX_CONTEXT_HOLD_IDLE_US)
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

impl Shard {
    /// Runs `visit` on shard `target`.
    pub async fn context_visit(
        self: &Rc<Self>,
        target: u32,
        visit: ContextVisit,
    ) -> Result<VisitAnswer, ServerError> {
        if target == self.id {
            return self.context_visit_local(visit).await;
        }
        self.peers
            .ask(target, MsgBody::ContextVisit(Box::new(visit)))
            .await
    }

    /// Releases hold `id` on shard `target` (after a call that did not end there).
    pub async fn context_release(self: &Rc<Self>, target: u32, id: HoldId) {
        if target == self.id {
            self.release_hold(id);
            return;
        }
        let _: Result<String, _> = self
            .peers
            .ask(target, MsgBody::ContextRelease { hold: id })
            .await;
    }

    pub(super) async fn context_visit_local(
        self: &Rc<Self>,
        visit: ContextVisit,
    ) -> Result<VisitAnswer, ServerError> {
        let as_of_us = match visit.hold {
            None => self.consistent_as_of(),
            Some(id) if visit.first => self.take_hold(id).await,
            Some(id) => self.held_as_of(id)?,
        };
        let lsn = self.apply.next_lsn.get() - 1;
        let mut answers = self.read_ops(&visit.ops, as_of_us)?;
        for (op, answer) in visit.ops.iter().zip(answers.iter_mut()) {
            if let ContextOp::Knn(ask) = op {
                *answer = OpAnswer::Knn(self.knn_local(ask).await?);
            }
        }
        if let Some(id) = visit.hold {
            // The reads (and searches) saw one state: nothing was applied in between.
            assert_eq!(lsn, self.apply.next_lsn.get() - 1, "a hold keeps the state");
            if visit.release {
                self.release_hold(id);
            }
        }
        Ok(VisitAnswer {
            as_of_us,
            lsn,
            answers,
        })
    }

    /// The shard's latest consistent point (see `features_local`).
    pub(super) fn consistent_as_of(&self) -> i64 {
        let now = crate::server::now_us() - 1;
        let as_of = now
            .max(self.apply.last_applied_stamp_us.get())
            .min(self.min_pending_stamp().saturating_sub(1));
        debug_assert!(as_of >= self.apply.last_applied_stamp_us.get());
        as_of
    }

    /// Takes hold `id` once no write is waiting for earlier holds; returns its as-of time.
    async fn take_hold(self: &Rc<Self>, id: HoldId) -> i64 {
        let poll = Duration::from_micros(CONTEXT_HOLD_POLL_US);
        while self.holds.blocked.get() {
            glommio::timer::sleep(poll).await;
        }
        let as_of_us = self.consistent_as_of();
        let hold = Hold {
            as_of_us,
            taken_us: crate::server::now_us(),
        };
        let fresh = self.holds.active.borrow_mut().insert(id, hold).is_none();
        assert!(fresh, "hold {id:?} taken twice");
        if !self.holds.reaper.replace(true) {
            let me = self.clone();
            glommio::spawn_local(async move { me.reap_holds().await }).detach();
        }
        as_of_us
    }

    /// The shard's one expiry task, running while any hold is active: every
    /// [`MAX_CONTEXT_HOLD_US`] it breaks the holds [`Holds::expired`] names. A hold no write
    /// waits for costs nothing, so it is not broken sooner (breaking it would make a slow call,
    /// e.g. on a loaded machine, fail for no one's benefit); a write waits at most about twice
    /// MAX_CONTEXT_HOLD_US. One task per shard, not one per hold: a timer per call cost more
    /// CPU than the call's reads.
    async fn reap_holds(self: Rc<Self>) {
        let step = Duration::from_micros(MAX_CONTEXT_HOLD_US);
        loop {
            glommio::timer::sleep(step).await;
            for id in self.holds.expired(crate::server::now_us()) {
                self.release_hold(id);
            }
            if !self.holds.held() {
                self.holds.reaper.set(false);
                return;
            }
        }
    }

    fn held_as_of(&self, id: HoldId) -> Result<i64, ServerError> {
        self.holds.active.borrow().get(&id).map(|h| h.as_of_us).ok_or_else(|| {
            ServerError::new(
                ErrorCode::Busy,
                format!(
                    "shard {}: the context call's hold was broken (a write waited for it over {MAX_CONTEXT_HOLD_US} µs); retry",
                    self.id
                ),
            )
        })
    }

    /// Ends hold `id` (if still active) and applies what waited for it.
    pub(super) fn release_hold(self: &Rc<Self>, id: HoldId) {
        let removed = self.holds.active.borrow_mut().remove(&id).is_some();
        if removed && !self.holds.held() {
            self.drain_applies();
            self.holds.blocked.set(false);
        }
    }

    /// The synchronous reads of a visit, at one state (kNN ops get a placeholder, searched
    /// after).
    fn read_ops(&self, ops: &[ContextOp], as_of_us: i64) -> Result<Vec<OpAnswer>, ServerError> {
        let catalog = self.catalog();
        let state = self.state.borrow();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            if let Some(k) = op.key() {
                assert_eq!(
                    shard_for(k, self.count),
                    self.id,
                    "context op at a non-owner"
                );
            }
            out.push(match op {
                ContextOp::Row {
                    table_id,
                    key,
                    positions,
                } => OpAnswer::Row(
                    state
                        .get(*table_id, key)
                        .map(|row| positions.iter().map(|&p| row[p].clone()).collect()),
                ),
                ContextOp::Features {
                    view_id,
                    key,
                    key_value,
                    positions,
                } => {
                    let view = catalog
                        .view_by_id(*view_id)
                        .ok_or_else(|| dropped(ErrorCode::UnknownView, "feature view", *view_id))?;
                    let stream = catalog
                        .stream_by_id(view.stream_id)
                        .expect("a view's stream exists while the view does");
                    let (vals, _) = state.read_view(view, stream, key, as_of_us);
                    let pick = |p: usize| {
                        if p == 0 {
                            key_value.clone()
                        } else {
                            vals[p - 1].clone()
                        }
                    };
                    OpAnswer::Features(positions.iter().map(|&p| pick(p)).collect())
                }
                ContextOp::Recent {
                    stream_id,
                    key,
                    n,
                    positions,
                } => {
                    let stream = catalog
                        .stream_by_id(*stream_id)
                        .ok_or_else(|| dropped(ErrorCode::UnknownStream, "stream", *stream_id))?;
                    OpAnswer::Recent(state.recent(stream, key, *n, positions))
                }
                ContextOp::RowVector { index_id, key } => {
                    OpAnswer::Vector(state.knn_row_vector(*index_id, key).map(<[f32]>::to_vec))
                }
                ContextOp::Knn(_) => OpAnswer::Knn(KnnHits::default()),
            });
        }
        Ok(out)
    }
}

fn dropped(code: ErrorCode, what: &str, id: u32) -> ServerError {
    ServerError::new(code, format!("{what} #{id} was dropped"))
}
