//! Randomized oracle tests of `WindowState`: every aggregate equals a straightforward
//! recomputation from the raw values (exactly; HyperLogLog within 4 standard errors), for any
//! arrival order, any split into buckets, any read range, after expiry and after an
//! encode/decode round trip; the SIMD read equals the scalar read bit for bit; garbage
//! checkpoints never panic.

use std::cmp::Ordering;
use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tarn_features::{AggKind, AggSpec, WindowState, DISTINCT_EXACT_MAX, HLL_STD_ERROR};
use tarn_types::{ColumnType, Value};

const WIDTH: i64 = 10_000_000; // 10 s buckets

/// Input columns of the test stream.
const COLS: [ColumnType; 6] = [
    ColumnType::Boolean,
    ColumnType::BigInt,
    ColumnType::Double,
    ColumnType::Text,
    ColumnType::Bytes,
    ColumnType::Timestamp,
];

/// (spec, input column) pairs covering every kind and input type.
fn aggs() -> Vec<(AggSpec, Option<usize>)> {
    use AggKind::*;
    let mut v: Vec<(AggSpec, Option<usize>)> = vec![(AggSpec::new(CountStar, None), None)];
    let kinds_for = |t: ColumnType| -> Vec<AggKind> {
        let mut k = vec![Count, CountDistinct, First, Last];
        if matches!(t, ColumnType::BigInt | ColumnType::Double) {
            k.extend([Sum, Avg, Variance, Stddev, VarPop, StddevPop]);
        }
        if matches!(
            t,
            ColumnType::BigInt | ColumnType::Double | ColumnType::Timestamp
        ) {
            k.extend([Min, Max]);
        }
        k
    };
    for (c, &t) in COLS.iter().enumerate() {
        for k in kinds_for(t) {
            let spec = AggSpec::new(k, Some(t));
            assert!(spec.result_type().is_ok());
            v.push((spec, Some(c)));
        }
    }
    v
}

#[derive(Clone, Debug)]
struct Event {
    time: i64,
    bucket: i64,
    cols: Vec<Value>,
    /// Per aggregate: does the event pass its filter?
    pass: Vec<bool>,
}

fn random_double(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..40) {
        0 => f64::NAN,
        1 => -f64::NAN,
        2 => f64::INFINITY,
        3 => f64::NEG_INFINITY,
        4 => 0.0,
        5 => -0.0,
        6 => f64::from_bits(rng.random_range(1u64..1 << 52)),
        // Squares overflow to infinity (finite squares stay small enough that their sums,
        // and the oracle's partial sums, stay finite).
        7 => rng.random_range(-1e200..1e200),
        8..=10 => rng.random_range(-1.0..1.0) * 2f64.powi(rng.random_range(-1000..490)),
        11..=15 => rng.random_range(-3i64..3) as f64,
        _ => rng.random_range(-100_000i64..100_000) as f64 / 100.0,
    }
}

/// Value domains are small so that duplicates and time ties are common. `specials` = false
/// keeps doubles finite and non-NaN for the distinct-heavy tests.
fn random_event(rng: &mut StdRng, naggs: usize, specials: bool, t_range: i64) -> Event {
    let time = rng.random_range(-t_range..t_range) * 1_000_000 + rng.random_range(0..3);
    let null = |rng: &mut StdRng| rng.random_range(0..7) == 0;
    let mut cols = Vec::with_capacity(COLS.len());
    for t in COLS {
        if null(rng) {
            cols.push(Value::Null);
            continue;
        }
        cols.push(match t {
            ColumnType::Boolean => Value::Bool(rng.random()),
            ColumnType::BigInt => Value::Int(match rng.random_range(0..10) {
                0 => rng.random(),
                1 => i64::MAX - rng.random_range(0..3),
                2 => i64::MIN + rng.random_range(0..3),
                _ => rng.random_range(-50..50),
            }),
            ColumnType::Double => Value::Double(loop {
                let d = random_double(rng);
                if specials || d.is_finite() {
                    break d;
                }
            }),
            ColumnType::Text => {
                let words = ["", "a", "b", "ab", "ba", "zz", "é", "card-1", "card-2"];
                Value::Text(words[rng.random_range(0..words.len())].to_string())
            }
            ColumnType::Bytes => {
                let n = rng.random_range(0..3);
                Value::Bytes((0..n).map(|_| rng.random_range(0..3u8)).collect())
            }
            ColumnType::Timestamp => Value::Timestamp(rng.random_range(-5..5) * 1_000_000),
            // COLS has no vector column: views cannot aggregate vectors.
            ColumnType::Vector(_) => unreachable!("no VECTOR column among COLS"),
        });
    }
    Event {
        time,
        bucket: time.div_euclid(WIDTH),
        cols,
        pass: (0..naggs).map(|_| rng.random_range(0..5) != 0).collect(),
    }
}

