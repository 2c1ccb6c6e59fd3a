mod common;

use common::*;
use tarn_storage::*;

#[test]
fn checkpoint_write_load_and_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        assert!(checkpoint::load_latest(&dir).unwrap().is_none());
        assert!(checkpoint::load_latest(&dir.join("missing"))
            .unwrap()
            .is_none());
        let p10 = payload(10, 3 << 20); // spans several write chunks
        let path10 = checkpoint::write(&dir, 10, &p10).await.unwrap();
        assert!(path10.ends_with("checkpoint-00000000000000000010.ckp"));
        let c = checkpoint::load_latest(&dir).unwrap().unwrap();
        assert_eq!((c.lsn, c.payload()), (10, &p10[..]));
        assert_eq!(c.payload().as_ptr() as usize % 16, 0);
        drop(c);
        let saved10 = std::fs::read(&path10).unwrap();

        let p20 = payload(20, 777);
        let path20 = checkpoint::write(&dir, 20, &p20).await.unwrap();
        assert!(!path10.exists(), "older checkpoints are deleted");
        let c = checkpoint::load_latest(&dir).unwrap().unwrap();
        assert_eq!(
            (c.lsn, c.payload(), c.path.as_path()),
            (20, &p20[..], path20.as_path())
        );
        assert_eq!(c.payload().as_ptr() as usize % 16, 0);
        drop(c);

        // A corrupt newest checkpoint falls back to the next older valid one.
        std::fs::write(&path10, &saved10).unwrap();
        flip_byte(&path20, CHECKPOINT_HEADER_SIZE_BYTES + 100);
        let c = checkpoint::load_latest(&dir).unwrap().unwrap();
        assert_eq!((c.lsn, c.payload()), (10, &p10[..]));
        drop(c);
        // Corrupt header too: still 10; both corrupt: none.
        flip_byte(&path10, 20);
        assert!(checkpoint::load_latest(&dir).unwrap().is_none());

        // Empty payloads work; a leftover temp file is ignored by load and cleaned by write.
        std::fs::write(
            dir.join("checkpoint-00000000000000000030.ckp.tmp"),
            b"partial",
        )
        .unwrap();
        checkpoint::write(&dir, 40, b"").await.unwrap();
        let c = checkpoint::load_latest(&dir).unwrap().unwrap();
        assert_eq!((c.lsn, c.payload().len()), (40, 0));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    });
}

#[test]
fn checkpoint_truncated_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let path = checkpoint::write(&dir, 5, &payload(5, 10_000))
            .await
            .unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(CHECKPOINT_HEADER_SIZE_BYTES + 5000).unwrap();
        assert!(checkpoint::load_latest(&dir).unwrap().is_none());
    });
}

#[test]
fn small_file_atomic_write_and_checked_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let path = dir.join("catalog");
        assert_eq!(read_file_checked(&path).unwrap(), None);
        write_file_atomic(&dir, "catalog", b"version one")
            .await
            .unwrap();
        assert_eq!(read_file_checked(&path).unwrap().unwrap(), b"version one");
        let big = payload(1, 2_500_000);
        write_file_atomic(&dir, "catalog", &big).await.unwrap();
        assert_eq!(read_file_checked(&path).unwrap().unwrap(), big);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            SMALL_FILE_HEADER_SIZE_BYTES + big.len() as u64
        );
        assert!(!dir.join("catalog.tmp").exists());
        write_file_atomic(&dir, "catalog", b"").await.unwrap();
        assert_eq!(read_file_checked(&path).unwrap().unwrap(), b"");

        write_file_atomic(&dir, "meta", b"hello meta")
            .await
            .unwrap();
        let meta = dir.join("meta");
        flip_byte(&meta, SMALL_FILE_HEADER_SIZE_BYTES + 2);
        let err = read_file_checked(&meta).unwrap_err();
        assert_corrupt(
            &err,
            &meta,
            SMALL_FILE_HEADER_SIZE_BYTES,
            "payload CRC mismatch",
        );
        flip_byte(&meta, SMALL_FILE_HEADER_SIZE_BYTES + 2);
        assert_eq!(read_file_checked(&meta).unwrap().unwrap(), b"hello meta");
        flip_byte(&meta, 18);
        assert_corrupt(
            &read_file_checked(&meta).unwrap_err(),
            &meta,
            0,
            "header CRC mismatch",
        );
        std::fs::write(&meta, b"short").unwrap();
        assert!(read_file_checked(&meta).unwrap_err().is_corrupt());
        assert!(read_file_checked(&meta)
            .unwrap_err()
            .to_string()
            .starts_with("file corrupt: "));
    });
}
