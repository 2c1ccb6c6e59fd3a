//! The catalog: every named object (tables, streams, feature views, vector indexes, named
//! contexts, models), versioned, copy-on-write.
//!
//! **One namespace.** Every object kind shares one map from name to object, so a name is
//! checked against every kind at once ([`Catalog::check_name_free`]): creating a table named
//! like an existing view is refused naming the view. Ids come from one counter too and are
//! never reused, so a log record's table, stream, view or index id is unambiguous forever. Every
//! kind (contexts and models too) is in [`ObjectKind`] and [`Object`].
//!
//! **Dependencies.** A named context uses the objects it reads, a model the context its inputs
//! come from: an object is not dropped while something uses it (the error names the users).
//!
//! The catalog file's JSON layout (one map per kind) is the business of [`file`].

use std::collections::BTreeMap;

use crate::context::{ContextDef, ContextSpec};
use crate::index_def::{IndexDef, IndexSpec, MAX_INDEXES_PER_TABLE};
use crate::model_def::{ModelDef, ModelSpec};
use crate::schema::{StreamDef, TableDef};
use crate::sql::Statement;
use crate::view::ViewDef;
use crate::{CoreError, MAX_STREAMS, MAX_TABLES};

mod file;

pub use file::CATALOG_FORMAT_VERSION;

/// Most feature views over one stream. Each event's part for a shard names its targets in a
/// 64-bit mask: the stream's home copy plus at most 63 views. Raising it needs a wider mask.
pub const MAX_VIEWS_PER_STREAM: usize = crate::record::MAX_EVENT_TARGETS - 1;

/// The kinds of named catalog objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A table (`CREATE TABLE`).
    Table,
    /// A stream (`CREATE STREAM`).
    Stream,
    /// A feature view (`CREATE MATERIALIZED VIEW`).
    View,
    /// A vector index (`CREATE INDEX … USING hnsw`).
    Index,
    /// A named context (`CREATE CONTEXT`).
    Context,
    /// A model (`CREATE MODEL`).
    Model,
}

impl ObjectKind {
    /// The kind as messages name it: `table`, `stream`, `feature view`.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Stream => "stream",
            ObjectKind::View => "feature view",
            ObjectKind::Index => "index",
            ObjectKind::Context => "context",
            ObjectKind::Model => "model",
        }
    }

    /// The noun with its article: `a table`, `an index`.
    pub fn a_noun(self) -> &'static str {
        match self {
            ObjectKind::Table => "a table",
            ObjectKind::Stream => "a stream",
            ObjectKind::View => "a feature view",
            ObjectKind::Index => "an index",
            ObjectKind::Context => "a context",
            ObjectKind::Model => "a model",
        }
    }

    /// The kind as DDL messages name it (`view x already exists, skipped`).
    fn ddl_word(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Stream => "stream",
            ObjectKind::View => "view",
            ObjectKind::Index => "index",
            ObjectKind::Context => "context",
            ObjectKind::Model => "model",
        }
    }
}

/// One named catalog object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// A table.
    Table(TableDef),
    /// A stream.
    Stream(StreamDef),
    /// A feature view.
    View(ViewDef),
    /// A vector index.
    Index(IndexDef),
    /// A named context, planned.
    Context(Box<ContextDef>),
    /// A model, planned.
    Model(Box<ModelDef>),
}

impl Object {
    /// Its kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Table(_) => ObjectKind::Table,
            Object::Stream(_) => ObjectKind::Stream,
            Object::View(_) => ObjectKind::View,
            Object::Index(_) => ObjectKind::Index,
            Object::Context(_) => ObjectKind::Context,
            Object::Model(_) => ObjectKind::Model,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Object::Table(t) => &t.name,
            Object::Stream(s) => &s.name,
            Object::View(v) => &v.name,
            Object::Index(i) => &i.name,
            Object::Context(c) => &c.name,
            Object::Model(m) => &m.name,
        }
    }

    /// Its catalog id.
    pub fn id(&self) -> u32 {
        match self {
            Object::Table(t) => t.id,
            Object::Stream(s) => s.id,
            Object::View(v) => v.id,
            Object::Index(i) => i.id,
            Object::Context(c) => c.id,
            Object::Model(m) => m.id,
        }
    }
}