fn inputs<'a>(aggs: &[(AggSpec, Option<usize>)], e: &'a Event) -> Vec<Option<&'a Value>> {
    const NULL: Value = Value::Null;
    aggs.iter()
        .enumerate()
        .map(|(i, (_, c))| {
            e.pass[i].then(|| match c {
                Some(c) => &e.cols[*c],
                None => &NULL,
            })
        })
        .collect()
}

fn build(aggs: &[(AggSpec, Option<usize>)], events: &[Event]) -> WindowState {
    let specs: Vec<AggSpec> = aggs.iter().map(|a| a.0).collect();
    let mut st = WindowState::new(&specs);
    for e in events {
        st.update(&specs, e.bucket, e.time, &inputs(aggs, e));
    }
    st
}

/// Bit-exact value equality (DOUBLE by bits).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn assert_same(got: &[Value], want: &[Value], aggs: &[(AggSpec, Option<usize>)], ctx: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            same(g, w),
            "{ctx}: aggregate {i} {:?}: got {g:?}, want {w:?}",
            aggs[i].0
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle: straightforward recomputation from raw values.

/// CPython's math.fsum (Shewchuk + correct rounding): independent of the crate's
/// superaccumulator. Valid for finite inputs whose partial sums stay finite.
fn fsum(xs: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &x0 in xs {
        let mut x = x0;
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    let mut n = partials.len();
    let mut hi = 0.0;
    if n > 0 {
        n -= 1;
        hi = partials[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = partials[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        if n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
    }
    hi
}

/// IEEE semantics of an exact sum with special values.
fn oracle_sum(xs: &[f64]) -> f64 {
    let nan = xs.iter().any(|x| x.is_nan());
    let pinf = xs.contains(&f64::INFINITY);
    let ninf = xs.contains(&f64::NEG_INFINITY);
    if nan || (pinf && ninf) {
        return f64::NAN;
    }
    if pinf {
        return f64::INFINITY;
    }
    if ninf {
        return f64::NEG_INFINITY;
    }
    let s = fsum(xs);
    if s == 0.0 {
        if xs.iter().all(|x| x.to_bits() == (-0.0f64).to_bits()) {
            -0.0
        } else {
            0.0
        }
    } else {
        s
    }
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        (Value::Double(x), Value::Double(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ => panic!("mixed types"),
    }
}

fn canonical(v: &Value) -> Vec<u8> {
    match v {
        Value::Double(d) if d.is_nan() => b"nan".to_vec(),
        Value::Double(d) if *d == 0.0 => b"zero".to_vec(),
        Value::Double(d) => d.to_bits().to_le_bytes().to_vec(),
        other => format!("{other:?}").into_bytes(),
    }
}

/// The expected result of every aggregate over `events` (already restricted to the range).
/// `distinct_exact` = false skips the exact check of count(DISTINCT) (returned as Null).
fn oracle(aggs: &[(AggSpec, Option<usize>)], events: &[&Event]) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (spec, col)) in aggs.iter().enumerate() {
        let pass: Vec<&Event> = events.iter().copied().filter(|e| e.pass[i]).collect();
        let vals: Vec<(i64, &Value)> = match col {
            None => pass.iter().map(|e| (e.time, &Value::Null)).collect(),
            Some(c) => pass
                .iter()
                .filter(|e| !e.cols[*c].is_null())
                .map(|e| (e.time, &e.cols[*c]))
                .collect(),
        };
        let nums: Vec<f64> = vals
            .iter()
            .map(|(_, v)| match v {
                Value::Int(x) => *x as f64,
                Value::Double(x) => *x,
                _ => 0.0,
            })
            .collect();
        let n = vals.len();
        let opt = |v: Value| if n == 0 { Value::Null } else { v };
        let var = |sample: bool| -> Value {
            if n == 0 || (sample && n < 2) {
                return Value::Null;
            }
            let s = oracle_sum(&nums);
            let sq: Vec<f64> = nums.iter().map(|x| x * x).collect();
            let q = oracle_sum(&sq);
            let nf = n as f64;
            let mut m2 = q - s * s / nf;
            if m2 < 0.0 {
                m2 = 0.0;
            }
            Value::Double(if sample { m2 / (nf - 1.0) } else { m2 / nf })
        };
        let sqrt = |v: Value| match v {
            Value::Double(x) => Value::Double(x.sqrt()),
            other => other,
        };
        out.push(match spec.kind {
            AggKind::CountStar => Value::Int(pass.len() as i64),
            AggKind::Count => Value::Int(n as i64),
            AggKind::Sum => match spec.input {
                Some(ColumnType::BigInt) => opt(Value::Int(vals.iter().fold(0i64, |a, (_, v)| {
                    if let Value::Int(x) = v {
                        a.wrapping_add(*x)
                    } else {
                        a
                    }
                }))),
                _ => opt(Value::Double(oracle_sum(&nums))),
            },
            AggKind::Min => vals
                .iter()
                .map(|(_, v)| (*v).clone())
                .min_by(cmp_values)
                .unwrap_or(Value::Null),
            AggKind::Max => vals
                .iter()
                .map(|(_, v)| (*v).clone())
                .max_by(cmp_values)
                .unwrap_or(Value::Null),
            AggKind::Avg => opt(Value::Double(oracle_sum(&nums) / n as f64)),
            AggKind::Variance => var(true),
            AggKind::VarPop => var(false),
            AggKind::Stddev => sqrt(var(true)),
            AggKind::StddevPop => sqrt(var(false)),
            AggKind::CountDistinct => Value::Int(
                vals.iter()
                    .map(|(_, v)| canonical(v))
                    .collect::<HashSet<_>>()
                    .len() as i64,
            ),
            AggKind::First => vals
                .iter()
                .min_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_values(a.1, b.1)))
                .map(|(_, v)| (*v).clone())
                .unwrap_or(Value::Null),
            AggKind::Last => vals
                .iter()
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_values(a.1, b.1)))
                .map(|(_, v)| (*v).clone())
                .unwrap_or(Value::Null),
        });
    }
    out
}

