"""The criterion-vs-chance study (``swnas study``): is the search worth running, and does ``--inherit`` choose as well?

One command runs, for each seed, the same reduced search in several arms and uniform-depth
baselines, resumably, and summarises them (``docs/protocol.md``, "The study"):

- ``pls-inherit``, ``random-inherit``, ``uniform-inherit``: inherit mode with PLS-VIP and the two
  controls (the same loop at the same cost);
- ``pls-scratch``: PLS-VIP under the paper's protocol (every network from scratch);
- ``baselines``: uniform ResNets of 1..K modules per stage, trained as long as a candidate
  including its final epochs, on the same training images.

Every run lives in ``OUT/<arm>/seed<k>/`` and is a normal search (or ``swnas train``) directory, so
killing the study loses at most the epoch in progress: the same command continues it. The
settings are stored in ``OUT/study.json``; running the command again with other settings is
refused. ``OUT/summary.md`` (tables per arm, mean and standard deviation over seeds, the
answers), ``summary.csv`` and two plots are rewritten after every finished run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from swnas.errors import InputError
from swnas.records.atomic import atomic_write_json, atomic_write_text, read_json

__all__ = ["StudyConfig", "ARMS", "run_study", "summarize", "STUDY_FILE"]

STUDY_FILE = "study.json"
STUDY_FORMAT = "swnas-study/1"
#: Arm name -> (criterion, inherit); ``baselines`` trains uniform networks instead of searching.
ARMS: dict[str, tuple[str, bool] | None] = {
    "pls-inherit": ("pls", True),
    "random-inherit": ("random", True),
    "uniform-inherit": ("uniform", True),
    "pls-scratch": ("pls", False),
    "baselines": None,
}
COLORS = {
    "pls-inherit": "tab:blue",
    "random-inherit": "tab:orange",
    "uniform-inherit": "tab:green",
    "pls-scratch": "tab:purple",
    "baselines": "black",
}


@dataclass
class StudyConfig:
    """Settings shared by every arm and seed (the defaults: the reduced CIFAR-10 scale of
    ``docs/results/study-cifar10``, about four hours of a 2-core CPU at one thread per process
    if nothing else runs)."""

    dataset: str = "cifar10"
    data: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    subset: int | None = 4000
    val_split: float = 0.1
    module: str = "basic"
    m0: int = 1
    delta: int = 1
    iterations: int = 3
    recipe: str = "paper"
    epochs: int = 16
    batch_size: int = 128
    lr: float = 0.05
    inherit_epochs: int | None = None
    final_epochs: int | None = None
    baseline_depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    device: str = "cpu"

    def checked(self) -> StudyConfig:
        c = dataclasses.replace(
            self,
            seeds=[int(s) for s in self.seeds],
            arms=list(self.arms),
            baseline_depths=[int(d) for d in self.baseline_depths],
        )
        unknown = [a for a in c.arms if a not in ARMS]
        if unknown:
            raise InputError(f"--arms: unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
        if not c.seeds or len(set(c.seeds)) != len(c.seeds) or min(c.seeds) < 0:
            raise InputError(f"--seeds: expected distinct non-negative integers, got {c.seeds}")
        if not c.baseline_depths or min(c.baseline_depths) < 1:
            raise InputError(f"--baseline-depths: expected positive module counts, got {c.baseline_depths}")
        if c.final_epochs is None:
            c.final_epochs = max(1, c.epochs // 2)
        self._search_config(c, "pls", True, c.seeds[0]).resolved()  # every search option checked up front
        return c

    @staticmethod
    def _search_config(c: StudyConfig, criterion: str, inherit: bool, seed: int):
        from swnas.search import SearchConfig

        return SearchConfig(
            criterion=criterion,
            inherit=inherit,
            inherit_epochs=c.inherit_epochs if inherit else None,
            dataset=c.dataset,
            data=c.data,
            subset=c.subset,
            val_split=c.val_split,
            module=c.module,
            m0=c.m0,
            delta=c.delta,
            iterations=c.iterations,
            recipe=c.recipe,
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            final_epochs=c.final_epochs,
            seed=seed,
            device=c.device,
        )

    def search_config(self, arm: str, seed: int):
        criterion, inherit = cast("tuple[str, bool]", ARMS[arm])  # a search arm (not "baselines")
        return self._search_config(self, criterion, inherit, seed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------ running
def _open(out: Path, cfg: StudyConfig) -> None:
    """Create ``out`` with its settings, or check that the stored settings are these."""
    path = out / STUDY_FILE
    if path.exists():
        doc = read_json(path, what="study settings")
        stored = doc.get("config") if isinstance(doc, dict) else None
        if not isinstance(stored, dict) or doc.get("format") != STUDY_FORMAT:
            raise InputError(f"study: {path} is not a swnas study ({STUDY_FORMAT})")
        mine = cfg.to_dict()
        diff = sorted(k for k in set(mine) | set(stored) if mine.get(k) != stored.get(k))
        if diff:
            shown = "; ".join(f"{k}: stored {stored.get(k)!r}, asked {mine.get(k)!r}" for k in diff)
            raise InputError(
                f"study: {out} holds a study with other settings ({shown}); give the same "
                "options to continue it, or another --out for a new study"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(f"study: {out} exists and is not a study directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        path, {"format": STUDY_FORMAT, "config": cfg.to_dict(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    )


def _search_done(d: Path) -> bool:
    try:
        return json.loads((d / "search.json").read_text()).get("status") in ("complete", "stopped_early")
    except (OSError, ValueError):
        return False


def _run_search(cfg: StudyConfig, arm: str, seed: int, d: Path, say: Callable[[str], None]) -> None:
    from swnas.search import run_search

    if _search_done(d):
        return
    resume = (d / "search.json").is_file()
    say(f"== {arm} seed {seed}: {'resuming' if resume else 'starting'} {d}")
    run_search(cfg.search_config(arm, seed), d, resume=resume, echo=lambda m: say(f"   [{arm} s{seed}] {m}"))


def _run_baselines(cfg: StudyConfig, seed: int, d: Path, say: Callable[[str], None]) -> None:
    from swnas.experiments.train_architecture import RESULT_FILE, train_architecture
    from swnas.search.config import SearchConfig

    assert cfg.final_epochs is not None  # run_study passes a checked() config
    stages_n = cast(int, SearchConfig(module=cfg.module).resolved().stages)  # resolved() fills it
    for m in cfg.baseline_depths:
        sub = d / f"uniform-{m}"
        if (sub / RESULT_FILE).is_file():
            continue
        say(f"== baselines seed {seed}: uniform {[m] * stages_n}, {cfg.epochs + cfg.final_epochs} epochs")
        train_architecture(
            module=cfg.module,
            stages=[m] * stages_n,
            dataset=cfg.dataset,
            data=cfg.data,
            subset=cfg.subset,
            recipe=cfg.recipe,
            epochs=cfg.epochs + cfg.final_epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=seed,
            device=cfg.device,
            out=sub,
            name=f"uniform-{m}",
            progress=False,
            val_split=cfg.val_split,
        )


def run_study(cfg: StudyConfig, out: str | Path, *, echo: Callable[[str], None] | None = print) -> Path:
    """Run (or continue) every arm for every seed, seed by seed; returns the summary's path."""
    cfg = cfg.checked()
    out = Path(out)
    _open(out, cfg)

    def say(msg: str) -> None:
        if echo is not None:
            echo(msg)
        with open(out / "study.log", "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    for seed in cfg.seeds:
        for arm in cfg.arms:
            d = out / arm / f"seed{seed}"
            if ARMS[arm] is None:
                _run_baselines(cfg, seed, d, say)
            else:
                _run_search(cfg, arm, seed, d, say)
            summarize(out)
    say(f"study complete: {out / 'summary.md'}")
    return out / "summary.md"


# ------------------------------------------------------------------------------------------ summary
def _final(net: dict, key: str) -> float | None:
    fin = cast(dict, net.get("final")) if isinstance(net.get("final"), dict) else {}
    v = fin.get(key)
    return float(v) if isinstance(v, (int, float)) else None


def _collect(out: Path, cfg: dict) -> dict[str, list[dict]]:
    """Per arm, one record per finished seed (searches: the best candidate and every candidate)."""
    res: dict[str, list[dict]] = {}
    for arm in cfg["arms"]:
        rows = []
        for seed in cfg["seeds"]:
            d = out / arm / f"seed{seed}"
            if ARMS.get(arm) is None:
                for m in cfg["baseline_depths"]:
                    p = d / f"uniform-{m}" / "train.json"
                    if p.is_file():
                        r = json.loads(p.read_text())
                        mt = r["metrics"]
                        rows.append(
                            {
                                "seed": seed,
                                "name": r["name"],
                                "stages": r["stages"],
                                "macs": mt.get("macs"),
                                "params": mt.get("params"),
                                "images": mt.get("images_trained"),
                                "val_top1": mt.get("val_top1"),
                                "top1": mt.get("top1"),
                            }
                        )
                continue
            if not _search_done(d):
                continue
            s = json.loads((d / "search.json").read_text())
            nets = s["networks"]
            best = s.get("best")
            best = best if best is not None else s["candidates"][-1]
            b = nets[best]
            path = [nets[s["initial"]]["stages"]] + [nets[i]["stages"] for i in s["candidates"]]
            cost = s.get("cost") or {}
            rows.append(
                {
                    "seed": seed,
                    "path": path,
                    "best": f"A{b['iteration']}",
                    "stages": b["stages"],
                    "macs": b["metrics"].get("macs"),
                    "params": b["metrics"].get("params"),
                    "images": cost.get("images_trained"),
                    "growth_ratio": cost.get("growth_ratio"),
                    "ratio": cost.get("ratio"),
                    "val_top1": _final(b, "val_top1"),
                    "top1": _final(b, "top1"),
                    "candidates": [
                        {
                            "name": f"A{nets[i]['iteration']}",
                            "stages": nets[i]["stages"],
                            "macs": nets[i]["metrics"].get("macs"),
                            "top1": _final(nets[i], "top1"),
                            "val_top1": _final(nets[i], "val_top1"),
                        }
                        for i in s["candidates"]
                    ],
                    "hours": sum(float(n["metrics"].get("train_seconds") or 0) for n in nets) / 3600,
                }
            )
        res[arm] = rows
    return res


def _ms(vals: list) -> tuple[float | None, float | None]:
    v = [float(x) for x in vals if isinstance(x, (int, float))]
    if not v:
        return None, None
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else None)


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def _pm(vals: list, scale: float = 100.0, digits: int = 2) -> str:
    m, s = _ms(vals)
    if m is None:
        return "n/a"
    return f"{scale * m:.{digits}f}" + ("" if s is None else f" ± {scale * s:.{digits}f}")