/// Every object, by name and by id. Immutable in use: [`Catalog::apply_ddl`] returns a new
/// catalog, so shards can keep sharing the old one (e.g. behind an `Rc`) until they switch.
///
/// Invariants (asserted on every insert and removal): `names` and `objects` describe the same
/// set of objects (`names[o.name()] == o.id()` for each); every id is below `next_table_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// Bumped by every successful CREATE/DROP (not by skipped `IF [NOT] EXISTS` no-ops).
    pub version: u64,
    /// Id the next CREATE gets (tables, streams and views share the counter). Starts at 1; ids
    /// are never reused, so log records of a dropped object can never be mistaken for a newer
    /// object's.
    pub next_table_id: u32,
    /// The one namespace: every object's name → its id.
    names: BTreeMap<String, u32>,
    /// Every object by id.
    objects: BTreeMap<u32, Object>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

impl Catalog {
    /// An empty catalog: version 0, next id 1.
    pub fn new() -> Catalog {
        Catalog {
            version: 0,
            next_table_id: 1,
            names: BTreeMap::new(),
            objects: BTreeMap::new(),
        }
    }

    /// The object named `name` (already case-folded), of any kind.
    pub fn object(&self, name: &str) -> Option<&Object> {
        self.names.get(name).map(|id| &self.objects[id])
    }

    /// The object with id `id`, of any kind.
    pub fn object_by_id(&self, id: u32) -> Option<&Object> {
        self.objects.get(&id)
    }

