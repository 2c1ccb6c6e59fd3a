//! Feature-view reads on the owner: now (at its latest consistent point) or as of a past time
//! (history replayed from the retained log), and the per-view and per-stream counters.

use std::rc::Rc;

use tarn_net::ErrorCode;
use tarn_types::shard_for;

use super::{FeatureRows, ServerError, Shard};
use crate::server::mesh::MsgBody;

impl Shard {
    /// Reads feature view `view_id` for `keys` on shard `target` as of `as_of_us`.
    pub async fn features(
        self: &Rc<Self>,
        target: u32,
        view_id: u32,
        keys: Vec<Vec<u8>>,
    ) -> Result<FeatureRows, ServerError> {
        if target == self.id {
            return self.features_local(view_id, &keys).await;
        }
        self.peers
            .ask(target, MsgBody::Features { view_id, keys })
            .await
    }

    /// Reads keys this shard owns at its latest consistent point: the as-of time `T` is the
    /// clock (or the last applied stamp, if the clock went back), kept below the stamp of any
    /// record still waiting to be applied. Append times follow the apply order (events take
    /// their record's stamp, or their Commit's), so the state now holds exactly the events
    /// stamped at or before `T`. Every acknowledged write is applied, so it is included.
    pub(super) async fn features_local(
        self: &Rc<Self>,
        view_id: u32,
        keys: &[Vec<u8>],
    ) -> Result<FeatureRows, ServerError> {
        let now = crate::server::now_us() - 1;
        let as_of = now
            .max(self.apply.last_applied_stamp_us.get())
            .min(self.min_pending_stamp().saturating_sub(1));
        debug_assert!(as_of >= self.apply.last_applied_stamp_us.get());
        self.read_features_now(view_id, keys, as_of)
    }

    pub(super) fn read_features_now(
        &self,
        view_id: u32,
        keys: &[Vec<u8>],
        as_of_us: i64,
    ) -> Result<FeatureRows, ServerError> {
        let catalog = self.catalog();
        let view = catalog.view_by_id(view_id).ok_or_else(|| {
            ServerError::new(
                ErrorCode::UnknownView,
                format!("feature view #{view_id} was dropped"),
            )
        })?;
        let stream = catalog
            .stream_by_id(view.stream_id)
            .expect("a view's stream exists while the view does");
        let state = self.state.borrow();
        Ok(keys
            .iter()
            .map(|k| {
                debug_assert_eq!(
                    shard_for(k, self.count),
                    self.id,
                    "FEATURES routed to a non-owner"
                );
                let (vals, newest) = state.read_view(view, stream, k, as_of_us);
                (as_of_us, vals, newest)
            })
            .collect())
    }

    /// Point-in-time history on shard `target` (see [`Shard::history_local`]).
    pub async fn history(
        self: &Rc<Self>,
        target: u32,
        view_id: u32,
        queries: Vec<(Vec<u8>, i64)>,
    ) -> Result<FeatureRows, ServerError> {
        if target == self.id {
            return self.history_local(view_id, queries).await;
        }
        self.peers
            .ask(target, MsgBody::History { view_id, queries })
            .await
    }

