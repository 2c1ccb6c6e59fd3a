//! Feature views on one shard: per (view, key) a window of time buckets and the LSN that last
//! changed it.

use std::rc::Rc;

use tarn_features::{AggKind, AggSpec, WindowState};
use tarn_types::Value;

use super::FastMap;
use crate::schema::StreamDef;
use crate::view::{AggFunc, ViewDef, WindowSpec};

/// One feature view's state on this shard: a window per key this shard owns.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ViewState {
    /// The aggregate kernels' specs, from the view definition (views never change).
    pub(super) specs: Rc<[AggSpec]>,
    pub(super) keys: FastMap<Rc<[u8]>, KeyWindow>,
    pub(super) counters: ViewCounters,
}

/// One (view, key): its window and the log position that last changed it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct KeyWindow {
    /// LSN of the last record applied to this window (0 for applies without an LSN).
    pub(super) last_lsn: u64,
    /// Set only when restored from a fuzzy checkpoint: records with an LSN up to this one are
    /// already in `win`, so replay skips them for this key.
    pub(super) skip_until: u64,
    pub(super) win: WindowState,
}

/// Counters of one feature view on this shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewCounters {
    /// Events applied to a window.
    pub events: u64,
    /// Events dropped because their bucket had already left the window when they arrived.
    pub late: u64,
}

/// The bucket-id range a read as of `as_of_us` combines: the `window / bucket` buckets ending
/// with the one holding `as_of_us`; a lifetime view has the single bucket 0.
pub fn window_range(w: &WindowSpec, as_of_us: i64) -> (i64, i64) {
    match *w {
        WindowSpec::Sliding {
            window_us,
            bucket_us,
        } => {
            let cur = as_of_us.div_euclid(bucket_us);
            (cur - (window_us / bucket_us) + 1, cur)
        }
        WindowSpec::Lifetime => (0, 0),
    }
}

/// The aggregate kernels' specs of a view.
pub fn view_specs(view: &ViewDef, stream: &StreamDef) -> Vec<AggSpec> {
    view.aggregates
        .iter()
        .map(|a| {
            let kind = match a.func {
                AggFunc::CountStar => AggKind::CountStar,
                AggFunc::Count => AggKind::Count,
                AggFunc::Sum => AggKind::Sum,
                AggFunc::Min => AggKind::Min,
                AggFunc::Max => AggKind::Max,
                AggFunc::Avg => AggKind::Avg,
                AggFunc::Variance => AggKind::Variance,
                AggFunc::Stddev => AggKind::Stddev,
                AggFunc::VarPop => AggKind::VarPop,
                AggFunc::StddevPop => AggKind::StddevPop,
                AggFunc::CountDistinct => AggKind::CountDistinct,
                AggFunc::First => AggKind::First,
                AggFunc::Last => AggKind::Last,
            };
            AggSpec::new(kind, a.input.map(|c| stream.columns[c].ty))
        })
        .collect()
}

impl ViewState {
    /// The read of one key as of `as_of_us` ([`ShardState::read_view`]).
    pub(crate) fn read(
        &self,
        view: &ViewDef,
        key: &[u8],
        as_of_us: i64,
    ) -> (Vec<Value>, Option<i64>) {
        let (lo, hi) = window_range(&view.window, as_of_us);
        match self.keys.get(key) {
            Some(k) => (k.win.read(&self.specs, lo, hi), k.win.newest_event_time()),
            None => (
                WindowState::new(&self.specs).read(&self.specs, lo, hi),
                None,
            ),
        }
    }

    pub(crate) fn new(view: &ViewDef, stream: &StreamDef) -> ViewState {
        ViewState {
            specs: view_specs(view, stream).into(),
            keys: FastMap::default(),
            counters: ViewCounters::default(),
        }
    }

    /// Applies one event row appended at `append_us` by the record at `lsn`.
    pub(crate) fn apply(
        &mut self,
        view: &ViewDef,
        stream: &StreamDef,
        lsn: u64,
        append_us: i64,
        row: &[Value],
    ) {
        let Some(Value::Timestamp(ts)) = row.get(stream.event_time) else {
            return; // validated at ingest: never happens
        };
        let ts = *ts;
        let (bucket, oldest) = match view.window {
            WindowSpec::Sliding { bucket_us, .. } => {
                let (oldest, _) = window_range(&view.window, append_us);
                (ts.div_euclid(bucket_us), oldest)
            }
            WindowSpec::Lifetime => (0, i64::MIN),
        };
        if bucket < oldest {
            // Its bucket left the window before it arrived: no read at or after its append
            // time could include it, and reads before that exclude it anyway.
            self.counters.late += 1;
            return;
        }
        let mut key = Vec::with_capacity(16);
        if tarn_types::encode_key(&row[view.key_column], &mut key).is_err() {
            return; // NULL key: not routed to views
        }
        let specs = &self.specs;
        let entry = match self.keys.get_mut(key.as_slice()) {
            Some(e) => e,
            None => self.keys.entry(Rc::from(key)).or_insert_with(|| KeyWindow {
                last_lsn: 0,
                skip_until: 0,
                win: WindowState::new(specs),
            }),
        };
        self.counters.events += 1;
        if lsn != 0 && lsn <= entry.skip_until {
            return; // already in the window restored from a fuzzy checkpoint
        }
        assert!(
            lsn == 0 || lsn >= entry.last_lsn,
            "record {lsn} applied to a window that record {} already changed",
            entry.last_lsn
        );
        let inputs: Vec<Option<&Value>> = view
            .aggregates
            .iter()
            .map(|a| {
                if a.filter.as_ref().is_some_and(|f| !f.matches(row)) {
                    None
                } else {
                    Some(a.input.map_or(&Value::Null, |c| &row[c]))
                }
            })
            .collect();
        entry.win.update(specs, bucket, ts, &inputs);
        if oldest != i64::MIN {
            entry.win.expire_before(oldest);
        }
        if lsn != 0 {
            entry.last_lsn = lsn;
        }
    }
}
