//! The Redis peer of the suite: [`RedisFraudCodec`] keeps, per event, what a Redis user would
//! for the same three views (per-bucket hashes and HyperLogLogs with a TTL), one pipelined
//! write per batch; [`RedisFraudFactory`] makes one per connection.

use std::cell::Cell;
use std::collections::VecDeque;

use super::{
    card_key, conn_seed, ip_text, merchant_key, Event, FraudShape, IngestCodec, View, BUCKET_US,
    REDIS_TTL_SECS,
};
use crate::clock::realtime_us;
use crate::resp;
use crate::target::{Codec, CodecFactory, Decoded};
use crate::workload::{Request, Rng};

/// Redis: per event and per 10-second bucket `b = ts / 10 s`, what a Redis user keeps for the
/// same three views (17 commands, pipelined with the rest of the batch):
///
/// ```text
/// HINCRBY      card:%07d:b txns 1          HINCRBY      acct:%07d:b txns 1     (device alike:
/// HINCRBYFLOAT card:%07d:b spend <amount>  HINCRBYFLOAT acct:%07d:b spend <a>   dev:%06d:b,
/// PFADD        card:%07d:b:merchants <m>   PFADD        acct:%07d:b:cards <card> :cards)
/// PFADD        card:%07d:b:ips <ip>        EXPIRE (both keys) 600
/// EXPIRE (all three keys) 600
/// ```
///
/// It keeps fewer aggregates than the Tarn views: no max/min/stddev (not expressible without
/// Lua), no filtered count (`big`), no `last(ip)`; avg is derivable from spend / txns; the
/// distinct counts are HyperLogLogs (Tarn: exact up to 1024 per bucket). A read would still
/// have to fetch and merge 60 buckets per key (not measured here).
pub struct RedisFraudCodec {
    shape: FraudShape,
    rng: Rng,
    batch: usize,
    events: Vec<Event>,
    /// Replies expected for each batch in flight, oldest first.
    pending: VecDeque<usize>,
    /// Bytes of `buf` (as passed to `decode`) already parsed for the oldest batch.
    scan: usize,
    seen: usize,
    errors: usize,
    first_error: bool,
    base: String,
    key: String,
    member: String,
    amount: String,
}

impl RedisFraudCodec {
    pub fn new(shape: FraudShape, batch: usize, seed: u64) -> Self {
        Self {
            shape,
            rng: Rng::new(seed),
            batch: batch.max(1),
            events: Vec::with_capacity(batch.max(1)),
            pending: VecDeque::new(),
            scan: 0,
            seen: 0,
            errors: 0,
            first_error: true,
            base: String::with_capacity(32),
            key: String::with_capacity(48),
            member: String::with_capacity(24),
            amount: String::with_capacity(16),
        }
    }

    /// HINCRBY + HINCRBYFLOAT on `base`, PFADD `base:suffix member` for each set, EXPIRE of
    /// every key. Returns the number of commands.
    fn entity(&mut self, out: &mut Vec<u8>, sets: &[(&str, &str)]) -> usize {
        resp::encode_command(&[b"HINCRBY", self.base.as_bytes(), b"txns", b"1"], out);
        resp::encode_command(
            &[
                b"HINCRBYFLOAT",
                self.base.as_bytes(),
                b"spend",
                self.amount.as_bytes(),
            ],
            out,
        );
        for (suffix, member) in sets {
            self.key.clear();
            self.key.push_str(&self.base);
            self.key.push_str(suffix);
            resp::encode_command(&[b"PFADD", self.key.as_bytes(), member.as_bytes()], out);
        }
        resp::encode_command(&[b"EXPIRE", self.base.as_bytes(), REDIS_TTL_SECS], out);
        for (suffix, _) in sets {
            self.key.clear();
            self.key.push_str(&self.base);
            self.key.push_str(suffix);
            resp::encode_command(&[b"EXPIRE", self.key.as_bytes(), REDIS_TTL_SECS], out);
        }
        3 + 2 * sets.len()
    }

    fn set_base(&mut self, view: View, id: u64, bucket: i64) {
        use std::fmt::Write as _;
        self.base.clear();
        view.key(id, &mut self.base);
        let _ = write!(self.base, ":{bucket}");
    }
}

impl IngestCodec for RedisFraudCodec {
    fn encode_events(&mut self, events: &[Event], _id: u64, out: &mut Vec<u8>) {
        use std::fmt::Write as _;
        let mut cmds = 0;
        let mut merchant = String::with_capacity(8);
        let mut ip = String::with_capacity(16);
        for e in events {
            let bucket = e.ts_us.div_euclid(BUCKET_US);
            self.amount.clear();
            let _ = write!(self.amount, "{:.2}", e.amount);
            merchant.clear();
            merchant_key(e.merchant, &mut merchant);
            ip.clear();
            ip_text(e.ip, &mut ip);
            self.set_base(View::Card, e.card, bucket);
            cmds += self.entity(out, &[(":merchants", &merchant), (":ips", &ip)]);
            self.member.clear();
            card_key(e.card, &mut self.member);
            let card = std::mem::take(&mut self.member);
            self.set_base(View::Account, e.account, bucket);
            cmds += self.entity(out, &[(":cards", &card)]);
            self.set_base(View::Device, e.device, bucket);
            cmds += self.entity(out, &[(":cards", &card)]);
            self.member = card;
        }
        self.pending.push_back(cmds);
    }
}