fn in_range(events: &[Event], lo: i64, hi: i64) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| e.bucket >= lo && e.bucket <= hi)
        .collect()
}

fn specs_of(aggs: &[(AggSpec, Option<usize>)]) -> Vec<AggSpec> {
    aggs.iter().map(|a| a.0).collect()
}

/// Reads with both kernel sets, checks they agree bit for bit, returns the SIMD result.
fn read_checked(st: &WindowState, specs: &[AggSpec], lo: i64, hi: i64) -> Vec<Value> {
    let simd = st.read(specs, lo, hi);
    let scalar = st.read_scalar(specs, lo, hi);
    assert_eq!(simd.len(), scalar.len());
    for (i, (a, b)) in simd.iter().zip(&scalar).enumerate() {
        assert!(
            same(a, b),
            "SIMD/scalar differ on {:?}: {a:?} vs {b:?}",
            specs[i]
        );
    }
    simd
}

// ---------------------------------------------------------------------------------------------

#[test]
fn random_multisets_match_oracle() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    for seed in 0..150u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(0..400);
        let t_range = [5, 40, 300][seed as usize % 3];
        let events: Vec<Event> = (0..n)
            .map(|_| random_event(&mut rng, aggs.len(), true, t_range))
            .collect();
        let st = build(&aggs, &events);
        let ids: HashSet<i64> = events.iter().map(|e| e.bucket).collect();
        assert_eq!(st.bucket_count(), ids.len());
        assert_eq!(st.newest_event_time(), events.iter().map(|e| e.time).max());
        let got = read_checked(&st, &specs, i64::MIN, i64::MAX);
        let all: Vec<&Event> = events.iter().collect();
        assert_same(
            &got,
            &oracle(&aggs, &all),
            &aggs,
            &format!("seed {seed} full"),
        );
        for _ in 0..10 {
            let lo = rng.random_range(-t_range / 10 - 3..t_range / 10 + 3);
            let hi = lo + rng.random_range(-1..8);
            let got = read_checked(&st, &specs, lo, hi);
            let want = oracle(&aggs, &in_range(&events, lo, hi));
            assert_same(&got, &want, &aggs, &format!("seed {seed} [{lo}, {hi}]"));
        }
    }
}

