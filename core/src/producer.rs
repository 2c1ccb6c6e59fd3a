//! At-most-once application of producer-tagged batches.
//!
//! The decision is taken when the owner *appends* a tagged part (in log order) and written into
//! the part (its duplicate flag): applying, replaying and reading history then just obey the
//! flag. Replay rebuilds this table by taking the seq of every logged part not flagged duplicate;
//! an Abort releases its part's seq, so a retry of an aborted batch is applied.
//!
//! A client may tag a batch with `(producer id, seq)`. Each shard remembers, per producer, the
//! highest seq it applied and which of the [`PRODUCER_WINDOW`] seqs below it it applied. A
//! part whose seq was applied, or is older than the window, is a duplicate and is not applied
//! again; anything else is applied and remembered. So a producer may have up to
//! [`PRODUCER_WINDOW`] batches in flight and retry any of them, in any order, across lost
//! acks and restarts (this state is part of the shard state: rebuilt by replay and kept in
//! checkpoints). Decisions depend only on the log order, so replay makes the same ones.
//!
//! The table holds at most [`MAX_PRODUCERS_PER_SHARD`] producers; when a new producer would
//! exceed it, the one tagged least recently (in log order) is forgotten, and a retry from it
//! would then be applied again. Producers that stay active are never forgotten.

use std::collections::{BTreeMap, HashMap};

/// Seqs below a producer's highest applied seq that a shard still tells apart. A producer
/// must not have more batches than this in flight (a retry older than the window is treated
/// as already applied). Costs 16 bytes per producer (a bitmap).
pub const PRODUCER_WINDOW: u64 = 128;

/// Producers one shard remembers. Each costs about 64 bytes; 65,536 is 4 MiB per shard.
/// Beyond it the least recently active producer is forgotten (see the module doc).
pub const MAX_PRODUCERS_PER_SHARD: usize = 65_536;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One producer's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Highest seq applied.
    pub high: u64,
    /// Bit `i` set: seq `high - i` applied (bit 0 is `high` itself).
    pub seen: u128,
    /// Log-order tick of the last tagged part from this producer (for forgetting).
    pub tick: u64,
}

/// Every producer this shard remembers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProducerTable {
    windows: FastMap<u64, Window>,
    by_tick: BTreeMap<u64, u64>,
    tick: u64,
}

impl ProducerTable {
    /// Decides whether part `(id, seq)` is applied (true) or a duplicate (false), and records
    /// it. Deterministic in the order of calls.
    pub fn admit(&mut self, id: u64, seq: u64) -> bool {
        self.tick += 1;
        let tick = self.tick;
        if let Some(w) = self.windows.get_mut(&id) {
            self.by_tick.remove(&w.tick);
            w.tick = tick;
            self.by_tick.insert(tick, id);
            if seq > w.high {
                let shift = seq - w.high;
                w.seen = if shift >= 128 { 0 } else { w.seen << shift };
                w.seen |= 1;
                w.high = seq;
                return true;
            }
            let back = w.high - seq;
            if back >= PRODUCER_WINDOW {
                return false;
            }
            let bit = 1u128 << back;
            if w.seen & bit != 0 {
                return false;
            }
            w.seen |= bit;
            return true;
        }
        if self.windows.len() >= MAX_PRODUCERS_PER_SHARD {
            let (&old_tick, &old_id) = self.by_tick.iter().next().expect("table is full");
            self.by_tick.remove(&old_tick);
            self.windows.remove(&old_id);
        }
        self.windows.insert(
            id,
            Window {
                high: seq,
                seen: 1,
                tick,
            },
        );
        self.by_tick.insert(tick, id);
        true
    }

    /// Forgets that `(id, seq)` was taken (its part was aborted: a retry must be applied).
    pub fn release(&mut self, id: u64, seq: u64) {
        if let Some(w) = self.windows.get_mut(&id) {
            if seq <= w.high && w.high - seq < PRODUCER_WINDOW {
                w.seen &= !(1u128 << (w.high - seq));
            }
        }
    }

    /// Number of producers remembered.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// True when no producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// `(id, window)` pairs in id order and the current tick, for checkpoints.
    pub fn export(&self) -> (Vec<(u64, Window)>, u64) {
        let mut v: Vec<(u64, Window)> = self.windows.iter().map(|(k, w)| (*k, *w)).collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        (v, self.tick)
    }

    /// Rebuilds a table from [`ProducerTable::export`] output. Errors on duplicate ids or ticks,
    /// or ticks beyond `tick`.
    pub fn import(entries: Vec<(u64, Window)>, tick: u64) -> Result<ProducerTable, String> {
        let mut t = ProducerTable {
            tick,
            ..ProducerTable::default()
        };
        if entries.len() > MAX_PRODUCERS_PER_SHARD {
            return Err(format!("{} producers, more than the limit", entries.len()));
        }
        for (id, w) in entries {
            if w.tick > tick || t.by_tick.insert(w.tick, id).is_some() {
                return Err(format!("producer {id}: bad tick {}", w.tick));
            }
            if t.windows.insert(id, w).is_some() {
                return Err(format!("producer {id} appears twice"));
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_semantics() {
        let mut t = ProducerTable::default();
        assert!(t.admit(7, 10));
        assert!(!t.admit(7, 10), "same seq twice");
        assert!(t.admit(7, 12), "a gap is fine");
        assert!(t.admit(7, 11), "an older seq inside the window, first time");
        assert!(!t.admit(7, 11));
        assert!(t.admit(7, 12 + 127));
        assert!(
            !t.admit(7, 12),
            "now outside the window: treated as applied"
        );
        assert!(t.admit(7, 13), "inside the window, never applied");
        assert!(t.admit(8, 1), "producers are independent");
        assert!(t.admit(7, 1000));
        assert!(!t.admit(7, 1000 - 128));
        let (v, tick) = t.export();
        let back = ProducerTable::import(v, tick).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn forgets_the_least_recently_active_when_full() {
        let mut t = ProducerTable::default();
        for id in 0..MAX_PRODUCERS_PER_SHARD as u64 {
            assert!(t.admit(id, 1));
        }
        assert!(t.admit(0, 2), "touch producer 0");
        assert!(t.admit(u64::MAX, 1), "a new producer evicts producer 1");
        assert_eq!(t.len(), MAX_PRODUCERS_PER_SHARD);
        assert!(!t.admit(0, 2), "producer 0 is still remembered");
        assert!(t.admit(1, 1), "producer 1 was forgotten");
    }
}
