//! Go for the tests that run the Go client (`clients/go`): find it, install it if missing, run
//! it with an environment that stays inside the cargo target dir, and build the
//! `tarn-go-context` tool once per test binary.
//!
//! Go comes from `PATH` (or Debian's `/usr/lib/go*/bin`); if it is missing and we are root, it
//! is installed with `apt-get install -y golang-go` (Debian 12: Go 1.19, the version the module
//! targets). With `CI=true` a missing Go is a failure, never a skip (see [`ensure_go`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The Go module of the Go client.
pub fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/go")
}

/// `target/` of this build: tarnd is `target/<profile>/tarnd`.
pub fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_tarnd"));
    bin.parent()
        .and_then(Path::parent)
        .expect("tarnd lives in target/<profile>/")
        .to_path_buf()
}

fn find_go() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("go"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let debian = std::fs::read_dir("/usr/lib")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("go"))
                .map(|e| e.path().join("bin/go"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(debian)
        .chain([PathBuf::from("/usr/local/go/bin/go")])
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs Debian's golang-go (after an `apt-get update` if the first attempt fails).
fn install_go() -> Result<(), String> {
    if !is_root() {
        return Err("Go is not installed and this test is not root (cannot apt-get)".into());
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("apt-get {args:?}: {e}"))
    };
    let first = apt(&["install", "-y", "golang-go"])?;
    if first.status.success() {
        return Ok(());
    }
    let _ = apt(&["update"])?;
    let second = apt(&["install", "-y", "golang-go"])?;
    if second.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install -y golang-go failed:\n{}",
            String::from_utf8_lossy(&second.stderr)
        ))
    }
}

/// The `go` binary, installed if missing. `Err` (the reason) only when Go is unavailable and
/// `CI` is not `true`: the caller skips; with `CI=true` an unavailable Go panics.
pub fn ensure_go() -> Result<PathBuf, String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match find_go() {
        Some(go) => Ok(go),
        None => match install_go().map(|_| find_go()) {
            Ok(Some(go)) => Ok(go),
            Ok(None) => panic!("golang-go was installed but no go binary was found"),
            Err(e) if ci => panic!("CI=true and Go is unavailable: {e}"),
            Err(e) => Err(e),
        },
    }
}

/// Runs `go` (or `gofmt`) in the module with the test environment; returns its output.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    let target = target_dir().join("go");
    Command::new(bin)
        .args(args)
        .current_dir(module_dir())
        .env("TARND_BIN", env!("CARGO_BIN_EXE_tarnd"))
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("path"))
        .env("GOMODCACHE", target.join("path/pkg/mod"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GO111MODULE", "on")
        .env_remove("TARN_AUTH_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", bin.display()))
}

/// Panics with the command's output unless it succeeded.
pub fn check(bin: &Path, args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `clients/go/cmd/tarn-go-context` into `target/go/bin/` once per test binary and
/// returns its path. Panics if Go is unavailable (a test that needs the tool cannot run).
pub fn context_tool() -> PathBuf {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        let go = ensure_go().unwrap_or_else(|e| panic!("the Go context tool needs Go: {e}"));
        let out = target_dir().join("go/bin/tarn-go-context");
        let out_s = out.to_string_lossy().into_owned();
        let args = ["build", "-o", out_s.as_str(), "./cmd/tarn-go-context"];
        check(&go, &args, &run(&go, &args));
        out
    })
    .clone()
}
