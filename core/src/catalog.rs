//! The catalog: every table definition, versioned, copy-on-write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::{StreamDef, TableDef};
use crate::sql::Statement;
use crate::view::ViewDef;
use crate::{CoreError, MAX_STREAMS, MAX_TABLES};

/// Format version written into the catalog JSON (`format` field). Bumped on any incompatible
/// change; [`Catalog::from_bytes`] refuses versions it does not know.
pub const CATALOG_FORMAT_VERSION: u32 = 1;

/// All table definitions, keyed by name. Immutable in use: [`Catalog::apply_ddl`] returns a new
/// catalog, so shards can keep sharing the old one (e.g. behind an `Rc`) until they switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Bumped by every successful CREATE/DROP (not by skipped `IF [NOT] EXISTS` no-ops).
    pub version: u64,
    /// Id the next CREATE TABLE gets. Starts at 1; ids are never reused, so log records of a
    /// dropped table can never be mistaken for a newer table's.
    pub next_table_id: u32,
    /// Tables by name.
    pub tables: BTreeMap<String, TableDef>,
    /// Streams by name (names are unique across tables, streams and views).
    #[serde(default)]
    pub streams: BTreeMap<String, StreamDef>,
    /// Feature views by name.
    #[serde(default)]
    pub views: BTreeMap<String, ViewDef>,
}

/// Most feature views over one stream. Each event's part for a shard names its targets in a
/// 64-bit mask: the stream's home copy plus at most 63 views. Raising it needs a wider mask.
pub const MAX_VIEWS_PER_STREAM: usize = crate::record::MAX_EVENT_TARGETS - 1;

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

#[derive(Serialize)]
struct CatalogFileRef<'a> {
    format: u32,
    #[serde(flatten)]
    catalog: &'a Catalog,
}

#[derive(Deserialize)]
struct CatalogFile {
    format: u32,
    #[serde(flatten)]
    catalog: Catalog,
}

impl Catalog {
    /// An empty catalog: version 0, next table id 1.
    pub fn new() -> Catalog {
        Catalog {
            version: 0,
            next_table_id: 1,
            tables: BTreeMap::new(),
            streams: BTreeMap::new(),
            views: BTreeMap::new(),
        }
    }

