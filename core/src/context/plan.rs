//! Planning: a [`ContextSpec`] resolved against the catalog into a [`ContextDef`]. Every check
//! that does not depend on a call's parameter values happens here, once.

use tarn_types::{ColumnType, Value};

use super::{
    ContextDef, ContextSpec, Item, ItemSpec, KindSpec, KnnQuerySpec, KnnSource, Operand,
    OperandSpec, Source, MAX_CONTEXT_ITEMS, MAX_CONTEXT_PARAMS, MAX_CONTEXT_PHASES,
    MAX_CONTEXT_RECENT_N,
};
use crate::catalog::{Catalog, Object, ObjectKind};
use crate::expr::check::{check_condition, Scope};
use crate::schema::ColumnDef;
use crate::CoreError;

/// Name of the distance column every kNN item's result starts with.
pub const DISTANCE_COLUMN: &str = "distance";

fn invalid(msg: String) -> CoreError {
    CoreError::InvalidArgument(msg)
}

/// Plans `spec` against `catalog`; `sql` is the text it came from (kept in the definition).
///
/// Errors name the item: an unknown object (`UnknownTable`, `UnknownView`, `UnknownIndex`,
/// `UnknownStream`, or `WrongKind` for an object of another kind), an unknown column
/// (`UnknownColumn`), a reference to an item or a column of an item that does not exist, or
/// a parameter that is not declared (`InvalidArgument`), a key of the wrong type
/// (`TypeMismatch`), a cycle of references (`InvalidArgument` listing it), and the limits.
pub fn plan(spec: &ContextSpec, catalog: &Catalog, sql: String) -> Result<ContextDef, CoreError> {
    check_shape(spec)?;
    let params: Vec<ColumnDef> = spec
        .params
        .iter()
        .map(|(name, ty)| ColumnDef {
            name: name.clone(),
            ty: *ty,
        })
        .collect();
    let mut resolved = Vec::with_capacity(spec.items.len());
    for item in &spec.items {
        resolved.push(resolve_object(item, catalog)?);
    }
    let mut items = Vec::with_capacity(spec.items.len());
    for (i, item) in spec.items.iter().enumerate() {
        items.push(operands(i, item, &resolved, spec, &params)?);
    }
    let phases = phase_items(&mut items, spec)?;
    let mut uses: Vec<u32> = resolved.iter().flat_map(|r| r.uses.clone()).collect();
    uses.sort_unstable();
    uses.dedup();
    Ok(ContextDef {
        id: 0,
        name: spec.name.clone(),
        params,
        items,
        phases,
        uses,
        sql,
    })
}

fn check_shape(spec: &ContextSpec) -> Result<(), CoreError> {
    if spec.items.is_empty() {
        return Err(invalid("a context needs at least one item".into()));
    }
    if spec.items.len() > MAX_CONTEXT_ITEMS {
        return Err(CoreError::LimitExceeded(format!(
            "a context has at most {MAX_CONTEXT_ITEMS} items, this one has {}",
            spec.items.len()
        )));
    }
    if spec.params.len() > MAX_CONTEXT_PARAMS {
        return Err(CoreError::LimitExceeded(format!(
            "a context has at most {MAX_CONTEXT_PARAMS} parameters, this one has {}",
            spec.params.len()
        )));
    }
    for (i, item) in spec.items.iter().enumerate() {
        if spec.items[..i].iter().any(|o| o.name == item.name) {
            return Err(invalid(format!(
                "two context items are named {} (item names are unique)",
                item.name
            )));
        }
    }
    Ok(())
}

/// An item's object, resolved: its source (keys still to come), the full row its reply
/// columns are picked from, the type its key must have, and the ids it uses.
struct Resolved {
    source: Source,
    full: Vec<ColumnDef>,
    key_type: ColumnType,
    columns: Vec<ColumnDef>,
    positions: Vec<usize>,
    uses: Vec<u32>,
}

