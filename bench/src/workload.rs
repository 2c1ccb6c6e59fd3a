//! Workload shape shared by every target: keys `key:%08d` drawn uniformly from K
//! distinct keys, values of a fixed size (~100 bytes), a read/write mix, and a batch size.

/// Whether a request reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Get,
    Set,
}

/// One logical request handed to a protocol adapter.
#[derive(Debug)]
pub struct Request<'a> {
    pub kind: OpKind,
    /// Key indexes (format with [`format_key`]); more than one for batches.
    pub keys: &'a [u64],
    pub value: &'a [u8],
}

/// Workload parameters.
#[derive(Clone, Debug)]
pub struct Workload {
    pub keys: u64,
    pub value_size: usize,
    /// Fraction of requests that are writes (0.0 = all GET, 1.0 = all SET/UPSERT).
    pub write_ratio: f64,
    /// Keys (GET) or rows (SET/UPSERT) per request.
    pub batch: usize,
}

/// Append `key:%08d` for index `i` (no allocation, no formatting machinery).
pub fn format_key(i: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"key:");
    let mut digits = [b'0'; 20];
    let mut n = i;
    let mut len = 0;
    while n > 0 {
        digits[19 - len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    let width = len.max(8);
    out.extend_from_slice(&digits[20 - width..]);
}

/// The key as a String (for adapters that want owned text).
pub fn key_string(i: u64) -> String {
    let mut v = Vec::with_capacity(16);
    format_key(i, &mut v);
    String::from_utf8(v).expect("ascii")
}

/// A deterministic printable value of `size` bytes.
pub fn make_value(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// xoshiro256** seeded through splitmix64: fast, deterministic, good enough for key choice.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; bias is negligible for n << 2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

/// Draws the next request shape from a workload.
pub struct Generator {
    pub workload: Workload,
    rng: Rng,
    keys: Vec<u64>,
    value: Vec<u8>,
}

impl Generator {
    pub fn new(workload: Workload, seed: u64) -> Self {
        let value = make_value(workload.value_size);
        Self {
            keys: Vec::with_capacity(workload.batch.max(1)),
            workload,
            rng: Rng::new(seed),
            value,
        }
    }

    /// The next request; borrows the generator's key buffer.
    pub fn next_request(&mut self) -> Request<'_> {
        let kind = if self.rng.chance(self.workload.write_ratio) {
            OpKind::Set
        } else {
            OpKind::Get
        };
        self.keys.clear();
        for _ in 0..self.workload.batch.max(1) {
            let k = self.rng.below(self.workload.keys.max(1));
            self.keys.push(k);
        }
        Request {
            kind,
            keys: &self.keys,
            value: &self.value,
        }
    }

    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_to_eight() {
        assert_eq!(key_string(0), "key:00000000");
        assert_eq!(key_string(42), "key:00000042");
        assert_eq!(key_string(999_999), "key:00999999");
        assert_eq!(key_string(123_456_789), "key:123456789");
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.below(1_000_000);
            assert_eq!(x, b.below(1_000_000));
            assert!(x < 1_000_000);
        }
    }

    #[test]
    fn write_ratio_extremes_and_mix() {
        let w = |r| Workload {
            keys: 10,
            value_size: 100,
            write_ratio: r,
            batch: 3,
        };
        let mut g = Generator::new(w(0.0), 1);
        for _ in 0..100 {
            let r = g.next_request();
            assert_eq!(r.kind, OpKind::Get);
            assert_eq!(r.keys.len(), 3);
            assert!(r.keys.iter().all(|&k| k < 10));
        }
        let mut g = Generator::new(w(1.0), 1);
        assert!((0..100).all(|_| g.next_request().kind == OpKind::Set));
        let mut g = Generator::new(w(0.5), 1);
        let sets = (0..10_000)
            .filter(|_| g.next_request().kind == OpKind::Set)
            .count();
        assert!((4_000..6_000).contains(&sets), "{sets}");
        assert_eq!(g.value().len(), 100);
    }
}
