//! The fraud example end to end (examples/fraud, Tarn issue 9): a 2-shard tarnd loaded exactly
//! as examples/fraud/README.md does it (`tarn sql -f schema.sql`, `tarn upsert`, `tarn ingest`)
//! with a data set of a fixed seed, then `fraud_check` called for ring members and ordinary
//! cards through the Rust client, through `tarn context --json` and through the Go client
//! (`tarn-go-context`, clients/go/cmd). Every value of every item
//! must equal its recomputation from the generated data (`fraud::oracle`): rows from the
//! entities, features from the events by the window rule, the recent events as the card's
//! newest 5 by event time, kNN by brute force over the devices the filter keeps, list items
//! from the recent and kNN answers.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use fraud::oracle::{self, View};
use fraud::{Config, Dataset, FILES};
use tarn_client::Client;

const SHARDS: u32 = 2;
const SEED: u64 = 20_261_204;
/// The `k` of the kNN item in schema.sql.
const KNN_K: usize = 5;
/// The `n` of the recent item in schema.sql.
const RECENT_N: usize = 5;
/// Distances are computed by the server's SIMD kernels and here by a plain loop: the same f32
/// terms summed in another order (the tolerance of tests/vectors_knn.rs).
const DISTANCE_REL_TOLERANCE: f64 = 1e-5;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fraud")
}

fn cli_ok(addr: &str, args: &[&str]) -> String {
    let o = run_tarn(addr, args);
    assert!(
        o.status.success(),
        "tarn {args:?}: {}\n{}",
        o.stdout,
        o.stderr
    );
    o.stdout
}

/// One call of fraud_check.
#[derive(Debug)]
struct Case {
    what: &'static str,
    card_id: String,
    device_id: String,
    ip: String,
}

/// Ring cards on ring devices and IPs, ordinary cards on their own device and latest IP, and
/// an ordinary card paying on the allowlisted decoy (the filter drops the decoy itself, its
/// neighbours are the ring).
fn cases(d: &Dataset) -> Vec<Case> {
    let r = &d.ring;
    let last_ip = |card: &str| {
        d.recent(card, 1)
            .first()
            .map_or("10.0.0.1".to_string(), |e| e.ip.clone())
    };
    let mut cases = vec![
        Case {
            what: "ring card on its enrolled device",
            card_id: r.cards[0].clone(),
            device_id: d.card(&r.cards[0]).unwrap().device_id.clone(),
            ip: r.ips[0].clone(),
        },
        Case {
            what: "ring card on another ring device",
            card_id: r.cards[5].clone(),
            device_id: r.devices[2].clone(),
            ip: r.ips[1].clone(),
        },
    ];
    for n in [0, 7, 150] {
        let c = &d.cards[n];
        cases.push(Case {
            what: "ordinary card",
            card_id: c.card_id.clone(),
            device_id: c.device_id.clone(),
            ip: last_ip(&c.card_id),
        });
    }
    cases.push(Case {
        what: "ordinary card on the allowlisted decoy",
        card_id: d.cards[3].card_id.clone(),
        device_id: r.decoy_device.clone(),
        ip: last_ip(&d.cards[3].card_id),
    });
    cases
}

/// One answered row: (column, value) in column order.
type Row = Vec<(&'static str, Value)>;

/// What one item must answer: its groups of (key, rows).
struct Want {
    item: &'static str,
    groups: Vec<(Value, Vec<Row>)>,
}

fn opt_double(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::Double)
}

fn features_row(d: &Dataset, v: &View, key: &str, as_of_us: i64) -> Row {
    let f = d.features(v, key, as_of_us);
    vec![
        (v.key_name, text(key)),
        ("txns", Value::Int(f.txns)),
        ("spend", opt_double(f.spend)),
        ("max_amount", opt_double(f.max_amount)),
        (v.distinct_name, Value::Int(f.distinct)),
        (v.last_name, f.last.map_or(Value::Null, Value::Text)),
    ]
}

