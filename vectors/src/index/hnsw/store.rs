//! Flat storage of an HNSW graph: node tables, vectors and links in copy-on-write blocks.
//!
//! ```text
//!   node n (u32, dense, in insertion order; never reused)
//!   ├─ rows[n]      RowId            8 B          CowVec<u64>
//!   ├─ died[n]      write epoch or ALIVE   8 B    CowVec<u64>
//!   ├─ level[n]     top layer of n   1 B          CowVec<u8>
//!   ├─ upper[n]     index into `upper_lists` or NO_UPPER   4 B   CowVec<u32>
//!   ├─ parent[n]    the node whose layer-0 link to n is never pruned   4 B   CowVec<u32>
//!   ├─ norm2[n]     squared norm (`ip` only)   4 B   CowVec<f32>
//!   ├─ vectors      Slab<f32>  stride dim            4·dim B
//!   └─ links0       Slab<u32>  stride 1 + 2·m: [count, id, id, …]   4 + 8·m B
//!   upper_lists[upper[n]] = level[n] × [count, id × m]   (only the ~1/m nodes above layer 0)
//!                   CowVec<Rc<[u32]>>: blocks of list pointers, each list shared too
//!
//!   every column:  Vec<Rc<[T]>>   ──►  [block 0][block 1] … [last block, partly used]
//!                  a clone (snapshot) copies the pointers, not the blocks:
//!   index:    [b0*][b1*][b2*]        * shared, reference count 2
//!   snapshot: [b0*][b1*][b2*]
//!   index writes node in b1 → Rc::make_mut copies b1 once; later writes to it are in place:
//!   index:    [b0*][b1'][b2*]        snapshot: [b0*][b1][b2*]
//! ```
//!
//! Blocks (see [`crate::BLOCK_BYTES`] for why) hold a power of two of records so that a
//! lookup is a shift and a mask; growing never copies older vectors or links. Each block is an
//! `Rc<[T]>` so that [`Graph::clone`] — what a snapshot takes — costs O(blocks): about 800
//! pointer copies for a million nodes of dimension 128 and `m` 16, against ~670 MB copied by
//! a deep clone.
//! What it costs: reads are unchanged (the `Rc` adds no indirection to a `Box`); the first
//! write to a block a snapshot shares copies that block (up to `BLOCK_BYTES`; a push into the
//! shared last block copies it too), so while a snapshot is held the index uses at most the
//! blocks written since, and after it is dropped no copy happens at all.

use std::ops::{Index, IndexMut};
use std::rc::Rc;

use crate::limits::BLOCK_BYTES;

/// `died` of a live node.
pub(super) const ALIVE: u64 = u64::MAX;

/// `parent` of a node that has none (node 0 while it is the entry, or before linking).
pub(super) const NO_PARENT: u32 = u32::MAX;

/// `upper` of a node that has no layer above 0.
const NO_UPPER: u32 = u32::MAX;

/// log2 of the records of `record_bytes` a block holds: the largest power of two of them
/// that fits in [`BLOCK_BYTES`] (at least one).
const fn block_shift(record_bytes: usize) -> u32 {
    assert!(record_bytes > 0, "zero-sized records have no blocks");
    let per_block = BLOCK_BYTES / record_bytes;
    let per_block = if per_block == 0 { 1 } else { per_block };
    usize::BITS - 1 - per_block.leading_zeros()
}

/// A block of `len` default values.
fn new_block<T: Clone + Default>(len: usize) -> Rc<[T]> {
    (0..len).map(|_| T::default()).collect()
}

/// Blocks of `blocks` that a clone shares (another `Rc` holds them).
fn shared<T>(blocks: &[Rc<[T]>]) -> usize {
    blocks.iter().filter(|b| Rc::strong_count(b) > 1).count()
}

/// How many blocks a structure holds and how many of them it shares with a clone (a
/// snapshot): the shared ones cost no memory of their own until written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCount {
    pub blocks: usize,
    pub shared: usize,
}

