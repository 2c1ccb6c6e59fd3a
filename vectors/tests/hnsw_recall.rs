//! Recall of the HNSW index against exact search on seeded clustered data (20,000 × 64,
//! 200 queries, k = 10), for every metric, unfiltered and with filters that accept 50 %,
//! 10 %, 1 %, 0.1 % of the rows and an AND of two columns accepting ~4 %. Run with
//! `--nocapture` to see the figures.

mod common;

use std::collections::BTreeMap;

use common::{gaussian, rng};
use rand::rngs::StdRng;
use rand::Rng;
use tarn_vectors::{
    plan, search_planned, ExactIndex, HnswIndex, HnswParams, Index, Metric, Neighbor, Plan, RowId,
    SearchParams, VectorIndex,
};

const ROWS: usize = 20_000;
const DIM: usize = 64;
const QUERIES: usize = 200;
const K: usize = 10;
const MIN_RECALL: f64 = 0.95;

/// Clustered data whose cluster centres have norms from 0.75× to 1.5× of each other (so `ip`
/// meets vectors of different lengths; see `build::Builder` in the crate for what happens at
/// 0.5×–4×).
fn data(rng: &mut StdRng, n: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let centres: Vec<(Vec<f64>, f64)> = (0..50)
        .map(|_| {
            let c: Vec<f64> = (0..DIM).map(|_| gaussian(rng)).collect();
            (c, rng.random_range(0.75..1.5))
        })
        .collect();
    let draw = |rng: &mut StdRng| -> Vec<f32> {
        let (c, s) = &centres[rng.random_range(0..centres.len())];
        c.iter()
            .map(|&x| (x * s * 2.0 + gaussian(rng)) as f32)
            .collect()
    };
    let rows = (0..n).map(|_| draw(rng)).collect();
    let queries = (0..QUERIES).map(|_| draw(rng)).collect();
    (rows, queries)
}

/// A well-mixed hash of a row id and a column number: the filters' "columns".
fn column(row: RowId, col: u64) -> u64 {
    let mut x = row ^ col.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x = (x ^ (x >> 33)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

type Filter = Box<dyn Fn(RowId) -> bool>;

fn filters() -> Vec<(&'static str, Filter)> {
    vec![
        ("none", Box::new(|_| true)),
        ("50%", Box::new(|r| column(r, 1).is_multiple_of(2))),
        ("10%", Box::new(|r| column(r, 2).is_multiple_of(10))),
        ("1%", Box::new(|r| column(r, 3).is_multiple_of(100))),
        ("0.1%", Box::new(|r| column(r, 4).is_multiple_of(1000))),
        (
            "AND 4%",
            Box::new(|r| column(r, 5).is_multiple_of(5) && column(r, 6).is_multiple_of(5)),
        ),
    ]
}

fn recall(got: &[Neighbor], want: &[Neighbor]) -> f64 {
    if want.is_empty() {
        return 1.0;
    }
    let hits = got
        .iter()
        .filter(|g| want.iter().any(|w| w.row == g.row))
        .count();
    hits as f64 / want.len() as f64
}

struct Figures {
    planned: f64,
    graph: f64,
    plans: BTreeMap<&'static str, usize>,
}

/// The `ef` of the searches: the default 40, and 200 for `ip`, whose graph converges more
/// slowly (recall@10 0.95 at ef 100 on this data).
fn params(metric: Metric) -> SearchParams {
    SearchParams {
        ef: (metric == Metric::InnerProduct).then_some(200),
    }
}

fn measure(index: &Index, exact: &ExactIndex, queries: &[Vec<f32>], filter: &Filter) -> Figures {
    let Index::Hnsw(hnsw) = index else {
        unreachable!()
    };
    let (mut planned, mut graph) = (0.0, 0.0);
    let mut plans = BTreeMap::new();
    let params = params(index.metric());
    for q in queries {
        let want = exact.search(q, K, filter, &params).unwrap();
        let matching = (0..ROWS as RowId).filter(|&r| filter(r)).count();
        let (p, got) = search_planned(index, q, K, filter, &params).unwrap();
        assert_eq!(
            got.len(),
            K.min(matching),
            "planned search returns min(k, matching)"
        );
        assert!(got.iter().all(|n| filter(n.row)), "only accepted rows");
        assert!(
            got.windows(2).all(|w| w[0].rank_cmp(&w[1]).is_lt()),
            "in order"
        );
        let name = match p {
            Plan::Exact => "exact",
            Plan::Graph { .. } => "graph",
            Plan::FilteredGraph { .. } => "filtered graph",
        };
        *plans.entry(name).or_default() += 1;
        planned += recall(&got, &want);
        let forced = hnsw.search(q, K, filter, &params).unwrap();
        assert_eq!(
            forced.len(),
            K.min(matching),
            "graph search returns min(k, matching)"
        );
        graph += recall(&forced, &want);
    }
    let n = queries.len() as f64;
    Figures {
        planned: planned / n,
        graph: graph / n,
        plans,
    }
}

fn check_metric(metric: Metric) {
    let mut r = rng(0x5eed_0000 + metric as u64);
    let (rows, queries) = data(&mut r, ROWS);
    let mut hnsw = HnswIndex::new(metric, DIM, HnswParams::default()).unwrap();
    let mut exact = ExactIndex::new(metric, DIM).unwrap();
    for (i, v) in rows.iter().enumerate() {
        hnsw.upsert(i as RowId, v).unwrap();
        exact.upsert(i as RowId, v).unwrap();
    }
    hnsw.check_invariants().unwrap();
    assert_eq!(
        hnsw.unreachable_rows(),
        Vec::<RowId>::new(),
        "every row reachable"
    );
    let index = Index::from(hnsw);
    let mut failures = Vec::new();
    for (name, filter) in filters() {
        let f = measure(&index, &exact, &queries, &filter);
        let example = plan(&index, K, &filter, &params(metric)).unwrap();
        println!(
            "{:6} filter {:6}: recall@{K} planned {:.4} (plans {:?}, e.g. {:?}), graph only {:.4}",
            metric.name(),
            name,
            f.planned,
            f.plans,
            example,
            f.graph
        );
        if f.planned < MIN_RECALL || f.graph < MIN_RECALL {
            failures.push(format!(
                "{} {name}: {:.4} / {:.4}",
                metric.name(),
                f.planned,
                f.graph
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "recall below {MIN_RECALL}: {failures:?}"
    );
}

#[test]
fn recall_l2() {
    check_metric(Metric::L2);
}

#[test]
fn recall_cosine() {
    check_metric(Metric::Cosine);
}

#[test]
fn recall_inner_product_on_unnormalized_vectors() {
    check_metric(Metric::InnerProduct);
}
