//! The catalog file: JSON with a `format` field and one map per object kind, by name
//! (`{"format": 2, "version": …, "next_table_id": …, "tables": {…}, "streams": {…}, "views":
//! {…}, "indexes": {…}, "contexts": {…}, "models": {…}}`, pretty-printed). The layout predates
//! the single namespace and is kept byte for byte. Format 2 added `indexes` (vector indexes), 3
//! `contexts`, 4 `models`; files of formats 1 to 3 are still read.
//! `core/src/tests/fixtures/catalog-v1.json` to `catalog-v4.json` pin each.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Catalog, Object};
use crate::index_def::{IndexDef, MAX_INDEXES_PER_TABLE};
use crate::schema::{StreamDef, TableDef};
use crate::sql::Statement;
use crate::view::ViewDef;
use crate::{CoreError, MAX_VECTOR_DIMENSIONS};

/// Format version written into the catalog JSON (`format` field). Bumped on any incompatible
/// change; [`Catalog::from_bytes`] refuses versions it does not know. 2 added `indexes`, 3
/// `contexts` (each by its id and `CREATE CONTEXT` text, planned again when read), 4 `models`
/// (likewise by id and `CREATE MODEL` text).
pub const CATALOG_FORMAT_VERSION: u32 = 4;

/// The oldest format [`Catalog::from_bytes`] still reads: 1, which had no vector indexes.
pub const OLDEST_CATALOG_FORMAT_VERSION: u32 = 1;

/// A vector index as the file holds it: the metric by its short name, the parameters flat
/// (the seed is the id, so it is not written).
#[derive(Serialize, Deserialize)]
struct IndexDisk {
    id: u32,
    name: String,
    table_id: u32,
    column: u16,
    dim: u32,
    metric: String,
    m: usize,
    ef_construction: usize,
    ef_search: usize,
}

impl IndexDisk {
    fn of(i: &IndexDef) -> IndexDisk {
        IndexDisk {
            id: i.id,
            name: i.name.clone(),
            table_id: i.table_id,
            column: i.column,
            dim: i.dim,
            metric: i.metric.name().to_string(),
            m: i.params.m,
            ef_construction: i.params.ef_construction,
            ef_search: i.params.ef_search,
        }
    }
}

/// The catalog as written: fields in file order, borrowed.
#[derive(Serialize)]
struct DiskRef<'a> {
    version: u64,
    next_table_id: u32,
    tables: BTreeMap<&'a str, &'a TableDef>,
    streams: BTreeMap<&'a str, &'a StreamDef>,
    views: BTreeMap<&'a str, &'a ViewDef>,
    indexes: BTreeMap<&'a str, IndexDisk>,
    contexts: BTreeMap<&'a str, StatementDisk>,
    models: BTreeMap<&'a str, StatementDisk>,
}

/// A named context (or a model) as the file holds it: its id and the statement that created
/// it. Reading plans the statement again against the objects read before it (which it checked
/// when it was created, and which cannot be dropped while it exists), so the plan is never
/// stored.
#[derive(Serialize, Deserialize)]
struct StatementDisk {
    id: u32,
    sql: String,
}

#[derive(Serialize)]
struct CatalogFileRef<'a> {
    format: u32,
    #[serde(flatten)]
    catalog: DiskRef<'a>,
}

/// The catalog as read (files written before streams or views existed lack those maps).
#[derive(Deserialize)]
struct Disk {
    version: u64,
    next_table_id: u32,
    tables: BTreeMap<String, TableDef>,
    #[serde(default)]
    streams: BTreeMap<String, StreamDef>,
    #[serde(default)]
    views: BTreeMap<String, ViewDef>,
    #[serde(default)]
    indexes: BTreeMap<String, IndexDisk>,
    #[serde(default)]
    contexts: BTreeMap<String, StatementDisk>,
    #[serde(default)]
    models: BTreeMap<String, StatementDisk>,
}

#[derive(Deserialize)]
struct CatalogFile {
    format: u32,
    #[serde(flatten)]
    catalog: Disk,
}

