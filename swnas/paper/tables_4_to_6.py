"""``swnas paper table4 | table5 | table6 | ensemble``: the cell search, its costs, transfer, the ensemble.

Each runner returns its measured rows and the notes that say what was run; everything it trains
lives under ``--out DIR`` and is read back on the next call (see :mod:`swnas.paper.runs` and
``docs/protocol.md``):

* ``table4`` (Table IV): the stage-wise search with the Keras NASNet-A cells of the released code
  (``DIR/searches/cells-pls``) next to the uniform NASNet169/205/241 (``DIR/baselines/NASNet*``).
  The search runs 5 iterations, as the paper's (Table V: 11 evaluated models; Table IV shows
  it = 1, 3, 5); m0 = 2, delta = 1 and first-stage width 32 come from the authors' released cell
  models (they grow from ``[2, 3, 2]`` at it=1 one cell at a time), not from the paper's text.
* ``table6`` (Table VI): ResNet110, the last candidate of the PLS-VIP residual search
  (``DIR/searches/scratch-pls``, Tables II and III's), NASNet241 and the last candidate of the cell
  search (``DIR/searches/cells-pls``, Table IV's), each trained from scratch on every target dataset
  of the command (``--target tinyimagenet=PATH --target imagenet32=PATH``; ``DIR/retrain/TARGET/NAME``),
  with top-5 (the paper's) and top-1.
* ``ensemble`` (Section IV): the averaged softmax of residual it = 1, 3, 5 and cell it = 1, 3, 5
  (the candidates after their final epochs), cached in ``DIR/ensembles/residual+cells.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.paper.runs import (
    PaperSettings,
    candidate_rows,
    cost_row,
    ensure_baseline,
    ensure_search,
    ensure_training,
    match_best,
    pct,
    say,
    training_row,
)

__all__ = [
    "table4",
    "table6",
    "ensemble",
    "targets_of",
    "parse_target",
    "Target",
    "TABLE6_DATASETS",
    "TABLE6_ROWS",
    "cell_search_options",
    "CELL_BASELINES",
    "CELL_SEARCH",
    "SMOKE_CELL_WIDTH",
    "ENSEMBLE_ITERATIONS",
]

#: Table IV's uniform baselines: (label, cells per stage), Keras NASNet-A cells at width 32.
CELL_BASELINES = (("NASNet169", 4), ("NASNet205", 5), ("NASNet241", 6))
#: The cell search: Keras cells, 5 iterations (the paper's: Table V's 11 evaluated models); width 32,
#: m0 = 2 and delta = 1 from the released cell models.
CELL_SEARCH = dict(module="nasnet", cell="keras", width=32, m0=2, delta=1, iterations=5)
#: What Table IV's memory column measures, and how it differs from the paper's.
MEMORY_NOTE_CELLS = (
    "Memory (MB) is swnas' memory / 2^20: 4 bytes x (the input, every layer's output for one "
    "image, parameters and buffers). It matches the paper within 0.1% for the residual networks "
    "(Tables I and III) but is 4-8% below Table IV for the Keras NASNet cells (NASNet169 67.5 vs "
    "71.26, it=1 [2, 3, 2] 41.8 vs 45.20, NASNet241 97.2 vs 101.47 at width 32): the released Keras "
    "models count some layer outputs that swnas' cells do not materialise as separate layers; the "
    "exact layers have not been identified."
)
#: First-stage width of the cell networks at smoke scale (tiny, for a CPU).
SMOKE_CELL_WIDTH = 4
#: Cells per stage of the smoke scale's uniform stand-ins for NASNet169/205.
SMOKE_CELL_BASELINES = (1, 2)
#: Which iterations of each search the paper's ensemble averages.
ENSEMBLE_ITERATIONS = (1, 3, 5)
#: Table VI's uniform residual network, and the smoke scale's stand-in (a real ResNet-20 shape).
TABLE6_RESNET = ("ResNet110", 18)
SMOKE_TABLE6_RESNET = ("ResNet20", 3)


def cell_search_options(st: PaperSettings) -> dict:
    """Options of the cell search (``DIR/searches/cells-pls``) at the settings' scale."""
    opts = dict(CELL_SEARCH, criterion="pls")
    if st.smoke:
        opts.update(width=SMOKE_CELL_WIDTH, m0=1, iterations=1)
    return opts


