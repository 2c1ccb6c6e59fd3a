//! Flat storage of an HNSW graph: node tables, vectors and links in fixed-stride blocks.
//!
//! ```text
//!   node n (u32, dense, in insertion order; never reused)
//!   ├─ rows[n]      RowId            8 B
//!   ├─ died[n]      write epoch or ALIVE   8 B
//!   ├─ level[n]     top layer of n   1 B
//!   ├─ upper[n]     index into `upper_lists` or NO_UPPER   4 B
//!   ├─ parent[n]    the node whose layer-0 link to n is never pruned   4 B
//!   ├─ vectors      Slab<f32>  stride dim            4·dim B
//!   └─ links0       Slab<u32>  stride 1 + 2·m: [count, id, id, …]   4 + 8·m B
//!   upper_lists[upper[n]] = level[n] × [count, id × m]   (only the ~1/m nodes above layer 0)
//! ```
//!
//! Blocks (see [`crate::BLOCK_BYTES`] for why) hold a power of two of nodes so that a lookup
//! is a shift and a mask; growing never copies older vectors or links.

use crate::limits::BLOCK_BYTES;

/// `died` of a live node.
pub(super) const ALIVE: u64 = u64::MAX;

/// `parent` of a node that has none (node 0 while it is the entry, or before linking).
pub(super) const NO_PARENT: u32 = u32::MAX;

/// `upper` of a node that has no layer above 0.
const NO_UPPER: u32 = u32::MAX;

/// Fixed-stride records in blocks of a power of two of records.
#[derive(Clone)]
pub(super) struct Slab<T> {
    stride: usize,
    shift: u32,
    blocks: Vec<Box<[T]>>,
    len: usize,
}