    /// Every table, in name order.
    pub fn tables(&self) -> impl Iterator<Item = &TableDef> + '_ {
        self.tables.values()
    }

    /// Every stream, in name order.
    pub fn streams(&self) -> impl Iterator<Item = &StreamDef> + '_ {
        self.streams.values()
    }

    /// Every feature view, in name order.
    pub fn views(&self) -> impl Iterator<Item = &ViewDef> + '_ {
        self.views.values()
    }

    /// The feature view named `name`.
    pub fn view(&self, name: &str) -> Option<&ViewDef> {
        self.views.get(name)
    }

    /// The feature view with id `id`.
    pub fn view_by_id(&self, id: u32) -> Option<&ViewDef> {
        self.views.values().find(|v| v.id == id)
    }

    /// The stream column a view groups by (its routing key).
    pub fn view_key_column(&self, id: u32) -> Option<usize> {
        self.view_by_id(id).map(|v| v.key_column)
    }

    /// The feature views over stream `stream_id`, in id order.
    pub fn views_on(&self, stream_id: u32) -> Vec<&ViewDef> {
        let mut v: Vec<&ViewDef> = self
            .views
            .values()
            .filter(|v| v.stream_id == stream_id)
            .collect();
        v.sort_unstable_by_key(|v| v.id);
        v
    }

    fn name_taken(&self, name: &str) -> Option<CoreError> {
        if self.tables.contains_key(name) {
            Some(CoreError::TableExists(name.to_string()))
        } else if self.streams.contains_key(name) || self.views.contains_key(name) {
            Some(CoreError::StreamExists(name.to_string()))
        } else {
            None
        }
    }

    /// The stream named `name` (already case-folded).
    pub fn stream(&self, name: &str) -> Option<&StreamDef> {
        self.streams.get(name)
    }

    /// The stream with id `id` (linear, like [`Catalog::table_by_id`]).
    pub fn stream_by_id(&self, id: u32) -> Option<&StreamDef> {
        self.streams.values().find(|s| s.id == id)
    }

    /// The next catalog id, and the catalog with it consumed.
    fn take_id(&self) -> Result<(Catalog, u32), CoreError> {
        let Some(next) = self.next_table_id.checked_add(1) else {
            return Err(CoreError::LimitExceeded("catalog ids exhausted".into()));
        };
        let mut new = self.clone();
        new.next_table_id = next;
        new.version += 1;
        Ok((new, self.next_table_id))
    }

    /// The table named `name` (already case-folded).
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.get(name)
    }

    /// The table with id `id`. Linear in the number of tables (≤ [`MAX_TABLES`], usually a
    /// handful); callers on a hot path may cache the result per catalog version.
    pub fn table_by_id(&self, id: u32) -> Option<&TableDef> {
        self.tables.values().find(|t| t.id == id)
    }

    /// Applies a DDL statement, returning the new catalog and a human message
    /// (`CREATE TABLE cards`, `DROP TABLE cards`, `table cards already exists, skipped`,
    /// `table cards does not exist, skipped`). `self` is unchanged.
    ///
    /// Errors: `TableExists`, `UnknownTable`, `LimitExceeded` (more than [`MAX_TABLES`] tables or
    /// table ids exhausted), `Unsupported` for non-DDL statements (SHOW/DESCRIBE are read-only).
    pub fn apply_ddl(&self, stmt: &Statement) -> Result<(Catalog, String), CoreError> {
        match stmt {
            Statement::CreateTable { def, if_not_exists } => {
                if self.streams.contains_key(&def.name) || self.views.contains_key(&def.name) {
                    return Err(CoreError::StreamExists(def.name.clone()));
                }
                if self.tables.contains_key(&def.name) {
                    if *if_not_exists {
                        return Ok((
                            self.clone(),
                            format!("table {} already exists, skipped", def.name),
                        ));
                    }
                    return Err(CoreError::TableExists(def.name.clone()));
                }
                if self.tables.len() >= MAX_TABLES {
                    return Err(CoreError::LimitExceeded(format!(
                        "the catalog already has {MAX_TABLES} tables"
                    )));
                }
                let (mut new, id) = self.take_id()?;
                let mut def = def.clone();
                def.id = id;
                let msg = format!("CREATE TABLE {}", def.name);
                new.tables.insert(def.name.clone(), def);
                Ok((new, msg))
            }
            Statement::CreateStream { def, if_not_exists } => {
                if self.tables.contains_key(&def.name) {
                    return Err(CoreError::TableExists(def.name.clone()));
                }
                if self.views.contains_key(&def.name) {
                    return Err(CoreError::StreamExists(def.name.clone()));
                }
                if self.streams.contains_key(&def.name) {
                    if *if_not_exists {
                        return Ok((
                            self.clone(),
                            format!("stream {} already exists, skipped", def.name),
                        ));
                    }
                    return Err(CoreError::StreamExists(def.name.clone()));
                }
                if self.streams.len() >= MAX_STREAMS {
                    return Err(CoreError::LimitExceeded(format!(
                        "the catalog already has {MAX_STREAMS} streams"
                    )));
                }
                let (mut new, id) = self.take_id()?;
                let mut def = def.clone();
                def.id = id;
                let msg = format!("CREATE STREAM {}", def.name);
                new.streams.insert(def.name.clone(), def);
                Ok((new, msg))
            }
            Statement::DropStream { name, if_exists } => {
                let Some(stream) = self.streams.get(name) else {
                    if *if_exists {
                        return Ok((
                            self.clone(),
                            format!("stream {name} does not exist, skipped"),
                        ));
                    }
                    return Err(CoreError::UnknownStream(name.clone()));
                };
                let views: Vec<&str> = self
                    .views_on(stream.id)
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect();
                if !views.is_empty() {
                    return Err(CoreError::Unsupported(format!(
                        "dropping stream {name} while feature views read it ({}); drop them first",
                        views.join(", ")
                    )));
                }
                let mut new = self.clone();
                new.streams.remove(name);
                new.version += 1;
                Ok((new, format!("DROP STREAM {name}")))
            }
            Statement::CreateView {
                spec,
                if_not_exists,
            } => {
                if self.views.contains_key(&spec.name) && *if_not_exists {
                    return Ok((
                        self.clone(),
                        format!("view {} already exists, skipped", spec.name),
                    ));
                }
                if let Some(e) = self.name_taken(&spec.name) {
                    return Err(e);
                }
                let stream = self
                    .streams
                    .get(&spec.stream)
                    .ok_or_else(|| CoreError::UnknownStream(spec.stream.clone()))?;
                if self.views_on(stream.id).len() >= MAX_VIEWS_PER_STREAM {
                    return Err(CoreError::LimitExceeded(format!(
                        "stream {} already has {MAX_VIEWS_PER_STREAM} feature views",
                        stream.name
                    )));
                }
                let mut def = spec.resolve(stream)?;
                let (mut new, id) = self.take_id()?;
                def.id = id;
                def.stream_id = stream.id;
                def.created_version = new.version;
                let msg = format!("CREATE MATERIALIZED VIEW {}", def.name);
                new.views.insert(def.name.clone(), def);
                Ok((new, msg))
            }
            Statement::DropView { name, if_exists } => {
                if !self.views.contains_key(name) {
                    if *if_exists {
                        return Ok((self.clone(), format!("view {name} does not exist, skipped")));
                    }
                    return Err(CoreError::UnknownView(name.clone()));
                }
                let mut new = self.clone();
                new.views.remove(name);
                new.version += 1;
                Ok((new, format!("DROP MATERIALIZED VIEW {name}")))
            }
            Statement::DropTable { name, if_exists } => {
                if !self.tables.contains_key(name) {
                    if *if_exists {
                        return Ok((
                            self.clone(),
                            format!("table {name} does not exist, skipped"),
                        ));
                    }
                    return Err(CoreError::UnknownTable(name.clone()));
                }
                let mut new = self.clone();
                new.tables.remove(name);
                new.version += 1;
                Ok((new, format!("DROP TABLE {name}")))
            }
            Statement::ShowTables
            | Statement::ShowStreams
            | Statement::ShowViews
            | Statement::Describe { .. }
            | Statement::SelectFeatures { .. } => Err(CoreError::Unsupported(
                "SHOW / DESCRIBE / SELECT do not change the catalog; answer them from it".into(),
            )),
        }
    }

    /// The catalog file payload: JSON with a `format` field ([`CATALOG_FORMAT_VERSION`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&CatalogFileRef {
            format: CATALOG_FORMAT_VERSION,
            catalog: self,
        })
        .expect("catalog serializes to JSON")
    }

    /// Parses and checks a catalog payload: known format, names matching their keys, ids unique
    /// and below `next_table_id`, key columns in range and keyable. Any failure is `Corrupt`.
    pub fn from_bytes(b: &[u8]) -> Result<Catalog, CoreError> {
        let file: CatalogFile = serde_json::from_slice(b)
            .map_err(|e| CoreError::Corrupt(format!("catalog JSON: {e}")))?;
        if file.format != CATALOG_FORMAT_VERSION {
            return Err(CoreError::Corrupt(format!(
                "unsupported catalog format {} (this build reads {CATALOG_FORMAT_VERSION})",
                file.format
            )));
        }
        let cat = file.catalog;
        let mut ids = std::collections::HashSet::new();
        for (name, t) in &cat.tables {
            let bad = |why: &str| CoreError::Corrupt(format!("catalog table \"{name}\": {why}"));
            if *name != t.name {
                return Err(bad("name does not match its entry"));
            }
            if t.id == 0 || t.id >= cat.next_table_id || !ids.insert(t.id) {
                return Err(bad("invalid or duplicate table id"));
            }
            if t.columns.is_empty() || t.key_column >= t.columns.len() {
                return Err(bad("key column out of range"));
            }
            if !t.key_type().can_be_key() {
                return Err(bad("key column type cannot be a key"));
            }
        }
        for (name, st) in &cat.streams {
            let bad = |why: &str| CoreError::Corrupt(format!("catalog stream \"{name}\": {why}"));
            if *name != st.name {
                return Err(bad("name does not match its entry"));
            }
            if cat.tables.contains_key(name) {
                return Err(bad("a table has the same name"));
            }
            if st.id == 0 || st.id >= cat.next_table_id || !ids.insert(st.id) {
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
            if st.retention_us <= 0 || st.max_future_us < 0 {
                return Err(bad("retention or max_future out of range"));
            }
        }
        for (name, v) in &cat.views {
            let bad = |why: &str| CoreError::Corrupt(format!("catalog view \"{name}\": {why}"));
            if *name != v.name {
                return Err(bad("name does not match its entry"));
            }
            if cat.tables.contains_key(name) || cat.streams.contains_key(name) {
                return Err(bad("a table or stream has the same name"));
            }
            if v.id == 0 || v.id >= cat.next_table_id || !ids.insert(v.id) {
                return Err(bad("invalid or duplicate id"));
            }
            let Some(st) = cat.stream_by_id(v.stream_id) else {
                return Err(bad("its stream does not exist"));
            };
            v.check(st).map_err(|e| bad(&e))?;
        }
        Ok(cat)
    }
}
