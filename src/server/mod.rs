//! Starting and stopping the shard executors.
//!
//! Start-up, on the main thread: checks (io_uring, memlock), the data directory (lock, meta,
//! catalog), the listen address. Then one glommio executor per shard, pinned to its own CPU
//! when there are enough CPUs. Each shard recovers its own state (checkpoint + log), joins the
//! two channel meshes, confirms to every peer that it recovered, binds the listen address
//! (SO_REUSEPORT, SO_REUSEADDR) and serves. SIGTERM/SIGINT: stop accepting, answer what was
//! read, flush, checkpoint, exit 0.

mod conn;
pub mod error;
mod fanout;
pub mod limits;
mod mesh;
mod service;
mod shard;
mod stats;

use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};
use tarn_core::catalog::Catalog;
use tarn_core::record::{Record, TxnId};
use tarn_core::state::ShardState;
use tarn_storage::{checkpoint, Log, LogOptions};

use crate::config::Config;
use crate::datadir::{DataDir, CATALOG_FILE};
use limits::{
    LISTEN_BACKLOG, LISTEN_RETRY, LISTEN_RETRY_INTERVAL, MESH_CHANNEL_CAPACITY, SHUTDOWN_POLL_MS,
};
use mesh::{MsgBody, ShardMsg, ShardReply};
use shard::Shard;
use socket2::{Domain, Protocol, Socket, Type};

/// The wall clock in µs since the Unix epoch (validation of event times, append stamps).
pub(crate) fn now_us() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// Maps a core error to the protocol error a client sees, keeping its row and column.
/// Runs the server until SIGTERM/SIGINT. Returns an error message for the operator.
pub fn run(cfg: Config) -> Result<(), String> {
    crate::checks::check_io_uring()?;
    let cpus = crate::checks::online_cpus();
    let datadir = DataDir::open(&cfg.data_dir, cfg.shards, cpus.len().max(1) as u32)?;
    let shard_count = datadir.meta.shard_count;
    crate::checks::ensure_memlock(shard_count)?;
    let catalog = match tarn_storage::read_file_checked(&datadir.path.join(CATALOG_FILE)) {
        Ok(Some(bytes)) => Catalog::from_bytes(&bytes)
            .map_err(|e| format!("catalog {}: {e}", datadir.path.join(CATALOG_FILE).display()))?,
        Ok(None) => Catalog::new(),
        Err(e) => return Err(format!("cannot read the catalog: {e}")),
    };

    // Resolve port 0 once so every shard binds the same port, and refuse a port another
    // process already listens on (SO_REUSEPORT would otherwise silently share it).
    let listen = probe_listen_addr(cfg.listen)?;
    let mut cfg = cfg;
    cfg.listen = listen;

    let placement = if (shard_count as usize) <= cpus.len() {
        PoolPlacement::MaxSpread(shard_count as usize, CpuSet::online().ok())
    } else {
        tracing::warn!(
            shards = shard_count,
            cpus = cpus.len(),
            "more shards than CPUs: executors are not pinned (placement Unbound)"
        );
        PoolPlacement::Unbound(shard_count as usize)
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGTERM, libc::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }

    let requests = MeshBuilder::<ShardMsg, _>::full(shard_count as usize, MESH_CHANNEL_CAPACITY);
    let replies = MeshBuilder::<ShardReply, _>::full(shard_count as usize, MESH_CHANNEL_CAPACITY);
    let data_path = datadir.path.clone();
    let created = datadir.created;
    let builder = LocalExecutorPoolBuilder::new(placement)
        .name("tarn-shard")
        .spin_before_park(cfg.spin)
        // Each executor has one helper thread for the rare blocking file operations (rename,
        // directory fsync). glommio's default pins every such thread to the first CPU; left
        // unbound, the kernel runs it wherever there is idle time instead of always on CPU 0.
        .blocking_thread_pool_placement(PoolPlacement::Unbound(1));
    let pool =
        builder
            .on_all_shards(move || {
                let cfg = cfg.clone();
                let catalog = catalog.clone();
                let stop = stop.clone();
                async move {
                    shard_main(cfg, data_path, catalog, requests, replies, stop, created).await
                }
            })
            .map_err(|e| format!("cannot start executors: {e}"))?;
    let mut errors = Vec::new();
    for r in pool.join_all() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(format!("executor failed: {e}")),
        }
    }
    drop(datadir);
    if errors.is_empty() {
        Ok(())
    } else {
        errors.sort();
        errors.dedup();
        Err(errors.join("\n"))
    }
}

