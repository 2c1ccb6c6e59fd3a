//! Vector index definitions: what `CREATE INDEX … USING hnsw` declares, as parsed
//! ([`IndexSpec`]) and as the catalog holds it ([`IndexDef`]).

use tarn_vectors::{HnswParams, Metric};

use crate::schema::{quote_ident, TableDef};

/// Most vector indexes over one table. Each index costs a graph insert on every upsert of the
/// table (an HNSW insert is tens of distance computations at `ef_construction`) and the
/// vector plus `8·m` bytes of links per row in memory, so eight bounds one upsert's index
/// work and a table's index memory to a small multiple of one index's. Raising it costs that
/// write latency and memory per extra index.
pub const MAX_INDEXES_PER_TABLE: usize = 8;

/// The one index method there is.
pub const INDEX_METHOD: &str = "hnsw";

/// A vector index in the catalog: an HNSW graph over one VECTOR column of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDef {
    /// Catalog id, from the catalog's one id counter, never reused; also the graph's seed.
    pub id: u32,
    /// Index name, at most [`crate::MAX_IDENTIFIER_BYTES`] bytes.
    pub name: String,
    /// The indexed table's id.
    pub table_id: u32,
    /// Position of the indexed VECTOR column in the table's columns.
    pub column: u16,
    /// That column's dimension.
    pub dim: u32,
    /// The distance the graph is built and searched with.
    pub metric: Metric,
    /// `m`, `ef_construction`, `ef_search` (validated); `seed` is the index id.
    pub params: HnswParams,
}

impl IndexDef {
    /// The `CREATE INDEX` statement that re-creates this index on `table` (its table);
    /// [`crate::sql::parse`] of it gives back an equal spec.
    pub fn create_sql(&self, table: &TableDef) -> String {
        assert_eq!(table.id, self.table_id, "the index's own table");
        let column = &table.columns[usize::from(self.column)].name;
        format!(
            "CREATE INDEX {} ON {} USING {INDEX_METHOD} ({}) WITH (metric = '{}', m = {}, ef_construction = {}, ef_search = {})",
            quote_ident(&self.name),
            quote_ident(&table.name),
            quote_ident(column),
            self.metric.name(),
            self.params.m,
            self.params.ef_construction,
            self.params.ef_search,
        )
    }
}

/// A parsed `CREATE INDEX`: names as written (folded), metric and parameters already checked
/// (they need no catalog). [`crate::catalog::Catalog::apply_ddl`] resolves the table and the
/// column and assigns the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// The metric (from the operator class or `WITH (metric = …)`, default `l2`).
    pub metric: Metric,
    /// The parameters, defaults filled in and range-checked; `seed` is 0 until resolved.
    pub params: HnswParams,
}
