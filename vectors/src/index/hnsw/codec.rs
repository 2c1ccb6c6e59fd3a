//! The serialized form of an [`HnswIndex`] (`vectors/FORMAT.md`): a header chunk and node
//! chunks, each framed with its length and CRC32C, written and read in bounded steps.
//!
//! Writer → [`Encoder`] (an iterator of framed chunks, each about `max_chunk_bytes`); reader →
//! [`Decoder`] (fed one framed chunk at a time, so a shard can yield between chunks), which
//! checks every length, range and checksum and, at [`Decoder::finish`], every structural
//! invariant of the graph. Anything wrong is [`VectorError::Corrupt`], never a panic.

use super::store::{Graph, ALIVE, NO_PARENT};
use super::{HnswIndex, HnswParams, HnswSnapshot};
use crate::distance::Kernels;
use crate::error::VectorError;
use crate::index::RowId;
use crate::limits::HNSW_MAX_LEVEL;
use crate::metric::Metric;
use crate::validate::check_vector;

/// First bytes of the header chunk's payload.
pub const HNSW_MAGIC: [u8; 8] = *b"TARNHNSW";
/// The format version this code writes and reads.
pub const HNSW_FORMAT_VERSION: u32 = 1;
/// Bytes of a chunk's frame: payload length (u32 LE) and CRC32C of the payload (u32 LE).
pub const CHUNK_FRAME_BYTES: usize = 8;
/// Bytes of the header payload.
const HEADER_BYTES: usize = 8 + 4 + 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + 8;

fn corrupt(what: impl Into<String>) -> VectorError {
    VectorError::Corrupt(what.into())
}

fn metric_code(m: Metric) -> u32 {
    match m {
        Metric::L2 => 0,
        Metric::Cosine => 1,
        Metric::InnerProduct => 2,
    }
}