fn resolve_object(item: &ItemSpec, catalog: &Catalog) -> Result<Resolved, CoreError> {
    let (source, full, key_type, owner, uses) = match &item.kind {
        KindSpec::Row { table, .. } => {
            let t = object_of(catalog, table, ObjectKind::Table)?;
            let Object::Table(t) = t else { unreachable!() };
            let src = Source::Row { table_id: t.id };
            (src, t.columns.clone(), t.key_type(), &t.name, vec![t.id])
        }
        KindSpec::Features { view, .. } => {
            let Object::View(v) = object_of(catalog, view, ObjectKind::View)? else {
                unreachable!()
            };
            let stream = catalog
                .stream_by_id(v.stream_id)
                .expect("a view's stream exists");
            let full = v.result_columns(stream);
            let key_type = full[0].ty;
            let src = Source::Features {
                view_id: v.id,
                as_of: None,
            };
            (src, full, key_type, &v.name, vec![v.id, stream.id])
        }
        KindSpec::Recent { stream, n, .. } => {
            let Object::Stream(s) = object_of(catalog, stream, ObjectKind::Stream)? else {
                unreachable!()
            };
            let n = recent_n(&item.name, *n, s)?;
            let src = Source::Recent { stream_id: s.id, n };
            let key_type = s.columns[s.partition].ty;
            (src, s.columns.clone(), key_type, &s.name, vec![s.id])
        }
        KindSpec::Knn {
            index,
            query,
            k,
            ef,
            filter,
        } => {
            let Object::Index(x) = object_of(catalog, index, ObjectKind::Index)? else {
                unreachable!()
            };
            let table = catalog.table_by_id(x.table_id).expect("an index's table");
            let filter = match filter {
                None => None,
                Some(text) => {
                    let parsed = crate::sql::parse_condition(text)?;
                    let scope = Scope::new(&table.name, &table.columns);
                    Some(check_condition(&parsed, &scope, "knn filter")?)
                }
            };
            let (k, ef) = knn_sizes(&item.name, *k, *ef)?;
            let like = matches!(query, KnnQuerySpec::Like(_));
            let key_type = if like {
                table.key_type()
            } else {
                ColumnType::Vector(x.dim)
            };
            let src = Source::Knn(KnnSource {
                index_id: x.id,
                table_id: table.id,
                like,
                k,
                ef,
                filter,
            });
            (
                src,
                table.columns.clone(),
                key_type,
                &table.name,
                vec![x.id, table.id],
            )
        }
    };
    let (columns, positions) = pick_columns(owner, &full, item.columns.as_deref())?;
    let columns = match source {
        Source::Knn(_) => std::iter::once(ColumnDef {
            name: DISTANCE_COLUMN.into(),
            ty: ColumnType::Double,
        })
        .chain(columns)
        .collect(),
        _ => columns,
    };
    Ok(Resolved {
        source,
        full,
        key_type,
        columns,
        positions,
        uses,
    })
}

fn recent_n(item: &str, n: u64, s: &crate::schema::StreamDef) -> Result<usize, CoreError> {
    if n == 0 || n > MAX_CONTEXT_RECENT_N {
        return Err(invalid(format!(
            "context item {item}: n must be in 1..={MAX_CONTEXT_RECENT_N}, got {n}"
        )));
    }
    if s.recent == 0 {
        // The code a RECENT request of such a stream answers.
        return Err(CoreError::Unsupported(format!(
            "context item {item}: stream {} keeps no recent events (create it WITH (recent = N))",
            s.name
        )));
    }
    Ok(n as usize)
}

fn knn_sizes(item: &str, k: u64, ef: Option<u64>) -> Result<(usize, Option<usize>), CoreError> {
    let max_k = tarn_vectors::MAX_K as u64;
    if k == 0 || k > max_k {
        return Err(invalid(format!(
            "context item {item}: k must be in 1..={max_k}, got {k}"
        )));
    }
    let max_ef = tarn_vectors::HNSW_EF_SEARCH_MAX as u64;
    match ef {
        Some(e) if e == 0 || e > max_ef => Err(invalid(format!(
            "context item {item}: ef must be in 1..={max_ef}, got {e}"
        ))),
        _ => Ok((k as usize, ef.map(|e| e as usize))),
    }
}