def _cell_spec(width: int, m: int) -> Any:
    from swnas.models import ArchSpec

    return ArchSpec(module="nasnet", stages=[m, m, m], cell="keras").with_width(width)


# ------------------------------------------------------------------------------- Table IV
def table4(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """Uniform NASNets and the stage-wise cell search (setting ``uniform`` and ``cells``)."""
    from swnas.models import paper_depth

    opts = cell_search_options(st)
    width = int(opts["width"])
    rows = []
    groups: list[tuple[str, int, str | None]]
    if st.smoke:
        groups = [
            (
                f"NASNet{paper_depth(_cell_spec(width, m))}-w{width}",
                m,
                f"smoke stand-in for {CELL_BASELINES[i][0]}: [{m}, {m}, {m}] cells at width {width}",
            )
            for i, m in enumerate(SMOKE_CELL_BASELINES)
        ]
    else:
        groups = [(label, m, None) for label, m in CELL_BASELINES]
    for label, m, note in groups:
        spec = _cell_spec(width, m)
        _, res = ensure_baseline(st, label, [m] * 3, spec=spec)
        row = training_row("uniform", label, res, depth=paper_depth(spec))
        if note:
            row["note"] = note
        rows.append(row)
    out, state = ensure_search(st, "cells-pls", **opts)
    rows += candidate_rows(out, state, "cells")
    notes = [
        f"Cells: Keras NASNet-A cells at first-stage width {width}; the search starts at m0 {opts['m0']} "
        f"with delta {opts['delta']} for {opts['iterations']} iteration(s) (the paper's 5 iterations; m0 2, "
        "delta 1 and width 32 come from the authors' released cell models, not from the paper's text). "
        "Baselines train as long as a candidate in all; depth counts convolutions as the paper does; FLOPs "
        "in billions as in the paper.",
        MEMORY_NOTE_CELLS,
    ]
    if st.smoke:
        notes.append(
            f"Smoke scale: the uniform rows are shrunken stand-ins named by their own depth (width "
            f"{width}, {' and '.join(str(m) for m in SMOKE_CELL_BASELINES)} cells per stage), not "
            "NASNet169/205/241; the measured it=k rows are iteration k of a tiny search, not the "
            "paper's networks."
        )
    return match_best(rows), notes


# ------------------------------------------------------------------------------- Table VI
#: Table VI's targets by the name its rows carry (ICPR 2020, Table VI): the loader and the side the
#: images are read at (Tiny ImageNet's 64 px; ``None``: the loader's own).
TABLE6_DATASETS = {"tinyimagenet": ("imagefolder", 64), "imagenet32": ("imagenet32", None)}


@dataclass(frozen=True)
class Target:
    """One target of Table VI: ``label`` is its rows' setting and its directory ``DIR/retrain/LABEL``."""

    label: str
    dataset: str
    data: str | None
    seed: int
    input_size: int | None = None


def parse_target(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME=PATH`` (the CLI's ``--target``) as ``(NAME, PATH)``."""
    name, sep, path = text.partition("=")
    name = name.strip().lower()
    if not name:
        raise InputError(f"--target: expected NAME or NAME=PATH, got {text!r}")
    return name, (path if sep else None)


def targets_of(st: PaperSettings) -> tuple[list[Target], list[str]]:
    """Table VI's targets (``st.targets``, then ``st.target_dataset``) and notes on how they were chosen.

    ``tinyimagenet`` is an image folder read at 64 px, ``imagenet32`` the downsampled-ImageNet npz
    release; any other name is a loader of :data:`swnas.data.DATASETS` read as it is.
    """
    from swnas.data import DATASETS, check_source

    targets = []
    for name, path in st.targets:
        if name in TABLE6_DATASETS:
            dataset, size = TABLE6_DATASETS[name]
        elif name in DATASETS:
            dataset, size = name, None
        else:
            raise InputError(
                f"--target: unknown target {name!r}; choose one of "
                f"{', '.join([*TABLE6_DATASETS, *(d for d in DATASETS if d not in TABLE6_DATASETS)])}"
            )
        if st.smoke and name == "tinyimagenet":
            size = None  # smoke: the folder's own (tiny) images, not 64 px
        check_source(dataset, path)
        targets.append(Target(name, dataset, path, st.seed, size))
    if st.target_dataset is not None:
        check_source(st.target_dataset, st.target_data)
        targets.append(Target(st.target_dataset, st.target_dataset, st.target_data, st.seed))
    labels = [t.label for t in targets]
    if len(set(labels)) != len(labels):
        raise InputError(f"--target: a target is named twice ({', '.join(labels)})")
    if targets:
        return targets, []
    if not st.smoke:
        raise InputError(
            "target_dataset: table6 trains the found architectures on a second dataset; give "
            "--target tinyimagenet=PATH and/or --target imagenet32=PATH (or --target-dataset and "
            "--target-data PATH)"
        )
    return (
        [Target(st.dataset, st.dataset, st.data, st.seed + 1)],
        [
            f"Smoke scale without --target: the 'target' is {st.dataset} itself, trained with another seed "
            f"({st.seed + 1}: another training subset and initialisation, the same test set). This checks the "
            "pipeline; it is not a transfer to another dataset."
        ],
    )


#: Table VI's rows (ICPR 2020, Table VI), in its order: ResNet110, the residual search's final
#: network, NASNet241 and the cell search's final network.
TABLE6_ROWS = ("ResNet110", "residual", "NASNet241", "cells")


def _final_candidate(out: Path, state: dict) -> tuple[dict, Any]:
    from swnas.models import ArchSpec

    net = state["networks"][state["candidates"][-1]]
    return net, ArchSpec.from_json((out / net["spec"]).read_text())


def table6_jobs(st: PaperSettings) -> list[tuple[str, str, Any, int | None, str]]:
    """The four networks of Table VI as ``(row, run name, spec, paper depth, note)``: ResNet110
    and NASNet241 (smoke: shrunken stand-ins, named by their own depth) and the last candidate of the
    residual (``searches/scratch-pls``) and of the cell search (``searches/cells-pls``)."""
    from swnas.models import ArchSpec, paper_depth

    res_out, res_state = ensure_search(st, "scratch-pls", criterion="pls")
    opts = cell_search_options(st)
    cell_out, cell_state = ensure_search(st, "cells-pls", **opts)
    width = int(opts["width"])
    if st.smoke:
        (res_label, m_res), m_cell = SMOKE_TABLE6_RESNET, SMOKE_CELL_BASELINES[0]
        cell_label = f"NASNet{paper_depth(_cell_spec(width, m_cell))}-w{width}"
        res_note = f"smoke stand-in for ResNet110: [{m_res}, {m_res}, {m_res}]"
        cell_note = f"smoke stand-in for NASNet241: [{m_cell}, {m_cell}, {m_cell}] cells at width {width}"
    else:
        (res_label, m_res), (cell_label, m_cell) = TABLE6_RESNET, CELL_BASELINES[-1]
        res_note = cell_note = ""
    rnet, rspec = _final_candidate(res_out, res_state)
    cnet, cspec = _final_candidate(cell_out, cell_state)
    cell_spec = _cell_spec(width, m_cell)
    return [
        (res_label, res_label, ArchSpec(module="basic", stages=[m_res] * 3), None, res_note),
        (
            "residual",
            f"A{rnet['iteration']}",
            rspec,
            paper_depth(rspec),
            f"it={rnet['iteration']} of searches/{res_out.name}, the search's last candidate",
        ),
        (cell_label, cell_label, cell_spec, paper_depth(cell_spec), cell_note),
        (
            "cells",
            f"cells-A{cnet['iteration']}",
            cspec,
            paper_depth(cspec),
            f"it={cnet['iteration']} of searches/{cell_out.name}, the search's last candidate",
        ),
    ]


def table6(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """Table VI's four networks trained from scratch on each target: top-5 (the paper's) and top-1."""
    targets, target_notes = targets_of(st)
    subset = st.search_options().get("subset")
    jobs = table6_jobs(st)
    rows = []
    for t in targets:
        for label, name, spec, depth, note in jobs:
            res = ensure_training(
                st,
                st.out / "retrain" / t.label / name,
                f"{label} ({t.label})",
                spec,
                dataset=t.dataset,
                data=t.data,
                subset=subset,
                seed=t.seed,
                input_size=t.input_size,
            )
            row = training_row(t.label, label, res, depth=depth)
            row["top5"] = pct(res["metrics"].get("top5"))  # Table VI prints top-5
            if note:
                row["note"] = note
            rows.append(row)
    names = ", ".join(
        f"{t.label} ({t.dataset}{'' if t.input_size is None else f' at {t.input_size} px'}, "
        f"retrain/{t.label}/, seed {t.seed})"
        for t in targets
    )
    notes = [
        f"Table VI's four networks, each trained from scratch on every target for {st.baseline_epochs()} "
        f"epochs: {names}. 'residual' and 'cells' are the last candidates of the {st.dataset} residual "
        "(searches/scratch-pls) and cell (searches/cells-pls) searches; the paper prints top-5 (Top-5 (%)), "
        "top-1 is shown beside it. Top-5 and top-1 are on each target's test (validation) set. Tiny ImageNet "
        "(--target tinyimagenet=PATH, an image folder) and ImageNet 32x32 (--target imagenet32=PATH) pair "
        "with the paper's columns; other targets are extra rows."
    ]
    return rows, notes + target_notes


# ------------------------------------------------------------------------------- ensemble
def _members(out: Path, state: dict, family: str) -> list[dict]:
    want = {k: None for k in ENSEMBLE_ITERATIONS}
    for idx in state["candidates"]:
        net = state["networks"][idx]
        if net["iteration"] in want:
            want[net["iteration"]] = net
    return [{"family": family, "out": out, "net": n} for n in want.values() if n is not None]


def _evaluate(st: PaperSettings, members: list[dict], cfg: dict) -> dict:
    """The ensemble's result, read back from ``DIR/ensembles/`` when its members have not changed."""
    from swnas.data import input_normalization, reopen_dataset
    from swnas.reporting.ensemble import evaluate_ensemble_on
    from swnas.training.recipes import get_recipe
    from swnas.search import final_record, load_recorded
    from swnas.records.atomic import atomic_write_json, read_json

    key = [[m["family"], m["net"]["index"], final_record(m["net"]).get("checkpoint_sha256")] for m in members]
    path = st.out / "ensembles" / "residual+cells.json"
    if path.is_file():
        held = read_json(path, what="ensemble")
        if held.get("members") == key:
            return held
    say(st, f"== ensemble of {len(members)} networks")
    ds = reopen_dataset(cfg)
    models = [load_recorded(m["out"], final_record(m["net"])) for m in members]
    mean, std = input_normalization(ds, get_recipe(cfg.get("recipe", "paper")).normalize)  # as they trained
    res = evaluate_ensemble_on(models, ds, "test", mean=mean, std=std, device=st.device)
    doc = {"members": key, **{k: v for k, v in res.to_dict().items() if k != "members"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
    return doc


def _same_data(a: dict, b: dict) -> None:
    keys = ("dataset", "data", "subset", "seed", "val_split")
    if any(a.get(k) != b.get(k) for k in keys):
        raise InputError(
            "--out: the residual and the cell search were run on different data "
            f"({ {k: a.get(k) for k in keys} } vs { {k: b.get(k) for k in keys} }); their ensemble "
            "needs one test set"
        )


def ensemble(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """Members' rows (setting ``residual`` / ``cells``) and the ensemble row (``residual+cells``)."""
    from swnas.models import ArchSpec, paper_depth

    res_out, res_state = ensure_search(st, "scratch-pls", criterion="pls")
    cell_out, cell_state = ensure_search(st, "cells-pls", **cell_search_options(st))
    _same_data(res_state["config"], cell_state["config"])
    members = _members(res_out, res_state, "residual") + _members(cell_out, cell_state, "cells")
    doc = _evaluate(st, members, res_state["config"])
    rows, names = [], []
    for m, top1 in zip(members, doc["member_top1"]):
        net = m["net"]
        spec = ArchSpec.from_json((m["out"] / net["spec"]).read_text())
        rows.append(
            {
                "setting": m["family"],
                "row": f"it={net['iteration']}",
                "stages": list(net["stages"]),
                "depth": paper_depth(spec),
                **cost_row(spec, net["metrics"]),
                "top1": pct(top1),
                "epochs": (net["metrics"].get("epochs") or 0) + ((net.get("final") or {}).get("epochs") or 0),
            }
        )
        names.append(f"{m['family']} it={net['iteration']}")
    used = ", ".join(names)
    rows.append(
        {
            "setting": "residual+cells",
            "row": "ensemble",
            "params_m": sum(r["params_m"] for r in rows),
            "flops_m": sum(r["flops_m"] for r in rows),
            "top1": pct(doc["top1"]),
            "members": len(members),
            "note": f"members: {used}",
        }
    )
    notes = [
        f"Ensemble: the mean softmax of {used} (each after its final epochs when they ran) on the test set "
        f"of {res_state['config']['dataset']}; parameters and FLOPs are the members' sums. The paper averages "
        "residual it=1, 3, 5 and cell it=1, 3, 5; a search with fewer iterations contributes what it has."
    ]
    return rows, notes


# ------------------------------------------------------------------------------- Table V
def _gpus(cfg: dict) -> int:
    """GPUs a search ran on: 1 on a CUDA device (a torchrun world is not recorded), 0 on the CPU."""
    dev = str(cfg.get("device") or "")
    return 1 if dev.startswith("cuda") else 0


def table5(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """Table V's own rows measured here: the residual and the cell search (networks trained, GPUs,
    the final candidate's parameters and top-1 after its final epochs) and their ensemble."""
    rows = []
    for name, label, opts in (
        ("scratch-pls", "residual modules", {"criterion": "pls"}),
        ("cells-pls", "cell modules", cell_search_options(st)),
    ):
        out, state = ensure_search(st, name, **opts)
        last = candidate_rows(out, state, "ours")[-1]
        rows.append(
            {
                "setting": "ours",
                "row": label,
                "evaluated_models": len(state["networks"]),
                "gpus": _gpus(state["config"]),
                "params_m": last["params_m"],
                "top1": last["top1"],
                "note": f"searches/{out.name} {last['row'].replace(' (best)', '')}, after its final epochs",
            }
        )
    ens = ensemble(st)[0][-1]
    rows.append(
        {"setting": "ours", "row": "ensemble", "params_m": ens["params_m"], "top1": ens["top1"], "note": ens["note"]}
    )
    notes = [
        "The other methods' rows are the results the paper took from earlier work (ICPR 2020, Table V). "
        "Evaluated models: networks the search trained (A0, then T_k and A_k per iteration); GPUs: 1 when the "
        "search ran on a CUDA device, 0 on the CPU (a multi-GPU torchrun world is not recorded). Parameters "
        "and top-1: the search's last candidate after its final epochs (the paper's 94.27% and 94.74% rows "
        "are the last iterations of Tables III and IV; its 1.7 M for the residual row is ResNet110's count, "
        "the 94.27% network has 0.88 M)."
    ]
    return rows, notes
