"""The Python steps of benchmarks/device_check.sh: each writes one JSON file of figures and pass/fail
into the output directory, and ``summary`` turns them into one Markdown file.

    python3 benchmarks/device_check.py sanitize            # small calls of every kernel (under compute-sanitizer)
    python3 benchmarks/device_check.py scale OUT           # N = 1.28M x p = 2,048 vs a float64 torch reference; C = 1,000
    python3 benchmarks/device_check.py bench OUT           # scorer speed: cuda, cupy, cpp, the memory floor
    python3 benchmarks/device_check.py train OUT JSON      # training throughput from bench_train.py's JSON
    python3 benchmarks/device_check.py search OUT DIR...   # the mini searches' results
    python3 benchmarks/device_check.py summary OUT         # OUT/summary.md

``sanitize`` and ``--smoke`` (scale and bench at a small size) also run on a CPU-only machine as far
as they can: without a GPU they report the CUDA steps as skipped.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SMOKE = "--smoke" in sys.argv


def _gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
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


def _write(out: Path, name: str, data: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=float))
    print(json.dumps(data, indent=1, default=float))


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ------------------------------------------------------------------------------------ sanitize
def sanitize() -> int:
    """Small calls of every CUDA kernel (PLS stats/projection, inf-FS ranks and Gram, il-FS tokens)
    checked against the reference; run under compute-sanitizer by the shell script."""
    if not _status("cuda")[0]:
        print("sanitize: cuda backend unavailable:", _status("cuda")[1])
        return 0
    import torch

    from swnas.scoring import score, score_many

    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 37)).astype(np.float32)
    y = rng.integers(0, 5, 300)
    X[:, 3] += y
    bad = 0
    for crit, params in (("pls", {}), ("inffs", {"corr": "spearman"}), ("inffs", {"corr": "pearson"}), ("ilfs", {})):
        ref = score(X, y, crit, backend="numpy", **params).features
        got = score(X, y, crit, backend="cuda", **params).features
        many = score_many([(X, y), (X[:100], y[:100])], crit, backend="cuda", **params)
        err = max(_rel(got, ref), _rel(many[0].features, ref))
        print(f"sanitize {crit} {params}: rel err {err:.2e}")
        bad += err > 1e-5
    torch.cuda.synchronize()
    return int(bad > 0)


# --------------------------------------------------------------------------------------- scale
def _planted_device(n: int, p: int, c: int, seed: int = 0):
    """float32 (n, p) post-ReLU-like features on the GPU with 16 class-dependent columns."""
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    y = torch.randint(0, c, (n,), device="cuda", generator=g)
    X = torch.randn((n, p), device="cuda", generator=g, dtype=torch.float32)
    X[:, :16] += (torch.randn((c, 16), device="cuda", generator=g) * 1.5)[y]
    X.clamp_(min=-1.0)
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


def _scale_case(label: str, fn: Callable[[], np.ndarray], ref: np.ndarray, tol: float) -> dict:
    secs, got = _best_of(fn, 1)
    err = _rel(got, ref)
    row = {"case": label, "seconds": secs, "rel_err": err, "tol": tol, "pass": bool(err <= tol)}
    print(row, flush=True)
    return row


def scale(out: Path) -> int:
    """N = 1.28M x p = 2,048 float32 (n*p > 2^31) for PLS, Pearson inf-FS and il-FS against float64
    torch references on the device; then C = 1,000 classes (PLS on cuda and cupy, il-FS on cuda)."""
    if not _gpu() or not _status("cuda")[0]:
        _write(out, "scale", {"skipped": f"no usable GPU ({_status('cuda')[1]})"})
        return 0
    import torch

    from swnas.scoring import score

    n, p = (20_000, 256) if SMOKE else (1_280_000, 2_048)
    rows: list[dict] = []
    X, y = _planted_device(n, p, 10)
    yh = y.cpu().numpy()
    ref = pls_torch_reference(X, y, 10)
    rows.append(_scale_case(f"pls cuda {n}x{p} C=10", lambda: score(X, yh, "pls", backend="cuda").features, ref, 1e-6))
    if _status("cupy")[0]:
        rows.append(_scale_case(f"pls cupy {n}x{p} C=10", lambda: score(X, yh, "pls", backend="cupy").features,
                                ref, 1e-6))
    rows.append(_scale_case(f"inffs pearson cuda {n}x{p}",
                            lambda: score(X, yh, "inffs", backend="cuda", corr="pearson").features,
                            pearson_inffs_torch_reference(X), 1e-6))
    ref_ilfs, _ = ilfs_torch_reference(X, y, 10)
    rows.append(_scale_case(f"ilfs cuda {n}x{p} C=10", lambda: score(X, yh, "ilfs", backend="cuda").features,
                            ref_ilfs, 1e-6))
    del X, y
    torch.cuda.empty_cache()
    n2, p2, c2 = (20_000, 64, 1000) if SMOKE else (1_280_000, 256, 1000)
    X, y = _planted_device(n2, p2, c2, seed=1)
    yh = y.cpu().numpy()
    ref = pls_torch_reference(X, y, c2)
    rows.append(_scale_case(f"pls cuda {n2}x{p2} C={c2}", lambda: score(X, yh, "pls", backend="cuda").features,
                            ref, 1e-6))
    if _status("cupy")[0]:
        torch.cuda.reset_peak_memory_stats()
        rows.append(_scale_case(f"pls cupy {n2}x{p2} C={c2}",
                                lambda: score(X, yh, "pls", backend="cupy").features, ref, 1e-6))
    m = min(n2, 200_000)  # il-FS's reference holds a rows x C x p block per chunk: a slice keeps it short
    rows.append(_scale_case(f"ilfs cuda {m}x{p2} C={c2}",
                            lambda: score(X[:m], yh[:m], "ilfs", backend="cuda").features,
                            ilfs_torch_reference(X[:m], y[:m], c2)[0], 1e-6))
    _write(out, "scale", {"rows": rows, "device": torch.cuda.get_device_name()})
    return int(not all(r["pass"] for r in rows))


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


def bench(out: Path) -> int:
    """Scorer speed at N = 50,000 x p = 2,048 float32 (10 classes): cuda and cupy on the device data,
    cpp on a host copy, and for PLS the floor of 2A device reads of X (the statistics, two kernels per
    component, one for the last). Goals (PLS-VIP): within
    3x of the floor and at least 5x faster than cpp."""
    if not _gpu():
        _write(out, "bench", {"skipped": "no usable GPU"})
        return 0
    import torch

    n, p = (5_000, 256) if SMOKE else (50_000, 2_048)
    X, yt = _planted_device(n, p, 10, seed=2)
    y = yt.cpu().numpy()
    Xh = X.cpu().numpy()
    rows = []
    for crit, params in (("pls", {}), ("inffs", {"corr": "spearman"}), ("inffs", {"corr": "pearson"}), ("ilfs", {})):
        row: dict[str, Any] = {"criterion": crit + (f" ({params['corr']})" if params else "")}
        row["cuda_s"] = _bench_one(crit, "cuda", X, y, params, 3)
        row["cupy_s"] = _bench_one(crit, "cupy", X, y, params, 2)
        row["cpp_s"] = _bench_one(crit, "cpp", Xh, y, params, 1)
        if crit == "pls":
            row["floor_s"] = _floor_seconds(X, 2 * 2)
            row["cuda_over_floor"] = row["cuda_s"] / row["floor_s"] if row["cuda_s"] else None
            row["cpp_over_cuda"] = row["cpp_s"] / row["cuda_s"] if row["cuda_s"] else None
            row["pass"] = bool(row["cuda_s"] and row["cuda_over_floor"] <= 3.0 and row["cpp_over_cuda"] >= 5.0)
        rows.append(row)
        print(row, flush=True)
    _write(out, "bench", {"rows": rows, "n": n, "p": p, "device": torch.cuda.get_device_name(),
                          "goal": "PLS-VIP cuda within 3x of 5 device reads of X and >= 5x cpp"})
    return 0


# --------------------------------------------------------------------------------------- train
def train(out: Path, bench_json: Path) -> int:
    """Training throughput (ResNet-56) from benchmarks/bench_train.py's GPU JSON: swnas trainer vs the
    torchvision Dataset + DataLoader baseline; goal >= 3x. Adds the paper search's GPU-hours."""
    from swnas.recipes import estimate_training_hours

    if not bench_json.is_file():
        _write(out, "train", {"skipped": f"no benchmark JSON at {bench_json}"})
        return 1
    rates = {}
    for b in json.loads(bench_json.read_text())["benchmarks"]:
        rates[b["name"]] = b["extra_info"]["images_per_second"]
    sw = rates.get("test_gpu_swnas_trainer")
    base = rates.get("test_gpu_torchvision_dataloader_baseline")
    res: dict[str, Any] = {"swnas_images_per_s": sw, "baseline_images_per_s": base}
    if sw and base:
        res["speedup"] = sw / base
        res["pass"] = bool(sw / base >= 3.0)
        res["paper_search_gpu_hours"] = estimate_training_hours(sw)
    _write(out, "train", res)
    return int(not res.get("pass", False))


