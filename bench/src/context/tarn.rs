//! Tarn's side of `fraud_check`: the CONTEXT call ([`context_factory`]), the GET of the card
//! row ([`get_factory`], the point read the context is compared with), both through one
//! [`TarnCallCodec`], and [`load`] through
//! the `tarn` CLI, as examples/fraud/README.md loads the example.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use tarn_net::{
    encode_request, ContextCall, ContextRequest, KeysRequest, Request as NetRequest, Response,
    Value,
};

use super::{Call, CONTEXT, CONTEXT_ITEMS};
use crate::fraud::decode_tarn;
use crate::target::{Codec, CodecFactory, Decoded};
use crate::workload::Request;

/// Loads the data set into the tarnd at `addr` with the `tarn` binary: the schema
/// (`tarn sql -f`), every table (`tarn upsert T -f`) and the stream (`tarn ingest`), from the
/// files [`::fraud::Dataset::write_files`] wrote into `dir`.
pub fn load(tarn: &Path, addr: &str, schema: &Path, dir: &Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new(tarn)
            .arg("--addr")
            .arg(addr)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", tarn.display()))?;
        if !out.status.success() {
            return Err(format!(
                "tarn {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    };
    run(&["sql", "-f", &schema.to_string_lossy()])?;
    for (name, file) in ::fraud::FILES {
        let path = dir.join(file).to_string_lossy().into_owned();
        match name {
            "transactions" => run(&["ingest", name, &path])?,
            table => run(&["upsert", table, "-f", &path])?,
        }
    }
    Ok(())
}

/// The parameters of `fraud_check` for a call, by name.
pub fn params(call: &Call) -> Vec<(String, Value)> {
    vec![
        ("card_id".to_owned(), Value::Text(call.card_id.clone())),
        ("device_id".to_owned(), Value::Text(call.device_id.clone())),
        ("ip".to_owned(), Value::Text(call.ip.clone())),
    ]
}

/// The CONTEXT request of a call.
pub fn context_request(call: &Call) -> NetRequest {
    NetRequest::Context(ContextRequest {
        call: ContextCall::Named(CONTEXT.to_owned()),
        params: params(call),
    })
}

/// One prepared request per call, sent for call `keys[0] % calls` (the engine's key index); a
/// reply `ok` does not accept is an error (counted; the first one printed).
pub struct TarnCallCodec {
    requests: Rc<Vec<NetRequest>>,
    ok: fn(&Response) -> bool,
    what: &'static str,
    first_error: bool,
}

impl Codec for TarnCallCodec {
    fn handshake(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        crate::tarn::hello(stream)
    }

    fn encode(&mut self, req: &Request<'_>, id: u64, out: &mut Vec<u8>) {
        let i = req.keys[0] as usize % self.requests.len();
        encode_request(id, &self.requests[i], out);
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some((used, id, resp)) = decode_tarn(buf)? else {
            return Ok(None);
        };
        let ok = (self.ok)(&resp);
        if !ok && std::mem::take(&mut self.first_error) {
            eprintln!("tarn {}: unexpected reply {resp:?}", self.what);
        }
        Ok(Some((used, Decoded { id: Some(id), ok })))
    }
}

/// Makes [`TarnCallCodec`]s sharing one set of requests.
pub struct TarnCallFactory {
    requests: Rc<Vec<NetRequest>>,
    ok: fn(&Response) -> bool,
    what: &'static str,
}

impl CodecFactory for TarnCallFactory {
    fn name(&self) -> &str {
        self.what
    }
    fn make(&self) -> Box<dyn Codec> {
        Box::new(TarnCallCodec {
            requests: self.requests.clone(),
            ok: self.ok,
            what: self.what,
            first_error: true,
        })
    }
}

/// CONTEXT `fraud_check` of each call; a reply without every item is an error.
pub fn context_factory(calls: &[Call]) -> TarnCallFactory {
    TarnCallFactory {
        requests: Rc::new(calls.iter().map(context_request).collect()),
        ok: |r| matches!(r, Response::Context(c) if c.items.len() == CONTEXT_ITEMS),
        what: "CONTEXT",
    }
}

/// GET of each call's `cards` row: the point read of the same run; a reply without the row is
/// an error.
pub fn get_factory(calls: &[Call]) -> TarnCallFactory {
    let get = |c: &Call| {
        NetRequest::Get(KeysRequest {
            table: "cards".to_owned(),
            keys: vec![Value::Text(c.card_id.clone())],
        })
    };
    TarnCallFactory {
        requests: Rc::new(calls.iter().map(get).collect()),
        ok: |r| matches!(r, Response::Get(g) if g.rows.iter().all(|r| r.is_some())),
        what: "GET",
    }
}