async fn shard_main(
    cfg: Config,
    data_path: std::path::PathBuf,
    catalog: Catalog,
    requests: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    replies: MeshBuilder<ShardReply, glommio::channels::channel_mesh::Full>,
    stop: Arc<AtomicBool>,
    created: bool,
) -> Result<(), String> {
    // Join both meshes first: a shard's id is its mesh peer id.
    let (senders, mut receivers) = requests
        .join()
        .await
        .map_err(|_| "cannot join the shard mesh".to_string())?;
    let (reply_senders, mut reply_receivers) = replies
        .join()
        .await
        .map_err(|_| "cannot join the shard mesh".to_string())?;
    let id = senders.peer_id() as u32;
    let count = senders.nr_consumers() as u32;
    assert_eq!(
        reply_senders.peer_id() as u32,
        id,
        "both meshes must agree on shard ids"
    );

    let recovered = recover(&cfg, &data_path, id, count, &catalog).await;

    // Start-up barrier: nobody serves unless every shard recovered. Every shard also learns
    // every other shard's multi-shard high-water marks, to decide the parts whose Commit the
    // last crash lost (tarn_core::txn).
    let ok = recovered.is_ok();
    let my_hwm = match &recovered {
        Ok((state, ..)) => state.txns().hwm_table(count),
        Err(_) => Vec::new(),
    };
    for peer in 0..count {
        if peer != id {
            let _ = senders
                .send_to(
                    peer as usize,
                    ShardMsg {
                        from: id,
                        corr: 0,
                        body: MsgBody::Ready {
                            ok,
                            hwm: my_hwm.clone(),
                        },
                    },
                )
                .await;
        }
    }
    let mut all_ok = ok;
    let mut hwm_all = vec![Vec::new(); count as usize];
    hwm_all[id as usize] = my_hwm;
    for peer in 0..count {
        if peer != id {
            match receivers.recv_from(peer as usize).await {
                Ok(Some(msg)) if matches!(msg.body, MsgBody::Ready { .. }) => {
                    if let Err(e) = mesh::check_arrival(&msg, peer, id, count, &catalog) {
                        panic!("{e}");
                    }
                    let MsgBody::Ready { ok, hwm } = msg.body else {
                        unreachable!("matched above")
                    };
                    all_ok &= ok;
                    hwm_all[peer as usize] = hwm;
                }
                _ => all_ok = false,
            }
        }
    }
    let (mut state, log, ckpt_lsn) = match recovered {
        Ok(r) => r,
        Err(e) => return Err(e),
    };
    if !all_ok {
        let _ = log.close().await;
        return Err("another shard failed to start (see its message)".to_string());
    }
    if let Err(e) = decide_prepared(id, &catalog, &mut state, &log, &hwm_all).await {
        let _ = log.close().await;
        return Err(e);
    }
    // As coordinator, continue every link above what its owner has logged: a seq the crash
    // left unlogged is reused, its old parts elsewhere were just aborted.
    let link_next = hwm_all
        .iter()
        .map(|t| t.get(id as usize).copied().unwrap_or(0) + 1)
        .collect();

    let shard = Rc::new(Shard::new(
        id,
        count,
        Rc::new(cfg.clone()),
        data_path.clone(),
        catalog,
        state,
        log,
        ckpt_lsn,
        link_next,
        senders,
        reply_senders,
    ));

    // A catalog index whose Create record a crash left unlogged (or one from before indexes
    // were logged) is created now, over the recovered rows, before anything is served.
    if let Err(e) = shard.log_index_creates().await {
        return Err(format!(
            "shard {id}: cannot create the catalog's indexes: {e}"
        ));
    }

    // Peer request and reply loops.
    for (peer, rx) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                // A mis-routed message is a bug in the sender: stop before it touches state.
                let arrival =
                    mesh::check_arrival(&msg, peer as u32, shard.id, shard.count, &shard.catalog());
                if let Err(e) = arrival {
                    panic!("{e}");
                }
                glommio::spawn_local(shard.clone().handle_peer(msg)).detach();
            }
        })
        .detach();
    }
    for (peer, rx) in reply_receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(reply) = rx.recv().await {
                shard.deliver(peer as u32, reply);
            }
        })
        .detach();
    }

    glommio::spawn_local(shard.clone().maintain_indexes()).detach();

    // Signal watcher: closes the shutdown semaphore, waking every connection.
    {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while !stop.load(Ordering::Relaxed) {
                glommio::timer::sleep(Duration::from_millis(SHUTDOWN_POLL_MS)).await;
            }
            shard.shutdown.close();
        })
        .detach();
    }

    let listener = listen_socket(cfg.listen)
        .map_err(|e| format!("shard {id}: cannot listen on {}: {e}", cfg.listen))?;
    if id == 0 {
        let pinned = if shard.cpu.is_some() {
            "pinned"
        } else {
            "unpinned"
        };
        println!(
            "tarnd {} ready: listening on {} with {count} shard(s) ({pinned}), data dir {}{}, durability {:?}",
            env!("CARGO_PKG_VERSION"),
            cfg.listen,
            data_path.display(),
            if created { " (new)" } else { "" },
            cfg.durability
        );
    }
    tracing::info!(shard = id, cpu = ?shard.cpu, "serving");

    // Accept loop; every connection is served on this shard.
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            let _ = shard.shutdown.acquire(1).await;
            None
        })
        .await;
        match accepted {
            Some(Ok(stream)) => {
                shard.conn_tasks.set(shard.conn_tasks.get() + 1);
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    conn::serve(shard.clone(), stream).await;
                    shard.conn_tasks.set(shard.conn_tasks.get() - 1);
                    shard.conn_done.signal(1);
                })
                .detach();
            }
            Some(Err(e)) => {
                tracing::warn!(shard = id, "accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            None => break,
        }
    }
    drop(listener);
    while shard.conn_tasks.get() > 0 {
        let _ = shard.conn_done.acquire(1).await;
    }
    shard.drain_barrier().await;
    shard
        .close()
        .await
        .map_err(|e| format!("shard {id}: shutdown flush failed: {e}"))?;
    tracing::info!(shard = id, "stopped");
    Ok(())
}

