//! Seeded vector data for the vector benchmarks (`distances`, `ann`), and the `.fvecs` /
//! `.ivecs` files the ANN peers read.
//!
//! The generator is deterministic (xorshift64* with Box–Muller, no dependency): the same seed
//! gives the same bytes on every machine, so a result file names its data by seed and size.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// xorshift64* with Box–Muller.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn gaussian(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Vectors around `clusters` centres (centres N(0, 2²) per component, points N(0, 1) around
/// them): gaussian clusters, the "100 gaussian clusters" data.
pub struct Data {
    centres: Vec<Vec<f64>>,
    rng: Rng,
}

impl Data {
    /// A generator of `dim`-dimensional vectors around `clusters` centres drawn from `seed`.
    pub fn new(seed: u64, dim: usize, clusters: usize) -> Data {
        let mut rng = Rng(seed);
        let centres = (0..clusters.max(1))
            .map(|_| (0..dim).map(|_| 2.0 * rng.gaussian()).collect())
            .collect();
        Data { centres, rng }
    }

    /// The next vector: a random centre plus unit gaussian noise.
    pub fn draw(&mut self) -> Vec<f32> {
        let c = (self.rng.next_u64() % self.centres.len() as u64) as usize;
        let rng = &mut self.rng;
        self.centres[c]
            .iter()
            .map(|&x| (x + rng.gaussian()) as f32)
            .collect()
    }
}

/// The median of `xs` (sorts it).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The `p` quantile of `xs` by the nearest-rank rule (sorts it).
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let i = ((xs.len() as f64 * p).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

/// Writes `rows` as `.fvecs` (per row: i32 LE dimension, then the f32 LE components).
pub fn write_fvecs(path: &Path, rows: &[Vec<f32>]) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    for r in rows {
        w.write_all(&(r.len() as i32).to_le_bytes())?;
        for x in r {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    w.flush()
}

/// Writes `rows` as `.ivecs` (per row: i32 LE count, then i32 LE values); every row is padded
/// with −1 to `width` so the file is rectangular (a query with fewer matches than k).
pub fn write_ivecs(path: &Path, rows: &[Vec<u64>], width: usize) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    for r in rows {
        assert!(r.len() <= width, "row wider than the file");
        w.write_all(&(width as i32).to_le_bytes())?;
        for i in 0..width {
            let v = r
                .get(i)
                .map_or(-1, |&x| i32::try_from(x).expect("row id fits i32"));
            w.write_all(&v.to_le_bytes())?;
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_vectors_and_another_does_not() {
        let a: Vec<Vec<f32>> = {
            let mut d = Data::new(7, 8, 3);
            (0..5).map(|_| d.draw()).collect()
        };
        let b: Vec<Vec<f32>> = {
            let mut d = Data::new(7, 8, 3);
            (0..5).map(|_| d.draw()).collect()
        };
        let mut other = Data::new(8, 8, 3);
        assert_eq!(a, b);
        assert_ne!(a[0], other.draw());
    }

    #[test]
    fn fvecs_and_ivecs_have_the_documented_layout() {
        let dir = std::env::temp_dir().join(format!("tarn-vecdata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.fvecs");
        write_fvecs(&f, &[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(bytes.len(), 2 * (4 + 8));
        assert_eq!(&bytes[0..4], &2i32.to_le_bytes());
        assert_eq!(&bytes[4..8], &1.0f32.to_le_bytes());
        let g = dir.join("a.ivecs");
        write_ivecs(&g, &[vec![5], vec![]], 2).unwrap();
        let bytes = std::fs::read(&g).unwrap();
        assert_eq!(bytes.len(), 2 * 12);
        assert_eq!(&bytes[4..8], &5i32.to_le_bytes());
        assert_eq!(&bytes[8..12], &(-1i32).to_le_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
