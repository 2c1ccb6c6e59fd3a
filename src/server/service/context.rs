//! CONTEXT: a named context (planned at `CREATE CONTEXT`) or an ad hoc item list (planned
//! here), executed phase by phase. In each phase the items whose keys are known are grouped by
//! the shard that serves each read, every such shard gets one visit with all its reads, and
//! the answers become the results that the next phase's keys come from. Holds
//! (`shard/context.rs`) make every shard's reads of one call see one state.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use tarn_core::catalog::Catalog;
use tarn_core::context::{
    self, bind_params, item_keys, ContextDef, ContextSpec, ItemResult, ResultGroup, Source,
    MAX_CONTEXT_ROWS,
};
use tarn_net::{
    Column, ContextCall, ContextGroup, ContextItemReply, ContextReply, ContextRequest, ErrorCode,
    ShardAsOf,
};
use tarn_types::{encode_key, Value};

use crate::server::error::ServerError;
use crate::server::fanout;
use crate::server::limits::MAX_CONTEXT_ATTEMPTS;
use crate::server::shard::{
    ContextOp, ContextVisit, HoldId, KnnAsk, KnnHits, OpAnswer, Shard, VisitAnswer,
};

const _: () = assert!(context::MAX_CONTEXT_ITEMS == tarn_net::limits::MAX_CONTEXT_ITEMS as usize);
const _: () = assert!(context::MAX_CONTEXT_PARAMS == tarn_net::limits::MAX_CONTEXT_PARAMS as usize);
const _: () = assert!(MAX_CONTEXT_ROWS == tarn_net::limits::MAX_CONTEXT_ROWS as usize);

/// Answers a CONTEXT request.
pub(crate) async fn context(
    shard: &Rc<Shard>,
    req: ContextRequest,
) -> Result<ContextReply, ServerError> {
    let catalog = shard.catalog();
    let ad_hoc;
    let def = match &req.call {
        ContextCall::Named(name) => catalog.context(name).ok_or_else(|| {
            ServerError::new(
                ErrorCode::UnknownContext,
                format!("context {name:?} does not exist"),
            )
        })?,
        ContextCall::AdHoc(text) => {
            let items = tarn_core::sql::context::parse_items(text)?;
            let spec = ContextSpec {
                name: String::new(),
                params: Vec::new(),
                items,
            };
            ad_hoc = context::plan(&spec, &catalog, text.clone())?;
            &ad_hoc
        }
    };
    let params = bind_params(def, &req.params)?;
    let mut attempt = 1;
    loop {
        let mut call = Call::new(shard, &catalog, def, &params);
        let result = call.run().await;
        call.release_rest();
        match result {
            Err(e) if e.code == ErrorCode::Busy && attempt < MAX_CONTEXT_ATTEMPTS => attempt += 1,
            r => return r,
        }
    }
}

/// Where the answer to one op of a visit goes.
#[derive(Clone, Copy)]
enum Slot {
    /// Group `group` of item `item`.
    Group { item: usize, group: usize },
    /// The query vector of group `group` of kNN item `item` (a search near a row).
    Vector { item: usize, group: usize },
    /// One shard's part of the search of group `group` of kNN item `item`.
    Search { item: usize, group: usize },
}

/// One execution of a call.
struct Call<'a> {
    shard: &'a Rc<Shard>,
    catalog: &'a Catalog,
    def: &'a ContextDef,
    params: &'a [Value],
    hold: Option<HoldId>,
    /// Per item: the keys of its groups (set in its `ready` phase).
    keys: Vec<Vec<Value>>,
    /// Per item: its result (complete in its `done` phase).
    results: Vec<Option<ItemResult>>,
    /// Per kNN item near rows: each group's query vector (None: no such row or no vector).
    vectors: Vec<Vec<Option<Vec<f32>>>>,
    /// Per kNN item: each group's shard answers, merged when the phase ends.
    searches: Vec<Vec<Vec<KnnHits>>>,
    /// Shards visited: the as-of time and the LSN of the state they read at.
    seen: BTreeMap<u32, (i64, u64)>,
    /// Shards a visit of this call was sent to (each may hold the call's hold).
    visited: BTreeSet<u32>,
    /// Shards whose hold is released.
    released: BTreeSet<u32>,
    rows: usize,
}

