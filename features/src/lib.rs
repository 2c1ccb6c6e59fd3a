//! `tarn-features`: aggregate kernels for feature views (work in progress; nothing uses it yet).
