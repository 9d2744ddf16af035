"""What every ``swnas paper`` table is built from: its settings, its runs under ``--out DIR`` and its rows.

Everything lives under ``--out DIR``: ``DIR/searches/NAME`` (one search state each, shared between
tables: Table III's scratch search is Table II's PLS-VIP search), ``DIR/baselines/NAME`` (uniform
networks, also the weight-transfer donor) and ``DIR/retrain/TARGET/NAME`` (an architecture
trained from scratch on another dataset, Table VI). Running a table again reuses what DIR holds:
finished searches and trainings are read back, a killed one resumes. See ``docs/protocol.md``.

A DIR holds the runs of one set of settings (:meth:`PaperSettings.identity`: dataset, data path,
seed, smoke scale, recipe), recorded in ``DIR/paper.json`` by the first table run there; a table
asked for with other settings is refused before anything runs (:func:`open_dir`). Each run read
back is also compared with the run the table asks for (a search's stored config, a training's
dataset, options and architecture), so a run made with other settings is never reused or labelled
with the new ones (:func:`check_search`, :func:`check_training`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from swnas.errors import InputError

__all__ = [
    "PaperSettings",
    "ensure_search",
    "ensure_baseline",
    "ensure_training",
    "candidate_rows",
    "baseline_row",
    "training_row",
    "train_hours",
    "match_best",
    "say",
    "open_dir",
    "check_search",
    "check_training",
    "PAPER_FILE",
    "PAPER_FORMAT",
    "INHERIT_SUFFIX",
    "INHERIT_LABEL",
]

#: The settings file of a ``swnas paper`` DIR and its format tag.
PAPER_FILE = "paper.json"
PAPER_FORMAT = "swnas-paper/1"
#: Search options that may differ between the stored run and the asked one (where it runs, not what).
_FREE_SEARCH_KEYS = ("device", "backend", "workers")
#: Appended to the names of runs made in inherit mode and to their tables' files.
INHERIT_SUFFIX = "-inherit"
#: Appended to the setting of every row measured in inherit mode (never a published row's key).
INHERIT_LABEL = " (inherit)"
#: What defines a trained architecture (classes, input size and channels follow the dataset).
_SPEC_KEYS = ("module", "stages", "widths", "stem", "shortcut", "stem_kind", "drop_path", "cell")
#: Options given as paths: compared as absolute paths.
_PATH_KEYS = ("data", "transfer")


@dataclass(frozen=True)
class PaperSettings:
    """Where and at which scale to run a table (``smoke``: tiny, for a CPU).

    ``targets`` are Table VI's target datasets, ``(NAME, PATH)`` pairs run by one command (NAME
    ``tinyimagenet``, ``imagenet32`` or a loader of :data:`swnas.data.DATASETS`);
    ``target_dataset`` / ``target_data`` add one more target by loader name. With none, a smoke
    run moves to ``dataset`` itself with another seed; at paper scale Table VI needs one.
    ``inherit`` runs the table's searches in inherit mode (an addition to the paper,
    ``docs/protocol.md``): they live under their own names (``searches/NAME-inherit``), so one DIR
    may hold a table both ways, and their rows are labelled ``SETTING (inherit)`` so that none is
    matched to a published row.
    """

    dataset: str
    out: Path
    data: str | None = None
    smoke: bool = False
    device: str = "auto"
    recipe: str = "paper"
    seed: int = 0
    echo: Callable[[str], None] | None = print
    target_dataset: str | None = None
    target_data: str | None = None
    inherit: bool = False
    targets: tuple[tuple[str, str | None], ...] = ()

    def search_options(self) -> dict:
        """Options shared by every search of a table (the paper's, or the smoke scale)."""
        opts: dict[str, Any] = dict(
            dataset=self.dataset,
            data=self.data,
            device=self.device,
            recipe=self.recipe,
            seed=self.seed,
            iterations=5,
            m0=6,
            delta=2,
            val_split=0.1,
        )
        if self.smoke:
            opts.update(iterations=1, m0=1, delta=1, epochs=1, final_epochs=1, batch_size=64, subset=300, val_split=0.2)
        if self.inherit:
            opts["inherit"] = True
        return opts

    def run_name(self, name: str) -> str:
        """The directory name of a search or retraining: ``NAME-inherit`` in inherit mode."""
        return f"{name}{INHERIT_SUFFIX}" if self.inherit else name

    def baseline_epochs(self) -> int | None:
        """A baseline trains as long as a candidate in all (search epochs + final epochs)."""
        if self.smoke:
            return 2
        from swnas.training.recipes import get_recipe

        e = get_recipe(self.recipe).epochs
        return e + max(1, e // 2)

    def identity(self) -> dict:
        """What the runs of a DIR are made with (``DIR/paper.json``): dataset, data path (absolute),
        seed, smoke scale and recipe. ``device`` and ``echo`` change where and how loudly, not what."""
        return {
            "dataset": self.dataset,
            "data": _abspath(self.data),
            "seed": self.seed,
            "smoke": self.smoke,
            "recipe": self.recipe,
        }

    def scale_note(self, **override: Any) -> str:
        """The table's note on its scale; ``override`` replaces search options a table sets itself."""
        o = dict(self.search_options(), **override)
        scale = "smoke scale (a check that the pipeline runs, not a reproduction)" if self.smoke else "paper scale"
        return (
            f"Measured here at {scale}: dataset {self.dataset}, recipe {self.recipe}, "
            f"{o['iterations']} iteration(s), m0 {o['m0']}, delta {o['delta']}, epochs "
            f"{o.get('epochs') or 'of the recipe'}, final epochs {o.get('final_epochs') or 'half of them'}, "
            f"validation split {o['val_split']}, subset {o.get('subset') or 'none'}. Every network of the "
            f"table, baselines included, trains on the same images: the same {o['val_split']:g} of the "
            "training set is held out for validation (the paper does not say it held any out). 'Best on "
            "validation' marks the candidate with the highest validation accuracy, an swnas addition: the "
            "paper selects none. Latency and carbon depend on the machine that measured them (carbon: "
            "swnas.models.metrics.carbon, power x hours x PUE x grid intensity, with the world-average "
            "0.475 kg CO2e/kWh unless configured; a candidate's carbon includes its final epochs)."
        )


def say(st: PaperSettings, msg: str) -> None:
    """Print ``msg`` through the settings' echo (silent when it is ``None``)."""
    if st.echo is not None:
        st.echo(msg)


# ------------------------------------------------------------------------------- settings
def _abspath(p: Any) -> Any:
    import os

    return os.path.abspath(p) if isinstance(p, (str, Path)) else p


def _differences(stored: dict, asked: dict, keys: Any) -> list[str]:
    """``"key: stored X, asked Y"`` for every key whose values differ (paths compared absolute)."""
    out = []
    for k in keys:
        a, b = stored.get(k), asked.get(k)
        if k in _PATH_KEYS:
            a, b = _abspath(a), _abspath(b)
        if a != b:
            out.append(f"{k}: stored {stored.get(k)!r}, asked {asked.get(k)!r}")
    return out


def _refuse(st: PaperSettings, what: str, diff: list[str]) -> None:
    raise InputError(
        f"--out {st.out}: {what} was made with other settings ({'; '.join(diff)}); run this table "
        "with the settings it was made with, or choose another --out for these"
    )


def open_dir(st: PaperSettings) -> None:
    """Create ``st.out`` and record its settings in ``DIR/paper.json``, or check that the recorded
    settings are the ones asked for (:class:`InputError` naming each difference otherwise)."""
    from swnas.records.atomic import atomic_write_json, read_json

    path = st.out / PAPER_FILE
    mine = st.identity()
    if path.exists():
        doc = read_json(path, what="paper settings")
        stored = doc.get("settings") if isinstance(doc, dict) else None
        if not isinstance(stored, dict) or doc.get("format") != PAPER_FORMAT:
            raise InputError(f"--out {st.out}: {path} is not a swnas paper settings file ({PAPER_FORMAT})")
        diff = _differences(stored, mine, sorted(set(stored) | set(mine)))
        if diff:
            runs = sorted(
                str(p.relative_to(st.out))
                for sub in ("searches", "baselines", "retrain")
                for p in (st.out / sub).glob("*")
                if p.is_dir()
            )
            held = f"the runs {', '.join(runs[:6])}{' ...' if len(runs) > 6 else ''}" if runs else "DIR"
            _refuse(st, f"{held} (settings in {PAPER_FILE})", diff)
        return
    st.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"format": PAPER_FORMAT, "settings": mine})


