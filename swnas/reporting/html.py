"""``swnas report DIR --html``: one self-contained HTML page of a search.

The page holds the results table (validation and test accuracy, both again after the final epochs,
the best candidate marked), the decisions of every iteration (per-stage scores of A and T to 4
significant digits, or as many as tell them apart, and which stages grew), the training curves of
every network (when ``search.json`` keeps their per-epoch history; validation accuracy per epoch
beside training where it was recorded), the charts of ``DIR/report/`` when they exist (stage
depths, accuracy against cost, per-stage scores), the run's options and its environment. Images
are PNGs embedded as ``data:`` URIs and the style sheet is inline: the file opens offline, can be
mailed or attached to a lab notebook, and references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.reporting.fmt import human_count, score_pair
from swnas.records.atomic import atomic_write_text

__all__ = ["write_html", "render_html", "HTML_NAME"]

HTML_NAME = "report.html"

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}tr.grow td{background:#eef8ee}tr.best td{font-weight:bold;background:#fff8e0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
code{background:#f6f6f6;padding:0 .2em}
"""


def _e(v: Any) -> str:
    return html.escape("-" if v is None else str(v))


def _table(head: list[str], rows: list[list[Any]], left: int = 1, classes: list[str] | None = None) -> str:
    th = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    body = []
    for k, r in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        tds = "".join(f'<td class="l">{_e(v)}</td>' if i < left else f"<td>{_e(v)}</td>" for i, v in enumerate(r))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _pct(v: Any) -> str:
    return f"{100 * v:.2f}" if isinstance(v, (int, float)) else "-"


def _results(rows: list[dict]) -> str:
    from swnas.reporting.report import display_name

    head = [
        "Network",
        "Kind",
        "Stages",
        "Depth",
        "Params",
        "MACs",
        "CPU latency (ms)",
        "Top-1 (%)",
        "Top-5 (%)",
        "Val top-1 (%)",
        "Top-1 after final epochs (%)",
        "Val top-1 after final epochs (%)",
    ]
    body = [
        [
            display_name(r),
            r["kind"],
            "-".join(map(str, r["stages"])) if r.get("stages") else None,
            r.get("depth"),
            human_count(r.get("params")),
            human_count(r.get("macs")),
            None if r.get("latency_ms") is None else f"{r['latency_ms']:.3f}",
            _pct(r.get("top1")),
            _pct(r.get("top5")),
            _pct(r.get("val_top1")),
            _pct(r.get("final_top1")),
            _pct(r.get("final_val_top1")),
        ]
        for r in rows
    ]
    return _table(head, body, left=3, classes=["best" if r.get("best") else "" for r in rows])


def _decisions(state: dict) -> str:
    parts = []
    for it in state.get("iterations", []):
        rows, cls = [], []
        for c in it.get("comparisons", []):
            a, t = score_pair(c.get("score_A"), c.get("score_T"))
            rows.append([c.get("stage"), a, t, "grow" if c.get("grow") else "keep"])
            cls.append("grow" if c.get("grow") else "")
        grown = ", ".join(map(str, it.get("grown", []))) or "none"
        parts.append(
            f"<h3>Iteration {_e(it.get('iteration'))}: stages {_e(it.get('stages_before'))} &rarr; "
            f"{_e(it.get('stages_after'))} (grown: {_e(grown)})</h3>"
        )
        parts.append(_table(["Stage", "score of A", "score of T", "decision"], rows, left=1, classes=cls))
    return "\n".join(parts) or "<p>No iteration scored yet.</p>"


#: history keys that hold a per-epoch validation accuracy, when the trainer records one
VAL_KEYS = ("val_acc", "val_top1")


