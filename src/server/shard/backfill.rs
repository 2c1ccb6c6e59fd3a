//! Back-fill of a new feature view from the streams' home copies in every shard's log, and the
//! routing bookkeeping it needs (which catalog version in-flight event batches were routed
//! with).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use glommio::sync::Semaphore;
use tarn_core::record::{self, Mutation};
use tarn_net::ErrorCode;
use tarn_types::{shard_for, Value};

use super::{ServerError, Shard};
use crate::server::fanout;
use crate::server::mesh::MsgBody;

/// Background jobs of feature views: routing versions in flight (for back-fill) and the
/// history scans running.
pub(super) struct ViewJobs {
    /// Event batches being coordinated here, by the catalog version they were routed with.
    pub(super) routing: RefCell<BTreeMap<u64, usize>>,
    /// History scans running (each reads the retained log).
    pub(super) history_scans: Semaphore,
}

impl ViewJobs {
    pub(super) fn new() -> ViewJobs {
        ViewJobs {
            routing: RefCell::new(BTreeMap::new()),
            history_scans: Semaphore::new(crate::server::limits::MAX_HISTORY_SCANS_PER_SHARD),
        }
    }
}

impl Shard {
    /// Back-fills a new feature view on every shard (each from its own log); returns the events
    /// sent to the view.
    pub(super) async fn backfill_all(self: &Rc<Self>, view_id: u32) -> Result<u64, ServerError> {
        // First, every batch routed before the view existed must have reached its home log.
        let version = self.catalog().version;
        for peer in 0..self.count {
            if peer == self.id {
                self.quiesce(version).await?;
            } else {
                self.peers
                    .ask::<String>(peer, MsgBody::Quiesce { version })
                    .await?;
            }
        }
        fanout::sum(0..self.count, |peer| {
            let me = self.clone();
            async move {
                if peer == me.id {
                    me.backfill_local(view_id).await
                } else {
                    me.peers.ask(peer, MsgBody::Backfill { view_id }).await
                }
            }
        })
        .await
    }

    /// Counts an event batch this shard coordinates, routed with catalog `version`, until the
    /// guard is dropped (see [`Shard::quiesce`]).
    pub fn route_guard(self: &Rc<Self>, version: u64) -> RouteGuard {
        *self
            .view_jobs
            .routing
            .borrow_mut()
            .entry(version)
            .or_insert(0) += 1;
        RouteGuard {
            shard: self.clone(),
            version,
        }
    }

    /// Waits until every event batch this shard coordinates with a catalog version older than
    /// `version` is finished (at most [`crate::server::limits::QUIESCE_TIMEOUT`]).
    pub(super) async fn quiesce(self: &Rc<Self>, version: u64) -> Result<(), ServerError> {
        let deadline = std::time::Instant::now() + crate::server::limits::QUIESCE_TIMEOUT;
        loop {
            let old = self
                .view_jobs
                .routing
                .borrow()
                .range(..version)
                .any(|(_, n)| *n > 0);
            if !old {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(ServerError::new(
                    ErrorCode::Busy,
                    format!(
                        "shard {}: event batches routed before the new view are still in flight",
                        self.id
                    ),
                ));
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Sends the view's owners every event of its stream whose home copy is in this shard's log
    /// and that was routed before the view existed (`tarn_core::history::BackfillScan`), as
    /// ordinary writes tagged with a producer of this (view, shard): each is logged, stamped
    /// and applied by its owner like a live event (appended now: events whose bucket already
    /// left the window are late).
    pub(super) async fn backfill_local(self: &Rc<Self>, view_id: u32) -> Result<u64, ServerError> {
        let catalog = self.catalog();
        let Some(view) = catalog.view_by_id(view_id) else {
            return Ok(0);
        };
        self.log
            .flush()
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        let end = self.log.durable_lsn();
        let producer_id =
            0xBAC4_F111_0000_0000u64 | (u64::from(view_id) << 16) | u64::from(self.id);
        let mut seq = 0u64;
        let mut scan = tarn_core::history::BackfillScan::new(view, self.id);
        let mut from = self.log.first_lsn();
        let mut sent = 0u64;
        while from <= end {
            // Read a chunk of rows, then send them (writes cannot happen inside the reader).
            let mut by_owner: Vec<Vec<(u64, Vec<Value>)>> = vec![Vec::new(); self.count as usize];
            let mut rows = 0usize;
            let mut last = 0u64;
            let mut bad = None;
            let mut key = Vec::new();
            self.log
                .read_records(from, |lsn, payload| {
                    if lsn > end {
                        return false;
                    }
                    last = lsn;
                    let r = scan.feed(payload, &mut |row: &[Value]| {
                        key.clear();
                        if tarn_types::encode_key(&row[view.key_column], &mut key).is_ok() {
                            by_owner[shard_for(&key, self.count) as usize].push((1, row.to_vec()));
                            rows += 1;
                        }
                    });
                    if let Err(e) = r {
                        bad = Some(e);
                        return false;
                    }
                    rows < crate::server::limits::BACKFILL_BATCH_EVENTS * self.count as usize
                })
                .await
                .map_err(|e| {
                    ServerError::new(ErrorCode::Storage, format!("shard {}: {e}", self.id))
                })?;
            if let Some(e) = bad {
                return Err(ServerError::new(
                    ErrorCode::Internal,
                    format!("shard {}: {e}", self.id),
                ));
            }
            for (owner, rows) in by_owner.into_iter().enumerate() {
                for chunk in rows.chunks(crate::server::limits::BACKFILL_BATCH_EVENTS) {
                    seq += 1;
                    let m = Mutation::Events(tarn_core::record::Events {
                        stream_id: view.stream_id,
                        append_time_us: 0,
                        producer: Some((producer_id, seq)),
                        duplicate: false,
                        routing_version: catalog.version,
                        targets: vec![view_id],
                        rows: chunk.to_vec(),
                    });
                    let record = record::encode_to_vec(&m);
                    sent += chunk.len() as u64;
                    self.write(owner as u32, m, record).await?;
                }
            }
            if last == 0 || last >= end {
                break;
            }
            from = last + 1;
        }
        Ok(sent)
    }
}

/// Counts one event batch being routed with a catalog version; see [`Shard::route_guard`].
pub struct RouteGuard {
    shard: Rc<Shard>,
    version: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let mut routing = self.shard.view_jobs.routing.borrow_mut();
        let n = routing.get_mut(&self.version).expect("counted");
        *n -= 1;
        if *n == 0 {
            routing.remove(&self.version);
        }
    }
}