def check_search(st: PaperSettings, out: Path, stored: dict, asked: dict) -> None:
    """Refuse the stored search ``out`` when its config differs from the one asked for (both resolved
    :class:`~swnas.search.SearchConfig` dicts; where it runs may differ)."""
    keys = sorted((set(stored) | set(asked)) - set(_FREE_SEARCH_KEYS))
    diff = _differences(stored, asked, keys)
    if diff:
        _refuse(st, f"the search {out.relative_to(st.out)}", diff)


def _training_identity(doc: dict) -> dict:
    opts = cast(dict, doc.get("options")) if isinstance(doc.get("options"), dict) else {}
    spec = cast(dict, doc.get("spec")) if isinstance(doc.get("spec"), dict) else {}
    ident: dict[str, Any] = {
        k: opts.get(k) for k in ("data", "subset", "recipe", "epochs", "batch_size", "lr", "seed", "val_split")
    }
    ident.update({k: spec.get(k) for k in _SPEC_KEYS})
    for k in ("stages", "widths"):
        ident[k] = list(ident[k]) if isinstance(ident[k], (list, tuple)) else ident[k]
    ident["dataset"] = doc.get("dataset")
    return ident


def check_training(st: PaperSettings, out: Path, stored: dict, asked: dict) -> None:
    """Refuse the stored training ``out`` (its ``train.json``) when its dataset, options or
    architecture differ from the training asked for (a dict of the same shape)."""
    a, b = _training_identity(stored), _training_identity(asked)
    diff = _differences(a, b, sorted(set(a) | set(b)))
    if diff:
        _refuse(st, f"the training {out.relative_to(st.out)}", diff)