impl Catalog {
    /// The catalog file payload: JSON with a `format` field ([`CATALOG_FORMAT_VERSION`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut disk = DiskRef {
            version: self.version,
            next_table_id: self.next_table_id,
            tables: BTreeMap::new(),
            streams: BTreeMap::new(),
            views: BTreeMap::new(),
            indexes: BTreeMap::new(),
            contexts: BTreeMap::new(),
            models: BTreeMap::new(),
        };
        for o in self.objects() {
            match o {
                Object::Table(t) => disk.tables.insert(&t.name, t).is_none(),
                Object::Stream(s) => disk.streams.insert(&s.name, s).is_none(),
                Object::View(v) => disk.views.insert(&v.name, v).is_none(),
                Object::Index(i) => disk.indexes.insert(&i.name, IndexDisk::of(i)).is_none(),
                Object::Context(c) => disk
                    .contexts
                    .insert(
                        &c.name,
                        StatementDisk {
                            id: c.id,
                            sql: c.sql.clone(),
                        },
                    )
                    .is_none(),
                Object::Model(m) => disk
                    .models
                    .insert(
                        &m.name,
                        StatementDisk {
                            id: m.id,
                            sql: m.sql.clone(),
                        },
                    )
                    .is_none(),
            };
        }
        serde_json::to_vec_pretty(&CatalogFileRef {
            format: CATALOG_FORMAT_VERSION,
            catalog: disk,
        })
        .expect("catalog serializes to JSON")
    }

    /// Parses and checks a catalog payload: known format, names matching their keys and unique
    /// across kinds, ids unique and below `next_table_id`, key columns in range and keyable,
    /// stream roles and durations valid, views consistent with their streams. Any failure is
    /// `Corrupt`.
    pub fn from_bytes(b: &[u8]) -> Result<Catalog, CoreError> {
        let file: CatalogFile = serde_json::from_slice(b)
            .map_err(|e| CoreError::Corrupt(format!("catalog JSON: {e}")))?;
        if !(OLDEST_CATALOG_FORMAT_VERSION..=CATALOG_FORMAT_VERSION).contains(&file.format) {
            return Err(CoreError::Corrupt(format!(
                "unsupported catalog format {} (this build reads {OLDEST_CATALOG_FORMAT_VERSION}..={CATALOG_FORMAT_VERSION})",
                file.format
            )));
        }
        let mut disk = file.catalog;
        let contexts = std::mem::take(&mut disk.contexts);
        let models = std::mem::take(&mut disk.models);
        if file.format < 4 && !models.is_empty() {
            return Err(CoreError::Corrupt(
                "catalog formats 1 to 3 have no models, yet the file lists some".into(),
            ));
        }
        if file.format < 3 && !contexts.is_empty() {
            return Err(CoreError::Corrupt(
                "catalog formats 1 and 2 have no contexts, yet the file lists some".into(),
            ));
        }
        if file.format < 2 && !disk.indexes.is_empty() {
            return Err(CoreError::Corrupt(
                "catalog format 1 has no indexes, yet the file lists some".into(),
            ));
        }
        let mut ids = HashSet::new();
        check_tables(&disk, &mut ids)?;
        check_streams(&disk, &mut ids)?;
        check_views(&disk, &mut ids)?;
        let indexes = check_indexes(&disk, &mut ids)?;
        let mut cat = Catalog {
            version: disk.version,
            next_table_id: disk.next_table_id,
            ..Catalog::new()
        };
        // Checked above: names unique across kinds, ids unique, non-zero, below the next id.
        let objects = (disk.tables.into_values().map(Object::Table))
            .chain(disk.streams.into_values().map(Object::Stream))
            .chain(disk.views.into_values().map(Object::View))
            .chain(indexes.into_iter().map(Object::Index));
        for o in objects {
            cat.insert(o);
        }
        for (name, c) in contexts {
            let def = read_context(&cat, &name, c, &mut ids)?;
            cat.insert(Object::Context(Box::new(def)));
        }
        for (name, m) in models {
            let def = read_model(&cat, &name, m, &mut ids)?;
            cat.insert(Object::Model(Box::new(def)));
        }
        Ok(cat)
    }
}

/// A valid id: non-zero, handed out (below `next`), not seen before.
fn fresh_id(id: u32, next: u32, ids: &mut HashSet<u32>) -> bool {
    id != 0 && id < next && ids.insert(id)
}

