//! Inserting a node: level draw, descent, candidate search, hnswlib's heuristic selection,
//! back-links with pruning that never strands a node.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::store::{Graph, Visited, NO_PARENT};
use super::HnswIndex;
use crate::distance::Kernels;
use crate::limits::HNSW_MAX_LEVEL;
use crate::metric::Metric;

/// A node and its key (distance order) to some base vector, ordered by `(key, node)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cand {
    pub(super) key: f32,
    pub(super) node: u32,
}

impl Ord for Cand {
    fn cmp(&self, other: &Cand) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Cand) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Cand {
    fn eq(&self, other: &Cand) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cand {}

/// The distance function of a graph: metric and kernels.
#[derive(Clone, Copy, Debug)]
pub(super) struct Space {
    pub(super) metric: Metric,
    pub(super) kernels: Kernels,
}

impl Space {
    #[inline]
    pub(super) fn key(self, a: &[f32], b: &[f32]) -> f32 {
        self.metric.key(self.kernels, a, b)
    }
}

/// The distance a graph is built with, between two of its nodes.
///
/// For `l2` and `cosine` it is the metric's key. For `ip` it is the squared L2 distance after
/// the reduction of maximum inner product search to nearest-neighbour search (Bachrach et
/// al., 2014): each stored vector `x` gets an extra component `√(M² − ‖x‖²)`, `M` the largest
/// norm stored, and a query an extra 0, so that `‖q' − x'‖² = ‖q‖² + M² − 2·q·x` orders rows
/// exactly like `−q·x`. Between two stored vectors that is
/// `‖x − y‖² + (√(M² − ‖x‖²) − √(M² − ‖y‖²))²`, computed here without storing the extra
/// component. Searches still order by `−q·x`, which is the same order. `M` is the largest
/// norm at the time of each insert; links made while `M` was smaller are slightly off, which
/// a rebuild corrects.
///
/// Why not link by inner product, as hnswlib does: a long vector has a larger inner product
/// with nearly everything than a short one, so the heuristic links almost only to long
/// vectors and short ones lose every in-edge. Measured on 20,000 × 64 clustered vectors
/// (`tests/hnsw_recall.rs` data, cluster norms equal): linked by inner product, 6,482 rows
/// were unreachable (a filtered search can never return them) at recall@10 0.990 (ef 40);
/// with the reduction, none at 0.949 (ef 40), 0.988 (ef 100), 0.995 (ef 200). With cluster
/// norms spread 0.5×–4× neither works: 0.87–0.90 by inner product (hnswlib: 0.89–0.94),
/// 0.50–0.75 with the reduction, at ef 40–400 — vectors of very different norms need an exact
/// scan (or a cosine index) for now.
#[derive(Clone, Copy)]
pub(super) struct Builder<'a> {
    pub(super) g: &'a Graph,
    pub(super) space: Space,
    /// `M²` for `ip`, else `None`.
    pub(super) mips: Option<f32>,
}

impl Builder<'_> {
    #[inline]
    pub(super) fn between(&self, a: u32, b: u32) -> f32 {
        let (va, vb) = (self.g.vector(a), self.g.vector(b));
        match self.mips {
            None => self.space.key(va, vb),
            Some(m2) => {
                let ea = (m2 - self.g.norm2(a)).max(0.0).sqrt();
                let eb = (m2 - self.g.norm2(b)).max(0.0).sqrt();
                self.space.kernels.l2_squared(va, vb) + (ea - eb) * (ea - eb)
            }
        }
    }
}