impl std::ops::Add for BlockCount {
    type Output = BlockCount;
    fn add(self, o: BlockCount) -> BlockCount {
        BlockCount {
            blocks: self.blocks + o.blocks,
            shared: self.shared + o.shared,
        }
    }
}

/// What the graph's accounting needs of a column, whatever its element type.
trait Column {
    fn memory_bytes(&self) -> usize;
    fn block_count(&self) -> BlockCount;
}

impl<T: Clone + Default> Column for CowVec<T> {
    fn memory_bytes(&self) -> usize {
        CowVec::memory_bytes(self)
    }
    fn block_count(&self) -> BlockCount {
        CowVec::block_count(self)
    }
}

impl<T: Clone + Default> Column for Slab<T> {
    fn memory_bytes(&self) -> usize {
        Slab::memory_bytes(self)
    }
    fn block_count(&self) -> BlockCount {
        Slab::block_count(self)
    }
}

/// A growable array in copy-on-write blocks: a `Vec<T>` whose clone is cheap.
///
/// Elements live in blocks of a power of two of them (about [`BLOCK_BYTES`] each), each block
/// an `Rc<[T]>`, so a read is one block lookup (a shift and a mask) and growing never moves
/// older elements. **A clone costs O(blocks)**: it copies the block pointers and bumps their
/// reference counts (a million `u64` are 8 blocks), and shares every element. **The first
/// write to a shared block** (`set`, `get_mut`, indexing mutably, or a `push` into a shared
/// last block) **copies that one block** (`Rc::make_mut`, up to `BLOCK_BYTES`); later writes
/// to it are in place. So a clone taken as a point-in-time snapshot stays unchanged while the
/// original keeps being written, at the price of one block copy per block written since.
#[derive(Clone)]
pub struct CowVec<T> {
    blocks: Vec<Rc<[T]>>,
    len: usize,
}

impl<T: std::fmt::Debug> std::fmt::Debug for CowVec<T> {
    /// The length and block count (the values can be millions).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CowVec")
            .field("len", &self.len)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl<T: Clone + Default> Default for CowVec<T> {
    fn default() -> CowVec<T> {
        CowVec::new()
    }
}

impl<T: Clone + Default> CowVec<T> {
    const SHIFT: u32 = block_shift(std::mem::size_of::<T>());
    const MASK: usize = (1 << Self::SHIFT) - 1;

    /// An empty vector (no block allocated).
    pub fn new() -> CowVec<T> {
        CowVec {
            blocks: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `x` (allocating a block of defaults when the last one is full).
    pub fn push(&mut self, x: T) {
        if self.len == self.blocks.len() << Self::SHIFT {
            self.blocks.push(new_block(1 << Self::SHIFT));
        }
        self.len += 1;
        *self.get_mut(self.len - 1) = x;
    }

    /// Element `i` (`i < len`). Checked in debug builds only: this is the search's hot path,
    /// and an index past `len` but inside the last block reads a default (never out of
    /// memory: the block lookups are bounds-checked); past the blocks it panics.
    #[inline]
    pub fn get(&self, i: usize) -> &T {
        debug_assert!(i < self.len, "index {i} of a CowVec of {}", self.len);
        &self.blocks[i >> Self::SHIFT][i & Self::MASK]
    }

    /// Element `i`, writable: its block is copied first if a clone shares it.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        assert!(i < self.len, "index {i} of a CowVec of {}", self.len);
        &mut Rc::make_mut(&mut self.blocks[i >> Self::SHIFT])[i & Self::MASK]
    }

    /// Replaces element `i` (`i < len`).
    pub fn set(&mut self, i: usize, x: T) {
        *self.get_mut(i) = x;
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.blocks.iter().flat_map(|b| b.iter()).take(self.len)
    }

    /// Heap bytes of the blocks held, shared or not (a clone's blocks are counted by both).
    pub fn memory_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Rc<[T]>>()
            + (self.blocks.len() << Self::SHIFT) * std::mem::size_of::<T>()
    }

    /// Blocks held and blocks shared with a clone.
    pub fn block_count(&self) -> BlockCount {
        BlockCount {
            blocks: self.blocks.len(),
            shared: shared(&self.blocks),
        }
    }
}

impl<T: Clone + Default> Index<usize> for CowVec<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        self.get(i)
    }
}

