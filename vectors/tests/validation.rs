//! Bad input gets an error that says what and where, and changes nothing.

use tarn_vectors::{
    check_dimensions, check_vector, ExactIndex, Index, Metric, SearchParams, VectorError,
    VectorIndex, MAX_COMPONENT_MAGNITUDE, MAX_DIMENSIONS, MAX_K,
};

#[test]
fn check_vector_names_the_first_bad_component() {
    assert_eq!(check_vector(&[1.0, 2.0, 3.0], 3), Ok(()));
    assert_eq!(
        check_vector(&[1.0, 2.0], 3),
        Err(VectorError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    );
    let cases = [
        (vec![0.0, f32::NAN, f32::INFINITY], 1, "NaN"),
        (vec![0.0, 1.0, f32::INFINITY, f32::NAN], 2, "+infinity"),
        (vec![f32::NEG_INFINITY, 0.0, 0.0, 0.0], 0, "-infinity"),
    ];
    for (v, index, what) in cases {
        let e = check_vector(&v, v.len()).unwrap_err();
        assert_eq!(e, VectorError::NonFinite { index, what });
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("component {index} ")) && msg.contains(what),
            "{msg}"
        );
    }
    // Dimension first, then components in order.
    assert_eq!(
        check_vector(&[f32::NAN], 2),
        Err(VectorError::DimensionMismatch {
            expected: 2,
            got: 1
        })
    );
}

#[test]
fn component_magnitude_is_limited() {
    let m = MAX_COMPONENT_MAGNITUDE;
    assert_eq!(check_vector(&[m, -m], 2), Ok(()));
    let over = m * 1.01;
    let e = check_vector(&[1.0, -over, f32::NAN], 3).unwrap_err();
    assert_eq!(
        e,
        VectorError::TooLarge {
            index: 1,
            value: -over,
            max: m
        }
    );
    assert!(e.to_string().contains("component 1 "), "{e}");
    assert!(check_vector(&[f32::MAX], 1).is_err());
}

#[test]
fn dimensions_are_limited() {
    assert_eq!(check_dimensions(1), Ok(()));
    assert_eq!(check_dimensions(MAX_DIMENSIONS), Ok(()));
    for dim in [0, MAX_DIMENSIONS + 1, usize::MAX] {
        let e = VectorError::DimensionsOutOfRange {
            dim,
            max: MAX_DIMENSIONS,
        };
        assert_eq!(check_dimensions(dim), Err(e.clone()));
        assert_eq!(check_vector(&vec![0.0; dim.min(5000)], dim), Err(e.clone()));
        assert_eq!(ExactIndex::new(Metric::L2, dim).unwrap_err(), e);
    }
    assert_eq!(
        check_dimensions(0).unwrap_err().to_string(),
        "vector dimension 0 is out of range: must be 1..=4096"
    );
}

#[test]
fn bad_writes_leave_the_index_unchanged() {
    for metric in Metric::ALL {
        let mut idx = Index::from(ExactIndex::new(metric, 3).unwrap());
        assert_eq!(idx.upsert(7, &[1.0, 2.0, 3.0]), Ok(true));
        let before = idx.vector(7).unwrap().to_vec();
        let bad: [(&[f32], VectorError); 3] = [
            (
                &[1.0, 2.0],
                VectorError::DimensionMismatch {
                    expected: 3,
                    got: 2,
                },
            ),
            (
                &[1.0, f32::NAN, 0.0],
                VectorError::NonFinite {
                    index: 1,
                    what: "NaN",
                },
            ),
            (
                &[0.0, 0.0, f32::NEG_INFINITY],
                VectorError::NonFinite {
                    index: 2,
                    what: "-infinity",
                },
            ),
        ];
        for (v, e) in bad {
            assert_eq!(idx.upsert(7, v), Err(e.clone()), "{metric}");
            assert_eq!(idx.upsert(8, v), Err(e), "{metric}");
        }
        let zero = idx.upsert(8, &[0.0, 0.0, 0.0]);
        if metric == Metric::Cosine {
            assert_eq!(zero, Err(VectorError::ZeroVector));
            assert_eq!(
                idx.upsert(7, &[0.0, -0.0, 0.0]),
                Err(VectorError::ZeroVector)
            );
            assert_eq!(idx.len(), 1);
            assert!(!idx.contains(8));
        } else {
            assert_eq!(zero, Ok(true));
            assert!(idx.delete(8));
        }
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.vector(7).unwrap(), &before[..]);
    }
}

#[test]
fn bad_searches_are_refused() {
    let p = SearchParams::default();
    let all = |_: u64| true;
    for metric in Metric::ALL {
        let mut idx = ExactIndex::new(metric, 2).unwrap();
        idx.upsert(1, &[1.0, 0.0]).unwrap();
        let q = [1.0, 1.0];
        for k in [0, MAX_K + 1, usize::MAX] {
            let e = idx.search(&q, k, &all, &p).unwrap_err();
            assert_eq!(e, VectorError::KOutOfRange { k, max: MAX_K });
        }
        assert_eq!(
            VectorError::KOutOfRange { k: 0, max: MAX_K }.to_string(),
            "k = 0 is out of range: must be 1..=1000"
        );
        assert_eq!(idx.search(&q, MAX_K, &all, &p).unwrap().len(), 1);
        assert_eq!(
            idx.search(&[1.0], 1, &all, &p).unwrap_err(),
            VectorError::DimensionMismatch {
                expected: 2,
                got: 1
            }
        );
        assert_eq!(
            idx.search(&[f32::NAN, 0.0], 1, &all, &p).unwrap_err(),
            VectorError::NonFinite {
                index: 0,
                what: "NaN"
            }
        );
        let zero = idx.search(&[0.0, 0.0], 1, &all, &p);
        if metric == Metric::Cosine {
            assert_eq!(zero.unwrap_err(), VectorError::ZeroVector);
        } else {
            assert_eq!(zero.unwrap().len(), 1);
        }
    }
}