#[test]
fn empty_range_gives_empty_values() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    let st = WindowState::new(&specs);
    assert_eq!(st.heap_bytes(), st.heap_bytes());
    for got in [st.read(&specs, 0, 10), st.read_scalar(&specs, 5, 4)] {
        for ((spec, _), v) in aggs.iter().zip(&got) {
            let want = match spec.kind {
                AggKind::CountStar | AggKind::Count | AggKind::CountDistinct => Value::Int(0),
                _ => Value::Null,
            };
            assert_eq!(v, &want, "{spec:?}");
        }
    }
    assert_eq!(st.newest_event_time(), None);
    assert_eq!(st.bucket_count(), 0);
}

#[test]
fn arrival_order_does_not_matter() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(1000 + seed);
        let n = rng.random_range(1..300);
        let mut events: Vec<Event> = (0..n)
            .map(|_| random_event(&mut rng, aggs.len(), true, 100))
            .collect();
        let first = build(&aggs, &events);
        let mut enc1 = Vec::new();
        first.encode(&mut enc1);
        let r1 = read_checked(&first, &specs, i64::MIN, i64::MAX);
        for _ in 0..3 {
            events.shuffle(&mut rng);
            let other = build(&aggs, &events);
            let mut enc2 = Vec::new();
            other.encode(&mut enc2);
            assert_eq!(enc1, enc2, "seed {seed}: partial states differ");
            let r2 = read_checked(&other, &specs, i64::MIN, i64::MAX);
            assert_same(&r2, &r1, &aggs, &format!("seed {seed} shuffled"));
            for lo in -12..12 {
                assert_same(
                    &read_checked(&other, &specs, lo, lo + 3),
                    &read_checked(&first, &specs, lo, lo + 3),
                    &aggs,
                    "range",
                );
            }
        }
    }
}

#[test]
fn buckets_combine_like_one_bucket() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(2000 + seed);
        let n = rng.random_range(1..300);
        let events: Vec<Event> = (0..n)
            .map(|_| random_event(&mut rng, aggs.len(), true, 300))
            .collect();
        let split = build(&aggs, &events);
        assert!(split.bucket_count() > 1 || n < 5);
        let mut one = WindowState::new(&specs);
        for e in &events {
            one.update(&specs, 7, e.time, &inputs(&aggs, e));
        }
        assert_eq!(one.bucket_count(), 1);
        assert_same(
            &read_checked(&split, &specs, i64::MIN, i64::MAX),
            &read_checked(&one, &specs, 7, 7),
            &aggs,
            &format!("seed {seed}"),
        );
        // Arbitrary re-bucketing (not by time) gives the same result too.
        let mut random = WindowState::new(&specs);
        for e in &events {
            random.update(&specs, rng.random_range(-3..4), e.time, &inputs(&aggs, e));
        }
        assert_same(
            &read_checked(&random, &specs, -3, 3),
            &read_checked(&one, &specs, 7, 7),
            &aggs,
            &format!("seed {seed} random buckets"),
        );
    }
}