impl<T: Clone + Default> IndexMut<usize> for CowVec<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i)
    }
}

/// Fixed-stride records in copy-on-write blocks of a power of two of records (as
/// [`CowVec`], whose clone and first-write costs it shares).
#[derive(Clone)]
pub(super) struct Slab<T> {
    stride: usize,
    shift: u32,
    blocks: Vec<Rc<[T]>>,
    len: usize,
}

impl<T: Clone + Default> Slab<T> {
    pub(super) fn new(stride: usize) -> Slab<T> {
        assert!(stride > 0);
        Slab {
            stride,
            shift: block_shift(stride * std::mem::size_of::<T>()),
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
            self.blocks.push(new_block(self.stride << self.shift));
        }
        self.len += 1;
        self.get_mut(self.len - 1).clone_from_slice(record);
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> &[T] {
        debug_assert!(i < self.len);
        let o = (i & ((1 << self.shift) - 1)) * self.stride;
        &self.blocks[i >> self.shift][o..o + self.stride]
    }

    /// Record `i`, writable: its block is copied first if a clone shares it.
    #[inline]
    pub(super) fn get_mut(&mut self, i: usize) -> &mut [T] {
        debug_assert!(i < self.len);
        let o = (i & ((1 << self.shift) - 1)) * self.stride;
        &mut Rc::make_mut(&mut self.blocks[i >> self.shift])[o..o + self.stride]
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Rc<[T]>>()
            + self.blocks.len() * (self.stride << self.shift) * std::mem::size_of::<T>()
    }

    pub(super) fn block_count(&self) -> BlockCount {
        BlockCount {
            blocks: self.blocks.len(),
            shared: shared(&self.blocks),
        }
    }
}

/// The nodes, vectors and links of one graph.
#[derive(Clone)]
pub(super) struct Graph {
    pub(super) m: usize,
    pub(super) rows: CowVec<u64>,
    pub(super) died: CowVec<u64>,
    pub(super) level: CowVec<u8>,
    upper: CowVec<u32>,
    pub(super) parent: CowVec<u32>,
    /// Squared norms, kept for `ip` only (empty otherwise): see `build::Builder`.
    norm2: CowVec<f32>,
    vectors: Slab<f32>,
    links0: Slab<u32>,
    /// Shared lists too: a clone shares each list until one of its layers is relinked.
    upper_lists: CowVec<Rc<[u32]>>,
}

impl Graph {
    pub(super) fn new(dim: usize, m: usize) -> Graph {
        Graph {
            m,
            rows: CowVec::new(),
            died: CowVec::new(),
            level: CowVec::new(),
            upper: CowVec::new(),
            parent: CowVec::new(),
            norm2: CowVec::new(),
            vectors: Slab::new(dim),
            links0: Slab::new(1 + 2 * m),
            upper_lists: CowVec::new(),
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
                .push(Rc::from(vec![0u32; level * (1 + self.m)]));
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
            &mut Rc::make_mut(lists)[(layer - 1) * stride..layer * stride]
        };
        list[0] = links.len() as u32;
        list[1..1 + links.len()].copy_from_slice(links);
    }

    /// Every column, for accounting.
    fn columns(&self) -> [&dyn Column; 9] {
        [
            &self.rows,
            &self.died,
            &self.level,
            &self.upper,
            &self.parent,
            &self.norm2,
            &self.vectors,
            &self.links0,
            &self.upper_lists,
        ]
    }

    /// Heap bytes held, shared with a snapshot or not.
    pub(super) fn memory_bytes(&self) -> usize {
        let lists: usize = self.upper_lists.iter().map(|l| l.len() * 4).sum();
        self.columns()
            .iter()
            .map(|c| c.memory_bytes())
            .sum::<usize>()
            + lists
    }

    /// Blocks of every column, and how many a snapshot shares.
    pub(super) fn block_count(&self) -> BlockCount {
        self.columns()
            .iter()
            .fold(BlockCount::default(), |sum, c| sum + c.block_count())
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