/// The expected answer of every item of fraud_check for `case`; `as_of` gives each shard's
/// as-of time (from the reply: the window is relative to it).
fn expected(d: &Dataset, case: &Case, as_of: &dyn Fn(&str) -> i64) -> Vec<Want> {
    let card = d.card(&case.card_id).expect("cases use existing cards");
    let account = d
        .account(&card.account_id)
        .expect("every card has an account");
    let feat = |v: &View, key: &str| (text(key), vec![features_row(d, v, key, as_of(key))]);
    let account_row = |a: &fraud::Account, all: bool| {
        let mut row = vec![
            ("account_id", text(&a.account_id)),
            ("owner", text(&a.owner)),
        ];
        if all {
            row.push(("country", text(&a.country)));
        }
        row.push(("opened_at", Value::Timestamp(a.opened_at_us)));
        row.push(("risk", Value::Double(a.risk)));
        row
    };
    let recent = d.recent(&card.card_id, RECENT_N);
    let mut recent_merchants: Vec<&str> = Vec::new();
    for e in &recent {
        if !recent_merchants.contains(&e.merchant_id.as_str()) {
            recent_merchants.push(&e.merchant_id);
        }
    }
    let near = d.nearest_devices(&case.device_id, KNN_K).unwrap();
    let mut near_devices: Vec<&str> = Vec::new();
    let mut near_accounts: Vec<&str> = Vec::new();
    for (_, dev) in &near {
        for (list, v) in [
            (&mut near_devices, &dev.device_id),
            (&mut near_accounts, &dev.account_id),
        ] {
            if !list.contains(&v.as_str()) {
                list.push(v);
            }
        }
    }
    vec![
        Want {
            item: "card",
            groups: vec![(
                text(&card.card_id),
                vec![vec![
                    ("card_id", text(&card.card_id)),
                    ("account_id", text(&card.account_id)),
                    ("device_id", text(&card.device_id)),
                    ("bin", text(&card.bin)),
                    ("issued_at", Value::Timestamp(card.issued_at_us)),
                    ("blocked", Value::Bool(card.blocked)),
                ]],
            )],
        },
        Want {
            item: "card_f",
            groups: vec![feat(&oracle::CARD_1H, &card.card_id)],
        },
        Want {
            item: "account",
            groups: vec![(text(&account.account_id), vec![account_row(account, true)])],
        },
        Want {
            item: "account_f",
            groups: vec![feat(&oracle::ACCOUNT_1H, &account.account_id)],
        },
        Want {
            item: "device_f",
            groups: vec![feat(&oracle::DEVICE_1H, &case.device_id)],
        },
        Want {
            item: "ip_f",
            groups: vec![feat(&oracle::IP_1H, &case.ip)],
        },
        Want {
            item: "last_5",
            groups: vec![(
                text(&card.card_id),
                recent
                    .iter()
                    .map(|e| {
                        vec![
                            ("ts", Value::Timestamp(e.ts_us)),
                            ("amount", Value::Double(e.amount)),
                            ("merchant_id", text(&e.merchant_id)),
                            ("device_id", text(&e.device_id)),
                            ("ip", text(&e.ip)),
                        ]
                    })
                    .collect(),
            )],
        },
        Want {
            item: "recent_merchants",
            groups: recent_merchants
                .iter()
                .map(|k| {
                    let m = d.merchants.iter().find(|m| m.merchant_id == *k).unwrap();
                    let row = vec![
                        ("merchant_id", text(&m.merchant_id)),
                        ("name", text(&m.name)),
                        ("category", text(&m.category)),
                        ("country", text(&m.country)),
                    ];
                    (text(k), vec![row])
                })
                .collect(),
        },
        Want {
            item: "similar_devices",
            groups: vec![(
                text(&case.device_id),
                near.iter()
                    .map(|(dist, dev)| {
                        vec![
                            ("distance", Value::Double(*dist as f64)),
                            ("device_id", text(&dev.device_id)),
                            ("account_id", text(&dev.account_id)),
                            ("platform", text(&dev.platform)),
                        ]
                    })
                    .collect(),
            )],
        },
        Want {
            item: "similar_device_f",
            groups: near_devices
                .iter()
                .map(|k| feat(&oracle::DEVICE_1H, k))
                .collect(),
        },
        Want {
            item: "similar_accounts",
            groups: near_accounts
                .iter()
                .map(|k| (text(k), vec![account_row(d.account(k).unwrap(), false)]))
                .collect(),
        },
    ]
}

