//! The `fraud-gen` binary: its files are the library's data set for the same flags, byte for
//! byte, and bad sizes are refused naming the flag, with nothing written.

use std::process::Command;

use fraud::{Config, Dataset, FILES};

const NOW_US: i64 = 1_796_400_000_000_000;

fn gen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fraud-gen"))
        .args(args)
        .output()
        .expect("run fraud-gen")
}

#[test]
fn files_are_the_library_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let now = NOW_US.to_string();
    let o = gen(&[
        "--seed",
        "9",
        "--now-us",
        &now,
        "--events",
        "500",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();

    let mut config = Config::new(9, NOW_US);
    config.events = 500;
    let data = Dataset::generate(&config);
    let want = dir.path().join("want");
    std::fs::create_dir(&want).unwrap();
    data.write_files(&want).unwrap();
    for (_, file) in FILES {
        let got = std::fs::read(out.join(file)).unwrap();
        assert_eq!(got, std::fs::read(want.join(file)).unwrap(), "{file}");
    }
    let lines = std::fs::read_to_string(out.join("transactions.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 500 + config.ring_events);
    assert!(stdout.contains(&format!("ring cards:    {}", data.ring.cards.join(" "))));
    assert!(stdout.contains(&data.ring.decoy_device));
}

#[test]
fn bad_sizes_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    for (args, names) in [
        (vec!["--cards", "0"], vec!["--cards", "0"]),
        (
            vec!["--span-minutes", "90"],
            vec!["--span-minutes", "90", "50"],
        ),
        (
            vec!["--burst-minutes", "20", "--span-minutes", "10"],
            vec!["--burst-minutes", "--span-minutes"],
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--out", out.to_str().unwrap()]);
        let o = gen(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("error: "), "{err}");
        for n in names {
            assert!(err.contains(n), "{args:?}: {err} does not name {n}");
        }
        assert!(!out.exists(), "{args:?} wrote files");
    }
}
