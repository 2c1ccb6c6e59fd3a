#!/usr/bin/env python3
"""ANN peers for tarn-bench's `ann` benchmark: hnswlib and faiss HNSW, in-process, one thread.

    ann_peers.py DATA_DIR OUT_JSONL --m 16 --efc 200 --efs 16,32,64,128 --filter-ef 64 [--metric l2]

DATA_DIR is written by `ann` (bench/src/bin/ann.rs): base.fvecs, query.fvecs, attr.u32 (one
little-endian u32 per base row), gt-<case>.ivecs (exact top-k per query, row ids), cases.json
(the filter cases: name and the attribute bound `attr < bound`). The same bytes are read by
Tarn's side, so both sides search the same data and score against the same ground truth.

Every query is one call (as a server answers one request); latency is measured around the
call with perf_counter_ns and includes the Python call overhead (~1-3 us), reported as is.
Writes one JSON object per (system, case, ef) to OUT_JSONL; faiss's carry distances_per_query
(its hnsw_stats.ndis); hnswlib's Python binding does not expose its distance count.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    assert (rows[:, 0] == dim).all(), f"{path}: inconsistent dimensions"
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pct(sorted_ns, p):
    i = max(1, min(len(sorted_ns), int(np.ceil(len(sorted_ns) * p)))) - 1
    return sorted_ns[i] / 1000.0


def measure(search, queries, gt, k, allowed=None, counter=None):
    """Runs every query once (after a warm-up pass over the first 50) and scores it.

    counter: optional (reset, read) pair of functions counting distance computations; reset
    after the warm-up, read after the last query, reported per query."""
    for q in queries[:50]:
        search(q)
    if counter is not None:
        counter[0]()
    lat = []
    hits = 0
    short = 0
    start = time.perf_counter_ns()
    for i, q in enumerate(queries):
        t0 = time.perf_counter_ns()
        ids = search(q)
        lat.append(time.perf_counter_ns() - t0)
        ids = [int(x) for x in ids if x >= 0]
        truth = set(int(x) for x in gt[i] if x >= 0)
        want = len(truth)
        if len(ids) < want:
            short += 1
        if allowed is not None:
            ids = [x for x in ids if allowed[x]]
        hits += len(truth.intersection(ids))
    total = time.perf_counter_ns() - start
    expected = int((gt >= 0).sum())
    lat.sort()
    extra = {} if counter is None else {"distances_per_query": counter[1]() / len(queries)}
    return {
        **extra,
        "recall": hits / expected if expected else 1.0,
        "qps": len(queries) / (total / 1e9),
        "p50_us": pct(lat, 0.50),
        "p99_us": pct(lat, 0.99),
        "max_us": lat[-1] / 1000.0,
        "short_results": short,
        "queries": len(queries),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--efs", default="16,32,64,128")
    ap.add_argument("--filter-ef", type=int, default=64)
    ap.add_argument("--metric", default="l2", choices=["l2", "ip", "cosine"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--only", default="hnswlib,faiss")
    args = ap.parse_args()

    import faiss
    import hnswlib

    faiss.omp_set_num_threads(1)
    base = read_vecs(os.path.join(args.data, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(args.data, "query.fvecs"), np.float32)
    attr = np.fromfile(os.path.join(args.data, "attr.u32"), dtype="<u4")
    with open(os.path.join(args.data, "cases.json")) as f:
        cases = json.load(f)
    gts = {c["name"]: read_vecs(os.path.join(args.data, f"gt-{c['name']}.ivecs"), np.int32) for c in cases}
    n, dim = base.shape
    efs = [int(x) for x in args.efs.split(",")]
    out = open(args.out, "w")

    def emit(rec):
        rec.update({"rows": n, "dim": dim, "metric": args.metric, "m": args.m, "efc": args.efc})
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print(json.dumps(rec), file=sys.stderr)

    systems = args.only.split(",")
    if "hnswlib" in systems:
        space = {"l2": "l2", "ip": "ip", "cosine": "cosine"}[args.metric]
        idx = hnswlib.Index(space=space, dim=dim)
        before = rss_bytes()
        t0 = time.perf_counter()
        idx.init_index(max_elements=n, ef_construction=args.efc, M=args.m, random_seed=100)
        idx.set_num_threads(1)
        idx.add_items(base, np.arange(n), num_threads=1)
        build_s = time.perf_counter() - t0
        mem = rss_bytes() - before
        emit({"system": "hnswlib", "version": hnswlib.__version__ if hasattr(hnswlib, "__version__") else "0.8.0",
              "case": "build", "build_s": build_s, "bytes_per_vector": mem / n})
        k = args.k
        for c in cases:
            gt = gts[c["name"]]
            bound = c.get("bound")
            for ef in (efs if bound is None else [args.filter_ef]):
                idx.set_ef(max(ef, k))
                if bound is None:
                    fn = lambda q: idx.knn_query(q, k=k, num_threads=1)[0][0]
                    allowed = None
                else:
                    allowed = attr < bound
                    flt = lambda i, a=allowed: bool(a[i])
                    def fn(q, flt=flt):
                        try:
                            return idx.knn_query(q, k=k, num_threads=1, filter=flt)[0][0]
                        except RuntimeError:
                            # hnswlib raises when it finds fewer than k: a short result.
                            return []
                r = measure(fn, queries, gt, k, allowed)
                r.update({"system": "hnswlib", "case": c["name"], "ef": ef})
                emit(r)

    if "faiss" in systems:
        metric = faiss.METRIC_INNER_PRODUCT if args.metric in ("ip", "cosine") else faiss.METRIC_L2
        data = base
        if args.metric == "cosine":
            data = base / np.linalg.norm(base, axis=1, keepdims=True)
        before = rss_bytes()
        t0 = time.perf_counter()
        idx = faiss.IndexHNSWFlat(dim, args.m, metric)
        idx.hnsw.efConstruction = args.efc
        idx.add(data)
        build_s = time.perf_counter() - t0
        mem = rss_bytes() - before
        emit({"system": "faiss", "version": faiss.__version__, "case": "build", "build_s": build_s,
              "bytes_per_vector": mem / n})
        k = args.k
        for c in cases:
            gt = gts[c["name"]]
            bound = c.get("bound")
            for ef in (efs if bound is None else [args.filter_ef]):
                params = faiss.SearchParametersHNSW()
                params.efSearch = max(ef, k)
                allowed = None
                if bound is not None:
                    allowed = attr < bound
                    bits = np.packbits(allowed, bitorder="little")
                    sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
                    params.sel = sel
                def fn(q, params=params):
                    qq = q.reshape(1, -1)
                    if args.metric == "cosine":
                        qq = qq / np.linalg.norm(qq)
                    return idx.search(qq, k, params=params)[1][0]
                # faiss counts the distances of every HNSW search in a global (one thread here).
                stats = faiss.cvar.hnsw_stats
                r = measure(fn, queries, gt, k, allowed, counter=(stats.reset, lambda: stats.ndis))
                r.update({"system": "faiss", "case": c["name"], "ef": ef})
                emit(r)
    out.close()


if __name__ == "__main__":
    main()
