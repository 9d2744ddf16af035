"""Several searches side by side (the paper's Table II layout): ``swnas report DIR1 DIR2 ...``.

``compare_searches([DIR1, DIR2, ...], out=PATH)`` reads every ``DIR/search.json`` and the spec files
it names (no checkpoint is loaded, no trained network evaluated; each spec's network is built once,
untrained, to count the paper's FLOPs) and writes into ``PATH``:

- ``compare.md`` / ``compare.csv``: one row block per search, one row per candidate A_1..A_n:
  criterion, iteration, stages, depth (``ArchSpec.depth`` and the paper's count), parameters,
  MACs and the paper's FLOPs (:func:`swnas.models.keras_flops`: separable convolutions counted as
  full ones; equal to the MACs for residual networks), validation and test top-1, the same after
  the final epochs when they ran, and which candidate is the search's ``best``;
- ``stage_depths.png``: modules per stage over the iterations, one panel per search (Fig. 4 of
  the paper for each criterion);
- ``compare.json``: what was compared, which also marks the directory as written by swnas.

The default ``PATH`` is ``compare/`` beside the first search (``DIR1/../compare``). A ``PATH``
that exists must be empty or an earlier comparison (it holds ``compare.json``); anything else is
refused rather than overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.reporting.report import rows_csv
from swnas.records.atomic import atomic_save, atomic_write_json, atomic_write_text, read_json, refuse_links

__all__ = ["Comparison", "compare_searches", "default_compare_dir", "COMPARE_COLUMNS", "COMPARE_FORMAT"]

COMPARE_FORMAT = "swnas-compare/1"
MANIFEST = "compare.json"
_FILES = ("compare.md", "compare.csv", "stage_depths.png", MANIFEST)
COMPARE_COLUMNS = (
    "search",
    "directory",
    "criterion",
    "iteration",
    "stages",
    "depth",
    "paper_depth",
    "params",
    "macs",
    "paper_flops",
    "val_top1",
    "top1",
    "final_epochs",
    "final_val_top1",
    "final_top1",
    "best",
)


@dataclass
class Comparison:
    """Paths and content of a written comparison."""

    directory: Path
    table_md: Path
    table_csv: Path
    depth_png: Path
    markdown: str
    searches: list = field(default_factory=list)
    rows: list = field(default_factory=list)


@dataclass
class _Search:
    name: str
    path: Path
    state: dict


def default_compare_dir(dirs: Sequence[str | Path]) -> Path:
    """``compare/`` beside the first search directory."""
    return Path(dirs[0]).absolute().parent / "compare"


def _load(dirs: Sequence[str | Path]) -> list[_Search]:
    from swnas.search import load_state

    if len(dirs) < 2:
        raise InputError(f"DIR: a comparison needs two or more search directories, got {len(dirs)}")
    seen: dict[Path, str] = {}
    out = []
    for d in dirs:
        p = Path(d)
        if not p.is_dir():
            raise InputError(f"DIR {p}: no such directory")
        if not (p / "search.json").is_file():
            raise InputError(
                f"DIR {p}: not a search directory (no search.json); give directories that `swnas search --out` wrote"
            )
        key = p.resolve()
        if key in seen:
            raise InputError(f"DIR {p}: given twice (also as {seen[key]})")
        seen[key] = str(p)
        state = load_state(p)  # corrupt, foreign or inconsistent: an InputError naming the file
        if not state["candidates"]:
            raise InputError(f"DIR {p}: the search has no trained candidate yet; nothing to compare")
        out.append(_Search(name=p.name, path=p, state=state))
    names = [s.name for s in out]
    for s in out:  # same last component (runs/a/search, runs/b/search): name them by parent/name
        if names.count(s.name) > 1:
            s.name = f"{s.path.absolute().parent.name}/{s.path.name}"
    return out


def _paper_costs(s: _Search, net: dict) -> tuple[int | None, int | None]:
    """The paper's depth and FLOPs of a network from its recorded spec file (None when it cannot be
    read). The FLOPs come from one forward pass of a freshly built (untrained) network."""
    from swnas.models import ArchSpec, build, keras_flops, paper_depth
    from swnas.records.atomic import inside

    from swnas.models import check_size

    try:
        path = inside(s.path, net["spec"], "spec")
        spec = ArchSpec.from_dict(read_json(path, what="spec"))
    except (InputError, KeyError, TypeError, ValueError):
        return None, None
    check_size(spec, f"spec {path}")  # a crafted spec is refused before it is built (naming the file)
    try:
        return int(paper_depth(spec)), int(keras_flops(build(spec)))
    except (InputError, KeyError, TypeError, ValueError):
        return None, None


def _rows(s: _Search) -> list[dict]:
    st = s.state
    cfg, nets = st["config"], st["networks"]
    rows = []
    for i in st["candidates"]:
        n = nets[i]
        m = n["metrics"]
        fin = n.get("final") if isinstance(n.get("final"), dict) else {}
        depth, flops = _paper_costs(s, n)
        rows.append(
            {
                "search": s.name,
                "directory": str(s.path),
                "criterion": cfg.get("criterion"),
                "iteration": n["iteration"],
                "stages": list(n["stages"]),
                "depth": n.get("depth", m.get("depth")),
                "paper_depth": depth,
                "params": m.get("params"),
                "macs": m.get("macs"),
                "paper_flops": flops,
                "val_top1": m.get("val_top1"),
                "top1": m.get("top1"),
                "final_epochs": fin.get("epochs"),
                "final_val_top1": fin.get("val_top1"),
                "final_top1": fin.get("top1"),
                "best": st.get("best") == i,
            }
        )
    return rows


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _count(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.3f} M" if v >= 1e5 else f"{v / 1e3:.1f} k"


def _markdown(searches: list[_Search], rows: list[dict]) -> str:
    head = (
        "Search",
        "Criterion",
        "It.",
        "Stages",
        "Depth",
        "Depth (paper)",
        "Params",
        "MACs",
        "FLOPs (paper)",
        "Val top-1 (%)",
        "Test top-1 (%)",
        "Val top-1 after final (%)",
        "Test top-1 after final (%)",
        "Best",
    )
    lines = ["# Searches compared", ""]
    for s in searches:
        st, cfg = s.state, s.state["config"]
        start = st["networks"][st["initial"]]["stages"] if isinstance(st.get("initial"), int) else None
        best = st.get("best")
        lines.append(
            f"- **{s.name}** ({s.path}): {cfg.get('dataset')} / {cfg.get('module')} / "
            f"{cfg.get('criterion')}, recipe {cfg.get('recipe')}, status {st['status']}, "
            f"{len(st['candidates'])} candidates"
            + (f", starting network {start}" if start else "")
            + (f", best: A{st['networks'][best]['iteration']}" if isinstance(best, int) else ", no best")
        )
    lines += ["", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for s in searches:
        first = True
        for r in (r for r in rows if r["search"] == s.name):
            cells = (
                f"**{s.name}**" if first else "",
                (r["criterion"] or "-") if first else "",
                str(r["iteration"]),
                "-".join(map(str, r["stages"])),
                str(r["depth"] if r["depth"] is not None else "-"),
                str(r["paper_depth"] if r["paper_depth"] is not None else "-"),
                _count(r["params"]),
                _count(r["macs"]),
                _count(r["paper_flops"]),
                _pct(r["val_top1"]),
                _pct(r["top1"]),
                _pct(r["final_val_top1"]),
                _pct(r["final_top1"]),
                "**best**" if r["best"] else "",
            )
            lines.append("| " + " | ".join(cells) + " |")
            first = False
    lines += [
        "",
        "One block per search, one row per candidate A_1..A_n. Best: the candidate each search chose "
        "by validation top-1 (after its final epochs when they ran); test accuracy is reported, never used "
        "to choose. Depth: `ArchSpec.depth`; Depth (paper): convolution layers as the paper's tables count "
        "them. MACs: multiply-accumulates of one image. FLOPs (paper): the count of the paper's Keras code, "
        "which takes a separable convolution as a full one (equal to the MACs for residual networks; "
        "docs/protocol.md).",
    ]
    return "\n".join(lines) + "\n"


def _plot(searches: list[_Search], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(searches))
    nrows = -(-len(searches) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), sharey=True, squeeze=False)
    for ax, s in zip(axes.flat, searches):
        nets = s.state["networks"]
        cands = [nets[i] for i in s.state["candidates"]]
        iters = [n["iteration"] for n in cands]
        S = len(cands[0]["stages"])
        width = 0.8 / S
        for k in range(S):
            ax.bar(
                [i + (k - (S - 1) / 2) * width for i in iters],
                [n["stages"][k] for n in cands],
                width=width,
                label=f"stage {k + 1}",
            )
        ax.set_title(f"{s.name} ({s.state['config'].get('criterion')})", fontsize=9)
        ax.set_xticks(iters)
        ax.set_xlabel("iteration")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(searches) :]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("modules in the stage")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    atomic_save(lambda p: fig.savefig(p, format="png", dpi=120), path)
    plt.close(fig)


def _check_out(out: Path, searches: list[_Search]) -> None:
    """``out`` is absent, empty or an earlier comparison, and is none of the searches."""
    for s in searches:
        if out.resolve() == s.path.resolve():
            raise InputError(f"--out-compare {out}: is the search directory {s.path}; choose another directory")
    if out.is_symlink():
        raise InputError(f"--out-compare {out}: is a symbolic link; choose another directory")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out-compare {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        man = out / MANIFEST
        doc = read_json(man, what="--out-compare") if man.is_file() and not man.is_symlink() else None
        if not (isinstance(doc, dict) and doc.get("format") == COMPARE_FORMAT):
            raise InputError(
                f"--out-compare {out}: holds files that are not a swnas comparison (no {MANIFEST}); "
                "choose an empty or new directory"
            )
        refuse_links(out, _FILES)


def compare_searches(dirs: Sequence[str | Path], out: str | Path | None = None) -> Comparison:
    """Compare two or more searches; writes ``out`` (default :func:`default_compare_dir`).

    Raises :class:`InputError` naming the path for a directory that is not a search (no
    ``search.json``), a corrupt or foreign state, a search without candidates, a directory given
    twice, or an ``out`` that holds something other than an earlier comparison.
    """
    searches = _load(dirs)
    out = Path(out) if out is not None else default_compare_dir(dirs)
    _check_out(out, searches)
    from swnas.records.atomic import prepare_out_dir

    prepare_out_dir(out, "--out-compare")
    rows = [r for s in searches for r in _rows(s)]
    md = _markdown(searches, rows)
    table_md = atomic_write_text(out / "compare.md", md)
    table_csv = atomic_write_text(out / "compare.csv", rows_csv(rows, COMPARE_COLUMNS))
    depth_png = out / "stage_depths.png"
    _plot(searches, depth_png)
    atomic_write_json(
        out / MANIFEST,
        {
            "format": COMPARE_FORMAT,
            "searches": [
                {
                    "name": s.name,
                    "directory": str(s.path.absolute()),
                    "best": s.state.get("best"),
                    "candidates": list(s.state["candidates"]),
                }
                for s in searches
            ],
        },
    )
    return Comparison(
        directory=out,
        table_md=table_md,
        table_csv=table_csv,
        depth_png=depth_png,
        markdown=md,
        searches=[s.name for s in searches],
        rows=rows,
    )