    /// Answers `(key, as_of)` queries by replaying this shard's retained log with the online
    /// aggregation code (`tarn_core::history`): exactly what an online read as of that time
    /// returned. The replay runs in the low-priority task queue, at most
    /// [`crate::server::limits::MAX_HISTORY_SCANS_PER_SHARD`] at a time.
    pub(super) async fn history_local(
        self: &Rc<Self>,
        view_id: u32,
        queries: Vec<(Vec<u8>, i64)>,
    ) -> Result<FeatureRows, ServerError> {
        let catalog = self.catalog();
        let view = catalog.view_by_id(view_id).ok_or_else(|| {
            ServerError::new(
                ErrorCode::UnknownView,
                format!("feature view #{view_id} was dropped"),
            )
        })?;
        let stream = catalog
            .stream_by_id(view.stream_id)
            .expect("a view's stream exists");
        // What the retained log can answer exactly.
        match view.window {
            tarn_core::view::WindowSpec::Lifetime if self.log.first_lsn() > 1 => {
                return Err(ServerError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "history of lifetime view {} needs every event since the view was created; shard {}'s log no longer starts at its beginning (older segments were dropped after the retention of the stream)",
                        view.name, self.id
                    ),
                ));
            }
            tarn_core::view::WindowSpec::Sliding { window_us, .. } => {
                let oldest = crate::server::now_us() - stream.retention_us
                    + window_us
                    + stream.max_future_us;
                if self.log.first_lsn() > 1 {
                    if let Some(&(_, t)) = queries.iter().find(|(_, t)| *t < oldest) {
                        return Err(ServerError::new(
                            ErrorCode::Unsupported,
                            format!(
                                "as-of time {t} is older than what the retention of stream {} lets history recompute (from {oldest})",
                                stream.name
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        // Every record stamped at or before any as-of time (≤ now) is appended: make it durable
        // so the reader sees it.
        self.log
            .flush()
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        let _turn = self
            .view_jobs
            .history_scans
            .acquire_permit(1)
            .await
            .map_err(|_| ServerError::shutting_down())?;
        let me = self.clone();
        let task = glommio::spawn_local_into(
            async move {
                let catalog = me.catalog();
                let view = catalog.view_by_id(view_id).ok_or_else(|| {
                    ServerError::new(ErrorCode::UnknownView, "view dropped".to_string())
                })?;
                let times: Vec<i64> = queries.iter().map(|q| q.1).collect();
                let mut h = tarn_core::history::History::new(&catalog, view, me.id, queries);
                let mut bad = None;
                let first = me.log.first_lsn();
                me.log
                    .read_records(first, |lsn, payload| match h.feed(lsn, payload) {
                        Ok(more) => more,
                        Err(e) => {
                            bad = Some(e);
                            false
                        }
                    })
                    .await
                    .map_err(|e| {
                        ServerError::new(ErrorCode::Storage, format!("shard {}: {e}", me.id))
                    })?;
                if let Some(e) = bad {
                    return Err(ServerError::new(
                        ErrorCode::Internal,
                        format!("shard {}: {e}", me.id),
                    ));
                }
                Ok(times
                    .into_iter()
                    .zip(h.finish())
                    .map(|(t, (vals, newest))| (t, vals, newest))
                    .collect())
            },
            self.checkpoints.queue,
        )
        .map_err(|e| {
            ServerError::new(ErrorCode::Internal, format!("cannot schedule history: {e}"))
        })?;
        task.await
    }

    /// A stream's counters summed over every shard: (events, newest event time or None).
    pub async fn stream_totals(
        self: &Rc<Self>,
        stream_id: u32,
    ) -> Result<(u64, Option<i64>), ServerError> {
        let mut events = 0;
        let mut newest: Option<i64> = None;
        for peer in 0..self.count {
            let c = if peer == self.id {
                self.state.borrow().stream_counters(stream_id)
            } else {
                self.peers
                    .ask(peer, MsgBody::StreamCounters { stream_id })
                    .await?
            };
            if let Some(c) = c {
                events += c.events;
                if c.events > 0 {
                    newest = Some(
                        newest.map_or(c.newest_event_time_us, |n| n.max(c.newest_event_time_us)),
                    );
                }
            }
        }
        Ok((events, newest))
    }

    /// This shard's (keys, window heap bytes, events applied, late events) of a view.
    pub(super) fn local_view_counters(&self, view_id: u32) -> [u64; 4] {
        let state = self.state.borrow();
        let (keys, bytes) = state.view_memory(view_id);
        let c = state.view_counters(view_id).unwrap_or_default();
        [keys as u64, bytes as u64, c.events, c.late]
    }

    /// A view's counters summed over every shard: (keys, window heap bytes, events, late).
    pub async fn view_totals(self: &Rc<Self>, view_id: u32) -> Result<[u64; 4], ServerError> {
        let mut total = [0u64; 4];
        for peer in 0..self.count {
            let counters: [u64; 4] = if peer == self.id {
                self.local_view_counters(view_id)
            } else {
                self.peers
                    .ask(peer, MsgBody::ViewCounters { view_id })
                    .await?
            };
            for (t, v) in total.iter_mut().zip(counters) {
                *t += v;
            }
        }
        Ok(total)
    }
}
