//! Redis's side of `fraud_check`: [`load`] writes the data set as a Redis user would keep it
//! (key layout in the module docs of `context`), [`RedisContextCodec`] fetches one decision's
//! data in three dependent pipelined round trips, [`RedisGetCodec`] is the point read.
//!
//! ```text
//! hop 1  HGETALL card:<c>  HGETALL f:card_1h:<c>  ZCOUNT f:card_1h:<c>:d  (device_1h of d,
//!        ip_1h of ip alike)  LRANGE recent:<c> 0 4                                 8 commands
//!        then the kNN: exact scan of the client-held fingerprints (or none)
//! hop 2  HGETALL account:<card.account_id>  account_1h features (2)  HGETALL merchant:<m>
//!        per distinct merchant of the last 5  HGETALL device:<s> + device_1h features (2)
//!        per similar device s                                              up to 23 commands
//! hop 3  HGETALL account:<s.account_id> per distinct account of the similar devices   ≤ 5
//! ```
//!
//! Each reply is parsed and used as a client would: the features are summed over the window's
//! minute buckets, the recent events split, the ids of the next hop taken from the replies.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::rc::Rc;

use ::fraud::oracle::{self, Features, View};
use ::fraud::Dataset;

use super::{BenchData, Call, KNN_K, RECENT_N};
use crate::clock::realtime_us;
use crate::resp::{self, Frame};
use crate::target::{Codec, CodecFactory, Decoded};
use crate::workload::Request;

/// The four views of `fraud_check`, in the order [`Answer::features`] holds them.
pub const VIEWS: [View; 4] = [
    oracle::CARD_1H,
    oracle::DEVICE_1H,
    oracle::IP_1H,
    oracle::ACCOUNT_1H,
];

/// Commands per pipelined write while loading: large enough to keep Redis busy, small enough
/// that the replies of one write fit in the socket buffers without a deadlock.
const LOAD_PIPELINE_CMDS: usize = 2_000;

/// Writes the data set into the Redis at `addr` (after FLUSHALL). Returns the commands sent.
pub fn load(addr: &str, data: &Dataset) -> Result<u64, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut cmds: Vec<Vec<Vec<u8>>> = vec![vec![b"FLUSHALL".to_vec()]];
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    for a in &data.accounts {
        cmds.push(hset(
            &format!("account:{}", a.account_id),
            &[
                ("account_id", a.account_id.clone()),
                ("owner", a.owner.clone()),
                ("country", a.country.clone()),
                ("opened_at", a.opened_at_us.to_string()),
                ("risk", a.risk.to_string()),
            ],
        ));
    }
    for c in &data.cards {
        cmds.push(hset(
            &format!("card:{}", c.card_id),
            &[
                ("account_id", c.account_id.clone()),
                ("device_id", c.device_id.clone()),
                ("bin", c.bin.clone()),
                ("issued_at", c.issued_at_us.to_string()),
                ("blocked", flag(c.blocked)),
            ],
        ));
    }
    for d in &data.devices {
        cmds.push(hset(
            &format!("device:{}", d.device_id),
            &[
                ("device_id", d.device_id.clone()),
                ("account_id", d.account_id.clone()),
                ("platform", d.platform.clone()),
                ("allowlisted", flag(d.allowlisted)),
            ],
        ));
    }
    for m in &data.merchants {
        cmds.push(hset(
            &format!("merchant:{}", m.merchant_id),
            &[
                ("merchant_id", m.merchant_id.clone()),
                ("name", m.name.clone()),
                ("category", m.category.clone()),
                ("country", m.country.clone()),
            ],
        ));
    }
    recent_commands(data, &mut cmds);
    for v in &VIEWS {
        feature_commands(data, v, &mut cmds);
    }
    let sent = cmds.len() as u64;
    for chunk in cmds.chunks(LOAD_PIPELINE_CMDS) {
        pipeline(&mut s, chunk)?;
    }
    Ok(sent)
}