/// Whether an answered value is the expected one; distances within the kernels' rounding.
fn same(column: &str, want: &Value, got: &Value) -> bool {
    match (column, want, got) {
        ("distance", Value::Double(w), Value::Double(g)) => {
            (w - g).abs() <= DISTANCE_REL_TOLERANCE * (1.0 + w.abs())
        }
        (_, Value::Double(w), Value::Double(g)) => w.to_bits() == g.to_bits(),
        _ => want == got,
    }
}

/// The same comparison against `tarn --json` output (timestamps are integer µs there).
fn same_json(column: &str, want: &Value, got: &serde_json::Value) -> bool {
    match want {
        Value::Null => got.is_null(),
        Value::Bool(b) => got.as_bool() == Some(*b),
        Value::Int(i) | Value::Timestamp(i) => got.as_i64() == Some(*i),
        Value::Text(s) => got.as_str() == Some(s.as_str()),
        Value::Double(_) => got
            .as_f64()
            .is_some_and(|g| same(column, want, &Value::Double(g))),
        other => panic!("the fraud context answers no {other:?}"),
    }
}

fn check_reply(reply: &ContextReply, wants: &[Want], case: &Case) {
    let names: Vec<&str> = reply.items.iter().map(|i| i.name.as_str()).collect();
    let want_names: Vec<&str> = wants.iter().map(|w| w.item).collect();
    assert_eq!(names, want_names, "{}: {case:?}", case.what);
    for w in wants {
        let item = ctx_item(reply, w.item);
        let columns: Vec<&str> = item.columns.iter().map(|c| c.name.as_str()).collect();
        let keys: Vec<&Value> = item.groups.iter().map(|g| &g.key).collect();
        let want_keys: Vec<&Value> = w.groups.iter().map(|g| &g.0).collect();
        assert_eq!(keys, want_keys, "{}: group keys ({case:?})", w.item);
        for (g, (_, want_rows)) in item.groups.iter().zip(&w.groups) {
            assert_eq!(
                g.rows.len(),
                want_rows.len(),
                "{}: rows of {:?}",
                w.item,
                g.key
            );
            for (row, want_row) in g.rows.iter().zip(want_rows) {
                let want_cols: Vec<&str> = want_row.iter().map(|(c, _)| *c).collect();
                assert_eq!(columns, want_cols, "{}: columns", w.item);
                for ((col, want), got) in want_row.iter().zip(row) {
                    assert!(
                        same(col, want, got),
                        "{}.{col} of {:?}: got {got:?}, want {want:?} ({case:?})",
                        w.item,
                        g.key
                    );
                }
            }
        }
    }
}

fn check_json(j: &serde_json::Value, wants: &[Want], case: &Case) {
    let items = j["items"].as_object().expect("items is an object");
    assert_eq!(items.len(), wants.len(), "{j}");
    for w in wants {
        let groups = items[w.item]
            .as_array()
            .expect("an item is a list of groups");
        assert_eq!(
            groups.len(),
            w.groups.len(),
            "{}: groups ({case:?})",
            w.item
        );
        for (g, (key, want_rows)) in groups.iter().zip(&w.groups) {
            assert!(same_json("key", key, &g["key"]), "{}: key {g}", w.item);
            let rows = g["rows"].as_array().unwrap();
            assert_eq!(rows.len(), want_rows.len(), "{}: rows {g}", w.item);
            for (row, want_row) in rows.iter().zip(want_rows) {
                assert_eq!(row.as_object().unwrap().len(), want_row.len(), "{row}");
                for (col, want) in want_row {
                    assert!(
                        same_json(col, want, &row[*col]),
                        "--json {}.{col}: got {}, want {want:?} ({case:?})",
                        w.item,
                        row[*col]
                    );
                }
            }
        }
    }
}