/// Frames `payload`: length, CRC32C, payload.
fn frame(payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_FRAME_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Splits a framed chunk into its checked payload.
pub fn unframe(chunk: &[u8]) -> Result<&[u8], VectorError> {
    if chunk.len() < CHUNK_FRAME_BYTES {
        return Err(corrupt(format!(
            "chunk of {} bytes has no frame",
            chunk.len()
        )));
    }
    let len = u32::from_le_bytes(chunk[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(chunk[4..8].try_into().expect("4 bytes"));
    let payload = &chunk[CHUNK_FRAME_BYTES..];
    if payload.len() != len {
        return Err(corrupt(format!(
            "chunk says {len} bytes, holds {}",
            payload.len()
        )));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt("chunk checksum mismatch"));
    }
    Ok(payload)
}

/// The framed chunks of an index snapshot, in order: a header, then the nodes. Owns its
/// [`HnswSnapshot`], so it borrows nothing and the index may change (or be dropped) between
/// two calls to `next`. See [`HnswSnapshot::encode`].
pub struct Encoder {
    snap: HnswSnapshot,
    max_chunk_bytes: usize,
    next: usize,
    header_done: bool,
}

impl Iterator for Encoder {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if !self.header_done {
            self.header_done = true;
            return Some(frame(self.snap.header()));
        }
        let nodes = self.snap.graph.nodes();
        if self.next >= nodes {
            return None;
        }
        let mut payload = Vec::with_capacity(self.max_chunk_bytes + 64);
        payload.extend_from_slice(&(self.next as u64).to_le_bytes());
        payload.extend_from_slice(&0u32.to_le_bytes()); // count, patched below
        let mut count = 0u32;
        while self.next < nodes && (count == 0 || payload.len() < self.max_chunk_bytes) {
            self.snap.write_node(self.next as u32, &mut payload);
            self.next += 1;
            count += 1;
        }
        payload[8..12].copy_from_slice(&count.to_le_bytes());
        Some(frame(payload))
    }
}

impl HnswIndex {
    /// The index as framed chunks of about `max_chunk_bytes` each (at least one node per
    /// chunk): a header, then the nodes in order. Concatenated, they are the file format of
    /// `vectors/FORMAT.md`. Each call to `next` does bounded work. The same as
    /// `self.snapshot().encode(max_chunk_bytes)`: a rebuild in progress is not included (see
    /// [`HnswIndex::snapshot`]).
    pub fn encode(&self, max_chunk_bytes: usize) -> Encoder {
        self.snapshot().encode(max_chunk_bytes)
    }
}

impl HnswSnapshot {
    /// The snapshot as framed chunks (the format of [`HnswIndex::encode`], byte for byte) of
    /// about `max_chunk_bytes` each. Encodes the main graph only: take a rebuild in progress
    /// out first with [`HnswSnapshot::split_rebuild`] and encode it as a stream of its own.
    pub fn encode(self, max_chunk_bytes: usize) -> Encoder {
        Encoder {
            snap: self,
            max_chunk_bytes: max_chunk_bytes.max(1),
            next: 0,
            header_done: false,
        }
    }

    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_BYTES);
        h.extend_from_slice(&HNSW_MAGIC);
        h.extend_from_slice(&HNSW_FORMAT_VERSION.to_le_bytes());
        h.extend_from_slice(&metric_code(self.metric).to_le_bytes());
        for x in [
            self.dim,
            self.params.m,
            self.params.ef_construction,
            self.params.ef_search,
        ] {
            h.extend_from_slice(&(x as u32).to_le_bytes());
        }
        h.extend_from_slice(&self.params.seed.to_le_bytes());
        h.extend_from_slice(&(self.graph.nodes() as u64).to_le_bytes());
        h.extend_from_slice(&self.entry.unwrap_or(u32::MAX).to_le_bytes());
        h.extend_from_slice(&self.max_norm2.to_bits().to_le_bytes());
        h.extend_from_slice(&self.epoch.to_le_bytes());
        h.extend_from_slice(&(self.live as u64).to_le_bytes());
        debug_assert_eq!(h.len(), HEADER_BYTES);
        h
    }

    fn write_node(&self, n: u32, out: &mut Vec<u8>) {
        let g = &self.graph;
        let i = n as usize;
        out.extend_from_slice(&g.rows[i].to_le_bytes());
        out.extend_from_slice(&g.died[i].to_le_bytes());
        out.push(g.level[i]);
        out.extend_from_slice(&g.parent[i].to_le_bytes());
        let norm2 = if self.metric == Metric::InnerProduct {
            g.norm2(n)
        } else {
            0.0
        };
        out.extend_from_slice(&norm2.to_bits().to_le_bytes());
        for x in g.vector(n) {
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        for layer in 0..=g.level[i] as usize {
            let links = g.links(n, layer);
            out.extend_from_slice(&(links.len() as u32).to_le_bytes());
            for t in links {
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
    }
}

/// Little-endian reads that fail with [`VectorError::Corrupt`] at the end of the input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], VectorError> {
        if self.buf.len() - self.pos < n {
            return Err(corrupt("chunk ends inside a field"));
        }
        self.pos += n;
        Ok(&self.buf[self.pos - n..self.pos])
    }

    fn u8(&mut self) -> Result<u8, VectorError> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, VectorError> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, VectorError> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn f32(&mut self) -> Result<f32, VectorError> {
        Ok(f32::from_bits(self.u32()?))
    }
}

/// Rebuilds an index from framed chunks fed in order ([`Decoder::feed`]), then
/// [`Decoder::finish`].
pub struct Decoder {
    index: Option<HnswIndex>,
    expected_nodes: usize,
    expected_live: usize,
    entry: Option<u32>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            index: None,
            expected_nodes: 0,
            expected_live: 0,
            entry: None,
        }
    }

    /// Reads one framed chunk (the header first, then node chunks in order).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), VectorError> {
        let payload = unframe(chunk)?;
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        match self.index.as_mut() {
            None => self.read_header(&mut r)?,
            Some(index) => read_nodes(index, &mut r, self.expected_nodes)?,
        }
        if r.pos != payload.len() {
            return Err(corrupt(format!(
                "{} bytes after the chunk's content",
                payload.len() - r.pos
            )));
        }
        Ok(())
    }

    fn read_header(&mut self, r: &mut Reader<'_>) -> Result<(), VectorError> {
        if r.bytes(8)? != HNSW_MAGIC {
            return Err(corrupt("not an HNSW index (bad magic)"));
        }
        let version = r.u32()?;
        if version != HNSW_FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads {HNSW_FORMAT_VERSION}"
            )));
        }
        let metric = match r.u32()? {
            0 => Metric::L2,
            1 => Metric::Cosine,
            2 => Metric::InnerProduct,
            x => return Err(corrupt(format!("unknown metric code {x}"))),
        };
        let dim = r.u32()? as usize;
        let (m, ef_construction, ef_search) =
            (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        let seed = r.u64()?;
        let params = HnswParams {
            m,
            ef_construction,
            ef_search,
            seed,
        };
        let mut index = HnswIndex::with_kernels(metric, dim, params, Kernels::detected())
            .map_err(|e| corrupt(format!("header: {e}")))?;
        self.expected_nodes = usize::try_from(r.u64()?).map_err(|_| corrupt("node count"))?;
        if self.expected_nodes >= u32::MAX as usize {
            return Err(corrupt("node count beyond 2^32 - 1"));
        }
        let entry = r.u32()?;
        self.entry = (entry != u32::MAX).then_some(entry);
        index.max_norm2 = r.f32()?;
        index.epoch = r.u64()?;
        self.expected_live = r.u64()? as usize;
        if !index.max_norm2.is_finite() || index.max_norm2 < 0.0 {
            return Err(corrupt(
                "largest squared norm is not a finite non-negative number",
            ));
        }
        self.index = Some(index);
        Ok(())
    }

    /// The index, once every node was fed; every invariant checked.
    pub fn finish(self) -> Result<HnswIndex, VectorError> {
        let mut index = self.index.ok_or_else(|| corrupt("no header"))?;
        if index.graph.nodes() != self.expected_nodes {
            return Err(corrupt(format!(
                "{} of {} nodes present",
                index.graph.nodes(),
                self.expected_nodes
            )));
        }
        if index.nodes.len() != self.expected_live {
            return Err(corrupt("live row count differs from the header"));
        }
        if let Some(e) = self.entry {
            if e as usize >= index.graph.nodes() {
                return Err(corrupt(format!("entry point {e} out of range")));
            }
        }
        index.entry = self.entry;
        index.check_invariants().map_err(corrupt)?;
        Ok(index)
    }
}