# ------------------------------------------------------------------------------- runs
def ensure_search(st: PaperSettings, name: str, **options: Any) -> tuple[Path, dict]:
    """Run (or resume, or read back) the search ``DIR/searches/NAME``; returns its directory and state."""
    from swnas.search import SearchConfig, run_search

    out = st.out / "searches" / st.run_name(name)
    opts = dict(st.search_options(), **options)
    resume = (out / "search.json").is_file()
    if resume:
        from swnas.search import load_state

        stored = load_state(out).get("config")
        check_search(st, out, stored if isinstance(stored, dict) else {}, SearchConfig(**opts).resolved().to_dict())
    say(st, f"== search {name}: " + ("resuming / reading back" if resume else "starting"))
    res = run_search(
        None if resume else SearchConfig(**opts),
        out,
        resume=resume,
        echo=None if st.echo is None else (lambda s: say(st, "   " + s)),
    )
    return out, res.state


def ensure_training(
    st: PaperSettings,
    out: Path,
    label: str,
    spec: Any,
    *,
    dataset: str,
    data: str | None,
    subset: int | None,
    seed: int,
    val_split: float = 0.0,
    input_size: int | None = None,
) -> dict:
    """Train (or read back) the architecture ``spec`` from scratch into ``out`` (``out/train.json``).

    ``val_split`` holds out the validation split a search with the same seed holds out, so the
    network trains on exactly the images the search's networks train on. ``input_size``: the side
    an ``imagefolder`` is read at (``None``: its first image's).

    A finished training is read back; a killed one continues from its epoch checkpoint
    (:func:`swnas.experiments.train_architecture.train_architecture`).
    """
    from swnas.experiments.train_architecture import train_architecture
    from swnas.records.atomic import read_json

    epochs, batch_size = st.baseline_epochs(), st.search_options().get("batch_size")
    if (out / "train.json").is_file():
        doc = read_json(out / "train.json", what=label)
        if not isinstance(doc, dict):
            raise InputError(f"--out {st.out}: {out / 'train.json'} is not a training result")
        asked = {
            "dataset": dataset,
            "spec": spec.to_dict(),
            "options": {
                "data": data,
                "subset": subset,
                "recipe": st.recipe,
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": None,
                "seed": seed,
                "val_split": val_split,
            },
        }
        check_training(st, out, doc, asked)
        return doc
    say(st, f"== training {label} on {dataset}: stages {list(spec.stages)}")
    return train_architecture(
        spec=spec,
        dataset=dataset,
        data=data,
        subset=subset,
        recipe=st.recipe,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        device=st.device,
        out=out,
        name=label,
        progress=False,
        force=True,
        val_split=val_split,
        input_size=input_size,
    )


def ensure_baseline(
    st: PaperSettings, label: str, stages: list[int], module: str = "basic", spec: Any = None
) -> tuple[Path, dict]:
    """Train (or read back) the uniform network ``DIR/baselines/LABEL`` (``spec`` overrides module/stages)
    on the searches' training images: the same validation split is held out (one split for every
    network of a table)."""
    from swnas.models import ArchSpec

    out = st.out / "baselines" / label
    spec = spec if spec is not None else ArchSpec(module=module, stages=list(stages))
    res = ensure_training(
        st,
        out,
        label,
        spec,
        dataset=st.dataset,
        data=st.data,
        subset=st.search_options().get("subset"),
        seed=st.seed,
        val_split=st.search_options()["val_split"],
    )
    return out, res


# ------------------------------------------------------------------------------- rows
def pct(v: Any) -> float | None:
    """A fraction as a percentage (``None`` stays ``None``)."""
    return 100.0 * float(v) if isinstance(v, (int, float)) else None