/// The object `name`, which must be of kind `want`.
fn object_of<'c>(
    catalog: &'c Catalog,
    name: &str,
    want: ObjectKind,
) -> Result<&'c Object, CoreError> {
    match catalog.object(name) {
        Some(o) if o.kind() == want => Ok(o),
        Some(o) => Err(CoreError::WrongKind {
            name: name.to_string(),
            kind: o.kind(),
            wanted: want,
        }),
        None => Err(match want {
            ObjectKind::Table => CoreError::UnknownTable(name.to_string()),
            ObjectKind::View => CoreError::UnknownView(name.to_string()),
            ObjectKind::Index => CoreError::UnknownIndex(name.to_string()),
            ObjectKind::Stream => CoreError::UnknownStream(name.to_string()),
            ObjectKind::Context => CoreError::UnknownContext(name.to_string()),
            ObjectKind::Model => CoreError::UnknownModel(name.to_string()),
        }),
    }
}

/// The reply columns picked from `full` (all of them for `None`) and their positions.
fn pick_columns(
    owner: &str,
    full: &[ColumnDef],
    wanted: Option<&[String]>,
) -> Result<(Vec<ColumnDef>, Vec<usize>), CoreError> {
    let Some(wanted) = wanted else {
        return Ok((full.to_vec(), (0..full.len()).collect()));
    };
    let mut positions = Vec::with_capacity(wanted.len());
    for name in wanted {
        let Some(p) = full.iter().position(|c| c.name == *name) else {
            return Err(CoreError::UnknownColumn {
                table: owner.to_string(),
                column: name.clone(),
            });
        };
        if positions.contains(&p) {
            return Err(CoreError::DuplicateColumn {
                column: name.clone(),
            });
        }
        positions.push(p);
    }
    let columns = positions.iter().map(|&p| full[p].clone()).collect();
    Ok((columns, positions))
}

/// Item `i` with its operands resolved (phases still 0).
fn operands(
    i: usize,
    spec_item: &ItemSpec,
    resolved: &[Resolved],
    spec: &ContextSpec,
    params: &[ColumnDef],
) -> Result<Item, CoreError> {
    let r = &resolved[i];
    let name = &spec_item.name;
    let (key_spec, as_of_spec) = match &spec_item.kind {
        KindSpec::Row { key, .. } | KindSpec::Recent { key, .. } => (key, None),
        KindSpec::Features { key, as_of, .. } => (key, as_of.as_ref()),
        KindSpec::Knn { query, .. } => match query {
            KnnQuerySpec::Like(k) | KnnQuerySpec::Vector(k) => (k, None),
        },
    };
    let ctx = OperandCtx {
        item: name,
        spec,
        resolved,
        params,
    };
    let key = ctx.operand(key_spec, r.key_type, "key")?;
    let mut source = r.source.clone();
    if let (Source::Features { as_of, .. }, Some(a)) = (&mut source, as_of_spec) {
        *as_of = Some(ctx.operand(a, ColumnType::Timestamp, "as_of")?);
    }
    debug_assert!(r.positions.iter().all(|&p| p < r.full.len()));
    Ok(Item {
        name: name.clone(),
        source,
        key,
        columns: r.columns.clone(),
        positions: r.positions.clone(),
        list: false,
        ready: 0,
        done: 0,
    })
}

struct OperandCtx<'a> {
    item: &'a str,
    spec: &'a ContextSpec,
    resolved: &'a [Resolved],
    params: &'a [ColumnDef],
}