/// Reads a node chunk into `index`.
fn read_nodes(
    index: &mut HnswIndex,
    r: &mut Reader<'_>,
    expected: usize,
) -> Result<(), VectorError> {
    let first = r.u64()?;
    let count = r.u32()? as usize;
    if first != index.graph.nodes() as u64 {
        return Err(corrupt(format!(
            "chunk starts at node {first}, expected {}",
            index.graph.nodes()
        )));
    }
    if count == 0 || index.graph.nodes() + count > expected {
        return Err(corrupt(format!(
            "chunk of {count} nodes beyond the {expected} announced"
        )));
    }
    let mut vector = vec![0.0f32; index.dim];
    for _ in 0..count {
        read_node(index, r, &mut vector, expected)?;
    }
    Ok(())
}

fn read_node(
    index: &mut HnswIndex,
    r: &mut Reader<'_>,
    vector: &mut [f32],
    expected: usize,
) -> Result<(), VectorError> {
    let n = index.graph.nodes() as u32;
    let row: RowId = r.u64()?;
    let died = r.u64()?;
    let level = r.u8()? as usize;
    let parent = r.u32()?;
    let norm2 = r.f32()?;
    if level > HNSW_MAX_LEVEL {
        return Err(corrupt(format!(
            "node {n}: level {level} above {HNSW_MAX_LEVEL}"
        )));
    }
    if died != ALIVE && died > index.epoch {
        return Err(corrupt(format!(
            "node {n}: died at write {died}, after the last write"
        )));
    }
    if parent != NO_PARENT && parent as usize >= expected {
        return Err(corrupt(format!("node {n}: parent {parent} out of range")));
    }
    for x in vector.iter_mut() {
        *x = r.f32()?;
    }
    check_vector(vector, index.dim).map_err(|e| corrupt(format!("node {n}: {e}")))?;
    let ip = index.metric == Metric::InnerProduct;
    if ip && !(norm2.is_finite() && norm2 >= 0.0) {
        return Err(corrupt(format!("node {n}: bad squared norm")));
    }
    let g: &mut Graph = &mut index.graph;
    g.push(row, vector, level, ip.then_some(norm2));
    g.died[n as usize] = died;
    g.parent[n as usize] = parent;
    let mut links = Vec::with_capacity(g.cap(0));
    for layer in 0..=level {
        let len = r.u32()? as usize;
        if len > g.cap(layer) {
            return Err(corrupt(format!(
                "node {n} layer {layer}: {len} links, at most {}",
                g.cap(layer)
            )));
        }
        links.clear();
        for _ in 0..len {
            links.push(r.u32()?);
        }
        g.set_links(n, layer, &links);
    }
    if died == ALIVE && index.nodes.insert(row, n).is_some() {
        return Err(corrupt(format!("row {row} live in two nodes")));
    }
    Ok(())
}