/// splitmix64: the level of node `n` is a pure function of the seed and `n`, so the same
/// writes build the same graph.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The layer of node `n`: `⌊−ln(u) / ln(m)⌋` for `u` uniform in (0, 1] (hnswlib's rule,
/// `P(level ≥ l) = m^−l`), capped at [`HNSW_MAX_LEVEL`].
pub(super) fn draw_level(seed: u64, n: u32, m: usize) -> usize {
    let bits = mix(seed ^ mix(u64::from(n)));
    let u = ((bits >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let level = (-u.ln() / (m as f64).ln()).floor();
    (level as usize).min(HNSW_MAX_LEVEL)
}

/// Greedy walk on `layer` from `ep` towards `q`: the nearest node reachable by always moving
/// to a nearer neighbour.
pub(super) fn greedy(
    g: &Graph,
    space: Space,
    q: &[f32],
    mut ep: Cand,
    layer: usize,
    limit: u32,
) -> (Cand, usize) {
    let mut distances = 0;
    loop {
        let mut moved = false;
        for &n in g.links(ep.node, layer) {
            if n >= limit {
                continue;
            }
            distances += 1;
            let c = Cand {
                key: space.key(q, g.vector(n)),
                node: n,
            };
            if c < ep {
                ep = c;
                moved = true;
            }
        }
        if !moved {
            return (ep, distances);
        }
    }
}

/// Greedy walk of an insert: as [`greedy`] with the construction distance to node `q`.
fn greedy_build(b: Builder<'_>, q: u32, mut ep: Cand, layer: usize) -> Cand {
    loop {
        let mut moved = false;
        for &n in b.g.links(ep.node, layer) {
            let c = Cand {
                key: b.between(q, n),
                node: n,
            };
            if c < ep {
                ep = c;
                moved = true;
            }
        }
        if !moved {
            return ep;
        }
    }
}

/// The `ef` nearest nodes to node `q` found by a beam search on `layer` from `ep`, ascending;
/// tombstones included (the caller decides whether to link them).
fn beam(
    b: Builder<'_>,
    visited: &mut Visited,
    q: u32,
    ep: Cand,
    layer: usize,
    ef: usize,
) -> Vec<Cand> {
    let g = b.g;
    visited.reset(g.nodes());
    visited.test_and_set(ep.node);
    let mut candidates = BinaryHeap::with_capacity(ef * 2);
    let mut found: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
    candidates.push(Reverse(ep));
    found.push(ep);
    while let Some(Reverse(c)) = candidates.pop() {
        let worst = *found.peek().expect("never empty");
        if c > worst && found.len() >= ef {
            break;
        }
        for &n in g.links(c.node, layer) {
            if visited.test_and_set(n) {
                continue;
            }
            let cand = Cand {
                key: b.between(q, n),
                node: n,
            };
            let worst = *found.peek().expect("never empty");
            if found.len() < ef || cand < worst {
                candidates.push(Reverse(cand));
                found.push(cand);
                if found.len() > ef {
                    found.pop();
                }
            }
        }
    }
    found.into_sorted_vec()
}

/// hnswlib's `getNeighborsByHeuristic2`: from `sorted` (ascending by key to the base), keep a
/// candidate only if it is nearer to the base than to every candidate kept before it, up to
/// `cap`. This keeps links spread over directions instead of all into one cluster.
fn select(b: Builder<'_>, sorted: &[Cand], cap: usize) -> Vec<Cand> {
    let mut kept: Vec<Cand> = Vec::with_capacity(cap);
    for &c in sorted {
        if kept.len() == cap {
            break;
        }
        let diverse = kept.iter().all(|s| b.between(c.node, s.node) >= c.key);
        if diverse {
            kept.push(c);
        }
    }
    kept
}

impl HnswIndex {
    fn builder(&self) -> Builder<'_> {
        Builder {
            g: &self.graph,
            space: self.build_space(),
            mips: self.mips(),
        }
    }

    /// `M²` of the inner-product reduction ([`Builder`]) for `ip`, else `None`.
    fn mips(&self) -> Option<f32> {
        (self.metric == Metric::InnerProduct).then_some(self.max_norm2)
    }

    /// Inserts `v` (prepared) as a new node for `row` and links it; returns the node.
    pub(super) fn insert_node(&mut self, row: u64, v: &[f32]) -> u32 {
        let next = u32::try_from(self.graph.nodes()).expect("fewer than 2^32 nodes");
        let level = draw_level(self.params.seed, next, self.params.m);
        let norm2 = (self.metric == Metric::InnerProduct).then(|| self.kernels.dot(v, v));
        if let Some(x) = norm2 {
            self.max_norm2 = self.max_norm2.max(x);
        }
        let node = self.graph.push(row, v, level, norm2);
        let Some(entry) = self.entry else {
            self.entry = Some(node);
            return node;
        };
        let top = self.graph.level[entry as usize] as usize;
        let mut ep = Cand {
            key: self.builder().between(node, entry),
            node: entry,
        };
        for layer in (level + 1..=top).rev() {
            ep = greedy_build(self.builder(), node, ep, layer);
        }
        let mut layer0_links = Vec::new();
        for layer in (0..=level.min(top)).rev() {
            let ef = self.params.ef_construction;
            let b = Builder {
                g: &self.graph,
                space: self.build_space(),
                mips: self.mips(),
            };
            let found = beam(b, &mut self.scratch, node, ep, layer, ef);
            ep = found[0];
            let live: Vec<Cand> = found
                .iter()
                .copied()
                .filter(|c| c.node != node && self.graph.is_alive(c.node))
                .collect();
            let chosen = select(self.builder(), &live, self.params.m);
            let ids: Vec<u32> = chosen.iter().map(|c| c.node).collect();
            self.graph.set_links(node, layer, &ids);
            for c in &chosen {
                self.link_back(c.node, node, c.key, layer);
            }
            if layer == 0 {
                layer0_links = found
                    .iter()
                    .map(|c| c.node)
                    .filter(|&n| n != node)
                    .collect();
            }
        }
        if self.graph.parent[node as usize] == NO_PARENT {
            self.adopt(node, &layer0_links);
        }
        if level > top {
            self.entry = Some(node);
            self.hang_root_from(node);
        }
        node
    }

    /// Adds the link `from → to` on `layer` (`key` = their distance), pruning `from`'s list
    /// with the heuristic when it is full. On layer 0 a node without a parent gets `from`.
    fn link_back(&mut self, from: u32, to: u32, key: f32, layer: usize) {
        let cap = self.graph.cap(layer);
        let old: Vec<u32> = self.graph.links(from, layer).to_vec();
        let mut new = old.clone();
        if old.len() < cap {
            new.push(to);
        } else {
            let b = self.builder();
            let mut cands: Vec<Cand> = old
                .iter()
                .map(|&n| Cand {
                    key: b.between(from, n),
                    node: n,
                })
                .collect();
            cands.push(Cand { key, node: to });
            cands.sort_unstable();
            let mut kept = select(b, &cands, cap);
            if layer == 0 {
                self.keep_children(from, &cands, &mut kept, cap);
            }
            new = kept.iter().map(|c| c.node).collect();
        }
        self.graph.set_links(from, layer, &new);
        if layer == 0 && new.contains(&to) && self.graph.parent[to as usize] == NO_PARENT {
            self.graph.parent[to as usize] = from;
        }
    }

    /// After pruning `from`'s layer-0 list to `kept`: every node whose parent is `from` stays
    /// linked, in the place of the farthest kept node that is not a child of `from`.
    ///
    /// Why parents: each node but node 0 gets a parent, an older node linking to it, and that
    /// link is never pruned; node 0's parent is the entry point. So every node (tombstones
    /// included: live nodes may hang below them) is reachable from the entry along parent
    /// links, whatever the heuristic prunes. Counting in-edges is not enough: measured, two
    /// nodes linking only each other formed an island after 6,000 writes (hnswlib-rs #32 is
    /// this class of defect).
    fn keep_children(&self, from: u32, cands: &[Cand], kept: &mut Vec<Cand>, cap: usize) {
        let is_child = |n: u32| self.graph.parent[n as usize] == from;
        for c in cands.iter().filter(|c| is_child(c.node)) {
            if kept.contains(c) {
                continue;
            }
            if kept.len() < cap {
                kept.push(*c);
            } else if let Some(i) = kept.iter().rposition(|k| !is_child(k.node)) {
                kept[i] = *c;
            }
        }
    }

    /// Gives `node`, which no neighbour kept a link to, a parent: the nearest node the
    /// insert's layer-0 search found (`neighbours`, ascending; the heuristic may have linked
    /// to only one of them) that has room or a link to replace (one not to its own child).
    fn adopt(&mut self, node: u32, neighbours: &[u32]) {
        for &s in neighbours {
            let mut links: Vec<u32> = self.graph.links(s, 0).to_vec();
            if links.len() < self.graph.cap(0) {
                links.push(node);
            } else if let Some(i) = links
                .iter()
                .rposition(|&n| self.graph.parent[n as usize] != s)
            {
                links[i] = node;
            } else {
                continue;
            }
            self.graph.set_links(s, 0, &links);
            self.graph.parent[node as usize] = s;
            return;
        }
    }

    /// Makes the new entry point `entry` node 0's parent (linking it to node 0), which closes
    /// the parent links into a tree reachable from the entry.
    fn hang_root_from(&mut self, entry: u32) {
        if entry == 0 {
            return;
        }
        let mut links: Vec<u32> = self.graph.links(entry, 0).to_vec();
        if !links.contains(&0) {
            // A new node has at most `m` of its `2·m` layer-0 links: there is room.
            assert!(links.len() < self.graph.cap(0));
            links.push(0);
            self.graph.set_links(entry, 0, &links);
        }
        self.graph.parent[0] = entry;
    }
}