#[test]
fn expiry_drops_old_buckets() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    for seed in 0..30u64 {
        let mut rng = StdRng::seed_from_u64(3000 + seed);
        let n = rng.random_range(1..400);
        let mut events: Vec<Event> = (0..n)
            .map(|_| random_event(&mut rng, aggs.len(), true, 300))
            .collect();
        let mut st = build(&aggs, &events);
        let mut cut = -31;
        while cut <= 31 {
            st.expire_before(cut);
            events.retain(|e| e.bucket >= cut);
            let ids: HashSet<i64> = events.iter().map(|e| e.bucket).collect();
            assert_eq!(st.bucket_count(), ids.len());
            assert!(st.bucket_ids().all(|b| b >= cut));
            assert_eq!(st.newest_event_time(), events.iter().map(|e| e.time).max());
            let all: Vec<&Event> = events.iter().collect();
            let got = read_checked(&st, &specs, i64::MIN, i64::MAX);
            assert_same(
                &got,
                &oracle(&aggs, &all),
                &aggs,
                &format!("seed {seed} cut {cut}"),
            );
            // Expired state == state built from the surviving events only.
            let mut a = Vec::new();
            let mut b = Vec::new();
            st.encode(&mut a);
            build(&aggs, &events).encode(&mut b);
            assert_eq!(a, b, "seed {seed} cut {cut}");
            // Keep ingesting after expiry.
            if rng.random_range(0..3) == 0 {
                let e = random_event(&mut rng, aggs.len(), true, 300);
                if e.bucket >= cut {
                    st.update(&specs, e.bucket, e.time, &inputs(&aggs, &e));
                    events.push(e);
                }
            }
            cut += rng.random_range(1..9);
        }
        st.expire_before(i64::MAX);
        assert_eq!(st.bucket_count(), 0);
        assert_eq!(st.newest_event_time(), None);
        assert_eq!(st.heap_bytes(), WindowState::new(&specs).heap_bytes());
    }
}

#[test]
fn encode_decode_round_trip() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(4000 + seed);
        let n = rng.random_range(0..300);
        let events: Vec<Event> = (0..n)
            .map(|_| random_event(&mut rng, aggs.len(), true, 200))
            .collect();
        let (a, b) = events.split_at(n / 2);
        let mut st = build(&aggs, a);
        let mut bytes = Vec::new();
        st.encode(&mut bytes);
        let mut back = WindowState::decode(&specs, &bytes).expect("decode");
        let mut again = Vec::new();
        back.encode(&mut again);
        assert_eq!(bytes, again);
        assert_eq!(back.bucket_count(), st.bucket_count());
        assert_eq!(back.newest_event_time(), st.newest_event_time());
        // Continue ingesting on both: same state.
        for e in b {
            st.update(&specs, e.bucket, e.time, &inputs(&aggs, e));
            back.update(&specs, e.bucket, e.time, &inputs(&aggs, e));
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        st.encode(&mut x);
        back.encode(&mut y);
        assert_eq!(x, y);
        assert_same(
            &read_checked(&back, &specs, i64::MIN, i64::MAX),
            &read_checked(&st, &specs, i64::MIN, i64::MAX),
            &aggs,
            "round trip",
        );
    }
    // A state for other aggregates is refused.
    let st = WindowState::new(&specs);
    let mut bytes = Vec::new();
    st.encode(&mut bytes);
    let other = [AggSpec::new(AggKind::CountStar, None)];
    assert!(WindowState::decode(&other, &bytes).is_err());
}

fn exercise(st: &mut WindowState, specs: &[AggSpec], aggs: &[(AggSpec, Option<usize>)]) {
    let _ = st.read(specs, i64::MIN, i64::MAX);
    let _ = st.read_scalar(specs, -5, 5);
    let mut rng = StdRng::seed_from_u64(9);
    let e = random_event(&mut rng, aggs.len(), true, 50);
    st.update(specs, e.bucket, e.time, &inputs(aggs, &e));
    let _ = st.read(specs, i64::MIN, i64::MAX);
    let mut out = Vec::new();
    st.encode(&mut out);
    st.expire_before(0);
    let _ = st.read(specs, i64::MIN, i64::MAX);
    let _ = st.heap_bytes();
}