/// The kNN answer is checked against brute force: refuse a data set where two of the first
/// k + 1 distances are within the kernels' rounding of each other (the order would be moot).
fn assert_unambiguous(d: &Dataset, device_id: &str) {
    let near = d.nearest_devices(device_id, KNN_K + 1).unwrap();
    for w in near.windows(2) {
        let (a, b) = (w[0].0 as f64, w[1].0 as f64);
        assert!(
            b - a > 2.0 * DISTANCE_REL_TOLERANCE * (1.0 + b),
            "seed {SEED}: near-tie at {device_id}: {near:?}"
        );
    }
}

/// [`check_json`] of a `tarn context --json` document (the CLI's or tarn-go-context's), each
/// key's features recomputed at the as-of time the document gives for its shard.
fn check_reply_json(j: &serde_json::Value, data: &Dataset, case: &Case) {
    let shards: Vec<(u32, i64)> = j["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["shard"].as_u64().unwrap() as u32,
                s["as_of_us"].as_i64().unwrap(),
            )
        })
        .collect();
    let as_of = |key: &str| {
        let s = shard_of(&text(key), SHARDS);
        shards.iter().find(|a| a.0 == s).unwrap().1
    };
    check_json(j, &expected(data, case, &as_of), case);
}

#[test]
fn fraud_check_equals_the_recomputation() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let addr = server.addr_string();
    let schema = example_dir().join("schema.sql");
    cli_ok(&addr, &["sql", "-f", schema.to_str().unwrap()]);

    let data = Dataset::generate(&Config::new(SEED, now_us()));
    let dir = tempfile::tempdir().unwrap();
    data.write_files(dir.path()).unwrap();
    for (name, file) in FILES {
        let path = dir.path().join(file);
        let path = path.to_str().unwrap();
        match name {
            "transactions" => cli_ok(&addr, &["ingest", name, path]),
            table => cli_ok(&addr, &["upsert", table, "-f", path]),
        };
    }

    let mut client = Client::connect(&addr).unwrap();
    let cases = cases(&data);
    for case in &cases {
        assert_unambiguous(&data, &case.device_id);
        let params = vec![
            ("card_id".to_string(), text(&case.card_id)),
            ("device_id".to_string(), text(&case.device_id)),
            ("ip".to_string(), text(&case.ip)),
        ];
        let reply = client.context("fraud_check", params).unwrap();
        let shards = reply.shards.clone();
        let as_of = |key: &str| {
            let s = shard_of(&text(key), SHARDS);
            shards
                .iter()
                .find(|a| a.shard == s)
                .unwrap_or_else(|| panic!("shard {s} of {key} not in {shards:?}"))
                .as_of_us
        };
        let wants = expected(&data, case, &as_of);
        check_reply(&reply, &wants, case);

        let args = [
            format!("card_id={}", case.card_id),
            format!("device_id={}", case.device_id),
            format!("ip={}", case.ip),
        ];
        let out = cli_ok(
            &addr,
            &[
                "context",
                "fraud_check",
                &args[0],
                &args[1],
                &args[2],
                "--json",
            ],
        );
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        check_reply_json(&j, &data, case);

        // The Go client: tarn-go-context calls fraud_check through clients/go and prints what
        // `tarn context --json` prints; the same recomputation must hold.
        let out = std::process::Command::new(go_context_tool())
            .args(["-addr", &addr, "fraud_check", &args[0], &args[1], &args[2]])
            .output()
            .expect("run tarn-go-context");
        assert!(
            out.status.success(),
            "tarn-go-context: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        check_reply_json(&g, &data, case);
    }

    // The data set plants what the example is about: the ring's card sees its siblings.
    let ring = &data.ring;
    let reply = client
        .context(
            "fraud_check",
            vec![
                ("card_id".into(), text(&ring.cards[0])),
                ("device_id".into(), text(&ring.devices[0])),
                ("ip".into(), text(&ring.ips[0])),
            ],
        )
        .unwrap();
    let similar: Vec<Value> = ctx_item(&reply, "similar_devices").groups[0]
        .rows
        .iter()
        .map(|r| r[1].clone())
        .collect();
    for d in &ring.devices {
        assert!(similar.contains(&text(d)), "{d} not among {similar:?}");
    }
    assert!(!similar.contains(&text(&ring.decoy_device)));
}
