//! Metric names and parsing, the distance each metric reports, and the zero-vector rule.

use tarn_vectors::{Kernels, Metric, VectorError};

#[test]
fn names_round_trip_and_parse_case_insensitively() {
    let table = [
        (Metric::L2, "l2", "vector_l2_ops", "<->"),
        (Metric::Cosine, "cosine", "vector_cosine_ops", "<=>"),
        (Metric::InnerProduct, "ip", "vector_ip_ops", "<#>"),
    ];
    for (m, name, opclass, op) in table {
        assert_eq!(m.name(), name);
        assert_eq!(m.opclass(), opclass);
        assert_eq!(m.operator(), op);
        assert_eq!(m.to_string(), name);
        for s in [
            name.to_string(),
            name.to_uppercase(),
            opclass.to_string(),
            opclass.to_uppercase(),
            mixed_case(opclass),
        ] {
            assert_eq!(Metric::parse(&s), Ok(m), "{s}");
            assert_eq!(s.parse::<Metric>(), Ok(m), "{s}");
        }
        assert_eq!(Metric::parse(m.name()), Ok(m));
    }
    assert_eq!(Metric::ALL.len(), 3);
}

fn mixed_case(s: &str) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

#[test]
fn unknown_metrics_are_refused_by_name() {
    for s in [
        "",
        "euclidean",
        "L1",
        " l2",
        "cosine ",
        "inner_product",
        "vector_l1_ops",
        "hamming",
    ] {
        let e = Metric::parse(s).unwrap_err();
        assert_eq!(e, VectorError::UnknownMetric(s.to_string()));
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{s}`")), "{msg}");
        assert!(msg.contains("l2, cosine or ip"), "{msg}");
    }
    // A long name is cut in the error.
    let long = "x".repeat(10_000);
    let VectorError::UnknownMetric(shown) = Metric::parse(&long).unwrap_err() else {
        panic!("wrong error")
    };
    assert_eq!(shown, format!("{}…", "x".repeat(64)));
}

#[test]
fn distances_have_pgvector_semantics() {
    let kernels: Vec<Kernels> = [Some(Kernels::scalar()), Kernels::avx2_fma()]
        .into_iter()
        .flatten()
        .collect();
    for k in kernels {
        let d = |m: Metric, a: &[f32], b: &[f32]| m.distance_with(k, a, b);
        // <-> is the Euclidean distance, not its square.
        assert_eq!(d(Metric::L2, &[0.0, 0.0], &[3.0, 4.0]), 5.0);
        assert_eq!(d(Metric::L2, &[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        // <=> is 1 - cos: 0 for the same direction, 1 orthogonal, 2 opposite.
        assert_eq!(d(Metric::Cosine, &[1.0, 0.0], &[5.0, 0.0]), 0.0);
        assert_eq!(d(Metric::Cosine, &[1.0, 0.0], &[0.0, 2.0]), 1.0);
        assert_eq!(d(Metric::Cosine, &[1.0, 1.0], &[-3.0, -3.0]), 2.0);
        let scaled = d(Metric::Cosine, &[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]);
        assert!((0.0..1e-6).contains(&scaled), "{scaled}");
        let c = d(Metric::Cosine, &[1.0, 0.0], &[1.0, 1.0]);
        assert!(
            (c - (1.0 - std::f32::consts::FRAC_1_SQRT_2)).abs() < 1e-6,
            "{c}"
        );
        // <#> is the negative inner product.
        assert_eq!(
            d(Metric::InnerProduct, &[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]),
            -32.0
        );
        assert_eq!(d(Metric::InnerProduct, &[1.0, -1.0], &[-2.0, 0.5]), 2.5);
        // Orthogonal: +0.0, never -0.0.
        let z = d(Metric::InnerProduct, &[1.0, 0.0], &[0.0, 1.0]);
        assert_eq!(z.to_bits(), 0.0f32.to_bits());
    }
}

#[test]
fn ordering_keys() {
    let k = Kernels::detected();
    let (a, b) = ([0.0f32, 0.0], [3.0f32, 4.0]);
    assert_eq!(Metric::L2.key(k, &a, &b), 25.0);
    assert_eq!(Metric::L2.distance_from_key(25.0), 5.0);
    assert_eq!(Metric::Cosine.distance_from_key(0.25), 0.25);
    assert_eq!(Metric::InnerProduct.distance_from_key(-3.0), -3.0);
}

#[test]
fn zero_vectors_are_refused_by_cosine_only() {
    for z in [vec![0.0f32; 4], vec![0.0, -0.0, 0.0, -0.0]] {
        assert_eq!(Metric::Cosine.check(&z, 4), Err(VectorError::ZeroVector));
        assert_eq!(Metric::Cosine.prepare(&z, 4), Err(VectorError::ZeroVector));
        assert_eq!(Metric::L2.check(&z, 4), Ok(()));
        assert_eq!(Metric::InnerProduct.check(&z, 4), Ok(()));
        // Unchecked, the distance is still defined: exactly 1, to anything.
        assert_eq!(Metric::Cosine.distance(&z, &[1.0, 2.0, 3.0, 4.0]), 1.0);
        assert_eq!(Metric::Cosine.distance(&z, &z), 1.0);
    }
    let msg = VectorError::ZeroVector.to_string();
    assert!(
        msg.contains("zero vector") && msg.contains("cosine"),
        "{msg}"
    );
    // A tiny vector is not zero: its direction is kept (norm computed in f64).
    let tiny = [1e-40f32, 0.0, -1e-40, 0.0];
    assert_eq!(Metric::Cosine.check(&tiny, 4), Ok(()));
    let p = Metric::Cosine.prepare(&tiny, 4).unwrap();
    let h = std::f32::consts::FRAC_1_SQRT_2;
    assert_eq!(p, vec![h, 0.0, -h, 0.0]);
    let d = Metric::Cosine.distance(&tiny, &[1.0, 0.0, -1.0, 0.0]);
    assert!((0.0..1e-6).contains(&d), "{d}");
}

#[test]
fn prepare_normalizes_for_cosine_only() {
    let v = [3.0f32, 4.0];
    assert_eq!(Metric::Cosine.prepare(&v, 2).unwrap(), vec![0.6, 0.8]);
    assert_eq!(Metric::L2.prepare(&v, 2).unwrap(), v.to_vec());
    assert_eq!(Metric::InnerProduct.prepare(&v, 2).unwrap(), v.to_vec());
    // Large components normalize without overflow.
    let big = [1e16f32, -1e16, 1e16, -1e16];
    let p = Metric::Cosine.prepare(&big, 4).unwrap();
    assert_eq!(p, vec![0.5, -0.5, 0.5, -0.5]);
}

#[test]
fn cosine_distance_stays_in_range() {
    // Normalization rounding can make â·â exceed 1; the clamp keeps the distance ≥ 0.
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        (rng_state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for n in 1..200 {
        let v: Vec<f32> = (0..n).map(|_| next()).collect();
        if v.iter().all(|&x| x == 0.0) {
            continue;
        }
        let same = Metric::Cosine.distance(&v, &v);
        assert!((0.0..1e-6).contains(&same), "n = {n}: {same}");
        let neg: Vec<f32> = v.iter().map(|x| -x).collect();
        let opp = Metric::Cosine.distance(&v, &neg);
        assert!((2.0 - 1e-6..=2.0).contains(&opp), "n = {n}: {opp}");
    }
}