#[test]
fn garbage_never_panics() {
    let aggs = aggs();
    let specs = specs_of(&aggs);
    let mut rng = StdRng::seed_from_u64(5000);
    // Valid encodings: truncated, extended, bit-flipped.
    for seed in 0..12u64 {
        let mut r2 = StdRng::seed_from_u64(5100 + seed);
        let n = r2.random_range(0..80);
        let events: Vec<Event> = (0..n)
            .map(|_| random_event(&mut r2, aggs.len(), true, 30))
            .collect();
        let mut st = build(&aggs, &events);
        // Make some wide accumulators and an HLL bucket.
        if seed % 3 == 0 {
            for i in 0..(DISTINCT_EXACT_MAX + 10) {
                let mut e = random_event(&mut r2, aggs.len(), true, 30);
                e.cols[3] = Value::Text(format!("v{i}"));
                e.cols[2] = Value::Double(if i % 2 == 0 { 1e300 } else { 1e-300 });
                e.bucket = 1;
                st.update(&specs, e.bucket, e.time, &inputs(&aggs, &e));
            }
        }
        let mut bytes = Vec::new();
        st.encode(&mut bytes);
        assert!(WindowState::decode(&specs, &bytes).is_ok());
        for cut in (0..bytes.len()).step_by(1 + bytes.len() / 200) {
            assert!(WindowState::decode(&specs, &bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(WindowState::decode(&specs, &longer).is_err());
        for _ in 0..400 {
            let mut b = bytes.clone();
            let flips = rng.random_range(1..4);
            for _ in 0..flips {
                let at = rng.random_range(0..b.len());
                b[at] ^= 1 << rng.random_range(0..8);
            }
            if let Ok(mut st) = WindowState::decode(&specs, &b) {
                exercise(&mut st, &specs, &aggs);
            }
        }
    }
    // Random bytes, with a plausible header sometimes.
    for _ in 0..3000 {
        let n = rng.random_range(0..200);
        let mut b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        if !b.is_empty() && rng.random() {
            b[0] = tarn_features::WINDOW_FORMAT_VERSION;
        }
        if let Ok(mut st) = WindowState::decode(&specs, &b) {
            exercise(&mut st, &specs, &aggs);
        }
        let small = [AggSpec::new(AggKind::Sum, Some(ColumnType::Double))];
        if let Ok(mut st) = WindowState::decode(&small, &b) {
            let _ = st.read(&small, i64::MIN, i64::MAX);
            st.update(&small, 0, 0, &[Some(&Value::Double(1.5))]);
            let _ = st.read(&small, i64::MIN, i64::MAX);
        }
    }
    // Hand-made states at the limits of the limb window.
    let small = [AggSpec::new(AggKind::Sum, Some(ColumnType::Double))];
    for (lo, w) in [(0u8, 36u8), (35, 1), (20, 16)] {
        let mut b = vec![tarn_features::WINDOW_FORMAT_VERSION];
        let mut probe = Vec::new();
        WindowState::new(&small).encode(&mut probe);
        b.extend_from_slice(&probe[1..9]); // shape
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0i64.to_le_bytes());
        b.push(lo);
        b.push(w);
        b.extend_from_slice(&0u64.to_le_bytes()); // id
        b.extend_from_slice(&1u64.to_le_bytes()); // flags: present
        for j in 0..w {
            let v = if j + 1 == w {
                i64::MAX as u64
            } else {
                u64::MAX
            };
            b.extend_from_slice(&v.to_le_bytes());
        }
        let mut st = WindowState::decode(&small, &b).expect("valid hand-made state");
        for x in [f64::MAX, -f64::MAX, f64::MAX, 1.0, f64::from_bits(1)] {
            st.update(&small, 0, 0, &[Some(&Value::Double(x))]);
        }
        let _ = st.read(&small, 0, 0);
        assert!(WindowState::decode(&small, &{
            let mut c = b.clone();
            c[21] = 37 - w; // lo byte: window beyond MAX_LIMBS
            c
        })
        .is_err());
    }
}

#[test]
fn hyperloglog_beyond_the_exact_threshold() {
    let specs = [AggSpec::new(
        AggKind::CountDistinct,
        Some(ColumnType::BigInt),
    )];
    let mut rng = StdRng::seed_from_u64(6000);
    for (buckets, per_bucket, overlap) in
        [(1usize, 5000u64, 0u64), (4, 3000, 1000), (60, 2000, 500)]
    {
        let mut st = WindowState::new(&specs);
        let mut truth = HashSet::new();
        let mut order = Vec::new();
        for b in 0..buckets as u64 {
            for j in 0..per_bucket {
                let v = (b * (per_bucket - overlap) + j) as i64;
                truth.insert(v);
                order.push((b as i64, v));
            }
        }
        order.shuffle(&mut rng);
        for (b, v) in &order {
            st.update(&specs, *b, *b * WIDTH, &[Some(&Value::Int(*v))]);
        }
        let got = match read_checked(&st, &specs, i64::MIN, i64::MAX)[0] {
            Value::Int(x) => x as f64,
            ref other => panic!("{other:?}"),
        };
        let n = truth.len() as f64;
        let err = (got - n).abs() / n;
        assert!(
            err <= 4.0 * HLL_STD_ERROR,
            "{buckets} buckets: estimate {got} for {n} (error {err})"
        );
        // Bit-identical whatever the order.
        order.shuffle(&mut rng);
        let mut other = WindowState::new(&specs);
        for (b, v) in &order {
            other.update(&specs, *b, *b * WIDTH, &[Some(&Value::Int(*v))]);
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        st.encode(&mut x);
        other.encode(&mut y);
        assert_eq!(x, y);
        assert_same(
            &other.read(&specs, i64::MIN, i64::MAX),
            &st.read(&specs, i64::MIN, i64::MAX),
            &[(specs[0], Some(1))],
            "hll order",
        );
        // Encode/decode keeps the sketches.
        let back = WindowState::decode(&specs, &x).unwrap();
        assert_eq!(back.read(&specs, 0, 100), st.read(&specs, 0, 100));
    }
    // Exact buckets whose union exceeds the threshold: still exact.
    let mut st = WindowState::new(&specs);
    for b in 0..3i64 {
        for j in 0..1000i64 {
            st.update(&specs, b, b * WIDTH, &[Some(&Value::Int(b * 700 + j))]);
        }
    }
    assert_eq!(st.read(&specs, 0, 2), vec![Value::Int(2400)]);
    assert_eq!(st.read(&specs, 1, 1), vec![Value::Int(1000)]);
    // A value hashed into an HLL bucket and repeated in an exact one is counted once.
    let mut st = WindowState::new(&specs);
    for j in 0..2000i64 {
        st.update(&specs, 0, 0, &[Some(&Value::Int(j))]);
    }
    let alone = st.read(&specs, 0, 0);
    for j in 0..100i64 {
        st.update(&specs, 1, WIDTH, &[Some(&Value::Int(j))]);
    }
    assert_eq!(st.read(&specs, 0, 1), alone);
}

#[test]
fn small_keys_are_small() {
    // The benchmark's 10 aggregates.
    use AggKind::*;
    use ColumnType::*;
    let specs = [
        AggSpec::new(CountStar, None),
        AggSpec::new(Sum, Some(Double)),
        AggSpec::new(Min, Some(Double)),
        AggSpec::new(Max, Some(Double)),
        AggSpec::new(Avg, Some(Double)),
        AggSpec::new(Count, Some(Double)),
        AggSpec::new(Stddev, Some(Double)),
        AggSpec::new(First, Some(Double)),
        AggSpec::new(Last, Some(Double)),
        AggSpec::new(Sum, Some(BigInt)),
    ];
    let mut st = WindowState::new(&specs);
    assert_eq!(st.heap_bytes(), 0);
    let amount = Value::Double(12.34);
    let n = Value::Int(3);
    let inputs = [
        Some(&Value::Null),
        Some(&amount),
        Some(&amount),
        Some(&amount),
        Some(&amount),
        Some(&amount),
        Some(&amount),
        Some(&amount),
        Some(&amount),
        Some(&n),
    ];
    st.update(&specs, 100, 100 * WIDTH, &inputs);
    // 8 · (13 + 4·W) bytes per bucket; 12.34 and its square fit W = 1..2 limbs.
    assert!(st.heap_bytes() <= 8 * (13 + 4 * 2), "{}", st.heap_bytes());
    for b in 101..103 {
        st.update(&specs, b, b * WIDTH, &inputs);
    }
    assert!(
        st.heap_bytes() <= 3 * 8 * (13 + 4 * 2),
        "{}",
        st.heap_bytes()
    );
    // A 60-bucket window.
    for b in 103..160 {
        st.update(&specs, b, b * WIDTH, &inputs);
    }
    assert_eq!(st.bucket_count(), 60);
    assert!(
        st.heap_bytes() <= 90 * 8 * (13 + 4 * 2),
        "{}",
        st.heap_bytes()
    );
    let r = st.read(&specs, 100, 159);
    assert_eq!(r[0], Value::Int(60));
    assert_eq!(r[9], Value::Int(180));
    assert_eq!(
        r[1],
        Value::Double(tarn_features::exact_sum(vec![12.34; 60]))
    );
}

#[test]
fn mixed_magnitudes_widen_and_narrow_the_limb_window() {
    let specs = [
        AggSpec::new(AggKind::Sum, Some(ColumnType::Double)),
        AggSpec::new(AggKind::VarPop, Some(ColumnType::Double)),
    ];
    let mut st = WindowState::new(&specs);
    let xs = [1e-300, 1e300, -1e300, 5.5, f64::MAX, -f64::MAX, 3e-320];
    for (b, x) in xs.iter().enumerate() {
        let v = Value::Double(*x);
        st.update(&specs, b as i64, b as i64, &[Some(&v), Some(&v)]);
    }
    let wide = st.heap_bytes();
    let r = st.read(&specs, 0, 10);
    assert_eq!(r[0], Value::Double(tarn_features::exact_sum(xs)));
    st.expire_before(3);
    let r = st.read(&specs, 0, 10);
    assert_eq!(
        r[0],
        Value::Double(tarn_features::exact_sum(xs[3..].to_vec()))
    );
    st.expire_before(6);
    assert_eq!(st.read(&specs, 0, 10)[0], Value::Double(3e-320));
    assert!(st.heap_bytes() < wide / 4, "{} vs {wide}", st.heap_bytes());
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Doubles over the whole finite range, subnormals and near-overflow values included.
fn wide_double(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..6) {
        0 => (rng.random_range(-1_000_000i64..1_000_000) as f64) / 100.0,
        1 => {
            let e = rng.random_range(-600..600);
            rng.random_range(-1.0..1.0) * 2f64.powi(e)
        }
        2 => {
            f64::from_bits(rng.random_range(1u64..(1 << 52)))
                * if rng.random() { -1.0 } else { 1.0 }
        }
        3 => rng.random_range(-1e15..1e15),
        4 => 1e300 * rng.random_range(-1.0..1.0),
        _ => rng.random_range(-1.0..1.0) * 1e-300,
    }
}

/// The exactly rounded sum equals an independent `fsum`, in any order (with exact
/// cancellations).
#[test]
fn exact_sum_matches_fsum_and_order() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..3000 {
        let n = rng.random_range(1..60);
        let mut xs: Vec<f64> = (0..n).map(|_| wide_double(&mut rng)).collect();
        if rng.random_range(0..4) == 0 {
            let k = xs.len();
            for i in 0..k {
                xs.push(-xs[i]);
            }
            xs.push(rng.random_range(-1e-20..1e-20));
        }
        let want = fsum(&xs);
        let got = tarn_features::exact_sum(xs.iter().copied());
        assert!(same_bits(got, want), "{got:e} vs fsum {want:e} for {xs:?}");
        xs.reverse();
        assert!(same_bits(tarn_features::exact_sum(xs.iter().copied()), got));
    }
}
