//! The Go client (`clients/go`) against a real tarnd: `gofmt -l`, `go vet` and `go test` of
//! the Go module, with `TARND_BIN` pointing at the tarnd cargo built for this test run. The Go
//! tests start their own servers (temp data dir, loopback port in 20000..32000).
//!
//! Go comes from `PATH` (or Debian's `/usr/lib/go*/bin`); if it is missing and we are root, it
//! is installed with `apt-get install -y golang-go` (Debian 12: Go 1.19, the version the module
//! targets). With `CI=true` a missing Go is a failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Upper bound for the whole Go test run (`go test -timeout`); the Go tests bound each wait.
const GO_TEST_TIMEOUT: &str = "300s";

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/go")
}

/// `target/` of this build: tarnd is `target/<profile>/tarnd`.
fn target_dir() -> PathBuf {
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

/// Runs `go` (or `gofmt`) in the module with the test environment; returns its output.
fn run(bin: &Path, args: &[&str]) -> Output {
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

fn check(bin: &Path, args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn go_client_vet_fmt_and_tests() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let go = match find_go() {
        Some(go) => go,
        None => match install_go().map(|_| find_go()) {
            Ok(Some(go)) => go,
            Ok(None) => panic!("golang-go was installed but no go binary was found"),
            Err(e) if ci => panic!("CI=true and Go is unavailable: {e}"),
            Err(e) => {
                eprintln!("SKIPPED go_client_vet_fmt_and_tests: {e}");
                return;
            }
        },
    };
    let goroot = run(&go, &["env", "GOROOT"]);
    check(&go, &["env", "GOROOT"], &goroot);
    let gofmt = PathBuf::from(String::from_utf8_lossy(&goroot.stdout).trim()).join("bin/gofmt");
    let fmt = run(&gofmt, &["-l", "."]);
    check(&gofmt, &["-l", "."], &fmt);
    assert!(
        fmt.stdout.is_empty(),
        "gofmt -l lists unformatted files:\n{}",
        String::from_utf8_lossy(&fmt.stdout)
    );
    let vet = ["vet", "./..."];
    check(&go, &vet, &run(&go, &vet));
    let test = ["test", "-count=1", "-timeout", GO_TEST_TIMEOUT, "./..."];
    let out = run(&go, &test);
    check(&go, &test, &out);
    print!("{}", String::from_utf8_lossy(&out.stdout));
}