impl<'a> Call<'a> {
    fn new(
        shard: &'a Rc<Shard>,
        catalog: &'a Catalog,
        def: &'a ContextDef,
        params: &'a [Value],
    ) -> Call<'a> {
        let n = def.items.len();
        Call {
            shard,
            catalog,
            def,
            params,
            hold: def.needs_hold().then(|| shard.next_hold_id()),
            keys: vec![Vec::new(); n],
            results: vec![None; n],
            vectors: vec![Vec::new(); n],
            searches: vec![Vec::new(); n],
            seen: BTreeMap::new(),
            visited: BTreeSet::new(),
            released: BTreeSet::new(),
            rows: 0,
        }
    }

    async fn run(&mut self) -> Result<ContextReply, ServerError> {
        for phase in 0..self.def.phases {
            let mut ops: BTreeMap<u32, Vec<(Slot, ContextOp)>> = BTreeMap::new();
            for i in 0..self.def.items.len() {
                if self.def.items[i].ready == phase {
                    self.start_item(i, &mut ops).await?;
                }
                let item = &self.def.items[i];
                if item.done == phase && item.done != item.ready {
                    self.search_near_rows(i, &mut ops);
                }
            }
            let last = phase + 1 == self.def.phases;
            self.visit(ops, last).await?;
            for i in 0..self.def.items.len() {
                if self.def.items[i].done == phase && self.results[i].is_none() {
                    self.finish_knn(i);
                }
            }
        }
        Ok(self.reply())
    }

    /// Computes item `i`'s keys and plans its reads.
    async fn start_item(
        &mut self,
        i: usize,
        ops: &mut BTreeMap<u32, Vec<(Slot, ContextOp)>>,
    ) -> Result<(), ServerError> {
        let def = self.def;
        let item = &def.items[i];
        let keys = item_keys(def, i, self.params, &self.results)?;
        self.count_rows(&item.source, keys.len(), &item.name)?;
        let mut push = |owner: u32, slot: Slot, op: ContextOp| {
            ops.entry(owner).or_default().push((slot, op));
        };
        match &item.source {
            Source::Row { table_id } => {
                self.results[i] = Some(empty_groups(&keys));
                for (g, key) in keys.iter().enumerate() {
                    let (owner, bytes) = self.route(key)?;
                    let op = ContextOp::Row {
                        table_id: *table_id,
                        key: bytes,
                        positions: item.positions.clone(),
                    };
                    push(owner, Slot::Group { item: i, group: g }, op);
                }
            }
            Source::Features { view_id, as_of } => match as_of {
                Some(op) => {
                    let at = context::bind::operand_values(def, i, op, self.params, &self.results)?;
                    self.results[i] = Some(self.features_at(i, &keys, at.first()).await?);
                }
                None => {
                    self.results[i] = Some(empty_groups(&keys));
                    for (g, key) in keys.iter().enumerate() {
                        let (owner, bytes) = self.route(key)?;
                        let op = ContextOp::Features {
                            view_id: *view_id,
                            key: bytes,
                            key_value: key.clone(),
                            positions: item.positions.clone(),
                        };
                        push(owner, Slot::Group { item: i, group: g }, op);
                    }
                }
            },
            Source::Knn(k) if k.like => {
                self.vectors[i] = vec![None; keys.len()];
                for (g, key) in keys.iter().enumerate() {
                    let (owner, bytes) = self.route(key)?;
                    let op = ContextOp::RowVector {
                        index_id: k.index_id,
                        key: bytes,
                    };
                    push(owner, Slot::Vector { item: i, group: g }, op);
                }
            }
            Source::Knn(_) => {
                self.vectors[i] = keys.iter().map(vector_of).collect();
                self.keys[i] = keys;
                self.search_near_rows(i, ops);
                return Ok(());
            }
            Source::Recent { stream_id, n } => {
                self.results[i] = Some(empty_groups(&keys));
                for (g, key) in keys.iter().enumerate() {
                    let (owner, bytes) = self.route(key)?;
                    let op = ContextOp::Recent {
                        stream_id: *stream_id,
                        key: bytes,
                        n: *n,
                        positions: item.positions.clone(),
                    };
                    push(owner, Slot::Group { item: i, group: g }, op);
                }
            }
        }
        self.keys[i] = keys;
        Ok(())
    }

    /// The search of every group of kNN item `i` whose query vector is known: one op per
    /// shard (each searches its part of the index).
    fn search_near_rows(&mut self, i: usize, ops: &mut BTreeMap<u32, Vec<(Slot, ContextOp)>>) {
        let Source::Knn(k) = &self.def.items[i].source else {
            unreachable!("only kNN items search")
        };
        self.searches[i] = vec![Vec::new(); self.vectors[i].len()];
        for (g, v) in self.vectors[i].iter().enumerate() {
            let Some(v) = v else { continue };
            let ask = KnnAsk {
                index_id: k.index_id,
                vector: v.clone(),
                k: k.k,
                ef: k.ef,
                filter: k.filter.clone(),
                columns: self.def.items[i].positions.clone(),
            };
            for s in 0..self.shard.count {
                let op = ContextOp::Knn(ask.clone());
                ops.entry(s)
                    .or_default()
                    .push((Slot::Search { item: i, group: g }, op));
            }
        }
    }

    /// Merges the shards' answers of every group of kNN item `i` into its `k` nearest rows.
    fn finish_knn(&mut self, i: usize) {
        let Source::Knn(k) = &self.def.items[i].source else {
            unreachable!("every other item is complete when its phase starts")
        };
        let mut groups = Vec::with_capacity(self.keys[i].len());
        for (g, key) in self.keys[i].iter().enumerate() {
            let answers = std::mem::take(&mut self.searches[i][g]);
            let merged = super::knn::merge(answers, k.k, Vec::new());
            let rows = merged
                .rows
                .into_iter()
                .map(|r| {
                    let mut row = Vec::with_capacity(r.values.len() + 1);
                    row.push(Value::Double(f64::from(r.distance)));
                    row.extend(r.values);
                    row
                })
                .collect();
            groups.push(ResultGroup {
                key: key.clone(),
                rows,
            });
        }
        self.results[i] = Some(ItemResult { groups });
    }

    /// A feature read as of a past moment (every key at the same `as_of`): HISTORY's path.
    async fn features_at(
        &self,
        i: usize,
        keys: &[Value],
        as_of: Option<&Value>,
    ) -> Result<ItemResult, ServerError> {
        let item = &self.def.items[i];
        let (Some(Value::Timestamp(t)), false) = (as_of, keys.is_empty()) else {
            return Ok(empty_groups(keys));
        };
        let Source::Features { view_id, .. } = &item.source else {
            unreachable!()
        };
        let view = self
            .catalog
            .view_by_id(*view_id)
            .expect("planned against this catalog");
        let (_, _, rows) =
            super::read::read_features(self.shard, &view.name, keys, Some(*t)).await?;
        let groups = keys
            .iter()
            .zip(rows)
            .map(|(key, r)| ResultGroup {
                key: key.clone(),
                rows: vec![item
                    .positions
                    .iter()
                    .map(|&p| r.values[p].clone())
                    .collect()],
            })
            .collect();
        Ok(ItemResult { groups })
    }

    /// The owner of `key` and its canonical bytes.
    fn route(&self, key: &Value) -> Result<(u32, Vec<u8>), ServerError> {
        let mut bytes = Vec::new();
        encode_key(key, &mut bytes).map_err(|e| {
            ServerError::new(
                ErrorCode::InvalidArgument,
                format!("context key {key:?}: {e}"),
            )
        })?;
        Ok((tarn_types::shard_for(&bytes, self.shard.count), bytes))
    }

    /// Counts the rows an item of `keys` keys can answer against [`MAX_CONTEXT_ROWS`].
    fn count_rows(&mut self, source: &Source, keys: usize, item: &str) -> Result<(), ServerError> {
        let per_key = match source {
            Source::Knn(k) => k.k,
            Source::Recent { n, .. } => *n,
            Source::Row { .. } | Source::Features { .. } => 1,
        };
        self.rows += keys * per_key;
        if self.rows > MAX_CONTEXT_ROWS {
            return Err(ServerError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "context item {item}: the call would answer more than {MAX_CONTEXT_ROWS} rows"
                ),
            ));
        }
        Ok(())
    }

    /// One visit per shard in `ops`, all at once; the answers put in their slots.
    async fn visit(
        &mut self,
        ops: BTreeMap<u32, Vec<(Slot, ContextOp)>>,
        last: bool,
    ) -> Result<(), ServerError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut slots = Vec::with_capacity(ops.len());
        let mut visits = Vec::with_capacity(ops.len());
        for (s, list) in ops {
            let (sl, os): (Vec<Slot>, Vec<ContextOp>) = list.into_iter().unzip();
            let visit = ContextVisit {
                hold: self.hold,
                first: !self.seen.contains_key(&s),
                release: last,
                ops: os,
            };
            slots.push((s, sl));
            visits.push((s, visit));
            self.visited.insert(s);
        }
        let answers = fanout::each(visits, |(s, visit)| {
            let shard = self.shard.clone();
            async move { shard.context_visit(s, visit).await }
        })
        .await;
        if last {
            // Each shard visited now released its hold, whether or not it answered.
            self.released.extend(slots.iter().map(|(s, _)| *s));
        }
        for ((s, sl), answer) in slots.into_iter().zip(answers?) {
            self.note_state(s, &answer)?;
            for (slot, a) in sl.into_iter().zip(answer.answers) {
                self.put(slot, a);
            }
        }
        Ok(())
    }

    /// Records the state shard `s` read at; a second visit must have read the same one.
    fn note_state(&mut self, s: u32, a: &VisitAnswer) -> Result<(), ServerError> {
        match self.seen.get(&s) {
            None => {
                self.seen.insert(s, (a.as_of_us, a.lsn));
                Ok(())
            }
            Some(&(as_of, lsn)) if as_of == a.as_of_us && lsn == a.lsn => Ok(()),
            Some(&(_, lsn)) => Err(ServerError::new(
                ErrorCode::Internal,
                format!(
                    "shard {s} read a context call at LSN {} after LSN {lsn} under one hold",
                    a.lsn
                ),
            )),
        }
    }

    fn put(&mut self, slot: Slot, a: OpAnswer) {
        match (slot, a) {
            (Slot::Group { item, group }, OpAnswer::Row(row)) => {
                let width = self.def.items[item].columns.len();
                let row = row.unwrap_or_else(|| vec![Value::Null; width]);
                self.group(item, group).rows.push(row);
            }
            (Slot::Group { item, group }, OpAnswer::Features(values)) => {
                self.group(item, group).rows.push(values);
            }
            (Slot::Group { item, group }, OpAnswer::Recent(rows)) => {
                self.group(item, group).rows = rows;
            }
            (Slot::Vector { item, group }, OpAnswer::Vector(v)) => self.vectors[item][group] = v,
            (Slot::Search { item, group }, OpAnswer::Knn(hits)) => {
                self.searches[item][group].push(hits)
            }
            _ => unreachable!("a shard answers each op with its own kind"),
        }
    }

    fn group(&mut self, item: usize, group: usize) -> &mut ResultGroup {
        let r = self.results[item].as_mut().expect("planned in this phase");
        &mut r.groups[group]
    }

    /// Releases the holds of the shards not released by a last visit (an error ended the
    /// call early — a shard that failed its visit may still have taken the hold —, or the
    /// call's last phase did not visit them). Does not wait.
    fn release_rest(&mut self) {
        let Some(hold) = self.hold else { return };
        for &s in &self.visited {
            if self.released.insert(s) {
                let shard = self.shard.clone();
                glommio::spawn_local(async move { shard.context_release(s, hold).await }).detach();
            }
        }
    }

    fn reply(&mut self) -> ContextReply {
        let shards = self
            .seen
            .iter()
            .map(|(&shard, &(as_of_us, _))| ShardAsOf { shard, as_of_us })
            .collect();
        let items = self
            .def
            .items
            .iter()
            .zip(self.results.iter_mut())
            .map(|(item, r)| ContextItemReply {
                name: item.name.clone(),
                columns: item
                    .columns
                    .iter()
                    .map(|c| Column {
                        name: c.name.clone(),
                        ty: c.ty,
                    })
                    .collect(),
                groups: r
                    .take()
                    .expect("every item is answered")
                    .groups
                    .into_iter()
                    .map(|g| ContextGroup {
                        key: g.key,
                        rows: g.rows,
                    })
                    .collect(),
            })
            .collect();
        ContextReply { shards, items }
    }
}

fn empty_groups(keys: &[Value]) -> ItemResult {
    ItemResult {
        groups: keys
            .iter()
            .map(|k| ResultGroup {
                key: k.clone(),
                rows: Vec::new(),
            })
            .collect(),
    }
}

/// The query vector a kNN key holds (planned to be a VECTOR of the index's dimension).
fn vector_of(key: &Value) -> Option<Vec<f32>> {
    match key {
        Value::Vector(v) => Some(v.to_vec()),
        _ => None,
    }
}
