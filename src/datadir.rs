//! The data directory: an exclusive lock, the `meta` file that fixes the shard count and the
//! routing hash at creation, and the catalog file.
//!
//! Runs on the main thread before any executor starts, so plain `std::fs` is fine here: no
//! reactor is blocked.
//!
//! ```text
//! <data-dir>/
//!   LOCK          flock(2)-held while a tarnd runs on this directory
//!   meta          JSON: format version, shard count, routing hash (written once)
//!   catalog       table definitions (tarn-storage small-file framing, tarn-core payload)
//!   shard-<i>/    shard i's log segments and checkpoints
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the data-directory layout. A directory with another version is refused.
pub const DATA_DIR_FORMAT_VERSION: u32 = 1;
/// Name of the catalog file inside the data directory.
pub const CATALOG_FILE: &str = "catalog";

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct Meta {
    pub format_version: u32,
    pub shard_count: u32,
    pub routing_hash: String,
}

/// An opened, locked data directory. The lock is released when this is dropped.
pub struct DataDir {
    pub path: PathBuf,
    pub meta: Meta,
    /// True when this start created the directory's meta (a new, empty database).
    pub created: bool,
    _lock: File,
}

impl DataDir {
    /// Opens (creating if needed) and locks the data directory, and settles the shard count:
    /// the one recorded in `meta`, which `requested` must match if given.
    pub fn open(
        path: &Path,
        requested: Option<u32>,
        default_shards: u32,
    ) -> Result<DataDir, String> {
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create data directory {}: {e}", path.display()))?;
        let path = path
            .canonicalize()
            .map_err(|e| format!("cannot resolve data directory {}: {e}", path.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("LOCK"))
            .map_err(|e| format!("cannot open {}/LOCK: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "data directory {} is in use by another tarnd (its LOCK is held); stop that server or use another --data-dir",
                path.display()
            ));
        }
        let meta_path = path.join("meta");
        let (meta, created) = match std::fs::read(&meta_path) {
            Ok(bytes) => {
                let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| {
                    format!(
                        "{} is unreadable ({e}); it is not a Tarn data directory or it is damaged",
                        meta_path.display()
                    )
                })?;
                if meta.format_version != DATA_DIR_FORMAT_VERSION {
                    return Err(format!(
                        "{} has data-directory format {}, this tarnd reads format {DATA_DIR_FORMAT_VERSION}",
                        path.display(),
                        meta.format_version
                    ));
                }
                if meta.routing_hash != tarn_types::ROUTING_HASH {
                    return Err(format!(
                        "{} routes keys with {:?}, this tarnd with {:?}",
                        path.display(),
                        meta.routing_hash,
                        tarn_types::ROUTING_HASH
                    ));
                }
                if let Some(n) = requested {
                    if n != meta.shard_count {
                        return Err(format!(
                            "data directory {} was created with {} shard(s) but --shards {n} was requested; \
                             re-sharding is not supported yet: start with --shards {} (or omit --shards), or use a new --data-dir",
                            path.display(),
                            meta.shard_count,
                            meta.shard_count
                        ));
                    }
                }
                (meta, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let meta = Meta {
                    format_version: DATA_DIR_FORMAT_VERSION,
                    shard_count: requested.unwrap_or(default_shards),
                    routing_hash: tarn_types::ROUTING_HASH.to_string(),
                };
                write_durably(
                    &path,
                    "meta",
                    &serde_json::to_vec_pretty(&meta).expect("meta serializes"),
                )?;
                (meta, true)
            }
            Err(e) => return Err(format!("cannot read {}: {e}", meta_path.display())),
        };
        Ok(DataDir {
            path,
            meta,
            created,
            _lock: lock,
        })
    }

    pub fn shard_dir(&self, shard: u32) -> PathBuf {
        self.path.join(format!("shard-{shard}"))
    }
}

/// Writes a small file atomically: temp file, fsync, rename, fsync the directory.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let tmp = dir.join(format!("{name}.tmp"));
    let err =
        |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", dir.join(name).display());
    let mut f = File::create(&tmp).map_err(|e| err("create", e))?;
    f.write_all(bytes).map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("fsync", e))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| err("rename", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err("fsync directory of", e))?;
    Ok(())
}
