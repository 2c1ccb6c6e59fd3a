//! Checks of a graph's structure, for tests and for assertions after loading: the failure
//! classes reported against `hnsw_rs` (links on a layer their target does not exist on,
//! nodes no search can reach) and a digest of the whole graph for determinism tests.

use std::collections::VecDeque;

use super::store::NO_PARENT;
use super::HnswIndex;
use crate::index::VectorIndex;

impl HnswIndex {
    /// Every structural invariant, or a description of the first one broken: each link points
    /// to an existing node that has the link's layer; no self-links or duplicates; list
    /// lengths within their caps; every node but the entry has a parent that links to it on
    /// layer 0, and node 0's parent is the entry; the row map
    /// and the tombstones agree; the entry point is a node of the highest layer.
    pub fn check_invariants(&self) -> Result<(), String> {
        let g = &self.graph;
        let n = g.nodes();
        if g.vectors_len() != n || g.died.len() != n || g.level.len() != n || g.parent.len() != n {
            return Err("node tables have different lengths".into());
        }
        for node in 0..n as u32 {
            for layer in 0..=g.level[node as usize] as usize {
                let links = g.links(node, layer);
                if links.len() > g.cap(layer) {
                    return Err(format!("node {node} layer {layer}: {} links", links.len()));
                }
                for (i, &t) in links.iter().enumerate() {
                    if t as usize >= n {
                        return Err(format!("node {node} layer {layer}: link to {t} of {n}"));
                    }
                    if t == node {
                        return Err(format!("node {node} layer {layer}: link to itself"));
                    }
                    if (g.level[t as usize] as usize) < layer {
                        return Err(format!(
                            "node {node} layer {layer}: link to {t}, whose top layer is {}",
                            g.level[t as usize]
                        ));
                    }
                    if links[..i].contains(&t) {
                        return Err(format!("node {node} layer {layer}: link to {t} twice"));
                    }
                }
            }
        }
        for node in 0..n as u32 {
            let p = g.parent[node as usize];
            if p == NO_PARENT {
                if Some(node) != self.entry {
                    return Err(format!("node {node} has no parent"));
                }
            } else if p as usize >= n || !g.links(p, 0).contains(&node) {
                return Err(format!("node {node}: its parent {p} does not link to it"));
            }
        }
        if n > 1 && self.entry != Some(0) && g.parent[0] != self.entry.unwrap_or(NO_PARENT) {
            return Err("node 0's parent is not the entry point".into());
        }
        for (&row, &node) in &self.nodes {
            if !g.is_alive(node) || g.rows[node as usize] != row {
                return Err(format!(
                    "row {row} maps to node {node}, which is not it or dead"
                ));
            }
        }
        let alive = (0..n as u32).filter(|&x| g.is_alive(x)).count();
        if alive != self.nodes.len() {
            return Err(format!("{alive} live nodes but {} rows", self.nodes.len()));
        }
        match self.entry {
            None if n > 0 => Err("no entry point".into()),
            Some(e) if g.level.iter().any(|&l| l > g.level[e as usize]) => {
                Err(format!("entry {e} is not on the highest layer"))
            }
            _ => Ok(()),
        }
    }

    /// Live rows no search can reach: not reachable from the entry point through layer-0
    /// links (every node is on layer 0; tombstones route too). Empty for a sound graph.
    pub fn unreachable_rows(&self) -> Vec<u64> {
        let g = &self.graph;
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let mut seen = vec![false; g.nodes()];
        let mut queue = VecDeque::from([entry]);
        seen[entry as usize] = true;
        while let Some(x) = queue.pop_front() {
            for &t in g.links(x, 0) {
                if !std::mem::replace(&mut seen[t as usize], true) {
                    queue.push_back(t);
                }
            }
        }
        let mut rows: Vec<u64> = (0..g.nodes() as u32)
            .filter(|&x| !seen[x as usize] && g.is_alive(x))
            .map(|x| g.rows[x as usize])
            .collect();
        rows.sort_unstable();
        rows
    }

    /// A 64-bit FNV-1a digest of the graph (rows, liveness, levels, links, vectors' bits,
    /// entry): equal for graphs built by the same writes with the same seed.
    pub fn digest(&self) -> u64 {
        let g = &self.graph;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u64| {
            for b in x.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(self.entry.map_or(u64::MAX, u64::from));
        eat(self.len() as u64);
        for node in 0..g.nodes() as u32 {
            eat(g.rows[node as usize]);
            eat(u64::from(g.is_alive(node)));
            eat(u64::from(g.level[node as usize]));
            for layer in 0..=g.level[node as usize] as usize {
                let links = g.links(node, layer);
                eat(links.len() as u64);
                links.iter().for_each(|&t| eat(u64::from(t)));
            }
            g.vector(node)
                .iter()
                .for_each(|x| eat(u64::from(x.to_bits())));
        }
        h
    }
}
