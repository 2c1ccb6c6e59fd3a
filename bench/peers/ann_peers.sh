#!/usr/bin/env bash
# ANN peers (hnswlib, faiss HNSW) for `ann` (bench/src/bin/ann.rs), from PyPI into a private
# venv, pinned versions, one thread, optionally pinned to a CPU.
#
#   bench/peers/ann_peers.sh version
#   bench/peers/ann_peers.sh run DATA_DIR OUT_JSONL [ann_peers.py options]
#
# Environment: ANN_VENV [~/.cache/tarn-bench/venv]  PEER_CPU  pin the Python process (taskset)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ANN_VENV:-$HOME/.cache/tarn-bench/venv}"
HNSWLIB_VERSION="0.8.0"
FAISS_VERSION="1.15.1"

ensure_venv() {
    if ! "$VENV/bin/python" -c "import hnswlib, faiss, numpy" >/dev/null 2>&1; then
        echo "ann_peers.sh: installing hnswlib==$HNSWLIB_VERSION faiss-cpu==$FAISS_VERSION into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q numpy "hnswlib==$HNSWLIB_VERSION" "faiss-cpu==$FAISS_VERSION" >&2
    fi
}

case "${1:-}" in
    version)
        ensure_venv
        "$VENV/bin/python" -c "import faiss, numpy; print('hnswlib $HNSWLIB_VERSION (PyPI), faiss-cpu', faiss.__version__, '(PyPI), numpy', numpy.__version__)"
        ;;
    run)
        shift
        ensure_venv
        # One thread everywhere: BLAS/OpenMP pools would otherwise use the other core.
        export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
        if [[ -n "${PEER_CPU:-}" ]]; then
            exec taskset -c "$PEER_CPU" "$VENV/bin/python" "$HERE/ann_peers.py" "$@"
        else
            exec "$VENV/bin/python" "$HERE/ann_peers.py" "$@"
        fi
        ;;
    *)
        echo "usage: $0 version | run DATA_DIR OUT_JSONL [options]" >&2
        exit 2
        ;;
esac
