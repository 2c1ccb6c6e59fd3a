//! The data set as JSON lines: one file per table (for `tarn upsert TABLE -f FILE`) and one for
//! the stream (for `tarn ingest transactions FILE`). Keys are the column names of `schema.sql`.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::Dataset;

/// The files [`Dataset::write_files`] writes, in the order to load them: (object, file name).
/// The tables come first (the ingest does not need them, but a context call reads both).
pub const FILES: [(&str, &str); 5] = [
    ("accounts", "accounts.jsonl"),
    ("cards", "cards.jsonl"),
    ("devices", "devices.jsonl"),
    ("merchants", "merchants.jsonl"),
    ("transactions", "transactions.jsonl"),
];

impl Dataset {
    /// The JSON lines of object `name` (a table or the stream of [`FILES`]).
    pub fn json_lines(&self, name: &str) -> Vec<Value> {
        match name {
            "accounts" => self
                .accounts
                .iter()
                .map(|a| {
                    json!({"account_id": a.account_id, "owner": a.owner, "country": a.country,
                           "opened_at": a.opened_at_us, "risk": a.risk})
                })
                .collect(),
            "cards" => self
                .cards
                .iter()
                .map(|c| {
                    json!({"card_id": c.card_id, "account_id": c.account_id,
                           "device_id": c.device_id, "bin": c.bin,
                           "issued_at": c.issued_at_us, "blocked": c.blocked})
                })
                .collect(),
            "devices" => self
                .devices
                .iter()
                .map(|d| {
                    json!({"device_id": d.device_id, "account_id": d.account_id,
                           "platform": d.platform, "fingerprint": d.fingerprint,
                           "allowlisted": d.allowlisted})
                })
                .collect(),
            "merchants" => self
                .merchants
                .iter()
                .map(|m| {
                    json!({"merchant_id": m.merchant_id, "name": m.name,
                           "category": m.category, "country": m.country})
                })
                .collect(),
            "transactions" => self
                .events
                .iter()
                .map(|e| {
                    json!({"ts": e.ts_us, "card_id": e.card_id, "account_id": e.account_id,
                           "device_id": e.device_id, "ip": e.ip,
                           "merchant_id": e.merchant_id, "amount": e.amount})
                })
                .collect(),
            other => panic!("no JSON lines for {other:?}: expected one of {FILES:?}"),
        }
    }

    /// Writes every file of [`FILES`] into `dir` (which must exist).
    pub fn write_files(&self, dir: &Path) -> std::io::Result<()> {
        for (name, file) in FILES {
            let path = dir.join(file);
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
            for line in self.json_lines(name) {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
        }
        Ok(())
    }
}