impl OperandCtx<'_> {
    /// `o` resolved as a value of type `want` (`what`: "key", "as_of").
    fn operand(&self, o: &OperandSpec, want: ColumnType, what: &str) -> Result<Operand, CoreError> {
        let item = self.item;
        let (got, op) = match o {
            OperandSpec::Literal(v) => return self.constant(v, want, what).map(Operand::Const),
            OperandSpec::Param(p) => {
                let Some(n) = self.params.iter().position(|c| c.name == *p) else {
                    return Err(invalid(if self.params.is_empty() {
                        format!(
                            "context item {item}: {p} is not a parameter (this context declares none; quote a literal as '{p}', or refer to an item as item.column)"
                        )
                    } else {
                        let names: Vec<&str> =
                            self.params.iter().map(|c| c.name.as_str()).collect();
                        format!(
                            "context item {item}: {p} is not a parameter (declared: {})",
                            names.join(", ")
                        )
                    }));
                };
                (self.params[n].ty, Operand::Param(n))
            }
            OperandSpec::Ref {
                item: target,
                column,
            } => {
                let Some(t) = self.spec.items.iter().position(|x| x.name == *target) else {
                    return Err(invalid(format!(
                        "context item {item} refers to {target}.{column}, but there is no item {target}"
                    )));
                };
                let cols = &self.resolved[t].columns;
                let Some(c) = cols.iter().position(|x| x.name == *column) else {
                    let names: Vec<&str> = cols.iter().map(|x| x.name.as_str()).collect();
                    return Err(invalid(format!(
                        "context item {item} refers to {target}.{column}, but item {target} has no column {column} (its columns: {})",
                        names.join(", ")
                    )));
                };
                (cols[c].ty, Operand::Ref { item: t, column: c })
            }
        };
        if got != want {
            return Err(CoreError::TypeMismatch {
                row: None,
                column: Some(format!("{item}.{what}")),
                expected: want,
                got,
            });
        }
        Ok(op)
    }

    /// A literal as a value of type `want`: the upsert coercions, and vector text.
    fn constant(&self, v: &Value, want: ColumnType, what: &str) -> Result<Value, CoreError> {
        let item = self.item;
        let col = ColumnDef {
            name: format!("{item}.{what}"),
            ty: want,
        };
        if v.is_null() {
            return Err(CoreError::NullKey {
                row: None,
                column: Some(col.name),
            });
        }
        if let (ColumnType::Vector(dim), Value::Text(s)) = (want, v) {
            return crate::vector::parse_text(s, dim)
                .map(Value::Vector)
                .map_err(|reason| crate::vector::bad(None, Some(&col.name), reason));
        }
        match crate::batch::check_value(&col, 0, v) {
            Ok(Some(coerced)) => Ok(coerced),
            Ok(None) => Ok(v.clone()),
            Err(e) => Err(e),
        }
    }
}

/// Sets `ready`, `done` and `list` of every item from its references; returns the number of
/// phases. A cycle is an error listing it.
fn phase_items(items: &mut [Item], spec: &ContextSpec) -> Result<usize, CoreError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn refs(item: &Item) -> Vec<usize> {
        let mut out = Vec::new();
        if let Operand::Ref { item, .. } = item.key {
            out.push(item);
        }
        if let Source::Features {
            as_of: Some(Operand::Ref { item, .. }),
            ..
        } = item.source
        {
            out.push(item);
        }
        out
    }
    fn visit(
        i: usize,
        items: &mut [Item],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        spec: &ContextSpec,
    ) -> Result<(), CoreError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let from = path.iter().position(|&p| p == i).expect("on the path");
                let names: Vec<&str> = path[from..]
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|&p| spec.items[p].name.as_str())
                    .collect();
                return Err(invalid(format!(
                    "context items refer to each other in a cycle: {}",
                    names.join(" → ")
                )));
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        path.push(i);
        let mut ready = 0;
        let mut list = false;
        for r in refs(&items[i]) {
            visit(r, items, marks, path, spec)?;
            ready = ready.max(items[r].done + 1);
            let multi =
                items[r].list || matches!(items[r].source, Source::Knn(_) | Source::Recent { .. });
            if matches!(items[i].key, Operand::Ref { item, .. } if item == r) {
                list |= multi;
            } else if multi {
                return Err(invalid(format!(
                    "context item {}: as_of refers to item {}, which has several rows (as_of takes one value)",
                    items[i].name, items[r].name
                )));
            }
        }
        path.pop();
        let like = matches!(&items[i].source, Source::Knn(k) if k.like);
        items[i].ready = ready;
        items[i].done = ready + usize::from(like);
        items[i].list = list;
        marks[i] = Mark::Done;
        Ok(())
    }
    let mut marks = vec![Mark::New; items.len()];
    for i in 0..items.len() {
        visit(i, items, &mut marks, &mut Vec::new(), spec)?;
    }
    let phases = 1 + items
        .iter()
        .map(|i| i.done)
        .max()
        .expect("one item at least");
    if phases > MAX_CONTEXT_PHASES {
        return Err(CoreError::LimitExceeded(format!(
            "the context's references are {phases} phases deep, the limit is {MAX_CONTEXT_PHASES} (each phase is a round of messages between shards)"
        )));
    }
    Ok(phases)
}