fn check_tables(cat: &Disk, ids: &mut HashSet<u32>) -> Result<(), CoreError> {
    for (name, t) in &cat.tables {
        let bad = |why: &str| CoreError::Corrupt(format!("catalog table \"{name}\": {why}"));
        if *name != t.name {
            return Err(bad("name does not match its entry"));
        }
        if !fresh_id(t.id, cat.next_table_id, ids) {
            return Err(bad("invalid or duplicate table id"));
        }
        if t.columns.is_empty() || t.key_column >= t.columns.len() {
            return Err(bad("key column out of range"));
        }
        if !t.key_type().can_be_key() {
            return Err(bad("key column type cannot be a key"));
        }
        if t.columns.iter().any(|c| {
            c.ty.vector_dim()
                .is_some_and(|d| d == 0 || d > MAX_VECTOR_DIMENSIONS)
        }) {
            return Err(bad("VECTOR dimension out of range"));
        }
        if crate::sql::table::check_vector_width(name, &t.columns).is_err() {
            return Err(bad(
                "more vector components per row than MAX_VECTOR_COMPONENTS_PER_ROW",
            ));
        }
    }
    Ok(())
}

/// Every VECTOR dimension in `1..=MAX_VECTOR_DIMENSIONS`, and at most
/// `MAX_VECTOR_COMPONENTS_PER_ROW` components in all (what CREATE TABLE/STREAM enforce).
fn vector_columns_ok(name: &str, columns: &[crate::schema::ColumnDef]) -> bool {
    let dims_ok = columns
        .iter()
        .filter_map(|c| c.ty.vector_dim())
        .all(|d| (1..=MAX_VECTOR_DIMENSIONS).contains(&d));
    dims_ok && crate::sql::table::check_vector_width(name, columns).is_ok()
}

fn check_streams(cat: &Disk, ids: &mut HashSet<u32>) -> Result<(), CoreError> {
    for (name, st) in &cat.streams {
        let bad = |why: &str| CoreError::Corrupt(format!("catalog stream \"{name}\": {why}"));
        if *name != st.name {
            return Err(bad("name does not match its entry"));
        }
        if cat.tables.contains_key(name) {
            return Err(bad("a table has the same name"));
        }
        if !fresh_id(st.id, cat.next_table_id, ids) {
            return Err(bad("invalid or duplicate id"));
        }
        if st.event_time >= st.columns.len()
            || st.columns[st.event_time].ty != tarn_types::ColumnType::Timestamp
        {
            return Err(bad("event-time column out of range or not a TIMESTAMP"));
        }
        if st.partition >= st.columns.len() || !st.columns[st.partition].ty.can_be_key() {
            return Err(bad("partition column out of range or not keyable"));
        }
        if !vector_columns_ok(name, &st.columns) {
            return Err(bad("VECTOR dimensions out of range"));
        }
        if st.retention_us <= 0 || st.max_future_us < 0 {
            return Err(bad("retention or max_future out of range"));
        }
        if st.recent > crate::MAX_RECENT_EVENTS_PER_KEY {
            return Err(bad("recent above MAX_RECENT_EVENTS_PER_KEY"));
        }
    }
    Ok(())
}

fn check_views(cat: &Disk, ids: &mut HashSet<u32>) -> Result<(), CoreError> {
    for (name, v) in &cat.views {
        let bad = |why: &str| CoreError::Corrupt(format!("catalog view \"{name}\": {why}"));
        if *name != v.name {
            return Err(bad("name does not match its entry"));
        }
        if cat.tables.contains_key(name) || cat.streams.contains_key(name) {
            return Err(bad("a table or stream has the same name"));
        }
        if !fresh_id(v.id, cat.next_table_id, ids) {
            return Err(bad("invalid or duplicate id"));
        }
        let Some(st) = cat.streams.values().find(|s| s.id == v.stream_id) else {
            return Err(bad("its stream does not exist"));
        };
        v.check(st).map_err(|e| bad(&e))?;
    }
    Ok(())
}