    /// Every object, in name order.
    pub fn objects(&self) -> impl Iterator<Item = &Object> + '_ {
        self.names.values().map(|id| &self.objects[id])
    }

    /// Every table, in name order.
    pub fn tables(&self) -> impl Iterator<Item = &TableDef> + '_ {
        self.objects().filter_map(|o| match o {
            Object::Table(t) => Some(t),
            _ => None,
        })
    }

    /// Every stream, in name order.
    pub fn streams(&self) -> impl Iterator<Item = &StreamDef> + '_ {
        self.objects().filter_map(|o| match o {
            Object::Stream(s) => Some(s),
            _ => None,
        })
    }

    /// Every feature view, in name order.
    pub fn views(&self) -> impl Iterator<Item = &ViewDef> + '_ {
        self.objects().filter_map(|o| match o {
            Object::View(v) => Some(v),
            _ => None,
        })
    }

    /// Every vector index, in name order.
    pub fn indexes(&self) -> impl Iterator<Item = &IndexDef> + '_ {
        self.objects().filter_map(|o| match o {
            Object::Index(i) => Some(i),
            _ => None,
        })
    }

    /// Every named context, in name order.
    pub fn contexts(&self) -> impl Iterator<Item = &ContextDef> + '_ {
        self.objects().filter_map(|o| match o {
            Object::Context(c) => Some(&**c),
            _ => None,
        })
    }

    /// The named context `name` (already case-folded).
    pub fn context(&self, name: &str) -> Option<&ContextDef> {
        match self.object(name)? {
            Object::Context(c) => Some(c),
            _ => None,
        }
    }

    /// The named contexts that read object `id`, by name.
    pub fn contexts_using(&self, id: u32) -> Vec<&str> {
        self.contexts()
            .filter(|c| c.uses.contains(&id))
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Every model, in name order.
    pub fn models(&self) -> impl Iterator<Item = &ModelDef> + '_ {
        self.objects().filter_map(|o| match o {
            Object::Model(m) => Some(&**m),
            _ => None,
        })
    }

    /// The model `name` (already case-folded).
    pub fn model(&self, name: &str) -> Option<&ModelDef> {
        match self.object(name)? {
            Object::Model(m) => Some(m),
            _ => None,
        }
    }

    /// The models whose inputs come from context `id`, by name.
    pub fn models_using(&self, context_id: u32) -> Vec<&str> {
        self.models()
            .filter(|m| m.context_id == context_id)
            .map(|m| m.name.as_str())
            .collect()
    }

    /// The vector index named `name` (already case-folded).
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        match self.object(name)? {
            Object::Index(i) => Some(i),
            _ => None,
        }
    }

    /// The vector index with id `id`.
    pub fn index_by_id(&self, id: u32) -> Option<&IndexDef> {
        match self.objects.get(&id)? {
            Object::Index(i) => Some(i),
            _ => None,
        }
    }

    /// The vector indexes over table `table_id`, in id order (the order they were created).
    pub fn indexes_of_table(&self, table_id: u32) -> impl Iterator<Item = &IndexDef> + '_ {
        self.objects.values().filter_map(move |o| match o {
            Object::Index(i) if i.table_id == table_id => Some(i),
            _ => None,
        })
    }

    /// The table named `name` (already case-folded).
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        match self.object(name)? {
            Object::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The table with id `id`.
    pub fn table_by_id(&self, id: u32) -> Option<&TableDef> {
        match self.objects.get(&id)? {
            Object::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The stream named `name` (already case-folded).
    pub fn stream(&self, name: &str) -> Option<&StreamDef> {
        match self.object(name)? {
            Object::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// The stream with id `id`.
    pub fn stream_by_id(&self, id: u32) -> Option<&StreamDef> {
        match self.objects.get(&id)? {
            Object::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// The feature view named `name`.
    pub fn view(&self, name: &str) -> Option<&ViewDef> {
        match self.object(name)? {
            Object::View(v) => Some(v),
            _ => None,
        }
    }

    /// The feature view with id `id`.
    pub fn view_by_id(&self, id: u32) -> Option<&ViewDef> {
        match self.objects.get(&id)? {
            Object::View(v) => Some(v),
            _ => None,
        }
    }

    /// The stream column a view groups by (its routing key).
    pub fn view_key_column(&self, id: u32) -> Option<usize> {
        self.view_by_id(id).map(|v| v.key_column)
    }

    /// The feature views over stream `stream_id`, in id order.
    pub fn views_on(&self, stream_id: u32) -> Vec<&ViewDef> {
        // `objects` is keyed by id: already in id order.
        self.objects
            .values()
            .filter_map(|o| match o {
                Object::View(v) if v.stream_id == stream_id => Some(v),
                _ => None,
            })
            .collect()
    }

    /// Number of objects of `kind`.
    fn count(&self, kind: ObjectKind) -> usize {
        self.objects.values().filter(|o| o.kind() == kind).count()
    }

    /// The one collision check, for creating an object of kind `creating` named `name`:
    /// `Ok(None)` if the name is free; `Ok(Some(message))` if an object of the same kind has it
    /// and `IF NOT EXISTS` was given (the statement is skipped); otherwise the error naming the
    /// existing object's kind ([`CoreError::exists`]), whatever `IF NOT EXISTS` says.
    pub fn check_name_free(
        &self,
        name: &str,
        creating: ObjectKind,
        if_not_exists: bool,
    ) -> Result<Option<String>, CoreError> {
        match self.object(name).map(Object::kind) {
            None => Ok(None),
            Some(k) if k == creating && if_not_exists => Ok(Some(format!(
                "{} {name} already exists, skipped",
                k.ddl_word()
            ))),
            Some(k) => Err(CoreError::exists(k, name)),
        }
    }

    /// Adds `object` under its name and id. Panics if either is taken or the id was never
    /// handed out: callers check names first and take ids from [`Catalog::take_id`].
    fn insert(&mut self, object: Object) {
        let (id, name) = (object.id(), object.name().to_string());
        assert!(
            id != 0 && id < self.next_table_id,
            "object id {id} was never handed out"
        );
        assert!(
            self.names.insert(name.clone(), id).is_none(),
            "name {name} taken twice"
        );
        assert!(
            self.objects.insert(id, object).is_none(),
            "object id {id} reused"
        );
        debug_assert_eq!(self.names.len(), self.objects.len());
    }

    /// Removes the object named `name`, of kind `kind`; returns it.
    fn remove(&mut self, name: &str, kind: ObjectKind) -> Object {
        let id = self.names.remove(name).expect("the object exists");
        let object = self.objects.remove(&id).expect("names and ids agree");
        assert_eq!(object.kind(), kind, "removed {name} of the wrong kind");
        assert_eq!(object.name(), name, "names and ids agree");
        object
    }

    /// The next catalog id, and a copy of the catalog with it consumed and the version bumped.
    fn take_id(&self) -> Result<(Catalog, u32), CoreError> {
        let Some(next) = self.next_table_id.checked_add(1) else {
            return Err(CoreError::LimitExceeded("catalog ids exhausted".into()));
        };
        let id = self.next_table_id;
        assert!(
            self.objects.range(id..).next().is_none(),
            "id {id} handed out twice"
        );
        let mut new = self.clone();
        new.next_table_id = next;
        new.version += 1;
        Ok((new, id))
    }

    /// A copy without the object `name` of kind `kind`, the version bumped.
    fn without(&self, name: &str, kind: ObjectKind) -> Catalog {
        let mut new = self.clone();
        new.remove(name, kind);
        new.version += 1;
        new
    }

    /// Applies a DDL statement, returning the new catalog and a human message
    /// (`CREATE TABLE cards`, `DROP TABLE cards`, `table cards already exists, skipped`,
    /// `table cards does not exist, skipped`). `self` is unchanged.
    ///
    /// Postconditions: a change bumps `version` by exactly 1 and a skipped statement returns
    /// an equal catalog; ids only grow; every object of `self` keeps its id in the result.
    ///
    /// Errors: `TableExists` / `StreamExists` / `ObjectExists` (the name is taken, the error
    /// names the existing object's kind), `UnknownTable` / `UnknownStream` / `UnknownView` /
    /// `UnknownIndex`, `WrongKind` (an index over a stream or view, `DROP INDEX` of a table),
    /// `UnknownColumn` and the other resolution errors of a view, `NotAVectorColumn` (an index
    /// over a column that is not a VECTOR), `LimitExceeded` (too many tables, streams, views
    /// per stream or indexes per table; ids exhausted), `Unsupported` for non-DDL statements
    /// (SHOW/DESCRIBE/SELECT are read-only) and for dropping a stream that views read.
    pub fn apply_ddl(&self, stmt: &Statement) -> Result<(Catalog, String), CoreError> {
        let (new, msg) = self.apply_ddl_inner(stmt)?;
        assert!(
            new.version == self.version || new.version == self.version + 1,
            "DDL moves the catalog version by at most one"
        );
        assert!(
            (new.version == self.version) == (new == *self),
            "the version changes exactly when the catalog does"
        );
        assert!(new.next_table_id >= self.next_table_id, "ids only grow");
        Ok((new, msg))
    }

    fn apply_ddl_inner(&self, stmt: &Statement) -> Result<(Catalog, String), CoreError> {
        match stmt {
            Statement::CreateTable { def, if_not_exists } => self.create_table(def, *if_not_exists),
            Statement::CreateStream { def, if_not_exists } => {
                self.create_stream(def, *if_not_exists)
            }
            Statement::CreateView {
                spec,
                if_not_exists,
            } => self.create_view(spec, *if_not_exists),
            Statement::DropTable { name, if_exists } => self.drop_table(name, *if_exists),
            Statement::DropStream { name, if_exists } => self.drop_stream(name, *if_exists),
            Statement::DropView { name, if_exists } => {
                self.drop(name, ObjectKind::View, *if_exists)
            }
            Statement::CreateIndex {
                spec,
                if_not_exists,
            } => self.create_index(spec, *if_not_exists),
            Statement::DropIndex { name, if_exists } => self.drop_index(name, *if_exists),
            Statement::CreateContext {
                spec,
                sql,
                if_not_exists,
            } => self.create_context(spec, sql, *if_not_exists),
            Statement::DropContext { name, if_exists } => {
                self.drop(name, ObjectKind::Context, *if_exists)
            }
            Statement::CreateModel {
                spec,
                sql,
                if_not_exists,
            } => self.create_model(spec, sql, *if_not_exists),
            Statement::DropModel { name, if_exists } => {
                self.drop(name, ObjectKind::Model, *if_exists)
            }
            Statement::ShowTables
            | Statement::ShowIndexes
            | Statement::ShowStreams
            | Statement::ShowViews
            | Statement::ShowContexts
            | Statement::ShowModels
            | Statement::DescribeModel { .. }
            | Statement::Describe { .. }
            | Statement::SelectFeatures { .. }
            | Statement::SelectKnn(_)
            | Statement::Insert { .. } => Err(CoreError::Unsupported(
                "SHOW / DESCRIBE / SELECT / INSERT do not change the catalog; answer them from it"
                    .into(),
            )),
        }
    }

    fn create_table(
        &self,
        def: &TableDef,
        if_not_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if let Some(skipped) = self.check_name_free(&def.name, ObjectKind::Table, if_not_exists)? {
            return Ok((self.clone(), skipped));
        }
        if self.count(ObjectKind::Table) >= MAX_TABLES {
            return Err(CoreError::LimitExceeded(format!(
                "the catalog already has {MAX_TABLES} tables"
            )));
        }
        let (mut new, id) = self.take_id()?;
        let mut def = def.clone();
        def.id = id;
        let msg = format!("CREATE TABLE {}", def.name);
        new.insert(Object::Table(def));
        Ok((new, msg))
    }

    fn create_stream(
        &self,
        def: &StreamDef,
        if_not_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if let Some(skipped) = self.check_name_free(&def.name, ObjectKind::Stream, if_not_exists)? {
            return Ok((self.clone(), skipped));
        }
        if self.count(ObjectKind::Stream) >= MAX_STREAMS {
            return Err(CoreError::LimitExceeded(format!(
                "the catalog already has {MAX_STREAMS} streams"
            )));
        }
        let (mut new, id) = self.take_id()?;
        let mut def = def.clone();
        def.id = id;
        let msg = format!("CREATE STREAM {}", def.name);
        new.insert(Object::Stream(def));
        Ok((new, msg))
    }

    fn create_view(
        &self,
        spec: &crate::view::ViewSpec,
        if_not_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if let Some(skipped) = self.check_name_free(&spec.name, ObjectKind::View, if_not_exists)? {
            return Ok((self.clone(), skipped));
        }
        let stream = self
            .stream(&spec.stream)
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
        new.insert(Object::View(def));
        Ok((new, msg))
    }

    /// `DROP TABLE` / `DROP MATERIALIZED VIEW`: an object of another kind with that name
    /// counts as absent.
    fn drop(
        &self,
        name: &str,
        kind: ObjectKind,
        if_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if self.object(name).map(Object::kind) != Some(kind) {
            if if_exists {
                return Ok((
                    self.clone(),
                    format!("{} {name} does not exist, skipped", kind.ddl_word()),
                ));
            }
            return Err(match kind {
                ObjectKind::Table => CoreError::UnknownTable(name.to_string()),
                ObjectKind::Stream => CoreError::UnknownStream(name.to_string()),
                ObjectKind::View => CoreError::UnknownView(name.to_string()),
                ObjectKind::Index => CoreError::UnknownIndex(name.to_string()),
                ObjectKind::Context => CoreError::UnknownContext(name.to_string()),
                ObjectKind::Model => CoreError::UnknownModel(name.to_string()),
            });
        }
        let id = self.object(name).map(Object::id).expect("checked above");
        self.check_unused(kind, name, id)?;
        let msg = match kind {
            ObjectKind::Table => format!("DROP TABLE {name}"),
            ObjectKind::Stream => format!("DROP STREAM {name}"),
            ObjectKind::View => format!("DROP MATERIALIZED VIEW {name}"),
            ObjectKind::Index => format!("DROP INDEX {name}"),
            ObjectKind::Context => format!("DROP CONTEXT {name}"),
            ObjectKind::Model => format!("DROP MODEL {name}"),
        };
        Ok((self.without(name, kind), msg))
    }

    /// `DROP TABLE`: its vector indexes go with it (as in PostgreSQL), in the same catalog
    /// version; the message names them.
    fn drop_table(&self, name: &str, if_exists: bool) -> Result<(Catalog, String), CoreError> {
        let (mut new, msg) = self.drop(name, ObjectKind::Table, if_exists)?;
        let Some(table) = self.table(name) else {
            return Ok((new, msg));
        };
        let indexes: Vec<String> = self
            .indexes_of_table(table.id)
            .map(|i| i.name.clone())
            .collect();
        if indexes.is_empty() {
            return Ok((new, msg));
        }
        for index in &indexes {
            let id = self.index(index).expect("listed above").id;
            self.check_unused(ObjectKind::Index, index, id)?;
            new.remove(index, ObjectKind::Index);
        }
        debug_assert!(new.indexes_of_table(table.id).next().is_none());
        Ok((
            new,
            format!("{msg} (and its indexes {})", indexes.join(", ")),
        ))
    }

    fn create_index(
        &self,
        spec: &IndexSpec,
        if_not_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if let Some(skipped) = self.check_name_free(&spec.name, ObjectKind::Index, if_not_exists)? {
            return Ok((self.clone(), skipped));
        }
        let table = match self.object(&spec.table) {
            None => return Err(CoreError::UnknownTable(spec.table.clone())),
            Some(Object::Table(t)) => t,
            Some(other) => {
                return Err(CoreError::WrongKind {
                    name: spec.table.clone(),
                    kind: other.kind(),
                    wanted: ObjectKind::Table,
                })
            }
        };
        let (column, dim) = index_column(table, &spec.column)?;
        if self.indexes_of_table(table.id).count() >= MAX_INDEXES_PER_TABLE {
            return Err(CoreError::LimitExceeded(format!(
                "table {} already has {MAX_INDEXES_PER_TABLE} indexes",
                table.name
            )));
        }
        let (mut new, id) = self.take_id()?;
        let def = IndexDef {
            id,
            name: spec.name.clone(),
            table_id: table.id,
            column,
            dim,
            metric: spec.metric,
            params: tarn_vectors::HnswParams {
                seed: u64::from(id),
                ..spec.params
            },
        };
        debug_assert!(
            def.params.validate().is_ok(),
            "the parser checked the parameters"
        );
        let msg = format!("CREATE INDEX {}", def.name);
        new.insert(Object::Index(def));
        Ok((new, msg))
    }

    /// `DROP INDEX`: the name of another kind of object is refused naming its kind (without
    /// `IF EXISTS`; with it, the statement is skipped like any absent index).
    fn drop_index(&self, name: &str, if_exists: bool) -> Result<(Catalog, String), CoreError> {
        match self.object(name) {
            Some(o) if o.kind() != ObjectKind::Index && !if_exists => Err(CoreError::WrongKind {
                name: name.to_string(),
                kind: o.kind(),
                wanted: ObjectKind::Index,
            }),
            _ => self.drop(name, ObjectKind::Index, if_exists),
        }
    }

    /// `DROP STREAM`: refused while feature views read the stream.
    fn drop_stream(&self, name: &str, if_exists: bool) -> Result<(Catalog, String), CoreError> {
        if let Some(stream) = self.stream(name) {
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
        }
        self.drop(name, ObjectKind::Stream, if_exists)
    }
}

impl Catalog {
    /// `CREATE CONTEXT`: planned against this catalog (every object, column and type checked).
    fn create_context(
        &self,
        spec: &ContextSpec,
        sql: &str,
        if_not_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if let Some(skipped) =
            self.check_name_free(&spec.name, ObjectKind::Context, if_not_exists)?
        {
            return Ok((self.clone(), skipped));
        }
        if self.count(ObjectKind::Context) >= MAX_CONTEXTS {
            return Err(CoreError::LimitExceeded(format!(
                "the catalog already has {MAX_CONTEXTS} contexts"
            )));
        }
        let mut def = crate::context::plan(spec, self, sql.to_string())?;
        let (mut new, id) = self.take_id()?;
        def.id = id;
        let msg = format!("CREATE CONTEXT {}", def.name);
        new.insert(Object::Context(Box::new(def)));
        Ok((new, msg))
    }

    /// `CREATE MODEL`: planned against this catalog (its context, inputs and numbers checked).
    fn create_model(
        &self,
        spec: &ModelSpec,
        sql: &str,
        if_not_exists: bool,
    ) -> Result<(Catalog, String), CoreError> {
        if let Some(skipped) = self.check_name_free(&spec.name, ObjectKind::Model, if_not_exists)? {
            return Ok((self.clone(), skipped));
        }
        if self.count(ObjectKind::Model) >= MAX_MODELS {
            return Err(CoreError::LimitExceeded(format!(
                "the catalog already has {MAX_MODELS} models"
            )));
        }
        let mut def = crate::model_def::plan(spec, self, sql.to_string())?;
        let (mut new, id) = self.take_id()?;
        def.id = id;
        let msg = format!("CREATE MODEL {}", def.name);
        new.insert(Object::Model(Box::new(def)));
        Ok((new, msg))
    }

    /// Refuses to drop object `name` (of `kind`, id `id`) while named contexts read it or
    /// models take their inputs from it.
    fn check_unused(&self, kind: ObjectKind, name: &str, id: u32) -> Result<(), CoreError> {
        for (users, what) in [
            (self.contexts_using(id), "contexts"),
            (self.models_using(id), "models"),
        ] {
            if !users.is_empty() {
                return Err(CoreError::Unsupported(format!(
                    "dropping {} {name} while {what} use it ({}); drop them first",
                    kind.noun(),
                    users.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Most models in a catalog. Each is planned and kept by every shard and written (as its
/// `CREATE MODEL` text, up to `MAX_SQL_BYTES`) in the catalog file, which is rewritten whole by
/// every DDL and planned again on every start; the bound keeps the file (at most ~16 MiB of
/// model text) and that work small. Raising it costs catalog rewrite and start-up time.
pub const MAX_MODELS: usize = 256;

/// Most named contexts in a catalog. Each is planned and kept by every shard and written in
/// the catalog file; the bound keeps both small. Raising it costs catalog rewrite time.
pub const MAX_CONTEXTS: usize = 256;

/// The position and dimension of the VECTOR column `column` of `table`.
fn index_column(table: &TableDef, column: &str) -> Result<(u16, u32), CoreError> {
    let idx = table
        .column_index(column)
        .ok_or_else(|| CoreError::UnknownColumn {
            table: table.name.clone(),
            column: column.to_string(),
        })?;
    let ty = table.columns[idx].ty;
    let Some(dim) = ty.vector_dim() else {
        return Err(CoreError::NotAVectorColumn {
            table: table.name.clone(),
            column: column.to_string(),
            got: ty,
        });
    };
    let pos = u16::try_from(idx).expect("MAX_COLUMNS fits a u16");
    Ok((pos, dim))
}