# -------------------------------------------------------------------------------------- search
def search(out: Path, dirs: list[Path]) -> int:
    """What each mini search found (its state file), side by side."""
    runs = []
    for d in dirs:
        state = d / "search.json"
        if not state.is_file():
            runs.append({"dir": str(d), "pass": False, "error": "no search.json"})
            continue
        doc = json.loads(state.read_text())
        final = doc.get("final")
        net = doc["networks"][final] if isinstance(final, int) and final < len(doc.get("networks", [])) else {}
        m = net.get("metrics") or {}
        runs.append({"dir": d.name, "pass": doc.get("status") == "complete", "status": doc.get("status"),
                     "criterion": (doc.get("config") or {}).get("criterion"), "final_stages": net.get("stages"),
                     "top1": m.get("top1"), "networks": len(doc.get("networks", [])),
                     "train_seconds": sum(((x.get("metrics") or {}).get("train_seconds") or 0.0)
                                          for x in doc.get("networks", []))})
    _write(out, "search", {"runs": runs})
    return int(not all(r["pass"] for r in runs))


# ------------------------------------------------------------------------------------- summary
def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return lines


def summary(out: Path) -> int:
    """OUT/summary.md: every step's pass/fail (OUT/steps.tsv from the shell script) and figures."""
    lines = [f"## Device check, {time.strftime('%Y-%m-%d')}", ""]
    env = out / "environment.txt"
    if env.is_file():
        lines += ["```", env.read_text().strip(), "```", ""]
    steps = out / "steps.tsv"
    if steps.is_file():
        rows = [dict(zip(("step", "result", "seconds", "limit_s"), ln.split("\t")))
                for ln in steps.read_text().splitlines() if ln.strip()]
        lines += ["### Steps", ""] + _table(rows) + [""]
    for name, title in (("scale", "Scale (float64 torch reference on the device)"),
                        ("bench", "Scorer speed"), ("train", "Training throughput (ResNet-56)"),
                        ("search", "Mini CIFAR-10 search on the GPU")):
        f = out / f"{name}.json"
        if not f.is_file():
            continue
        doc = json.loads(f.read_text())
        lines += [f"### {title}", ""]
        rows = doc.get("rows") or doc.get("runs")
        if rows:
            lines += _table(rows)
        else:
            lines += _table([doc])
        extra = {k: v for k, v in doc.items() if k not in ("rows", "runs")}
        if extra and rows:
            lines += ["", ", ".join(f"{k}: {_fmt(v)}" for k, v in extra.items())]
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--smoke"]
    if not args:
        print(__doc__)
        return 2
    cmd, rest = args[0], args[1:]
    if cmd == "sanitize":
        return sanitize()
    if cmd == "scale":
        return scale(Path(rest[0]))
    if cmd == "bench":
        return bench(Path(rest[0]))
    if cmd == "train":
        return train(Path(rest[0]), Path(rest[1]))
    if cmd == "search":
        return search(Path(rest[0]), [Path(r) for r in rest[1:]])
    if cmd == "summary":
        return summary(Path(rest[0]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