/// Resolves the listen address (port 0 becomes the port every shard binds) and refuses a port
/// on which another socket is in LISTEN state. Start-up, main thread.
///
/// Every tarnd socket on the port has SO_REUSEADDR: the listeners, and the connections they
/// accept (which inherit it), so connections of an earlier tarnd still in FIN-WAIT-2 or
/// TIME-WAIT never block a restart. The probe has SO_REUSEADDR but deliberately not
/// SO_REUSEPORT: on Linux its bind then fails with EADDRINUSE exactly when a socket listens on
/// the port (or holds it without SO_REUSEADDR), including a listener of the same user with
/// SO_REUSEPORT, which the shards' own binds would otherwise silently share the port with.
/// The listening sockets of a tarnd that just exited can outlive it by a few milliseconds, so
/// EADDRINUSE is retried for [`LISTEN_RETRY`] before giving up.
fn probe_listen_addr(addr: SocketAddr) -> Result<SocketAddr, String> {
    let started = Instant::now();
    loop {
        match probe_bind(addr) {
            Ok(bound) => {
                if started.elapsed() >= LISTEN_RETRY_INTERVAL {
                    tracing::info!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        "port {} was still held by a listening socket (a tarnd that just exited?)",
                        addr.port()
                    );
                }
                return Ok(bound);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && started.elapsed() < LISTEN_RETRY => {
                std::thread::sleep(LISTEN_RETRY_INTERVAL);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "cannot listen on {addr}: port {} is in use: another process listens on it (or holds it without SO_REUSEADDR); still refused after retrying for {} ms ({e})",
                    addr.port(),
                    LISTEN_RETRY.as_millis()
                ));
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
        }
    }
}

/// Binds (without listening) a socket with SO_REUSEADDR and without SO_REUSEPORT to `addr`;
/// returns the address it got. See [`probe_listen_addr`].
fn probe_bind(addr: SocketAddr) -> io::Result<SocketAddr> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the probe socket has no IP address"))
}

/// A shard's listening socket: SO_REUSEPORT (every shard listens on the same port and the
/// kernel spreads connections over them) and SO_REUSEADDR (see [`probe_listen_addr`]).
fn listen_socket(addr: SocketAddr) -> io::Result<glommio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the fd is a bound, listening TCP socket that we own; the listener takes it over
    // (glommio's own `bind` builds its listener from such a socket the same way).
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

type Recovered = (ShardState, Rc<Log>, u64);

