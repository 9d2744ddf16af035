"""The Python steps of the device check (benchmarks/device_check_driver.py runs them, each in its own
process with its own time limit; docs/backends.md, "The device check"). Each step that has figures
writes one JSON file into WORK with a ``pass`` per row; the driver judges and summarises them.

    python3 benchmarks/device_check.py gate [--any-source]   # installed swnas, cuda + cupy available
    python3 benchmarks/device_check.py sanitize              # small calls reaching every kernel path
    python3 benchmarks/device_check.py scale WORK [--full]   # 1.28 M x 2,048 and C = 1,000 vs float64 torch
    python3 benchmarks/device_check.py bench WORK [--full]   # PLS-VIP cuda vs the read floor and cpp
    python3 benchmarks/device_check.py search WORK           # a tiny search scoring inf-FS via score_many

``--smoke`` runs scale and bench at a small size. Without a GPU every step fails with the reason
(the device check must not pass without one).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SMOKE = "--smoke" in sys.argv
FULL = "--full" in sys.argv
TOL = 1e-6  # every device result against its float64 reference (relative to the largest score)


def _gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _status(name: str) -> tuple[bool, str]:
    from swnas.scoring import backend_status

    return backend_status(name)


def _sync() -> None:
    if _gpu():
        import torch

        torch.cuda.synchronize()


def _best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        out = fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _write(work: Path, name: str, data: dict) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.json").write_text(json.dumps(data, indent=1, default=float))


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------------------------------- gate
def gate(any_source: bool = False) -> int:
    """The built package is the one imported, and both GPU backends report available."""
    import swnas
    from swnas.scoring import backend_status

    where = Path(swnas.__file__).resolve().parent
    rows = {"swnas": str(where)}
    ok = True
    if not any_source and not any(part in ("site-packages", "dist-packages") for part in where.parts):
        rows["swnas_error"] = "swnas is imported from a source tree, not from the installed build"
        ok = False
    for name in ("cuda", "cupy"):
        avail, why = backend_status(name)
        rows[name] = "available" if avail else f"UNAVAILABLE: {why}"
        ok &= avail
    print(json.dumps(rows, indent=1))
    return int(not ok)


# ------------------------------------------------------------------------------------ sanitize
def sanitize() -> int:
    """Small calls that reach every kernel path, each checked against the float64 reference; run
    under compute-sanitizer. Paths: PLS float4 loads (float32, p % 4 == 0) and scalar loads (p = 37,
    float64), per-class sums in shared memory (C = 5) and in global atomics (C = 60 > 48); inf-FS
    float32 packed ranking, float64 two-pass ranking, Pearson; il-FS with TT = 4 (shared histogram)
    and TT = 80 (> 64 token rows: global atomics), C = 60; score_many of each."""
    if not _status("cuda")[0]:
        print("sanitize: cuda backend unavailable:", _status("cuda")[1])
        return 1
    import torch

    from swnas.scoring import score, score_many

    rng = np.random.default_rng(1)
    bad = 0

    def problem(n: int, p: int, c: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        X = np.maximum(rng.standard_normal((n, p)), 0.0).astype(dtype)  # ReLU-like: ties at zero
        y = rng.integers(0, c, n)
        y[:c] = np.arange(c)
        X[:, 3] += y
        return X, y

    cases = [
        ("pls", {}, 300, 40, 5, np.float32),
        ("pls", {}, 300, 40, 60, np.float32),
        ("pls", {}, 300, 37, 60, np.float64),
        ("pls", {}, 300, 37, 5, np.float64),
        ("inffs", {"corr": "spearman"}, 300, 37, 5, np.float32),
        ("inffs", {"corr": "spearman"}, 300, 37, 5, np.float64),
        ("inffs", {"corr": "pearson"}, 300, 40, 5, np.float32),
        ("ilfs", {}, 300, 37, 5, np.float32),
        ("ilfs", {"TT": 80}, 300, 37, 60, np.float32),
        ("ilfs", {"TT": 80}, 300, 40, 60, np.float64),
    ]
    for crit, params, n, p, c, dtype in cases:
        X, y = problem(n, p, c, dtype)
        ref = score(X, y, crit, backend="numpy", **params).features
        Xt = torch.from_numpy(X).cuda()
        got = score(Xt, y, crit, backend="cuda", **params).features
        many = score_many([(Xt, y), (Xt[:100], y[:100])], crit, backend="cuda", **params)
        ref1 = score(X[:100], y[:100], crit, backend="numpy", **params).features
        err = max(_rel(got, ref), _rel(many[0].features, ref), _rel(many[1].features, ref1))
        tol = 1e-9 if dtype == np.float64 else 1e-6
        print(f"sanitize {crit} {params} {n}x{p} C={c} {np.dtype(dtype).name}: rel err {err:.2e} (tol {tol:g})")
        bad += not err <= tol
    torch.cuda.synchronize()
    print(f"sanitize: {bad} case(s) off their reference")
    return int(bad > 0)


# ------------------------------------------------------------------------------ references
def _planted_device(n: int, p: int, c: int, seed: int = 0, floor: float = 0.0):
    """float32 (n, p) post-ReLU-like features on the GPU with 16 class-dependent columns: clamped at
    ``floor`` (0: about half of every plain column is zero, the ties that make float32 sums drift)."""
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    y = torch.randint(0, c, (n,), device="cuda", generator=g)
    X = torch.randn((n, p), device="cuda", generator=g, dtype=torch.float32)
    X[:, :16] += (torch.randn((c, 16), device="cuda", generator=g) * 1.5)[y]
    X.clamp_(min=floor)
    return X, y


def _chunks(n: int, rows: int = 1 << 16):
    for r0 in range(0, n, rows):
        yield r0, min(n, r0 + rows)


def pls_torch_reference(X, y, c: int, n_components: int = 2) -> np.ndarray:
    """PLS-VIP with every pass over X in float64 torch on the device (chunks cast from float32),
    the small algebra from swnas (docs/scorers.md, section 1)."""
    import torch

    from swnas.scoring._pls_algebra import PlsAlgebra

    n, p = X.shape
    colsum = torch.zeros(p, dtype=torch.float64, device=X.device)
    cls = torch.zeros((c, p), dtype=torch.float64, device=X.device)
    for r0, r1 in _chunks(n):
        B = X[r0:r1].double()
        colsum += B.sum(0)
        cls.index_add_(0, y[r0:r1], B)
    mu = colsum / n
    sq = torch.zeros(p, dtype=torch.float64, device=X.device)
    for r0, r1 in _chunks(n):
        sq += ((X[r0:r1].double() - mu) ** 2).sum(0)
    counts = torch.bincount(y, minlength=c).double()
    stats = [t.cpu().numpy() for t in (colsum, sq, cls, counts)]
    alg = PlsAlgebra.from_stats(stats, n, True)

    def project_raw(v: np.ndarray, c0: float):
        vt = torch.from_numpy(v).to(X.device)
        g = torch.zeros(p, dtype=torch.float64, device=X.device)
        ts, tt = 0.0, 0.0
        for r0, r1 in _chunks(n):
            B = X[r0:r1].double()
            t = B @ vt - c0
            g += B.T @ t
            ts += float(t.sum())
            tt += float(t @ t)
        return g.cpu().numpy(), ts, tt

    return alg.vip(n_components, project_raw)


def pearson_inffs_torch_reference(X, alpha: float = 0.5, factor: float = 0.9) -> np.ndarray:
    """Pearson inf-FS with the centred Gram matrix in float64 torch on the device."""
    import torch

    from swnas.scoring._inffs_cuda import solve_torch

    n, p = X.shape
    mu = torch.zeros(p, dtype=torch.float64, device=X.device)
    for r0, r1 in _chunks(n):
        mu += X[r0:r1].double().sum(0)
    mu /= n
    G = torch.zeros((p, p), dtype=torch.float64, device=X.device)
    for r0, r1 in _chunks(n):
        Z = X[r0:r1].double() - mu
        G += Z.T @ Z
    std = torch.sqrt(torch.diagonal(G) / (n - 1))
    return solve_torch(G, std, alpha, factor)


def ilfs_torch_reference(X, y, c: int, TT: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """il-FS token counts in float64 torch on the device, then the reference EM and closed form."""
    import torch

    from swnas.scoring.ilfs import ilfs_from_relevance, plsa_relevance

    n, p = X.shape
    sums = torch.zeros((c, p), dtype=torch.float64, device=X.device)
    for r0, r1 in _chunks(n):
        sums.index_add_(0, y[r0:r1], X[r0:r1].double())
    mu = sums / torch.bincount(y, minlength=c).double().clamp(min=1)[:, None]
    counts = torch.zeros(TT * p, dtype=torch.int64, device=X.device)
    fidx = torch.arange(p, device=X.device)
    rows = max(256, (1 << 31) // (8 * p * c))
    for r0, r1 in _chunks(n, rows):
        d = (X[r0:r1].double()[:, None, :] - mu[None]) ** 2
        inv = 1.0 / d
        zero = ~(inv <= torch.finfo(torch.float64).max)
        inv = torch.where(zero, torch.zeros((), dtype=inv.dtype, device=X.device), inv)
        yi = y[r0:r1]
        b = torch.arange(r1 - r0, device=X.device)
        own, own_zero, nz = inv[b, yi], zero[b, yi], zero.sum(1)
        tot = inv.sum(1)
        pi = own / torch.where(tot > 0, tot, torch.ones_like(tot))
        pi = torch.where(nz > 0, torch.where(own_zero, 1.0 / nz.clamp(min=1), torch.zeros_like(pi)), pi)
        t = torch.clamp(torch.floor(pi * TT), max=TT - 1).long()
        counts += torch.bincount((t * p + fidx[None]).reshape(-1), minlength=TT * p)
    cnt = counts.reshape(TT, p).cpu().numpy()
    v, _, _ = plsa_relevance(cnt, 1000, 1e-6)
    return ilfs_from_relevance(v)[0], cnt


def average_ranks_torch(Xc):
    """Centred average ranks (n, b) of the columns of Xc by torch ``sort``: a run of equal values
    at sorted positions lo..hi-1 gets (lo + hi - n) / 2, i.e. its 1-based mean rank minus (n+1)/2."""
    import torch

    n, b = Xc.shape
    sv, si = torch.sort(Xc.T.contiguous(), dim=1)
    new = torch.ones_like(sv, dtype=torch.bool)
    new[:, 1:] = sv[:, 1:] != sv[:, :-1]  # -0.0 == +0.0: the zeros tie, as in the kernel
    flat = new.reshape(-1)
    gid = torch.cumsum(flat, 0) - 1
    starts = torch.nonzero(flat).reshape(-1)
    ends = torch.cat([starts[1:], torch.tensor([b * n], device=Xc.device)])
    seg = (starts // n) * n
    avg = 0.5 * ((starts - seg) + (ends - seg) - n).double()
    R = torch.empty((b, n), dtype=torch.float64, device=Xc.device)
    R.scatter_(1, si, avg[gid].reshape(b, n))
    return R.T


def spearman_rank_gram_check(X, cols_per_check: int = 64) -> dict:
    """The cuda backend's ranks Z, Gram G and std for the Spearman inf-FS of X (n x p float32 on the
    device, n*p > 2^31: more than one packed-sort column block, the kernel's block edges included),
    compared with torch: every column's ranks exactly, G against the float64 Gram of those ranks."""
    import torch

    from swnas.scoring._inffs_cuda import _gram_buffers, solve_torch
    from swnas.scoring._torch_cuda import dtype_code
    from swnas.scoring.backends import cuda_module

    n, p = X.shape
    torch.cuda.empty_cache()
    Z, G, std = _gram_buffers(X)
    secs, _ = _best_of(
        lambda: cuda_module().inffs_rank_gram(
            X.data_ptr(),
            dtype_code(X),
            n,
            p,
            True,
            Z.data_ptr(),
            G.data_ptr(),
            std.data_ptr(),
            torch.cuda.current_stream().cuda_stream,
        ),
        1,
    )
    mismatched = []
    for j0 in range(0, p, cols_per_check):
        j1 = min(p, j0 + cols_per_check)
        R = average_ranks_torch(X[:, j0:j1])
        same = (R.float() == Z[:, j0:j1]).all(dim=0)
        if not bool(same.all()):
            mismatched += [j0 + int(j) for j in torch.nonzero(~same).reshape(-1).tolist()]
    G64 = torch.zeros((p, p), dtype=torch.float64, device=X.device)
    for r0, r1 in _chunks(n):
        Zd = Z[r0:r1].double()
        G64 += Zd.T @ Zd
    gram_err = float((G - G64).abs().max() / G64.abs().max())
    Z = None  # the ranks' memory back before the solve (a `del` would unbind the timed lambda's Z)
    score_err = _rel(solve_torch(G, std, 0.5, 0.9), solve_torch(G64, std, 0.5, 0.9))
    min_blocks = math.ceil(p / ((1 << 31) // n - 1))
    return {
        "case": f"inffs spearman cuda ranks+gram {n}x{p} (>= {min_blocks} column blocks)",
        "seconds": secs,
        "rel_err": max(gram_err, score_err),
        "gram_rel_err": gram_err,
        "columns_checked": p,
        "rank_mismatches": len(mismatched),
        "first_mismatches": mismatched[:8],
        "tol": TOL,
        "pass": not mismatched and gram_err <= TOL and score_err <= TOL,
    }


# --------------------------------------------------------------------------------------- scale
class _Rows:
    """Rows of one step's JSON, rewritten after each case so a timeout keeps what was measured."""

    def __init__(self, work: Path, name: str, **extra: Any) -> None:
        self.work, self.name, self.extra, self.rows = work, name, extra, []

    def add(self, row: dict) -> None:
        print(row, flush=True)
        self.rows.append(row)
        _write(self.work, self.name, {"rows": self.rows, **self.extra})


def _case(label: str, fn: Callable[[], np.ndarray], ref: np.ndarray, tol: float = TOL) -> dict:
    secs, got = _best_of(fn, 1)
    err = _rel(got, ref)
    return {"case": label, "seconds": secs, "rel_err": err, "tol": tol, "pass": bool(err <= tol)}


def scale(work: Path) -> int:
    """N = 1.28 M x p = 2,048 float32 (n*p > 2^31), ReLU-like, C = 10: PLS (cuda, cupy), Pearson inf-FS,
    Spearman inf-FS (every column's ranks exactly, the Gram against float64), il-FS; then
    1.28 M x 256 with C = 1,000 (PLS cuda and cupy, il-FS on a 200,000-row slice). References:
    float64 torch on the device."""
    if not _gpu() or not _status("cuda")[0]:
        _write(work, "scale", {"skipped": f"no usable GPU ({_status('cuda')[1]})"})
        return 1
    import torch

    from swnas.scoring import score

    out = _Rows(work, "scale", device=torch.cuda.get_device_name())
    cupy_ok = _status("cupy")[0]
    n, p = (20_000, 256) if SMOKE else (1_280_000, 2_048)
    X, y = _planted_device(n, p, 10)
    yh = y.cpu().numpy()
    ref = pls_torch_reference(X, y, 10)
    out.add(_case(f"pls cuda {n}x{p} C=10", lambda: score(X, yh, "pls", backend="cuda").features, ref))
    if cupy_ok:
        out.add(_case(f"pls cupy {n}x{p} C=10", lambda: score(X, yh, "pls", backend="cupy").features, ref))
    out.add(
        _case(
            f"inffs pearson cuda {n}x{p}",
            lambda: score(X, yh, "inffs", backend="cuda", corr="pearson").features,
            pearson_inffs_torch_reference(X),
        )
    )
    out.add(spearman_rank_gram_check(X))
    if FULL and cupy_ok:
        torch.cuda.empty_cache()
        out.add(
            _case(
                f"inffs pearson cupy {n}x{p}",
                lambda: score(X, yh, "inffs", backend="cupy", corr="pearson").features,
                pearson_inffs_torch_reference(X),
            )
        )
    torch.cuda.empty_cache()
    ref_ilfs, _ = ilfs_torch_reference(X, y, 10)
    out.add(_case(f"ilfs cuda {n}x{p} C=10", lambda: score(X, yh, "ilfs", backend="cuda").features, ref_ilfs))
    del X, y
    torch.cuda.empty_cache()
    n2, p2, c2 = (20_000, 64, 1000) if SMOKE else (1_280_000, 256, 1000)
    X, y = _planted_device(n2, p2, c2, seed=1)
    yh = y.cpu().numpy()
    ref = pls_torch_reference(X, y, c2)
    out.add(_case(f"pls cuda {n2}x{p2} C={c2}", lambda: score(X, yh, "pls", backend="cuda").features, ref))
    if cupy_ok:
        out.add(_case(f"pls cupy {n2}x{p2} C={c2}", lambda: score(X, yh, "pls", backend="cupy").features, ref))
    m = min(n2, 200_000)  # il-FS's reference holds a rows x C x p block per chunk: a slice keeps it short
    out.add(
        _case(
            f"ilfs cuda {m}x{p2} C={c2}",
            lambda: score(X[:m], yh[:m], "ilfs", backend="cuda").features,
            ilfs_torch_reference(X[:m], y[:m], c2)[0],
        )
    )
    if not cupy_ok:
        out.add({"case": "cupy backend", "pass": False, "error": _status("cupy")[1]})
    return int(not all(r["pass"] for r in out.rows))


# --------------------------------------------------------------------------------------- bench
def _floor_seconds(X, passes: int) -> float:
    """``passes`` plain device reductions of X: the memory floor of a method reading X that often."""
    import torch

    def run():
        for _ in range(passes):
            torch.sum(X)

    return _best_of(run, 3)[0]


def _bench_one(crit: str, backend: str, X, y, params: dict, repeats: int) -> float | None:
    from swnas.scoring import score

    if not _status(backend)[0]:
        return None
    score(X[:2000], y[:2000], crit, backend=backend, **params)  # warm-up: compilation, allocators
    return _best_of(lambda: score(X, y, crit, backend=backend, **params), repeats)[0]


def bench(work: Path) -> int:
    """Scorer speed at N = 50,000 x p = 2,048 float32 (10 classes). PLS-VIP: cuda against the floor
    of 2A = 4 device reads of X (the statistics pass and the projection of the first component
    read X once each, the last component's projection once more: docs/scorers.md, section 1) and
    against cpp on a host copy. Goals: within 3x of the floor and at least 5x faster than cpp.
    ``--full``: cupy and every criterion too (figures only)."""
    if not _gpu():
        _write(work, "bench", {"skipped": "no usable GPU"})
        return 1
    import torch

    n, p = (5_000, 256) if SMOKE else (50_000, 2_048)
    X, yt = _planted_device(n, p, 10, seed=2)
    y = yt.cpu().numpy()
    Xh = X.cpu().numpy()
    out = _Rows(
        work,
        "bench",
        n=n,
        p=p,
        device=torch.cuda.get_device_name(),
        goal="PLS-VIP cuda within 3x of 4 device reads of X (2A, A = 2) and >= 5x cpp",
    )
    crits = [("pls", {})]
    if FULL:
        crits += [("inffs", {"corr": "spearman"}), ("inffs", {"corr": "pearson"}), ("ilfs", {})]
    for crit, params in crits:
        row: dict[str, Any] = {"criterion": crit + (f" ({params['corr']})" if params else "")}
        row["cuda_s"] = _bench_one(crit, "cuda", X, y, params, 3)
        if FULL:
            row["cupy_s"] = _bench_one(crit, "cupy", X, y, params, 2)
        row["cpp_s"] = _bench_one(crit, "cpp", Xh, y, params, 1)
        if crit == "pls":
            row["floor_s"] = _floor_seconds(X, 4)
            row["cuda_over_floor"] = row["cuda_s"] / row["floor_s"] if row["cuda_s"] else None
            row["cpp_over_cuda"] = row["cpp_s"] / row["cuda_s"] if row["cuda_s"] and row["cpp_s"] else None
            row["pass"] = bool(row["cuda_s"] and row["cuda_over_floor"] <= 3.0 and (row["cpp_over_cuda"] or 0.0) >= 5.0)
        out.add(row)
    return int(not all(r.get("pass", True) for r in out.rows))


# -------------------------------------------------------------------------------------- search
def search(work: Path, backend: str = "cuda", device: str = "cuda") -> int:
    """A tiny search (digits, one iteration, one epoch) with --criterion inffs --backend cuda: the
    stage features are collected and scored by one score_many call per network, i.e. by the CUDA
    ranking and Gram kernels (the PLS search streams through torch, and ``random`` scores nothing).
    Counts the calls that reach the backend's inf-FS implementations to prove it (``backend`` and
    ``device`` other than cuda: the CPU test of this step's glue)."""
    from swnas import cli
    from swnas.scoring import backends

    calls = {"batched": 0, "single": 0}
    saved = dict(backends._IMPLS)
    for batched, key in ((True, "batched"), (False, "single")):
        impl = backends.get_impl("inffs", backend, batched=batched)
        if impl is None:
            continue

        def counted(*a, _impl=impl, _key=key, **k):
            calls[_key] += 1
            return _impl(*a, **k)

        backends._IMPLS[("inffs", backend, batched)] = counted
    d = work / "search-inffs"
    t0 = time.perf_counter()
    try:
        rc = cli.main(
            [
                "search",
                "--dataset",
                "digits",
                "--criterion",
                "inffs",
                "--backend",
                backend,
                "--device",
                device,
                "--m0",
                "1",
                "--iterations",
                "1",
                "--epochs",
                "1",
                "--final-epochs",
                "0",
                "--val-split",
                "0",
                "--out",
                str(d),
                "--no-report",
                "--quiet",
            ]
        )
    finally:  # the registry is process-wide: leave it as it was (the test suite shares it)
        backends._IMPLS.clear()
        backends._IMPLS.update(saved)
    secs = time.perf_counter() - t0
    row: dict[str, Any] = {
        "dir": d.name,
        "rc": rc,
        "seconds": secs,
        "score_many_calls": calls["batched"],
        "single_calls": calls["single"],
    }
    state = d / "search.json"
    if state.is_file():
        doc = json.loads(state.read_text())
        nets = doc.get("networks", [])
        scores = [s for net in nets for s in (net.get("scores") or [])]
        row.update(
            status=doc.get("status"),
            criterion=(doc.get("config") or {}).get("criterion"),
            backend=(doc.get("config") or {}).get("backend"),
            networks=len(nets),
            scored_networks=sum(1 for net in nets if net.get("scores")),
            stage_scores=len(scores),
            finite=bool(scores) and all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores),
        )
    row["pass"] = bool(
        rc == 0
        and row.get("status") == "complete"
        and row.get("criterion") == "inffs"
        and row.get("backend") == backend
        and row.get("finite")
        and calls["batched"] >= row.get("scored_networks", 1) >= 1
    )
    _write(work, "search", {"runs": [row]})
    print(row)
    return int(not row["pass"])


def main(argv: list[str]) -> int:
    args = [a for a in argv if a not in ("--smoke", "--full", "--any-source")]
    if not args:
        print(__doc__)
        return 2
    cmd, rest = args[0], args[1:]
    if cmd == "gate":
        return gate("--any-source" in argv)
    if cmd == "sanitize":
        return sanitize()
    if cmd in ("scale", "bench", "search") and rest:
        return {"scale": scale, "bench": bench, "search": search}[cmd](Path(rest[0]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