impl Codec for RedisFraudCodec {
    /// Ignores `req`: sends the next batch of random events, event time = now.
    fn encode(&mut self, _req: &Request<'_>, id: u64, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let ts = realtime_us();
        for _ in 0..self.batch {
            events.push(self.shape.random_event(&mut self.rng, ts));
        }
        self.encode_events(&events, id, out);
        self.events = events;
    }

    /// Completes a batch when its last reply has arrived. Progress is kept between calls
    /// (`buf` always starts at the first unconsumed byte, so offsets stay valid).
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some(&want) = self.pending.front() else {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("Redis reply with no batch in flight".into())
            };
        };
        while self.seen < want {
            match resp::parse(&buf[self.scan..]).map_err(|e| e.to_string())? {
                Some((n, f)) => {
                    if let resp::Frame::Error(r) = &f {
                        self.errors += 1;
                        if self.first_error {
                            self.first_error = false;
                            let s = self.scan;
                            eprintln!(
                                "tarn-bench: Redis error reply {:?} (further errors not shown)",
                                String::from_utf8_lossy(&buf[s + r.start..s + r.end])
                            );
                        }
                    }
                    self.scan += n;
                    self.seen += 1;
                }
                None => return Ok(None),
            }
        }
        let used = self.scan;
        let ok = self.errors == 0;
        self.pending.pop_front();
        self.scan = 0;
        self.seen = 0;
        self.errors = 0;
        Ok(Some((used, Decoded { id: None, ok })))
    }
}

pub struct RedisFraudFactory {
    pub shape: FraudShape,
    pub batch: usize,
    pub seed: u64,
    next: Cell<u64>,
}

impl RedisFraudFactory {
    pub fn new(shape: FraudShape, batch: usize, seed: u64) -> Self {
        Self {
            shape,
            batch,
            seed,
            next: Cell::new(0),
        }
    }
}

impl CodecFactory for RedisFraudFactory {
    fn name(&self) -> &str {
        "redis"
    }
    fn make(&self) -> Box<dyn Codec> {
        let n = self.next.get();
        self.next.set(n + 1);
        Box::new(RedisFraudCodec::new(
            self.shape.clone(),
            self.batch,
            conn_seed(self.seed, n),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fraud::REDIS_CMDS_PER_EVENT;

    #[test]
    fn redis_batch_is_17_commands_per_event_and_completes_on_its_last_reply() {
        let mut c = RedisFraudCodec::new(FraudShape::default(), 2, 1);
        let e = Event {
            ts_us: 25_000_000,
            card: 9,
            account: 2,
            device: 3,
            amount: 12.5,
            merchant: 4,
            ip: 5,
        };
        let mut out = Vec::new();
        c.encode_events(&[e, e], 1, &mut out);
        let mut cmds = Vec::new();
        let mut pos = 0;
        while let Some((n, f)) = resp::parse(&out[pos..]).unwrap() {
            assert!(matches!(f, resp::Frame::Array(Some(_))));
            let words: Vec<String> = String::from_utf8_lossy(&out[pos..pos + n])
                .split("\r\n")
                .filter(|w| !w.is_empty() && !w.starts_with('*') && !w.starts_with('$'))
                .map(str::to_owned)
                .collect();
            cmds.push(words.join(" "));
            pos += n;
        }
        assert_eq!(pos, out.len());
        assert_eq!(cmds.len(), 2 * REDIS_CMDS_PER_EVENT);
        assert_eq!(cmds[0], "HINCRBY card:0000009:2 txns 1");
        assert_eq!(cmds[1], "HINCRBYFLOAT card:0000009:2 spend 12.50");
        assert_eq!(cmds[2], "PFADD card:0000009:2:merchants m:0004");
        assert_eq!(cmds[3], "PFADD card:0000009:2:ips 10.0.0.5");
        assert_eq!(cmds[4], "EXPIRE card:0000009:2 600");
        assert_eq!(cmds[6], "EXPIRE card:0000009:2:ips 600");
        assert_eq!(cmds[9], "PFADD acct:0000002:2:cards card:0000009");
        assert_eq!(cmds[11], "EXPIRE acct:0000002:2:cards 600");
        assert_eq!(cmds[12], "HINCRBY dev:000003:2 txns 1");
        assert_eq!(cmds[16], "EXPIRE dev:000003:2:cards 600");
        // Replies: the batch completes only with its 34th reply; partial input is kept.
        let mut replies = Vec::new();
        for i in 0..2 * REDIS_CMDS_PER_EVENT {
            replies.extend_from_slice(if i == 3 { b"-ERR x\r\n" } else { b":1\r\n" });
        }
        replies.extend_from_slice(b":1\r\n"); // first reply of a later batch
        let cut = 50;
        assert_eq!(c.decode(&replies[..cut]).unwrap(), None);
        let (n, d) = c.decode(&replies).unwrap().unwrap();
        assert_eq!(n, replies.len() - 4);
        assert_eq!(
            d,
            Decoded {
                id: None,
                ok: false
            }
        );
        assert!(c.decode(b"").unwrap().is_none());
        assert!(c.decode(b":1\r\n").is_err());
    }
}