impl<T: Copy + Default> Slab<T> {
    pub(super) fn new(stride: usize) -> Slab<T> {
        assert!(stride > 0);
        let per_block = (BLOCK_BYTES / (stride * std::mem::size_of::<T>())).max(1);
        // The largest power of two not above `per_block`.
        let shift = usize::BITS - 1 - per_block.leading_zeros();
        Slab {
            stride,
            shift,
            blocks: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends one record (`stride` values).
    pub(super) fn push(&mut self, record: &[T]) {
        assert_eq!(record.len(), self.stride);
        if self.len == self.blocks.len() << self.shift {
            let block = vec![T::default(); self.stride << self.shift];
            self.blocks.push(block.into_boxed_slice());
        }
        self.len += 1;
        self.get_mut(self.len - 1).copy_from_slice(record);
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> &[T] {
        debug_assert!(i < self.len);
        let o = (i & ((1 << self.shift) - 1)) * self.stride;
        &self.blocks[i >> self.shift][o..o + self.stride]
    }

    #[inline]
    pub(super) fn get_mut(&mut self, i: usize) -> &mut [T] {
        debug_assert!(i < self.len);
        let o = (i & ((1 << self.shift) - 1)) * self.stride;
        &mut self.blocks[i >> self.shift][o..o + self.stride]
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Box<[T]>>()
            + self.blocks.len() * (self.stride << self.shift) * std::mem::size_of::<T>()
    }
}

/// The nodes, vectors and links of one graph.
#[derive(Clone)]
pub(super) struct Graph {
    pub(super) m: usize,
    pub(super) rows: Vec<u64>,
    pub(super) died: Vec<u64>,
    pub(super) level: Vec<u8>,
    upper: Vec<u32>,
    pub(super) parent: Vec<u32>,
    /// Squared norms, kept for `ip` only (empty otherwise): see `build::Builder`.
    norm2: Vec<f32>,
    vectors: Slab<f32>,
    links0: Slab<u32>,
    upper_lists: Vec<Box<[u32]>>,
}

impl Graph {
    pub(super) fn new(dim: usize, m: usize) -> Graph {
        Graph {
            m,
            rows: Vec::new(),
            died: Vec::new(),
            level: Vec::new(),
            upper: Vec::new(),
            parent: Vec::new(),
            norm2: Vec::new(),
            vectors: Slab::new(dim),
            links0: Slab::new(1 + 2 * m),
            upper_lists: Vec::new(),
        }
    }

    /// Nodes, live and tombstoned.
    #[inline]
    pub(super) fn nodes(&self) -> usize {
        self.rows.len()
    }

    /// Appends a node without links (with its squared norm for `ip`); returns its id.
    pub(super) fn push(
        &mut self,
        row: u64,
        vector: &[f32],
        level: usize,
        norm2: Option<f32>,
    ) -> u32 {
        let n = u32::try_from(self.rows.len()).expect("fewer than 2^32 nodes");
        assert!(n != u32::MAX, "node id u32::MAX is reserved");
        self.rows.push(row);
        self.died.push(ALIVE);
        self.level.push(u8::try_from(level).expect("level fits u8"));
        self.parent.push(NO_PARENT);
        if let Some(x) = norm2 {
            self.norm2.push(x);
        }
        assert!(self.norm2.is_empty() || self.norm2.len() == self.rows.len());
        self.vectors.push(vector);
        self.links0.push(&vec![0u32; 1 + 2 * self.m]);
        if level == 0 {
            self.upper.push(NO_UPPER);
        } else {
            let idx = u32::try_from(self.upper_lists.len()).expect("fewer than 2^32 lists");
            self.upper_lists
                .push(vec![0u32; level * (1 + self.m)].into_boxed_slice());
            self.upper.push(idx);
        }
        n
    }

    #[inline]
    pub(super) fn vector(&self, n: u32) -> &[f32] {
        self.vectors.get(n as usize)
    }

    /// The squared norm of `n` (`ip` graphs only).
    #[inline]
    pub(super) fn norm2(&self, n: u32) -> f32 {
        self.norm2[n as usize]
    }

    #[inline]
    pub(super) fn is_alive(&self, n: u32) -> bool {
        self.died[n as usize] == ALIVE
    }

    /// Most links node lists hold on `layer`.
    #[inline]
    pub(super) fn cap(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// The links of `n` on `layer` (`layer <= level[n]`).
    #[inline]
    pub(super) fn links(&self, n: u32, layer: usize) -> &[u32] {
        let list = self.list(n, layer);
        &list[1..1 + list[0] as usize]
    }

    fn list(&self, n: u32, layer: usize) -> &[u32] {
        if layer == 0 {
            return self.links0.get(n as usize);
        }
        debug_assert!(layer <= self.level[n as usize] as usize);
        let stride = 1 + self.m;
        let lists = &self.upper_lists[self.upper[n as usize] as usize];
        &lists[(layer - 1) * stride..layer * stride]
    }

    /// Replaces the links of `n` on `layer` (at most [`Graph::cap`] of them).
    pub(super) fn set_links(&mut self, n: u32, layer: usize, links: &[u32]) {
        assert!(links.len() <= self.cap(layer));
        let list: &mut [u32] = if layer == 0 {
            self.links0.get_mut(n as usize)
        } else {
            let stride = 1 + self.m;
            let lists = &mut self.upper_lists[self.upper[n as usize] as usize];
            &mut lists[(layer - 1) * stride..layer * stride]
        };
        list[0] = links.len() as u32;
        list[1..1 + links.len()].copy_from_slice(links);
    }

    pub(super) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.rows.capacity() * size_of::<u64>()
            + self.died.capacity() * size_of::<u64>()
            + self.level.capacity()
            + self.upper.capacity() * size_of::<u32>()
            + self.parent.capacity() * size_of::<u32>()
            + self.norm2.capacity() * size_of::<f32>()
            + self.vectors.memory_bytes()
            + self.links0.memory_bytes()
            + self.upper_lists.capacity() * size_of::<Box<[u32]>>()
            + self
                .upper_lists
                .iter()
                .map(|l| l.len() * size_of::<u32>())
                .sum::<usize>()
    }

    /// Vectors stored (for checks).
    pub(super) fn vectors_len(&self) -> usize {
        self.vectors.len()
    }
}

/// Which nodes a search has reached: one generation stamp per node, reset in O(1) by
/// bumping the generation (O(nodes) once every 65,535 searches).
#[derive(Clone, Debug, Default)]
pub(super) struct Visited {
    stamps: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Forgets every node and makes room for `nodes`.
    pub(super) fn reset(&mut self, nodes: usize) {
        if self.stamps.len() < nodes {
            self.stamps.resize(nodes, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `n`; `true` if it was marked already.
    #[inline]
    pub(super) fn test_and_set(&mut self, n: u32) -> bool {
        let s = &mut self.stamps[n as usize];
        let seen = *s == self.generation;
        *s = self.generation;
        seen
    }

    #[inline]
    pub(super) fn contains(&self, n: u32) -> bool {
        self.stamps[n as usize] == self.generation
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.stamps.capacity() * 2
    }
}