/// `HSET key field value …`.
fn hset(key: &str, fields: &[(&str, String)]) -> Vec<Vec<u8>> {
    let mut cmd = vec![b"HSET".to_vec(), key.as_bytes().to_vec()];
    for (f, v) in fields {
        cmd.push(f.as_bytes().to_vec());
        cmd.push(v.as_bytes().to_vec());
    }
    cmd
}

/// `recent:<card>`: the card's newest [`RECENT_N`] events, newest first.
fn recent_commands(data: &Dataset, cmds: &mut Vec<Vec<Vec<u8>>>) {
    let mut by_card: HashMap<&str, Vec<&::fraud::Event>> = HashMap::new();
    for e in data.events.iter().rev() {
        let v = by_card.entry(&e.card_id).or_default();
        if v.len() < RECENT_N {
            v.push(e);
        }
    }
    for (card, events) in by_card {
        let mut cmd = vec![b"RPUSH".to_vec(), format!("recent:{card}").into_bytes()];
        for e in events {
            let text = format!(
                "{}|{}|{}|{}|{}",
                e.ts_us, e.amount, e.merchant_id, e.device_id, e.ip
            );
            cmd.push(text.into_bytes());
        }
        cmds.push(cmd);
    }
}

/// Per key of `v`: the bucket hash (count, sum, max per minute; the newest `last`) and the
/// distinct members' newest times.
fn feature_commands(data: &Dataset, v: &View, cmds: &mut Vec<Vec<Vec<u8>>>) {
    struct Key<'a> {
        buckets: HashMap<i64, (u64, Vec<f64>, f64)>,
        last: (i64, &'a str),
        distinct: HashMap<&'a str, i64>,
    }
    let mut keys: HashMap<&str, Key> = HashMap::new();
    for e in &data.events {
        let k = keys.entry(v.key.of(e)).or_insert_with(|| Key {
            buckets: HashMap::new(),
            last: (i64::MIN, ""),
            distinct: HashMap::new(),
        });
        let b = k
            .buckets
            .entry(e.ts_us.div_euclid(oracle::BUCKET_US))
            .or_insert((0, Vec::new(), f64::MIN));
        b.0 += 1;
        b.1.push(e.amount);
        b.2 = b.2.max(e.amount);
        if e.ts_us > k.last.0 {
            k.last = (e.ts_us, v.last.of(e));
        }
        let t = k.distinct.entry(v.distinct.of(e)).or_insert(i64::MIN);
        *t = (*t).max(e.ts_us);
    }
    for (key, k) in keys {
        let base = format!("f:{}:{key}", v.name);
        let mut h = vec![b"HSET".to_vec(), base.clone().into_bytes()];
        for (bucket, (n, amounts, max)) in &k.buckets {
            let sum = oracle::exact_sum(amounts.iter().copied());
            for (suffix, value) in [("n", n.to_string()), ("s", sum.to_string())] {
                h.push(format!("{bucket}:{suffix}").into_bytes());
                h.push(value.into_bytes());
            }
            h.push(format!("{bucket}:m").into_bytes());
            h.push(max.to_string().into_bytes());
        }
        h.extend([b"last".to_vec(), k.last.1.as_bytes().to_vec()]);
        h.extend([b"last_ts".to_vec(), k.last.0.to_string().into_bytes()]);
        cmds.push(h);
        let mut z = vec![b"ZADD".to_vec(), format!("{base}:d").into_bytes()];
        for (member, ts) in k.distinct {
            z.push(ts.to_string().into_bytes());
            z.push(member.as_bytes().to_vec());
        }
        cmds.push(z);
    }
}

