//! Unit tests for every module.

mod batch;
mod catalog;
mod context;
mod formats;
mod index;
mod index_persist;
mod indexes;
mod ingest;
mod invariants;
mod listing;
mod recent;
mod record;
mod sql;
mod state;
mod timestamp;
mod txn;
mod vector;
mod view;
mod view_state;

use crate::catalog::Catalog;
use crate::schema::TableDef;
use crate::sql::{parse, Statement};

/// Parses one CREATE TABLE into its definition.
pub(crate) fn def_of(sql: &str) -> TableDef {
    match parse(sql).unwrap().remove(0) {
        Statement::CreateTable { def, .. } => def,
        other => panic!("not a CREATE TABLE: {other:?}"),
    }
}

/// A catalog with the given tables created in order.
pub(crate) fn catalog_with(sqls: &[&str]) -> Catalog {
    let mut cat = Catalog::new();
    for sql in sqls {
        for stmt in parse(sql).unwrap() {
            cat = cat.apply_ddl(&stmt).unwrap().0;
        }
    }
    cat
}

pub(crate) const CARDS: &str = "CREATE TABLE cards (card_id TEXT PRIMARY KEY, account_id TEXT, \
     flagged BOOLEAN, risk DOUBLE, n BIGINT, seen TIMESTAMP, blob BYTES)";