def cost_row(spec: Any, metrics: dict, final: dict | None = None) -> dict:
    """The cost columns of a row: parameters, the paper's FLOPs, MACs, memory (MB = 2^20 bytes of
    swnas' ``memory``, which counts parameters, buffers and activations), latency and carbon.

    ``final`` (a candidate's final training record) adds its final epochs to the carbon: the
    search's carbon rate per training second times the final training's seconds, so that a
    candidate's carbon covers all its epochs as a baseline's does.
    """
    import torch

    from swnas.models import build, keras_flops

    with torch.device("meta"):
        net = build(spec)
    m = metrics
    carbon = m.get("carbon")
    fs, ts = (final or {}).get("train_seconds"), m.get("train_seconds")
    if isinstance(carbon, (int, float)) and isinstance(fs, (int, float)) and isinstance(ts, (int, float)) and ts > 0:
        carbon = carbon * (ts + fs) / ts
    return {
        "params_m": m["params"] / 1e6 if m.get("params") is not None else None,
        "flops_m": keras_flops(net) / 1e6,
        "macs_m": m["macs"] / 1e6 if m.get("macs") is not None else None,
        "memory_mb": m["memory"] / 2**20 if isinstance(m.get("memory"), (int, float)) else None,
        "latency_ms": m.get("latency"),
        "carbon_kg": carbon,
    }


def train_hours(metrics: dict, final: dict | None = None) -> float | None:
    """Wall time of a network's training in hours, from its record: ``metrics.train_seconds`` (the
    search's or the baseline's epochs) plus ``final.train_seconds`` (a candidate's final epochs)."""
    ts, fs = metrics.get("train_seconds"), (final or {}).get("train_seconds")
    if not isinstance(ts, (int, float)):
        return None
    return (ts + (fs if isinstance(fs, (int, float)) else 0.0)) / 3600.0


def candidate_rows(
    out: Path, state: dict, setting: str, *, after_final: bool = True, times: bool = False
) -> list[dict]:
    """One row per candidate A_k of a search: ``it=k``, costs, test and validation top-1.

    ``after_final``: ``top1``/``val_top1`` are after the final epochs when they ran (Tables III and
    IV print 300-epoch accuracies: 200 + 100); otherwise they are the network as the search trained
    it (``metrics.top1``, Tables I and II's 200 epochs) and the final epochs' accuracy gets its own
    columns (``final_top1``, ``final_val_top1``). A search run in inherit mode labels its rows
    ``SETTING (inherit)``. ``times`` adds ``train_h``, the candidate's training wall time in hours
    (:func:`train_hours`).
    """
    from swnas.models import ArchSpec, paper_depth

    rows = []
    if (state.get("config") or {}).get("inherit"):
        setting += INHERIT_LABEL  # the paper measured nothing in inherit mode: no published row shares this key
    for idx in state["candidates"]:
        net = state["networks"][idx]
        spec = ArchSpec.from_json((out / net["spec"]).read_text())
        m, fin = net["metrics"], net.get("final") or {}
        row = {
            "setting": setting,
            "row": f"it={net['iteration']}",
            "stages": list(net["stages"]),
            "depth": paper_depth(spec),
            **cost_row(spec, m, fin),
            "epochs": (m.get("epochs") or 0) + (fin.get("epochs") or 0),
        }
        if after_final:
            row.update(top1=pct(fin.get("top1", m.get("top1"))), val_top1=pct(fin.get("val_top1", m.get("val_top1"))))
        else:
            row.update(
                top1=pct(m.get("top1")),
                val_top1=pct(m.get("val_top1")),
                final_top1=pct(fin.get("top1")),
                final_val_top1=pct(fin.get("val_top1")),
            )
        if times:
            row["train_h"] = train_hours(m, fin)
        if idx == state.get("best"):
            row["row"] += " (best)"
        rows.append(row)
    return rows


def training_row(setting: str, label: str, result: dict, *, depth: int | None = None, times: bool = False) -> dict:
    """The row of one :func:`ensure_training` result (``depth``: the paper's count; default the spec's;
    ``times``: with ``train_h``, its training wall time in hours)."""
    from swnas.models import ArchSpec

    spec = ArchSpec.from_dict(result["spec"])
    m = result["metrics"]
    row = {
        "setting": setting,
        "row": label,
        "stages": list(spec.stages),
        "depth": spec.depth if depth is None else depth,
        **cost_row(spec, m),
        "top1": pct(m.get("top1")),
        "val_top1": pct(m.get("val_top1")),
        "epochs": m.get("epochs"),
    }
    if times:
        row["train_h"] = train_hours(m)
    return row


def baseline_row(setting: str, label: str, result: dict) -> dict:
    """The row of a uniform baseline (its depth as its name counts it)."""
    return training_row(setting, label, result)


def match_best(rows: list[dict]) -> list[dict]:
    """Published rows are keyed ``it=k``: match a measured ``it=k (best)`` row to it as well."""
    for r in rows:
        if r["row"].endswith(" (best)"):
            r["row"] = r["row"][: -len(" (best)")]
            r["note"] = "best on validation"
    return rows