/// Sends `cmds` in one write and reads their replies; any error reply fails the load.
fn pipeline(s: &mut TcpStream, cmds: &[Vec<Vec<u8>>]) -> Result<(), String> {
    let mut out = Vec::new();
    for c in cmds {
        let args: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
        resp::encode_command(&args, &mut out);
    }
    s.write_all(&out).map_err(|e| format!("redis write: {e}"))?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut at, mut seen) = (0, 0);
    while seen < cmds.len() {
        match resp::parse(&buf[at..]).map_err(|e| e.to_string())? {
            Some((used, f)) => {
                if let Frame::Error(r) = f {
                    let text = String::from_utf8_lossy(&buf[at + r.start..at + r.end]);
                    return Err(format!("redis load: {text}"));
                }
                at += used;
                seen += 1;
            }
            None => {
                let n = s.read(&mut chunk).map_err(|e| format!("redis read: {e}"))?;
                if n == 0 {
                    return Err("redis closed the connection while loading".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    Ok(())
}

/// What one call fetched, as the client uses it (kept for [`super::verify`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub card_account: Option<String>,
    /// `(view name, key, values)`: card, device and IP (hop 1), account and each similar
    /// device (hop 2).
    pub features: Vec<(&'static str, String, Features)>,
    /// The card's last events: merchant ids, newest first.
    pub recent_merchants: Vec<String>,
    pub merchants_found: usize,
    pub account_found: bool,
    pub similar: Vec<String>,
    pub similar_accounts: Vec<String>,
    pub similar_accounts_found: usize,
}

/// How to use the reply of one command of a hop.
#[derive(Clone, Debug)]
enum Slot {
    Card,
    Features(usize, String),
    Distinct,
    Recent,
    Account,
    Merchant,
    Device,
    SimilarAccount,
}

/// `fraud_check` against Redis: one call per connection at a time (the engine's closed loop
/// with depth 1), three hops (two without the kNN).
pub struct RedisContextCodec {
    data: Rc<BenchData>,
    knn: bool,
    call: Option<usize>,
    hop: u8,
    slots: Vec<Slot>,
    got: usize,
    /// Offset into the engine's buffer of the first reply not parsed yet (replies of earlier
    /// hops stay in the buffer until the call completes).
    scan: usize,
    out: Vec<u8>,
    ok: bool,
    pub answer: Answer,
    first_error: bool,
}

impl RedisContextCodec {
    pub fn new(data: Rc<BenchData>, knn: bool) -> Self {
        Self {
            data,
            knn,
            call: None,
            hop: 0,
            slots: Vec::new(),
            got: 0,
            scan: 0,
            out: Vec::new(),
            ok: true,
            answer: Answer::default(),
            first_error: true,
        }
    }

    fn push(&mut self, slot: Slot, args: &[&[u8]]) {
        resp::encode_command(args, &mut self.out);
        self.slots.push(slot);
    }

    fn push_features(&mut self, view: usize, key: &str) {
        let v = &VIEWS[view];
        let base = format!("f:{}:{key}", v.name);
        let lo = window_start_us(realtime_us()).to_string();
        self.push(
            Slot::Features(view, key.to_owned()),
            &[b"HGETALL", base.as_bytes()],
        );
        let d = format!("{base}:d");
        self.push(
            Slot::Distinct,
            &[b"ZCOUNT", d.as_bytes(), lo.as_bytes(), b"+inf"],
        );
    }

    fn hop1(&mut self, c: &Call) {
        let card = format!("card:{}", c.card_id);
        self.push(Slot::Card, &[b"HGETALL", card.as_bytes()]);
        self.push_features(0, &c.card_id);
        self.push_features(1, &c.device_id);
        self.push_features(2, &c.ip);
        let recent = format!("recent:{}", c.card_id);
        let last = (RECENT_N - 1).to_string();
        self.push(
            Slot::Recent,
            &[b"LRANGE", recent.as_bytes(), b"0", last.as_bytes()],
        );
    }

    /// Hop 2 from hop 1's answers (and the kNN); false if there is nothing to fetch.
    fn hop2(&mut self) -> bool {
        if let Some(account) = self.answer.card_account.clone() {
            let key = format!("account:{account}");
            self.push(Slot::Account, &[b"HGETALL", key.as_bytes()]);
            self.push_features(3, &account);
        }
        let mut merchants = self.answer.recent_merchants.clone();
        dedup_in_order(&mut merchants);
        for m in &merchants {
            let key = format!("merchant:{m}");
            self.push(Slot::Merchant, &[b"HGETALL", key.as_bytes()]);
        }
        if self.knn {
            let call = &self.data.calls[self.call.expect("a call in flight")];
            let similar = self.data.prints.nearest(&call.device_id, KNN_K);
            let similar: Vec<String> = similar
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned)
                .collect();
            for s in &similar {
                let key = format!("device:{s}");
                self.push(Slot::Device, &[b"HGETALL", key.as_bytes()]);
                self.push_features(1, s);
            }
            self.answer.similar = similar;
        }
        !self.slots.is_empty()
    }

    fn hop3(&mut self) -> bool {
        let mut accounts = self.answer.similar_accounts.clone();
        dedup_in_order(&mut accounts);
        for a in &accounts {
            let key = format!("account:{a}");
            self.push(Slot::SimilarAccount, &[b"HGETALL", key.as_bytes()]);
        }
        !self.slots.is_empty()
    }

    /// Uses the reply to command `slot` (the frame starting at `at` in `buf`).
    fn take(&mut self, slot: Slot, buf: &[u8], at: usize, f: &Frame) -> Result<(), String> {
        if f.is_error() {
            self.ok = false;
            return Ok(());
        }
        match slot {
            Slot::Card => {
                let h = hash(buf, at)?;
                self.answer.card_account = field(&h, buf, "account_id");
            }
            Slot::Features(view, key) => {
                let h = hash(buf, at)?;
                let values = window_features(&h, buf, realtime_us())?;
                self.answer.features.push((VIEWS[view].name, key, values));
            }
            Slot::Distinct => {
                let Frame::Integer(n) = f else {
                    return Err(format!("ZCOUNT replied {f:?}"));
                };
                let last = self.answer.features.last_mut().expect("features first");
                last.2.distinct = *n;
            }
            Slot::Recent => {
                for e in resp::array_elements(buf, at).map_err(|e| e.to_string())? {
                    let text = bulk(buf, &e)?;
                    let merchant = text.split('|').nth(2).ok_or("bad recent entry")?;
                    self.answer.recent_merchants.push(merchant.to_owned());
                }
            }
            Slot::Account => self.answer.account_found = !hash(buf, at)?.is_empty(),
            Slot::Merchant => self.answer.merchants_found += !hash(buf, at)?.is_empty() as usize,
            Slot::Device => {
                let h = hash(buf, at)?;
                if let Some(a) = field(&h, buf, "account_id") {
                    self.answer.similar_accounts.push(a);
                }
            }
            Slot::SimilarAccount => {
                self.answer.similar_accounts_found += !hash(buf, at)?.is_empty() as usize;
            }
        }
        Ok(())
    }

    /// After the last reply of a hop: the next hop's commands, or the call is complete.
    fn next_hop(&mut self) -> bool {
        self.slots.clear();
        self.got = 0;
        self.hop += 1;
        match self.hop {
            2 => self.hop2() || self.next_hop(),
            3 if self.knn => self.hop3() || self.next_hop(),
            _ => false,
        }
    }
}

impl Codec for RedisContextCodec {
    fn encode(&mut self, req: &Request<'_>, _id: u64, out: &mut Vec<u8>) {
        assert!(
            self.call.is_none(),
            "RedisContextCodec takes one call per connection at a time (depth 1)"
        );
        let data = self.data.clone();
        let i = req.keys[0] as usize % data.calls.len();
        self.call = Some(i);
        self.hop = 1;
        self.answer = Answer::default();
        self.ok = true;
        self.hop1(&data.calls[i]);
        out.append(&mut self.out);
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        while self.got < self.slots.len() {
            let Some((used, f)) = resp::parse(&buf[self.scan..]).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let slot = self.slots[self.got].clone();
            let at = self.scan;
            // Ranges in `f` are relative to `buf[at..]`.
            self.take(slot, &buf[at..], 0, &f)?;
            self.scan += used;
            self.got += 1;
        }
        if self.call.is_none() || self.next_hop() {
            return Ok(None);
        }
        let used = std::mem::take(&mut self.scan);
        self.call = None;
        if !self.ok && std::mem::take(&mut self.first_error) {
            eprintln!("redis fraud_check: an error reply");
        }
        Ok(Some((
            used,
            Decoded {
                id: None,
                ok: self.ok,
            },
        )))
    }

    fn take_output(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }
}

fn dedup_in_order(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// The first bucket of the window read at `now_us` (docs/SQL.md: the 60 one-minute buckets
/// ending with now's).
pub fn window_start_us(now_us: i64) -> i64 {
    let newest = now_us.div_euclid(oracle::BUCKET_US);
    (newest - oracle::WINDOW_US / oracle::BUCKET_US + 1) * oracle::BUCKET_US
}

/// A hash reply: (field, value) ranges into the reply buffer.
type Fields = Vec<(Range<usize>, Range<usize>)>;

/// A hash reply as (field, value) ranges into `buf`.
fn hash(buf: &[u8], at: usize) -> Result<Fields, String> {
    let e = resp::array_elements(buf, at).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(e.len() / 2);
    for pair in e.chunks_exact(2) {
        match (&pair[0], &pair[1]) {
            (Frame::Bulk(Some(k)), Frame::Bulk(Some(v))) => out.push((k.clone(), v.clone())),
            other => return Err(format!("HGETALL element {other:?}")),
        }
    }
    Ok(out)
}

fn field(h: &Fields, buf: &[u8], name: &str) -> Option<String> {
    h.iter()
        .find(|(k, _)| &buf[k.clone()] == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(&buf[v.clone()]).into_owned())
}

fn bulk<'a>(buf: &'a [u8], f: &Frame) -> Result<&'a str, String> {
    match f {
        Frame::Bulk(Some(r)) => std::str::from_utf8(&buf[r.clone()]).map_err(|e| e.to_string()),
        other => Err(format!("expected a bulk string, got {other:?}")),
    }
}

/// Count, sum and max over the window's buckets and the newest `last` (the distinct count
/// comes from the ZCOUNT that follows).
fn window_features(h: &Fields, buf: &[u8], now_us: i64) -> Result<Features, String> {
    let oldest = window_start_us(now_us).div_euclid(oracle::BUCKET_US);
    let newest = now_us.div_euclid(oracle::BUCKET_US);
    let mut f = Features {
        txns: 0,
        spend: None,
        max_amount: None,
        distinct: 0,
        last: None,
    };
    let mut last = None;
    for (k, v) in h {
        let k = std::str::from_utf8(&buf[k.clone()]).map_err(|e| e.to_string())?;
        let v = std::str::from_utf8(&buf[v.clone()]).map_err(|e| e.to_string())?;
        let bad = || format!("feature field {k:?} = {v:?}");
        let Some((bucket, what)) = k.split_once(':') else {
            match k {
                "last" => last = Some(v.to_owned()),
                "last_ts" if oracle::in_window(v.parse().map_err(|_| bad())?, now_us) => {
                    f.last = Some(String::new())
                }
                _ => {}
            }
            continue;
        };
        let bucket: i64 = bucket.parse().map_err(|_| bad())?;
        if !(oldest..=newest).contains(&bucket) {
            continue;
        }
        match what {
            "n" => f.txns += v.parse::<i64>().map_err(|_| bad())?,
            "s" => *f.spend.get_or_insert(0.0) += v.parse::<f64>().map_err(|_| bad())?,
            "m" => {
                let m: f64 = v.parse().map_err(|_| bad())?;
                f.max_amount = Some(f.max_amount.map_or(m, |x| x.max(m)));
            }
            _ => return Err(bad()),
        }
    }
    if f.last.is_some() {
        f.last = last;
    }
    Ok(f)
}

/// Makes [`RedisContextCodec`]s.
pub struct RedisContextFactory {
    pub data: Rc<BenchData>,
    pub knn: bool,
}

impl CodecFactory for RedisContextFactory {
    fn name(&self) -> &str {
        if self.knn {
            "redis-context"
        } else {
            "redis-context-no-knn"
        }
    }
    fn make(&self) -> Box<dyn Codec> {
        Box::new(RedisContextCodec::new(self.data.clone(), self.knn))
    }
}

/// HGETALL of the card: Redis's point read of the same run.
pub struct RedisGetCodec {
    data: Rc<BenchData>,
}

impl Codec for RedisGetCodec {
    fn encode(&mut self, req: &Request<'_>, _id: u64, out: &mut Vec<u8>) {
        let c = &self.data.calls[req.keys[0] as usize % self.data.calls.len()];
        let key = format!("card:{}", c.card_id);
        resp::encode_command(&[b"HGETALL", key.as_bytes()], out);
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some((used, f)) = resp::parse(buf).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let ok = matches!(f, Frame::Array(Some(n)) if n > 0);
        Ok(Some((used, Decoded { id: None, ok })))
    }
}

pub struct RedisGetFactory {
    pub data: Rc<BenchData>,
}

impl CodecFactory for RedisGetFactory {
    fn name(&self) -> &str {
        "redis-hgetall"
    }
    fn make(&self) -> Box<dyn Codec> {
        Box::new(RedisGetCodec {
            data: self.data.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash reply of `pairs` as RESP bytes.
    fn hash_reply(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        resp::encode_array_header(pairs.len() * 2, &mut out);
        for (k, v) in pairs {
            resp::encode_bulk(k.as_bytes(), &mut out);
            resp::encode_bulk(v.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn features_add_up_the_window_buckets_only() {
        let now = 1_800_000_000_000_000 + 30 * oracle::BUCKET_US;
        let b = now / oracle::BUCKET_US;
        let (new, old, stale) = (b.to_string(), (b - 59).to_string(), (b - 60).to_string());
        let keys: Vec<String> = [&new, &old, &stale]
            .iter()
            .flat_map(|b| ["n", "s", "m"].map(|x| format!("{b}:{x}")))
            .collect();
        let vals = ["2", "10.5", "7", "1", "3", "3", "5", "100", "90"];
        let mut pairs: Vec<(&str, &str)> = keys.iter().map(String::as_str).zip(vals).collect();
        let last_ts = (now - 1).to_string();
        pairs.extend([("last", "10.0.0.1"), ("last_ts", last_ts.as_str())]);
        let buf = hash_reply(&pairs);
        let f = window_features(&hash(&buf, 0).unwrap(), &buf, now).unwrap();
        assert_eq!(f.txns, 3, "the bucket 60 minutes back is out of the window");
        assert_eq!(f.spend, Some(13.5));
        assert_eq!(f.max_amount, Some(7.0));
        assert_eq!(f.last.as_deref(), Some("10.0.0.1"));
        let old_last = (now - oracle::WINDOW_US - oracle::BUCKET_US).to_string();
        let buf = hash_reply(&[("last", "x"), ("last_ts", &old_last)]);
        let f = window_features(&hash(&buf, 0).unwrap(), &buf, now).unwrap();
        assert_eq!((f.txns, f.spend, f.last), (0, None, None));
        let bad = format!("{b}:q");
        let buf = hash_reply(&[(bad.as_str(), "1")]);
        assert!(window_features(&hash(&buf, 0).unwrap(), &buf, now).is_err());
    }
}