/// Rebuilds this shard's state from its newest valid checkpoint and its log.
async fn recover(
    cfg: &Config,
    data_path: &std::path::Path,
    id: u32,
    count: u32,
    catalog: &Catalog,
) -> Result<Recovered, String> {
    let dir = data_path.join(format!("shard-{id}"));
    let (mut state, after_lsn) =
        match checkpoint::load_latest(&dir).map_err(|e| format!("shard {id}: {e}"))? {
            Some(c) => (
                ShardState::from_checkpoint(c.payload(), catalog).map_err(|e| {
                    format!(
                        "shard {id}: checkpoint {} is corrupt: {e}",
                        c.path.display()
                    )
                })?,
                c.lsn,
            ),
            None => (ShardState::new(), 0),
        };
    let mut opts = LogOptions::new(dir.clone(), cfg.durability);
    opts.segment_size_bytes = cfg.segment_size_bytes;
    opts.async_flush_interval = cfg.async_flush_interval;
    let replay = |lsn: u64, payload: &[u8]| -> Result<(), String> {
        let rec =
            tarn_core::record::decode_record(payload).map_err(|e| format!("record {lsn}: {e}"))?;
        let owned = match &rec {
            Record::Apply(m) | Record::Prepare { mutation: m, .. } => {
                m.owned_by(catalog, id, count)
            }
            Record::Commit(..) | Record::Abort(_) | Record::Index(_) => true,
        };
        if !owned {
            return Err(format!("record {lsn} holds keys shard {id} does not own"));
        }
        state
            .replay_record(catalog, id, lsn, rec)
            .map_err(|e| format!("record {lsn}: {e}"))?;
        Ok(())
    };
    let (log, report) = match Log::open(opts, after_lsn, replay).await {
        Ok(opened) => opened,
        Err(e) => {
            // A log that starts after the loaded checkpoint usually means a newer checkpoint
            // was rejected: say so, since that is the file to look at.
            let rejected = newer_checkpoints(&dir, after_lsn);
            let note = if rejected.is_empty() {
                String::new()
            } else {
                format!(
                    "\n  note: checkpoint(s) {} failed validation and were skipped (see the warnings above); the log alone cannot rebuild what they held",
                    rejected.join(", ")
                )
            };
            return Err(format!("shard {id}: {e}{note}"));
        }
    };
    if let Some(t) = &report.truncated_tail {
        tracing::warn!(
            shard = id,
            "truncated a torn log tail: {} at offset {} ({} bytes)",
            t.path.display(),
            t.offset,
            t.bytes_discarded
        );
    }
    tracing::info!(
        shard = id,
        checkpoint_lsn = after_lsn,
        replayed = report.records_replayed,
        last_lsn = report.last_lsn,
        "recovered"
    );
    Ok((state, log, after_lsn))
}

/// Decides every part still set aside after replay (its batch's Commit was lost in a crash):
/// commit if every participant has its part durable, else abort (`tarn_core::txn::decide`,
/// the same rule on every shard). Logs each outcome and makes it durable before serving, so
/// the decision is never taken again with different high-water marks.
async fn decide_prepared(
    id: u32,
    catalog: &Catalog,
    state: &mut ShardState,
    log: &Log,
    hwm_all: &[Vec<u64>],
) -> Result<(), String> {
    let decisions: Vec<(TxnId, bool)> = state
        .txns()
        .stash()
        .iter()
        .map(|(txn_id, p)| (*txn_id, tarn_core::txn::decide(&p.txn, hwm_all)))
        .collect();
    if decisions.is_empty() {
        return Ok(());
    }
    let mut committed = 0;
    for (txn_id, commit) in &decisions {
        let rec = if *commit {
            committed += 1;
            // Stamped after everything replayed (a clock that went back is not followed).
            Record::Commit(*txn_id, now_us().max(state.max_append_time_us()))
        } else {
            Record::Abort(*txn_id)
        };
        let lsn = log
            .append(&tarn_core::record::encode_record_to_vec(&rec))
            .await
            .map_err(|e| format!("shard {id}: logging a recovery decision: {e}"))?;
        state
            .apply_record(catalog, id, lsn, rec)
            .map_err(|e| format!("shard {id}: {e}"))?;
    }
    log.flush()
        .await
        .map_err(|e| format!("shard {id}: logging recovery decisions: {e}"))?;
    tracing::warn!(
        shard = id,
        committed,
        aborted = decisions.len() - committed,
        "decided multi-shard batch parts whose outcome the crash left open"
    );
    Ok(())
}

/// Checkpoint files in `dir` newer than the one recovery used (they failed validation).
/// Runs only on the failure path of recovery, before the shard serves anything.
fn newer_checkpoints(dir: &std::path::Path, used_lsn: u64) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let lsn: u64 = name
                .strip_prefix("checkpoint-")?
                .strip_suffix(".ckp")?
                .parse()
                .ok()?;
            (lsn > used_lsn).then(|| e.path().display().to_string())
        })
        .collect();
    out.sort();
    out
}
