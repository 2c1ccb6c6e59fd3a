//! Recent events per partition key (`CREATE STREAM … WITH (recent = N)`): on the key's home
//! shard, the `N` newest events of every key, full rows.
//!
//! "Newest" orders events by `(event time, LSN of the record, position in the record)`, so a
//! late event takes its place by event time and ties are broken by log order. A ring is the
//! set of the `N` greatest events by that order among every event ever inserted, which makes
//! an insert idempotent (inserting an event it holds changes nothing) and order-insensitive
//! (the top `N` of a union does not depend on the order of its parts). That is what makes a
//! fuzzy checkpoint plus replay exact: a ring archived after some of the replayed records were
//! applied already holds them, and replaying them again is a no-op.

use std::rc::Rc;

use tarn_types::Value;

use super::FastMap;
use crate::schema::StreamDef;

/// Where an event sorts in its key's ring: (event time µs, LSN of its record, position in
/// the record). Distinct for distinct events of one shard's log.
pub(crate) type RecentOrder = (i64, u64, u32);

/// One event held in a ring: its order and its full row (stream column order).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RecentEvent {
    pub(crate) order: RecentOrder,
    pub(crate) row: Box<[Value]>,
}

/// One key's ring: at most the stream's `recent` events, ascending by order (oldest first).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Ring {
    pub(crate) events: Vec<RecentEvent>,
}

impl Ring {
    /// Inserts `ev` into the set of the `keep` newest events. Returns false when nothing
    /// changed: the ring holds that event already, or is full of newer ones.
    pub(crate) fn insert(&mut self, keep: usize, ev: RecentEvent) -> bool {
        let i = match self.events.binary_search_by(|e| e.order.cmp(&ev.order)) {
            Ok(_) => return false,
            Err(i) => i,
        };
        if self.events.len() < keep {
            if self.events.len() == self.events.capacity() {
                // Grow by doubling, but never past `keep`: a full ring holds no spare slots.
                let cap = (2 * self.events.len()).max(4).min(keep);
                self.events.reserve_exact(cap - self.events.len());
            }
            self.events.insert(i, ev);
            return true;
        }
        if i == 0 {
            return false; // older than everything kept
        }
        self.events.remove(0);
        self.events.insert(i - 1, ev);
        true
    }

    /// Heap bytes of the ring: its vector's capacity and each row's values (not the heap of
    /// TEXT/BYTES values).
    fn heap_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<RecentEvent>()
            + self
                .events
                .iter()
                .map(|e| std::mem::size_of_val(&*e.row))
                .sum::<usize>()
    }
}

/// One stream's rings on this shard (the keys it is the home of).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RecentState {
    /// Events kept per key (the stream's `recent`, never 0).
    pub(crate) keep: u32,
    pub(crate) keys: FastMap<Rc<[u8]>, Ring>,
}

impl RecentState {
    pub(crate) fn new(keep: u32) -> RecentState {
        debug_assert!(keep > 0);
        RecentState {
            keep,
            keys: FastMap::default(),
        }
    }

    /// Inserts one event of `stream` (row at `pos` of the record at `lsn`) into its key's
    /// ring. Events whose partition value is not a key (NULL; validated away at ingest) are
    /// not kept.
    pub(crate) fn insert(&mut self, stream: &StreamDef, lsn: u64, pos: u32, row: &[Value]) {
        let Some(Value::Timestamp(ts)) = row.get(stream.event_time) else {
            return; // validated at ingest: never happens
        };
        let mut key = Vec::with_capacity(16);
        if tarn_types::encode_key(&row[stream.partition], &mut key).is_err() {
            return;
        }
        let ev = RecentEvent {
            order: (*ts, lsn, pos),
            row: row.into(),
        };
        let keep = self.keep as usize;
        match self.keys.get_mut(key.as_slice()) {
            Some(ring) => {
                ring.insert(keep, ev);
            }
            None => {
                let mut ring = Ring::default();
                ring.insert(keep, ev);
                self.keys.insert(Rc::from(key), ring);
            }
        }
    }

    /// Heap bytes of every ring and key (map entries included, TEXT/BYTES contents not).
    pub(crate) fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(Rc<[u8]>, Ring)>() + 1;
        self.keys.capacity() * entry
            + self
                .keys
                .iter()
                .map(|(k, r)| 16 + k.len() + r.heap_bytes())
                .sum::<usize>()
    }
}

/// The newest `n` events held for `key`, newest first, each projected on `columns` (indexes
/// into the stream's columns, in the order wanted). An unknown key has no events.
pub(crate) fn read(
    state: Option<&RecentState>,
    key: &[u8],
    n: usize,
    columns: &[usize],
) -> Vec<Vec<Value>> {
    let Some(ring) = state.and_then(|s| s.keys.get(key)) else {
        return Vec::new();
    };
    ring.events
        .iter()
        .rev()
        .take(n)
        .map(|e| columns.iter().map(|&c| e.row[c].clone()).collect())
        .collect()
}
