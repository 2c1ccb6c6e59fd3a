//! Before anything is timed: both systems' answers for a sample of calls, checked against the
//! data set's own recomputation ([`::fraud::oracle`]), so that the two sides of the comparison
//! are shown to fetch the same data. Redis is driven by the very codec the benchmark times.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;

use ::fraud::oracle::{Features, View};
use tarn_client::Client;
use tarn_net::{ContextItemReply, Value};

use super::redis::{RedisContextCodec, VIEWS};
use super::{BenchData, Call, CONTEXT, KNN_K, RECENT_N};
use crate::clock::realtime_us;
use crate::target::Codec;
use crate::workload::{OpKind, Request};

/// What the check found.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    pub calls: usize,
    /// Feature reads compared (4 views + the similar devices' per call).
    pub features: usize,
    pub features_equal: usize,
    /// Recent-event lists equal to the oracle's.
    pub recent_equal: usize,
    /// Similar devices found that the exact search also finds (`/ calls × k` = recall@k).
    pub knn_hits: usize,
    pub knn_wanted: usize,
}

impl Checked {
    pub fn line(&self, system: &str) -> String {
        format!(
            "{system}: {} calls, features {}/{} equal to the oracle, last {RECENT_N} events {}/{} \
             equal, kNN recall@{KNN_K} {:.3}",
            self.calls,
            self.features_equal,
            self.features,
            self.recent_equal,
            self.calls,
            self.knn_hits as f64 / self.knn_wanted.max(1) as f64
        )
    }

    /// Every feature and recent list equal (the kNN may be approximate on Tarn's side).
    pub fn exact(&self) -> bool {
        self.features == self.features_equal && self.recent_equal == self.calls
    }

    fn features(&mut self, data: &BenchData, view: &View, key: &str, got: &Features) {
        let want = data.data.features(view, key, realtime_us());
        self.features += 1;
        self.features_equal += same(&want, got) as usize;
    }

    fn knn(&mut self, data: &BenchData, call: &Call, got: &[String]) {
        let want = data.data.nearest_devices(&call.device_id, KNN_K);
        for (_, d) in want.unwrap_or_default() {
            self.knn_wanted += 1;
            self.knn_hits += got.contains(&d.device_id) as usize;
        }
    }
}

/// Equal up to the sum, which Redis adds up per minute bucket in floating point (Tarn's and the
/// oracle's are exactly rounded).
fn same(want: &Features, got: &Features) -> bool {
    let close = match (want.spend, got.spend) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    close
        && want.txns == got.txns
        && want.max_amount == got.max_amount
        && want.distinct == got.distinct
        && want.last == got.last
}

fn recent_merchants(data: &BenchData, call: &Call) -> Vec<String> {
    let recent = data.data.recent(&call.card_id, RECENT_N);
    recent.iter().map(|e| e.merchant_id.clone()).collect()
}

/// The first `n` calls through [`RedisContextCodec`] on a blocking connection.
pub fn redis(addr: &str, data: &Rc<BenchData>, n: usize) -> Result<Checked, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut codec = RedisContextCodec::new(data.clone(), true);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut c = Checked::default();
    for i in 0..n.min(data.calls.len()) {
        let req = Request {
            kind: OpKind::Get,
            keys: &[i as u64],
            value: b"",
        };
        codec.encode(&req, 0, &mut out);
        buf.clear();
        loop {
            if !out.is_empty() {
                s.write_all(&out).map_err(|e| format!("redis write: {e}"))?;
                out.clear();
            }
            let got = s.read(&mut chunk).map_err(|e| format!("redis read: {e}"))?;
            if got == 0 {
                return Err("redis closed the connection".into());
            }
            buf.extend_from_slice(&chunk[..got]);
            if let Some((_, d)) = codec.decode(&buf)? {
                if !d.ok {
                    return Err(format!("redis answered call {i} with an error"));
                }
                break;
            }
            codec.take_output(&mut out);
        }
        let call = &data.calls[i];
        let a = &codec.answer;
        c.calls += 1;
        for (name, key, got) in &a.features {
            let view = VIEWS.iter().find(|v| v.name == *name).expect("a view");
            c.features(data, view, key, got);
        }
        c.recent_equal += (a.recent_merchants == recent_merchants(data, call)) as usize;
        c.knn(data, call, &a.similar);
    }
    Ok(c)
}

/// The first `n` calls through the Rust client's CONTEXT call.
pub fn tarn(addr: &str, data: &BenchData, n: usize) -> Result<Checked, String> {
    let mut client = Client::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut c = Checked::default();
    for call in data.calls.iter().take(n) {
        let r = client
            .context(CONTEXT, super::tarn::params(call))
            .map_err(|e| format!("CONTEXT {CONTEXT}: {e}"))?;
        let item = |name: &str| {
            r.items
                .iter()
                .find(|i| i.name == name)
                .ok_or_else(|| format!("no item {name} in the reply"))
        };
        c.calls += 1;
        for (name, view) in [
            ("card_f", &VIEWS[0]),
            ("device_f", &VIEWS[1]),
            ("ip_f", &VIEWS[2]),
            ("account_f", &VIEWS[3]),
            ("similar_device_f", &VIEWS[1]),
        ] {
            for (key, got) in features_of(item(name)?, view)? {
                c.features(data, view, &key, &got);
            }
        }
        let merchants = column_texts(item("last_5")?, "merchant_id")?;
        c.recent_equal += (merchants == recent_merchants(data, call)) as usize;
        let similar = column_texts(item("similar_devices")?, "device_id")?;
        c.knn(data, call, &similar);
    }
    Ok(c)
}

fn column(item: &ContextItemReply, name: &str) -> Result<usize, String> {
    item.columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| format!("item {} has no column {name}", item.name))
}

fn column_texts(item: &ContextItemReply, name: &str) -> Result<Vec<String>, String> {
    let i = column(item, name)?;
    let mut out = Vec::new();
    for g in &item.groups {
        for row in &g.rows {
            match &row[i] {
                Value::Text(t) => out.push(t.clone()),
                other => return Err(format!("{}.{name} = {other:?}", item.name)),
            }
        }
    }
    Ok(out)
}

/// Each group of a features item as the oracle's [`Features`].
fn features_of(item: &ContextItemReply, view: &View) -> Result<Vec<(String, Features)>, String> {
    let idx = |n: &str| column(item, n);
    let (txns, spend, max) = (idx("txns")?, idx("spend")?, idx("max_amount")?);
    let (distinct, last) = (idx(view.distinct_name)?, idx(view.last_name)?);
    let mut out = Vec::new();
    for g in &item.groups {
        let row = g.rows.first().ok_or("a features group without its row")?;
        let key = match &g.key {
            Value::Text(t) => t.clone(),
            other => return Err(format!("{} key {other:?}", item.name)),
        };
        let double = |v: &Value| match v {
            Value::Double(x) => Some(*x),
            _ => None,
        };
        let int = |v: &Value| match v {
            Value::Int(x) => *x,
            _ => 0,
        };
        out.push((
            key,
            Features {
                txns: int(&row[txns]),
                spend: double(&row[spend]),
                max_amount: double(&row[max]),
                distinct: int(&row[distinct]),
                last: match &row[last] {
                    Value::Text(t) => Some(t.clone()),
                    _ => None,
                },
            },
        ));
    }
    Ok(out)
}