/// Checks every index against its table and returns the definitions: name unique across
/// kinds, fresh id, the table exists, the column is a VECTOR of the recorded dimension, the
/// metric is known, the parameters are in range, at most [`MAX_INDEXES_PER_TABLE`] per table.
fn check_indexes(cat: &Disk, ids: &mut HashSet<u32>) -> Result<Vec<IndexDef>, CoreError> {
    let mut per_table: BTreeMap<u32, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(cat.indexes.len());
    for (name, i) in &cat.indexes {
        let bad = |why: &str| CoreError::Corrupt(format!("catalog index \"{name}\": {why}"));
        if *name != i.name {
            return Err(bad("name does not match its entry"));
        }
        let taken = cat.tables.contains_key(name)
            || cat.streams.contains_key(name)
            || cat.views.contains_key(name);
        if taken {
            return Err(bad("a table, stream or view has the same name"));
        }
        if !fresh_id(i.id, cat.next_table_id, ids) {
            return Err(bad("invalid or duplicate id"));
        }
        let Some(t) = cat.tables.values().find(|t| t.id == i.table_id) else {
            return Err(bad("its table does not exist"));
        };
        let ty = t.columns.get(usize::from(i.column)).map(|c| c.ty);
        if ty != Some(tarn_types::ColumnType::Vector(i.dim)) {
            return Err(bad("its column is not a VECTOR of the recorded dimension"));
        }
        let count = per_table.entry(i.table_id).or_default();
        *count += 1;
        if *count > MAX_INDEXES_PER_TABLE {
            return Err(bad("its table has more than MAX_INDEXES_PER_TABLE indexes"));
        }
        let metric = tarn_vectors::Metric::ALL
            .into_iter()
            .find(|m| m.name() == i.metric)
            .ok_or_else(|| bad("unknown metric"))?;
        let params = tarn_vectors::HnswParams {
            m: i.m,
            ef_construction: i.ef_construction,
            ef_search: i.ef_search,
            seed: u64::from(i.id),
        };
        params.validate().map_err(|e| bad(&e.to_string()))?;
        out.push(IndexDef {
            id: i.id,
            name: i.name.clone(),
            table_id: i.table_id,
            column: i.column,
            dim: i.dim,
            metric,
            params,
        });
    }
    Ok(out)
}

/// A context entry planned against the objects already read (see [`read_statement`]).
fn read_context(
    cat: &Catalog,
    name: &str,
    c: StatementDisk,
    ids: &mut HashSet<u32>,
) -> Result<crate::context::ContextDef, CoreError> {
    let mut def = read_statement(cat, ("context", name), &c, ids, |stmt| match stmt {
        Statement::CreateContext { spec, sql, .. } if spec.name == name => {
            Some(crate::context::plan(spec, cat, sql.clone()))
        }
        _ => None,
    })?;
    def.id = c.id;
    Ok(def)
}

/// A model entry planned against the objects already read, its context among them (see
/// [`read_statement`]).
fn read_model(
    cat: &Catalog,
    name: &str,
    m: StatementDisk,
    ids: &mut HashSet<u32>,
) -> Result<crate::model_def::ModelDef, CoreError> {
    let mut def = read_statement(cat, ("model", name), &m, ids, |stmt| match stmt {
        Statement::CreateModel { spec, sql, .. } if spec.name == name => {
            Some(crate::model_def::plan(spec, cat, sql.clone()))
        }
        _ => None,
    })?;
    def.id = m.id;
    Ok(def)
}

/// An entry kept as its statement (`kind` named `name`): a fresh id, a name free, a text that is
/// one statement `plan` accepts (the `CREATE` of that kind, naming the entry; None otherwise)
/// and that plans. Any failure is `Corrupt`, naming the entry.
fn read_statement<T>(
    cat: &Catalog,
    (kind, name): (&str, &str),
    entry: &StatementDisk,
    ids: &mut HashSet<u32>,
    plan: impl Fn(&Statement) -> Option<Result<T, CoreError>>,
) -> Result<T, CoreError> {
    let bad = |why: String| CoreError::Corrupt(format!("catalog {kind} \"{name}\": {why}"));
    if cat.object(name).is_some() {
        return Err(bad("another object has the same name".into()));
    }
    if !fresh_id(entry.id, cat.next_table_id, ids) {
        return Err(bad("invalid or duplicate id".into()));
    }
    let stmts = crate::sql::parse(&entry.sql).map_err(|e| bad(e.to_string()))?;
    let planned = match &stmts[..] {
        [stmt] => plan(stmt),
        _ => None,
    };
    let Some(planned) = planned else {
        return Err(bad(format!(
            "its text is not one CREATE {} statement named so",
            kind.to_ascii_uppercase()
        )));
    };
    planned.map_err(|e| bad(e.to_string()))
}
