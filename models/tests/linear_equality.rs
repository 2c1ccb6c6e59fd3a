//! Linear and logistic scores equal a plain reference computation on seeded random models and
//! rows (NULL and NaN imputation and log1p included); the catalog encoding round-trips exactly
//! and every damaged encoding is `Corrupt`, never a panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_models::{LinearInput, LinearKind, LinearModel, Model, ModelError, Scorer};

const RELATIVE_TOLERANCE: f64 = 1e-12;

fn random_model(rng: &mut StdRng) -> LinearModel {
    let n = rng.random_range(1..=40);
    let inputs: Vec<LinearInput> = (0..n)
        .map(|i| LinearInput {
            name: format!("feature_{i}"),
            impute: rng.random_range(-0.5..50.0),
            log1p: rng.random_bool(0.4),
            mean: rng.random_range(-5.0..5.0),
            std: rng.random_range(0.1..10.0),
        })
        .collect();
    // Weights scaled so margins stay within about ±30, where the reference's plain
    // 1/(1 + exp(−z)) is itself accurate to a few ulps.
    let scale = 3.0 / (n as f64).sqrt();
    let weights = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    let kind = if rng.random_bool(0.5) {
        LinearKind::Logistic
    } else {
        LinearKind::Linear
    };
    LinearModel::new(kind, inputs, weights, rng.random_range(-2.0..2.0)).unwrap()
}

/// A row for `model`: 15% NULL, 5% NaN, else a value in the log1p domain (> −1).
fn random_row(rng: &mut StdRng, model: &LinearModel) -> Vec<Option<f64>> {
    (0..model.inputs().len())
        .map(|_| match rng.random_range(0..20) {
            0..=2 => None,
            3 => Some(f64::NAN),
            _ => Some(rng.random_range(-0.99..200.0)),
        })
        .collect()
}

/// The scoring rules written plainly: impute, log1p, standardise, weigh, sum, link.
fn reference(model: &LinearModel, row: &[Option<f64>]) -> f64 {
    let mut z = model.intercept();
    for (i, value) in row.iter().enumerate() {
        let input = &model.inputs()[i];
        let mut t = input.impute;
        if let Some(v) = *value {
            if !v.is_nan() {
                t = v;
            }
        }
        if input.log1p {
            t = (1.0 + t).ln();
        }
        z += model.weights()[i] * ((t - input.mean) / input.std);
    }
    match model.kind() {
        LinearKind::Linear => z,
        LinearKind::Logistic => 1.0 / (1.0 + (-z).exp()),
    }
}

fn relative_error(ours: f64, reference: f64) -> f64 {
    (ours - reference).abs() / reference.abs().max(1e-300)
}

#[test]
fn scores_equal_the_reference() {
    let mut rng = StdRng::seed_from_u64(0x7a12_0010);
    let mut worst = 0.0f64;
    let (mut nulls, mut logs, mut logistic) = (0, 0, 0);
    for _ in 0..500 {
        let model = random_model(&mut rng);
        logistic += usize::from(model.kind() == LinearKind::Logistic);
        for _ in 0..40 {
            let row = random_row(&mut rng, &model);
            nulls += row.iter().filter(|v| v.is_none_or(f64::is_nan)).count();
            logs += model.inputs().iter().filter(|i| i.log1p).count();
            let ours = model.score(&row).unwrap();
            let expected = reference(&model, &row);
            let e = relative_error(ours, expected);
            assert!(
                e <= RELATIVE_TOLERANCE,
                "{ours} vs {expected}: {model:?} {row:?}"
            );
            worst = worst.max(e);
            // The enum dispatches to the same scorer.
            assert_eq!(Model::from(model.clone()).score(&row).unwrap(), ours);
        }
    }
    println!("max relative error {worst:e}; {nulls} NULL/NaN inputs, {logs} log1p inputs");
    assert!(nulls > 10_000 && logs > 10_000 && logistic > 100 && logistic < 400);
}