def _val_of(entry: dict) -> float | None:
    for k in VAL_KEYS:
        v = entry.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def curves_figure(state: dict) -> Any | None:
    """Training loss and accuracy per epoch of every network with a recorded history; validation
    accuracy per epoch (dashed, same colour) beside the training accuracy where it was recorded.
    ``None`` when no network kept its history."""
    nets = [n for n in state.get("networks", []) if n.get("history")]
    if not nets:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    any_val = False
    for n in nets:
        h = n["history"]
        label = f"{n.get('role')}{n.get('iteration')} {'-'.join(map(str, n.get('stages', [])))}"
        ep = [e["epoch"] for e in h]
        axes[0].plot(ep, [e["loss"] for e in h], label=label)
        (line,) = axes[1].plot(ep, [100 * e["acc"] for e in h], label=f"{label} training")
        val = [(e["epoch"], v) for e in h if (v := _val_of(e)) is not None]
        if val:
            any_val = True
            axes[1].plot(
                [k for k, _ in val],
                [100 * v for _, v in val],
                linestyle="--",
                color=line.get_color(),
                label=f"{label} validation",
            )
    axes[0].set_ylabel("training loss")
    axes[1].set_ylabel("accuracy (%): training" + (", validation dashed" if any_val else ""))
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _curves_png(state: dict) -> bytes | None:
    fig = curves_figure(state)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _mapping(d: dict | None) -> str:
    if not d:
        return "<p>Not recorded.</p>"
    return _table(["Option", "Value"], [[k, v] for k, v in d.items()], left=2)


def render_html(state: dict, rows: list[dict], images: dict[str, bytes] | None = None) -> str:
    """The page as a string, from a search state, the report rows and named PNG images."""
    cfg = state.get("config", {})
    title = f"Stage-wise search: {cfg.get('dataset')} / {cfg.get('module')} / {cfg.get('criterion')}"
    curves = _curves_png(state)
    figs = dict(images or {})
    sections = [
        f"<h1>{_e(title)}</h1>",
        f"<p>Status: <b>{_e(state.get('status'))}</b>; {len(state.get('networks', []))} networks trained, "
        f"{len(state.get('candidates', []))} candidates (A1..A{len(state.get('candidates', []))}). Test "
        "accuracies are reported only; validation accuracy chooses the best candidate (bold, marked (best)).</p>",
        "<h2>Results</h2>",
        _results(rows),
        "<h2>Decisions per iteration</h2>",
        _decisions(state),
        "<h2>Training curves</h2>",
        _img(curves, "training curves") if curves else "<p>No per-epoch history in search.json.</p>",
    ]
    if curves and not any(_val_of(e) is not None for n in state.get("networks", []) for e in n.get("history") or []):
        sections.append(
            "<p>Validation accuracy per epoch was not recorded in this search's history; the "
            "validation accuracy of each network after training is in the results table.</p>"
        )
    if figs:
        sections.append("<h2>Charts</h2>")
        sections += [_img(png, name) for name, png in figs.items()]
    sections += ["<h2>Options</h2>", _mapping(cfg), "<h2>Environment</h2>", _mapping(state.get("environment"))]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write_html(out_dir: str | Path, dest: str | Path | None = None, *, ensemble: dict | None = None) -> Path:
    """Write ``DIR/report/report.html`` (or ``dest``) for the search in ``out_dir``; returns the path.

    The charts of ``DIR/report/*.png`` (written by :func:`swnas.reporting.report.write_report`) are
    embedded when present; ``ensemble`` adds the ensemble's row as in the Markdown table.
    """
    from swnas.reporting.report import collect_rows
    from swnas.search import load_state

    out = Path(out_dir)
    state = load_state(out)
    if not state.get("candidates"):
        raise InputError(f"{out}: the search has no trained candidate yet; nothing to report")
    rows = collect_rows(out, state, ensemble)
    images = {p.stem.replace("_", " "): p.read_bytes() for p in sorted((out / "report").glob("*.png"))}
    path = Path(dest) if dest is not None else out / "report" / HTML_NAME
    return atomic_write_text(path, render_html(state, rows, images))
