//! Checkpoints: incremental and fuzzy, built in steps from a low-share task queue (see
//! `tarn_core::state::ShardState::checkpoint_builder`), then the log segments they cover are
//! removed; and the final flush and checkpoint at shutdown.

use std::cell::Cell;
use std::rc::Rc;

use glommio::sync::Semaphore;
use tarn_storage::checkpoint;

use super::Shard;

/// Rows archived per checkpoint step before the shard yields to serve requests. Smaller
/// steps cut the longest pause a checkpoint adds to a request (about 10 ms per 16k rows of
/// ~100 bytes on the development VM) at the cost of more yields.
const CHECKPOINT_STEP_ROWS: usize = 4096;

/// Pause between checkpoint steps, during which the shard serves requests. A step of
/// [`CHECKPOINT_STEP_ROWS`] takes about 1.5 ms, so this caps a checkpoint at roughly 90% of an
/// idle core and leaves requests a turn at least every step.
const CHECKPOINT_STEP_PAUSE: std::time::Duration = std::time::Duration::from_micros(150);

/// glommio shares of the checkpoint task queue (the default queue, which serves requests, has
/// 1000). Under full load a checkpoint gets ~1/11 of the core; idle time it gets all of.
const CHECKPOINT_SHARES: usize = 100;

/// The background checkpoint's bookkeeping.
pub(super) struct Checkpointer {
    /// Low-share task queue for background checkpoints: requests in the default queue always
    /// win the CPU, a checkpoint uses what is left (and at least its shares under load).
    pub(super) queue: glommio::TaskQueueHandle,
    /// One checkpoint at a time: the background one and the final one at shutdown would
    /// otherwise write the same temporary file and remove segments concurrently.
    pub(super) turn: Semaphore,
    /// A background checkpoint task exists (scheduled or running): don't spawn another.
    pub(super) scheduled: Cell<bool>,
    /// The LSN the newest checkpoint covers.
    pub(super) lsn: Cell<u64>,
}

impl Checkpointer {
    pub(super) fn new(lsn: u64) -> Checkpointer {
        Checkpointer {
            queue: glommio::executor().create_task_queue(
                glommio::Shares::Static(CHECKPOINT_SHARES),
                glommio::Latency::NotImportant,
                "tarn-checkpoint",
            ),
            turn: Semaphore::new(1),
            scheduled: Cell::new(false),
            lsn: Cell::new(lsn),
        }
    }
}

impl Shard {
    pub(super) fn maybe_checkpoint(self: &Rc<Self>) {
        if self.checkpoints.scheduled.get()
            || self.log.bytes_since(self.checkpoints.lsn.get()) < self.cfg.checkpoint_interval_bytes
        {
            return;
        }
        self.checkpoints.scheduled.set(true);
        let me = self.clone();
        let queue = self.checkpoints.queue;
        let task = glommio::spawn_local_into(
            async move {
                if let Err(e) = me.checkpoint().await {
                    tracing::error!(shard = me.id, "checkpoint failed: {e}");
                }
                me.checkpoints.scheduled.set(false);
            },
            queue,
        );
        match task {
            Ok(t) => {
                t.detach();
            }
            Err(e) => {
                tracing::error!(shard = self.id, "cannot schedule a checkpoint: {e}");
                self.checkpoints.scheduled.set(false);
            }
        };
    }

    /// Writes a checkpoint of everything applied so far and drops the log segments it covers.
    /// The archive is built synchronously, so it is exactly the state at `lsn`.
    pub async fn checkpoint(self: &Rc<Self>) -> Result<(), String> {
        let Ok(_turn) = self.checkpoints.turn.acquire_permit(1).await else {
            return Ok(());
        };
        if self.apply.next_lsn.get() - 1 == self.checkpoints.lsn.get() {
            return Ok(());
        }

        // Incremental and fuzzy (see ShardState::checkpoint_builder): it covers everything
        // applied up to `lsn`, possibly more; replay from `lsn` + 1 is exact because table
        // mutations are idempotent overwrites. Built in short steps so a large state never
        // stalls the shard: requests are served between steps.
        let lsn = self.apply.next_lsn.get() - 1;
        let mut builder = self.state.borrow().checkpoint_builder();
        while !builder.step(&self.state.borrow(), CHECKPOINT_STEP_ROWS) {
            // A short sleep, not a yield: glommio hands a yielding queue the CPU straight back
            // until its 100 ms preempt timer fires; a timer wait lets the executor poll I/O
            // and serve requests between steps.
            glommio::timer::sleep(CHECKPOINT_STEP_PAUSE).await;
        }
        let parts = builder.finish();
        // The builder captured producer seqs taken by records appended but maybe not durable
        // yet, rows and (exactly) indexes as of records applied since, which in async mode
        // need not be durable: the checkpoint must not outlive any of them, so it is written
        // only once everything appended so far is durable.
        let appended = self.log.last_lsn();
        self.log
            .wait_durable(appended)
            .await
            .map_err(|e| e.to_string())?;
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let path = checkpoint::write_parts(&self.shard_dir, lsn, &parts)
            .await
            .map_err(|e| e.to_string())?;
        let removed = self
            .log
            .remove_segments_covered_by(lsn, self.retain_log_since())
            .await
            .map_err(|e| e.to_string())?;
        self.checkpoints.lsn.set(lsn);
        tracing::info!(
            shard = self.id,
            lsn,
            removed_segments = removed,
            "checkpoint {}",
            path.display()
        );
        Ok(())
    }

    /// Log segments sealed after this time are kept even when a checkpoint covers them: the
    /// longest retention of any stream (history reads replay them). `None` without streams.
    pub(super) fn retain_log_since(&self) -> Option<std::time::SystemTime> {
        let longest = self.catalog().streams().map(|s| s.retention_us).max()?;
        let keep = std::time::Duration::from_micros(u64::try_from(longest).unwrap_or(0));
        Some(
            std::time::SystemTime::now()
                .checked_sub(keep)
                .unwrap_or(std::time::UNIX_EPOCH),
        )
    }

    /// Final flush at shutdown: everything appended becomes durable, a checkpoint makes the
    /// next start fast, and the log is closed.
    pub async fn close(self: &Rc<Self>) -> Result<(), String> {
        self.log.flush().await.map_err(|e| e.to_string())?;
        self.holds.clear();
        self.drain_applies();
        if self.apply.failed.borrow().is_none() {
            self.checkpoint().await?;
        }
        self.log.close().await.map_err(|e| e.to_string())
    }
}
