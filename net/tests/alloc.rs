//! Decoding a frame whose counts or lengths claim more than the payload holds must fail before
//! allocating for them. A counting allocator records the largest single allocation made by this
//! thread while decoding.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tarn_net::*;

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(layout.size())));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(new_size)));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn largest_alloc_while(f: impl FnOnce()) -> usize {
    LARGEST.with(|m| m.set(0));
    f();
    LARGEST.with(|m| m.get())
}

fn frame(opcode: Opcode, response: bool, payload: &[u8]) -> FrameHeader {
    FrameHeader {
        payload_len: payload.len() as u32,
        opcode: opcode.as_u16(),
        flags: if response { FLAG_RESPONSE } else { 0 },
        request_id: 1,
    }
}

#[test]
fn lying_counts_do_not_allocate() {
    let mut cases: Vec<(Opcode, bool, Vec<u8>)> = vec![];
    // UPSERT with 10_000 rows (within the limit) but 8 bytes of data.
    let mut p = vec![1, 0, 0, 0, b't', 0];
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&10_000u32.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    cases.push((Opcode::Upsert, false, p));
    // UPSERT with a row claiming 1024 values.
    let mut p = vec![1, 0, 0, 0, b't', 0];
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&1024u32.to_le_bytes());
    cases.push((Opcode::Upsert, false, p));
    // TEXT value claiming 4 GiB.
    let mut p = vec![1, 0, 0, 0, b't'];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(ColumnType::Text.tag());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    cases.push((Opcode::Get, false, p));
    // SQL reply with u32::MAX rows and 1024 columns claimed.
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    cases.push((Opcode::Sql, true, p));
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(&1024u32.to_le_bytes());
    cases.push((Opcode::Sql, true, p));
    // STATS reply with u32::MAX shards.
    cases.push((Opcode::Stats, true, u32::MAX.to_le_bytes().to_vec()));
    // GET reply with u32::MAX rows.
    let mut p = 0u32.to_le_bytes().to_vec();
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    cases.push((Opcode::Get, true, p));

    for (op, response, p) in cases {
        let h = frame(op, response, &p);
        let largest = largest_alloc_while(|| {
            let r = if response {
                decode_response(&h, &p).map(|_| ())
            } else {
                decode_request(&h, &p).map(|_| ())
            };
            assert!(r.is_err(), "{op} {p:?}");
        });
        assert!(largest < 4096, "{op}: allocated {largest} bytes");
    }
}