def _stages(st: list) -> str:
    return "-".join(str(x) for x in st)


def summarize(out: str | Path) -> Path:
    """Write ``summary.md``, ``summary.csv``, ``accuracy_vs_macs.png`` and ``accuracy_vs_images.png``."""
    out = Path(out)
    doc = read_json(out / STUDY_FILE, what="study settings")
    cfg = doc["config"]
    res = _collect(out, cfg)
    lines = [
        f"# Study: does the criterion beat chance, and does --inherit choose as well? ({cfg['dataset']})",
        "",
        _scale_line(cfg),
        "",
    ]
    csv = ["arm,seed,name,stages,macs,params,images_trained,val_top1,test_top1"]
    for arm in cfg["arms"]:
        rows = res.get(arm, [])
        lines += [f"## {arm}", ""]
        if not rows:
            lines += ["(no finished run yet)", ""]
            continue
        if ARMS.get(arm) is None:
            lines += [
                "| seed | network | MACs (M) | params (M) | images trained | val top-1 (%) | test top-1 (%) |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in rows:
                lines.append(
                    f"| {r['seed']} | {_stages(r['stages'])} | {r['macs'] / 1e6:.2f} | "
                    f"{r['params'] / 1e6:.3f} | {r['images']:,} | {_pct(r['val_top1'])} | {_pct(r['top1'])} |"
                )
                csv.append(
                    f"{arm},{r['seed']},{r['name']},{_stages(r['stages'])},{r['macs']},{r['params']},"
                    f"{r['images']},{r['val_top1']},{r['top1']}"
                )
            lines.append("")
            for m in cfg["baseline_depths"]:
                sel = [r for r in rows if r["name"] == f"uniform-{m}"]
                if sel:
                    lines.append(
                        f"- uniform {m} per stage: test top-1 {_pm([r['top1'] for r in sel])} % "
                        f"over {len(sel)} seed(s), {sel[0]['macs'] / 1e6:.2f} M MACs"
                    )
            lines.append("")
            continue
        lines += [
            "| seed | stages per iteration | best (validation) | MACs (M) | params (M) | images trained "
            "| vs paper protocol | val top-1 (%) | test top-1 (%) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x (T/A: {r['growth_ratio']:.2f}x)"
            lines.append(
                f"| {r['seed']} | {' → '.join(_stages(p) for p in r['path'])} | {r['best']} "
                f"{_stages(r['stages'])} | {r['macs'] / 1e6:.2f} | {r['params'] / 1e6:.3f} | "
                f"{r['images']:,} | {ratio} | {_pct(r['val_top1'])} | {_pct(r['top1'])} |"
            )
            csv.append(
                f"{arm},{r['seed']},{r['best']},{_stages(r['stages'])},{r['macs']},{r['params']},"
                f"{r['images']},{r['val_top1']},{r['top1']}"
            )
        lines += [
            "",
            f"Mean ± sd over {len(rows)} seed(s): test top-1 {_pm([r['top1'] for r in rows])} %, "
            f"validation {_pm([r['val_top1'] for r in rows])} %, MACs {_pm([r['macs'] for r in rows], 1e-6)} M, "
            f"images trained {_pm([r['images'] for r in rows], 1e-6, 3)} M.",
            "",
        ]
    lines += ["## Answers", ""] + _answers(res) + [""]
    atomic_write_text(out / "summary.md", "\n".join(lines))
    atomic_write_text(out / "summary.csv", "\n".join(csv) + "\n")
    _plots(out, cfg, res)
    return out / "summary.md"


def _scale_line(cfg: dict) -> str:
    sub = "all" if cfg["subset"] is None else f"{cfg['subset']:,}"
    return (
        f"Scale: {sub} training images (stratified; {100 * cfg['val_split']:.0f}% held out for validation), "
        f"the full test set; {cfg['module']} modules, m0 = {cfg['m0']}, delta = {cfg['delta']}, "
        f"{cfg['iterations']} iterations; recipe {cfg['recipe']} with lr {cfg['lr']}, batch {cfg['batch_size']}, "
        f"{cfg['epochs']} epochs per network trained from scratch, {cfg['final_epochs']} final epochs per "
        f"candidate, inherit mode fine-tuning {cfg['inherit_epochs'] or 'an eighth of the epochs'}; "
        f"seeds {', '.join(map(str, cfg['seeds']))} (a seed also picks the subset and the validation split, "
        f"so arms are paired by seed); baselines: uniform {cfg['baseline_depths']} modules per stage trained "
        f"{cfg['epochs'] + cfg['final_epochs']} epochs on the same images. Accuracies are after the final "
        "epochs, of the candidate chosen on validation."
    )


def _answers(res: dict[str, list[dict]]) -> list[str]:
    """The study's questions answered from the numbers (or why they cannot be yet)."""
    out = []

    def paired(a: str, b: str) -> list[tuple[float, float]]:
        ra = {r["seed"]: r for r in res.get(a, [])}
        rb = {r["seed"]: r for r in res.get(b, [])}
        return [
            (ra[s]["top1"], rb[s]["top1"])
            for s in sorted(set(ra) & set(rb))
            if ra[s]["top1"] is not None and rb[s]["top1"] is not None
        ]

    for ctrl in ("random-inherit", "uniform-inherit"):
        pairs = paired("pls-inherit", ctrl)
        if not pairs:
            out.append(f"- PLS vs {ctrl}: no seed finished in both arms yet.")
            continue
        d = [a - b for a, b in pairs]
        m, s = cast("tuple[float, float | None]", _ms(d))  # d is not empty
        spread = _ms([a for a, _ in pairs])[1]
        verdict = _verdict(m, s, spread, len(d))
        out.append(
            f"- PLS-VIP vs {ctrl.split('-')[0]} (inherit mode, paired by seed, n = {len(d)}): "
            f"PLS − control = {100 * m:+.2f} points" + ("" if s is None else f" (sd {100 * s:.2f})") + f"; {verdict}"
        )
    pairs = paired("pls-inherit", "pls-scratch")
    if pairs:
        d = [a - b for a, b in pairs]
        m, s = cast("tuple[float, float | None]", _ms(d))  # d is not empty
        ri = {r["seed"]: r for r in res["pls-inherit"]}
        rs = {r["seed"]: r for r in res["pls-scratch"]}
        same = sum(1 for k in ri if k in rs and ri[k]["path"] == rs[k]["path"])
        g = _ms([r["growth_ratio"] for r in res["pls-inherit"]])[0]
        t = _ms([r["ratio"] for r in res["pls-inherit"]])[0]
        out.append(
            f"- --inherit vs the paper's protocol (PLS, n = {len(d)}): inherit − scratch = {100 * m:+.2f} "
            "points of test top-1"
            + ("" if s is None else f" (sd {100 * s:.2f})")
            + f"; the same growth path in {same} of {len(d)} seed(s); images trained for T and A: "
            f"{g:.2f}x the paper protocol's ({t:.2f}x for the whole search with A0 and the final epochs)."
        )
    else:
        out.append("- --inherit vs the paper's protocol: no seed finished in both arms yet.")
    return out


def _verdict(mean: float, sd: float | None, spread: float | None, n: int) -> str:
    if n < 2 or sd is None:
        return "one seed only: no verdict (the seed-to-seed spread is unknown)."
    se = sd / math.sqrt(n)
    if abs(mean) > 2 * se and (spread is None or abs(mean) > spread):
        return (
            "PLS better" if mean > 0 else "the control better"
        ) + " by more than twice the standard error and the seed-to-seed spread."
    return "within the seed-to-seed noise: no difference shown at this scale."


def _plots(out: Path, cfg: dict, res: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for kind in ("macs", "images"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for arm in cfg["arms"]:
            rows = res.get(arm, [])
            if not rows:
                continue
            if ARMS.get(arm) is None:
                xs = [r[kind] / 1e6 for r in rows]
                ax.scatter(xs, [100 * r["top1"] for r in rows], c=COLORS[arm], marker="s", label="uniform ResNets")
                continue
            if kind == "macs":
                pts = [
                    (c["macs"] / 1e6, 100 * c["top1"]) for r in rows for c in r["candidates"] if c["top1"] is not None
                ]
            else:
                pts = [(r["images"] / 1e6, 100 * r["top1"]) for r in rows if r["top1"] is not None and r["images"]]
            if pts:
                x_pts, y_pts = zip(*pts)
                ax.scatter(x_pts, y_pts, c=COLORS[arm], alpha=0.8, label=arm)
        ax.set_xlabel("MACs per image (M)" if kind == "macs" else "images trained by the whole search (M)")
        ax.set_ylabel("test top-1 after the final epochs (%)")
        ax.set_title("every candidate of every seed" if kind == "macs" else "best candidate (validation) per seed")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"accuracy_vs_{kind}.png", dpi=110)
        plt.close(fig)