#[test]
fn logistic_is_accurate_far_from_zero() {
    // Beyond ±30 the plain formula loses relative precision near 0; the stable one does not.
    let input = LinearInput {
        name: "x".into(),
        impute: 0.0,
        log1p: false,
        mean: 0.0,
        std: 1.0,
    };
    let model = LinearModel::new(LinearKind::Logistic, vec![input], vec![1.0], 0.0).unwrap();
    for z in [-700.0f64, -300.0, -40.0, 40.0] {
        let ours = model.score(&[Some(z)]).unwrap();
        let exact = if z < 0.0 { z.exp() } else { 1.0 };
        assert!(relative_error(ours, exact) < 1e-15, "{z}: {ours}");
    }
}

#[test]
fn encoding_round_trips_exactly() {
    let mut rng = StdRng::seed_from_u64(0x7a12_0011);
    for _ in 0..200 {
        let model = random_model(&mut rng);
        let bytes = model.encode();
        let decoded = LinearModel::decode(&bytes).unwrap();
        assert_eq!(decoded, model);
        assert_eq!(decoded.encode(), bytes, "canonical");
        for _ in 0..10 {
            let row = random_row(&mut rng, &model);
            let (a, b) = (model.score(&row).unwrap(), decoded.score(&row).unwrap());
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
}

fn small_model() -> LinearModel {
    let inputs = vec![
        LinearInput {
            name: "amount".into(),
            impute: 12.5,
            log1p: true,
            mean: 3.1,
            std: 1.2,
        },
        LinearInput {
            name: "ip_risk".into(),
            impute: 0.2,
            log1p: false,
            mean: 0.17,
            std: 0.15,
        },
    ];
    LinearModel::new(LinearKind::Logistic, inputs, vec![0.8, -1.5], -2.25).unwrap()
}

fn assert_corrupt(result: Result<LinearModel, ModelError>, what: &str) {
    match result {
        Err(ModelError::Corrupt(_)) => {}
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn every_damaged_byte_is_corrupt() {
    let bytes = small_model().encode();
    assert_eq!(LinearModel::decode(&bytes).unwrap(), small_model());
    for position in 0..bytes.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[position] ^= mask;
            assert_corrupt(
                LinearModel::decode(&damaged),
                &format!("byte {position} ^ {mask:#x}"),
            );
        }
    }
}

#[test]
fn every_truncation_and_extension_is_corrupt() {
    let bytes = small_model().encode();
    for len in 0..bytes.len() {
        assert_corrupt(
            LinearModel::decode(&bytes[..len]),
            &format!("first {len} bytes"),
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_corrupt(LinearModel::decode(&longer), "one byte more");
}

#[test]
fn a_well_checksummed_encoding_that_breaks_a_rule_is_corrupt() {
    // Damage a field, then fix the checksum: the decoder's own checks must still catch it.
    let reseal = |mut body: Vec<u8>| {
        let n = body.len() - 4;
        body.truncate(n);
        let crc = crc_of(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    };
    let bytes = small_model().encode();
    let mut kind = bytes.clone();
    kind[5] = 7;
    assert_corrupt(LinearModel::decode(&reseal(kind)), "kind 7");
    let mut count = bytes.clone();
    count[6] = 3;
    assert_corrupt(LinearModel::decode(&reseal(count)), "three inputs declared");
    // The std of the first input (after header 16, name_len 2, "amount" 6, flags 1,
    // impute 8, mean 8) set to 0.0.
    let mut std = bytes.clone();
    std[41..49].copy_from_slice(&0.0f64.to_le_bytes());
    let message = LinearModel::decode(&reseal(std)).unwrap_err().to_string();
    assert!(
        message.contains("corrupt") && message.contains("std"),
        "{message}"
    );
    let mut flags = bytes.clone();
    flags[24] = 0x02;
    assert_corrupt(LinearModel::decode(&reseal(flags)), "unknown flag");
}

/// CRC-32C (Castagnoli), bitwise: the checksum of the encoding, computed independently.
fn crc_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
