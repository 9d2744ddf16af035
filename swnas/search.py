"""Algorithm 1 of Stage-Wise NAS, resumable: its loop, its decision rule and its state on disk.

The loop (Jordao et al., ICPR 2020)::

    A <- S stages of m0 modules; train A; C <- {A}
    for k in 1..n:
        T <- A with every stage deepened by delta; train T
        score every stage of A and of T on the (un-augmented) training set
        grow stage i by delta exactly where score_T,i > score_A,i
        A <- rebuilt with the new depths; train A; C <- C + {A}

Training, scoring, measuring and checkpointing are injected through a :class:`Toolkit`, so the
decision rule, the resume logic and the outputs can be exercised with controlled fakes;
:func:`default_toolkit` wires the real modules (``swnas.data``, ``swnas.models``, ``swnas.train``,
``swnas.features``, ``swnas.metrics``, ``swnas.transfer``).

State on disk (``OUT/search.json``, rewritten atomically after every trained network and every
scoring step):

``format``
    ``"swnas-search/1"``.
``config``
    Every option of the search (:class:`SearchConfig` as a dict, defaults resolved).
``status``
    ``"running"``, ``"complete"`` or ``"stopped_early"`` (no stage grew and ``keep_going`` unset).
``networks``
    Every network evaluated, in the order trained. Each entry: ``index``, ``role`` (``"A"`` or
    ``"T"``), ``iteration`` (0 for the initial A), ``stages`` (modules per stage), ``depth``,
    ``seed`` (``config.seed + index``), ``scores`` (per-stage scores in stage order, ``null``
    until scored; only networks that took part in a comparison are scored), ``metrics``
    (``params, macs, memory, latency, carbon, top1, top5`` plus ``depth, peak_memory,
    train_seconds, epochs``; units in ``metric_units``), ``checkpoint`` and ``spec`` (paths
    relative to OUT: weights loadable with ``swnas.models.load`` and the architecture as JSON).
``candidates``
    The candidate set C as **indices into** ``networks`` (the initial A, then the A of each
    iteration): n + 1 entries after n iterations.
``iterations``
    One record per scoring step: ``iteration``, ``A`` and ``T`` (network indices),
    ``comparisons`` (``stage`` numbered from 1, ``score_A``, ``score_T``, ``grow``), ``grown``
    (stage numbers that grew), ``stages_before``, ``stages_after``, ``no_growth``, ``new_A``
    (index of the rebuilt A, ``null`` until trained) and ``stopped_early``.
``final`` / ``best``
    Index of the last A trained and of the candidate with the highest top-1 accuracy.

The fields ``metrics.latency``, ``metrics.carbon`` and ``metrics.train_seconds`` are timings; every
other field of a resumed run equals that of an uninterrupted run with the same seed
(:func:`comparable_state` strips the timings).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from swnas.errors import InputError
from swnas.state import atomic_save, atomic_write_json, read_json, to_jsonable

__all__ = [
    "SearchConfig",
    "Toolkit",
    "SearchResult",
    "STATE_FILE",
    "FORMAT",
    "TIMING_KEYS",
    "CRITERIA",
    "MODULES",
    "decide",
    "run_search",
    "load_state",
    "resume_config",
    "comparable_state",
    "default_toolkit",
    "train_architecture",
]

STATE_FILE = "search.json"
LOG_FILE = "search.log"
FORMAT = "swnas-search/1"
CRITERIA = ("pls", "inffs", "ilfs")
MODULES = ("basic", "bottleneck", "nasnet")
TIMING_KEYS = ("latency", "carbon", "train_seconds")
METRIC_UNITS = {
    "params": "count",
    "macs": "multiply-accumulates per image",
    "memory": "bytes (parameters + buffers)",
    "peak_memory": "bytes (largest activation set of one image)",
    "latency": "ms per image on the CPU (median, 1 thread)",
    "carbon": "kg CO2e of training",
    "top1": "fraction of the test set",
    "top5": "fraction of the test set",
    "train_seconds": "s",
}
# options that may differ when resuming: they do not change what the search computes
RESUME_FREE = ("device", "quiet")


# --------------------------------------------------------------------------------------- config
@dataclass
class SearchConfig:
    """Options of one search (the paper's defaults).

    ``stages`` defaults to 3 (4 for ``bottleneck``) and ``delta`` to 2 for residual modules and 1
    for NASNet cells; ``score_params`` are passed to the criterion (PLS: ``n_components=2``).
    ``epochs``/``batch_size``/``lr`` of ``None`` take the recipe's values; in transfer mode every
    candidate starts from ``transfer`` (a donor checkpoint) and is fine-tuned ``finetune_epochs``
    (``None``: as ``epochs``).
    """

    criterion: str = "pls"
    iterations: int = 5
    stages: int | None = None
    m0: int = 6
    delta: int | None = None
    module: str = "basic"
    reduce: str = "avgpool8"
    recipe: str = "paper"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    transfer: str | None = None
    finetune_epochs: int | None = None
    seed: int = 0
    dataset: str = "cifar10"
    data: str | None = None
    subset: int | None = None
    device: str = "auto"
    backend: str = "auto"
    keep_going: bool = False
    score_params: dict = field(default_factory=dict)

    def resolved(self) -> "SearchConfig":
        """A validated copy with the defaults that depend on other options filled in."""
        c = dataclasses.replace(self, score_params=dict(self.score_params or {}))
        if c.criterion not in CRITERIA:
            raise InputError(f"criterion: unknown criterion {c.criterion!r}; choose one of {', '.join(CRITERIA)}")
        if c.module not in MODULES:
            raise InputError(f"module: unknown module type {c.module!r}; choose one of {', '.join(MODULES)}")
        if c.stages is None:
            c.stages = 4 if c.module == "bottleneck" else 3
        if c.delta is None:
            c.delta = 1 if c.module == "nasnet" else 2
        if c.criterion == "pls":
            c.score_params.setdefault("n_components", 2)
        for name, lo in (("iterations", 0), ("stages", 1), ("m0", 1), ("delta", 1), ("seed", 0)):
            v = getattr(c, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise InputError(f"{name}: expected an integer >= {lo}, got {v!r}")
        for name in ("epochs", "batch_size", "subset", "finetune_epochs"):
            v = getattr(c, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InputError(f"{name}: expected a positive integer, got {v!r}")
        if c.lr is not None and not (isinstance(c.lr, (int, float)) and c.lr > 0 and math.isfinite(c.lr)):
            raise InputError(f"lr: expected a positive learning rate, got {c.lr!r}")
        if c.transfer is not None and not Path(c.transfer).is_file():
            raise InputError(f"transfer: donor checkpoint not found: {c.transfer}")
        if c.data is not None and not Path(c.data).exists():
            raise InputError(f"data: no such file or directory: {c.data}")
        return c

    def to_dict(self) -> dict:
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError(f"config: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(**d)


# --------------------------------------------------------------------------------------- toolkit
@dataclass
class Toolkit:
    """What the search needs from the rest of swnas, as callables.

    Attributes
    ----------
    build : (stages, seed) -> model
        A network with those modules per stage, initialised from ``seed`` (or transferred).
    train : (model, seed) -> dict
        Trains in place; returns at least ``top1``, ``top5``, ``seconds`` (and ``epochs``).
    score : (model) -> list of float
        One score per stage (the criterion's stage score on the training set).
    measure : (model, train_seconds) -> dict
        ``params, macs, memory, peak_memory, latency, carbon`` (and optionally ``depth``).
    save, load : checkpoint writer ``(model, path)`` and reader ``(path) -> model``.
    spec : (model) -> dict
        The serialisable architecture.
    is_main, barrier :
        Distributed helpers: only the main process writes; everyone waits at the barrier.
    """

    build: Callable[[list, int], Any]
    train: Callable[[Any, int], dict]
    score: Callable[[Any], Sequence[float]]
    measure: Callable[[Any, float], dict]
    save: Callable[[Any, str], None]
    load: Callable[[str], Any]
    spec: Callable[[Any], dict]
    is_main: Callable[[], bool] = lambda: True
    barrier: Callable[[], None] = lambda: None
    carbon_note: str = ""


@dataclass
class SearchResult:
    """Outcome of :func:`run_search`: the state on disk, summarised."""

    out_dir: Path
    state: dict
    networks: list
    candidates: list
    final: int
    best: int
    status: str

    @property
    def final_stages(self) -> list:
        return list(self.networks[self.final]["stages"])


# --------------------------------------------------------------------------------------- rule
def decide(scores_a: Sequence[float], scores_t: Sequence[float]) -> list[bool]:
    """The paper's rule: stage i grows exactly where ``score_T,i > score_A,i`` (strictly)."""
    if len(scores_a) != len(scores_t):
        raise InputError(f"scores: A has {len(scores_a)} stage scores but T has {len(scores_t)}")
    out = []
    for i, (a, t) in enumerate(zip(scores_a, scores_t)):
        a, t = float(a), float(t)
        if not (math.isfinite(a) and math.isfinite(t)):
            raise InputError(f"scores: stage {i + 1} has a non-finite score (A {a}, T {t})")
        out.append(t > a)
    return out


# --------------------------------------------------------------------------------------- state io
def load_state(out_dir: str | Path) -> dict:
    """Read ``OUT/search.json`` (clear :class:`InputError` when missing, corrupt or foreign)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"search directory: no such directory: {out_dir}")
    state = read_json(out_dir / STATE_FILE, what="search state")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"search state: {out_dir / STATE_FILE} is not a swnas search state (format {FORMAT})")
    for key in ("config", "networks", "candidates", "iterations"):
        if key not in state:
            raise InputError(f"search state: {out_dir / STATE_FILE} lacks {key!r}")
    return state


def resume_config(out_dir: str | Path, overrides: dict | None = None) -> SearchConfig:
    """The stored config of a search, checked against options given again on the command line.

    ``overrides`` holds only the options the user gave explicitly; any that differs from the stored
    value (other than ``device``) raises :class:`InputError`.
    """
    state = load_state(out_dir)
    cfg = SearchConfig.from_dict(state["config"])
    stored = cfg.to_dict()
    conflicts = []
    for key, value in (overrides or {}).items():
        if key in RESUME_FREE:
            if key in stored:
                setattr(cfg, key, value)
            continue
        if key not in stored:
            raise InputError(f"--{key.replace('_', '-')}: not an option of a search")
        if key == "score_params":
            merged = dict(stored["score_params"])
            merged.update(to_jsonable(value))
            if merged != stored["score_params"]:
                conflicts.append(f"--param {value} (stored {stored['score_params']})")
            continue
        if to_jsonable(value) != stored[key]:
            conflicts.append(f"--{key.replace('_', '-')} {value!r} (stored {stored[key]!r})")
    if conflicts:
        raise InputError(
            f"--resume {out_dir}: option(s) conflict with the stored run: {'; '.join(conflicts)}. "
            "Drop them to continue the run as configured, or start a new search in another --out."
        )
    return cfg


def comparable_state(state: dict) -> dict:
    """A copy of a state without its timings (what two equivalent runs agree on)."""
    import copy

    s = copy.deepcopy(state)
    for net in s.get("networks", []):
        for k in TIMING_KEYS:
            net.get("metrics", {}).pop(k, None)
    return s


def _fmt_seconds(s: float) -> str:
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int((s % 3600) // 60):02d}m"


# --------------------------------------------------------------------------------------- engine
class _Search:
    def __init__(self, cfg: SearchConfig, out_dir: Path, tk: Toolkit, echo: Callable[[str], None]):
        self.cfg = cfg
        self.out = out_dir
        self.tk = tk
        self._echo = echo
        self.main = bool(tk.is_main())
        self.models: dict[int, Any] = {}
        self.train_times: list[float] = []
        self.score_times: list[float] = []
        self.steps_done = 0
        self.total_steps = 3 * cfg.iterations + 1

    # -- output
    def say(self, msg: str) -> None:
        if not self.main:
            return
        self._echo(msg)
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    def write(self) -> None:
        if self.main:
            atomic_write_json(self.out / STATE_FILE, self.state)

    def eta(self) -> str:
        n = self.cfg.iterations
        trained = len(self.state["networks"])
        scored = len(self.state["iterations"])
        left_train = max(0, 2 * n + 1 - trained)
        left_score = max(0, n - scored)
        if self.state["status"] != "running" or (left_train + left_score) == 0:
            return ""
        if not self.train_times:
            return ""
        t = sum(self.train_times) / len(self.train_times) * left_train
        if self.score_times:
            t += sum(self.score_times) / len(self.score_times) * left_score
        return f" | ETA ~{_fmt_seconds(t)} (if every iteration runs)"

    # -- lifecycle
    def open(self, resume: bool) -> None:
        path = self.out / STATE_FILE
        if resume:
            self.state = load_state(self.out)
            for net in self.state["networks"]:
                if not (self.out / net["checkpoint"]).is_file():
                    raise InputError(
                        f"--resume {self.out}: network {net['index']} ({net['role']}{net['iteration']}) is "
                        f"recorded as trained but its checkpoint {net['checkpoint']} is missing"
                    )
            self.say(
                f"resuming {self.out}: {len(self.state['networks'])} network(s) trained, "
                f"{len(self.state['iterations'])} scoring step(s) done, status {self.state['status']}"
            )
            return
        exists = path.exists()
        self.tk.barrier()  # every rank looks before rank 0 writes
        if exists:
            raise InputError(
                f"--out {self.out}: already holds a search ({STATE_FILE}); continue it with "
                f"`swnas search --resume {self.out}` or choose another --out"
            )
        self.state = {
            "format": FORMAT,
            "config": self.cfg.to_dict(),
            "status": "running",
            "networks": [],
            "candidates": [],
            "iterations": [],
            "final": None,
            "best": None,
            "metric_units": METRIC_UNITS,
            "carbon_method": self.tk.carbon_note,
            "log": LOG_FILE,
        }
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / LOG_FILE).write_text("", encoding="utf-8")
        self.write()
        self.tk.barrier()

    # -- networks
    def find(self, role: str, iteration: int) -> dict | None:
        for net in self.state["networks"]:
            if net["role"] == role and net["iteration"] == iteration:
                return net
        return None

    def model(self, net: dict) -> Any:
        idx = net["index"]
        if idx not in self.models:
            self.models[idx] = self.tk.load(str(self.out / net["checkpoint"]))
        return self.models[idx]

    def ensure_trained(self, role: str, iteration: int, stages: list[int]) -> dict:
        net = self.find(role, iteration)
        if net is not None:
            if list(net["stages"]) != list(stages):
                raise InputError(
                    f"search state: {role}{iteration} has stages {net['stages']} but the run expects {stages}; "
                    "the state was edited or comes from another configuration"
                )
            return net
        index = len(self.state["networks"])
        seed = self.cfg.seed + index
        self.steps_done = len(self.state["networks"]) + len(self.state["iterations"])
        kind = "initial network A" if iteration == 0 else (f"T{iteration} (A deepened)" if role == "T" else f"A{iteration}")
        self.say(f"[step {self.steps_done + 1}/{self.total_steps}] training {kind}: stages {stages}")
        t0 = time.perf_counter()
        model = self.tk.build(list(stages), seed)
        tr = dict(self.tk.train(model, seed))
        seconds = float(tr.get("seconds", time.perf_counter() - t0))
        meas = dict(self.tk.measure(model, seconds))
        if meas.get("carbon_method"):
            self.state["carbon_method"] = str(meas["carbon_method"])
        name = f"{index:02d}-{role}{iteration}"
        ckpt = f"checkpoints/{name}.pt"
        spec_path = f"specs/{name}.json"
        if self.main:
            atomic_save(lambda p: self.tk.save(model, p), self.out / ckpt)
            atomic_write_json(self.out / spec_path, self.tk.spec(model))
        metrics = {
            "depth": meas.get("depth"),
            "params": meas.get("params"),
            "macs": meas.get("macs"),
            "memory": meas.get("memory"),
            "peak_memory": meas.get("peak_memory"),
            "latency": meas.get("latency"),
            "carbon": meas.get("carbon"),
            "top1": tr.get("top1"),
            "top5": tr.get("top5"),
            "epochs": tr.get("epochs"),
            "train_seconds": seconds,
        }
        net = {
            "index": index,
            "role": role,
            "iteration": iteration,
            "stages": list(stages),
            "depth": meas.get("depth"),
            "seed": seed,
            "scores": None,
            "metrics": to_jsonable(metrics),
            "checkpoint": ckpt,
            "spec": spec_path,
        }
        self.state["networks"].append(net)
        if role == "A":
            self.state["candidates"].append(index)
        self._update_summary()
        self.models = {k: v for k, v in self.models.items() if k in self._live_indices()}
        self.models[index] = model
        self.train_times.append(time.perf_counter() - t0)
        self.write()
        self.tk.barrier()
        top1 = tr.get("top1")
        acc = f"top-1 {100 * top1:.2f}%" if isinstance(top1, (int, float)) else "top-1 n/a"
        self.say(f"    {kind} trained in {_fmt_seconds(time.perf_counter() - t0)}: {acc}{self.eta()}")
        return net

    def _live_indices(self) -> set:
        a = self.state["candidates"][-1] if self.state["candidates"] else None
        return {a} if a is not None else set()

    def _update_summary(self) -> None:
        cands = self.state["candidates"]
        if not cands:
            return
        nets = self.state["networks"]
        self.state["final"] = cands[-1]

        def acc(i):
            v = nets[i]["metrics"].get("top1")
            return v if isinstance(v, (int, float)) else -1.0

        self.state["best"] = max(cands, key=lambda i: (acc(i), -i))

    def ensure_scored(self, nets: list[dict]) -> None:
        todo = [n for n in nets if n["scores"] is None]
        if not todo:
            return
        t0 = time.perf_counter()
        for net in todo:
            scores = [float(s) for s in self.tk.score(self.model(net))]
            if len(scores) != len(net["stages"]):
                raise InputError(f"scores: got {len(scores)} stage scores for a network with {len(net['stages'])} stages")
            net["scores"] = scores
        self.score_times.append(time.perf_counter() - t0)

    # -- algorithm 1
    def run(self) -> None:
        cfg = self.cfg
        A = self.ensure_trained("A", 0, [cfg.m0] * cfg.stages)
        for k in range(1, cfg.iterations + 1):
            rec = next((r for r in self.state["iterations"] if r["iteration"] == k), None)
            if rec is not None and rec["stopped_early"]:
                break
            T = self.ensure_trained("T", k, [m + cfg.delta for m in A["stages"]])
            if rec is None:
                self.steps_done = len(self.state["networks"]) + len(self.state["iterations"])
                self.say(f"[step {self.steps_done + 1}/{self.total_steps}] scoring the stages of A and T{k} ({cfg.criterion})")
                self.ensure_scored([A, T])
                grow = decide(A["scores"], T["scores"])
                after = [m + (cfg.delta if g else 0) for m, g in zip(A["stages"], grow)]
                comps = [
                    {"stage": i + 1, "score_A": a, "score_T": t, "grow": g}
                    for i, (a, t, g) in enumerate(zip(A["scores"], T["scores"], grow))
                ]
                rec = {
                    "iteration": k,
                    "A": A["index"],
                    "T": T["index"],
                    "comparisons": comps,
                    "grown": [c["stage"] for c in comps if c["grow"]],
                    "stages_before": list(A["stages"]),
                    "stages_after": after,
                    "no_growth": not any(grow),
                    "new_A": None,
                    "stopped_early": False,
                }
                self.state["iterations"].append(rec)
                for c in comps:
                    verdict = f"grow by {cfg.delta}" if c["grow"] else "keep"
                    self.say(
                        f"    iteration {k} stage {c['stage']}: score A {c['score_A']:.6g} vs T {c['score_T']:.6g} -> {verdict}"
                    )
                if rec["no_growth"]:
                    if cfg.keep_going:
                        self.say(f"    iteration {k}: no stage grew; continuing (--keep-going)")
                    else:
                        rec["stopped_early"] = True
                        self.state["status"] = "stopped_early"
                        self.say(f"    iteration {k}: no stage grew; stopping early (use --keep-going to continue)")
                self.write()
                self.tk.barrier()
                if rec["stopped_early"]:
                    break
            A = self.ensure_trained("A", k, list(rec["stages_after"]))
            if rec["new_A"] != A["index"]:
                rec["new_A"] = A["index"]
                self.write()
        if self.state["status"] == "running":
            self.state["status"] = "complete"
        self._update_summary()
        self.write()
        self.tk.barrier()


def run_search(
    config: SearchConfig | None = None,
    out_dir: str | Path = "runs/search",
    *,
    toolkit: Toolkit | None = None,
    resume: bool = False,
    echo: Callable[[str], None] | None = print,
) -> SearchResult:
    """Run (or continue) Algorithm 1 with its whole state in ``out_dir``.

    Parameters
    ----------
    config : SearchConfig, optional
        Ignored when ``resume`` (the stored config is used; see :func:`resume_config`).
    out_dir : path
        The state directory; must not hold a search unless ``resume``.
    toolkit : Toolkit, optional
        Injected training/scoring/measuring; default :func:`default_toolkit` (the real modules).
    resume : bool
        Continue the search stored in ``out_dir``; finished steps are not repeated.
    echo : callable or None
        Where progress lines go (``None``: silent). The log file ``OUT/search.log`` gets them too.

    Returns
    -------
    SearchResult
    """
    out = Path(out_dir)
    if resume:
        cfg = resume_config(out) if config is None else config.resolved()
    else:
        cfg = (config or SearchConfig()).resolved()
    if toolkit is None:
        toolkit = default_toolkit(cfg, progress=echo is not None)
    engine = _Search(cfg, out, toolkit, echo or (lambda s: None))
    engine.open(resume)
    engine.run()
    s = engine.state
    return SearchResult(
        out_dir=out,
        state=s,
        networks=s["networks"],
        candidates=s["candidates"],
        final=s["final"],
        best=s["best"],
        status=s["status"],
    )


# --------------------------------------------------------------------------------------- wiring
def default_toolkit(cfg: SearchConfig, *, progress: bool = True) -> Toolkit:
    """The real wiring: dataset, model builder (or weight transfer), trainer, stage scorer, metrics.

    Under ``torchrun`` every network trains data-parallel (the trainer handles DDP) and only rank
    0 writes; each rank scores its shard of the training set and the statistics are summed before
    the scores are computed, so K processes make the decisions one would.
    """
    import torch

    from swnas import distributed as dist
    from swnas import models as M
    from swnas.data import load_dataset
    from swnas.features import stage_scores
    from swnas.metrics import carbon, measure
    from swnas.train import train

    dist.init_from_env()
    ds = load_dataset(cfg.dataset, cfg.data, subset=cfg.subset, seed=cfg.seed)
    donor = None
    if cfg.transfer:
        from swnas.transfer import load_donor, transfer_weights

        donor = load_donor(cfg.transfer)
        template = donor.spec
        if getattr(template, "num_classes", ds.num_classes) != ds.num_classes:
            raise InputError(
                f"transfer: the donor predicts {template.num_classes} classes but {cfg.dataset} has {ds.num_classes}"
            )
        if template.module != cfg.module or len(template.stages) != cfg.stages:
            raise InputError(
                f"transfer: the donor is a {template.module} network with {len(template.stages)} stages; "
                f"give --module {template.module} --stages {len(template.stages)}"
            )
        if cfg.m0 + cfg.delta > min(template.stages):
            raise InputError(
                f"transfer: the donor's stages {list(template.stages)} are too shallow for m0 + delta = "
                f"{cfg.m0 + cfg.delta} modules (a candidate cannot be deeper than its donor)"
            )
    else:
        template = M.ArchSpec(
            module=cfg.module,
            stages=[cfg.m0] * cfg.stages,
            num_classes=ds.num_classes,
            input_size=ds.input_size,
            in_channels=ds.in_channels,
        )
    epochs = cfg.finetune_epochs if (donor is not None and cfg.finetune_epochs is not None) else cfg.epochs
    show = progress and dist.is_main()
    train_device = {"device": cfg.device}

    def build(stages, seed):
        torch.manual_seed(seed)
        spec = template.with_stages(list(stages))
        if donor is not None:
            return transfer_weights(donor, spec)
        return M.build(spec)

    def train_fn(model, seed):
        r = train(
            model, ds, recipe=cfg.recipe, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
            device=cfg.device, seed=seed, progress=show,
        )
        try:
            train_device["used"] = str(next(model.parameters()).device)
        except StopIteration:  # pragma: no cover - a model without parameters
            pass
        return {"top1": r.top1, "top5": r.top5, "seconds": r.seconds, "epochs": r.epochs}

    def score_fn(model):
        res = _stage_scores_distributed(model, ds, cfg, stage_scores)
        return [r.stage for r in res]

    notes = {}

    def measure_fn(model, seconds):
        m = measure(model, input_size=ds.input_size, in_channels=ds.in_channels, latency=True, threads=1, batch=1)
        c = carbon(seconds, train_device.get("used", "cpu"))
        notes["carbon"] = c
        return {
            "depth": m.get("depth"),
            "params": m.get("params"),
            "macs": m.get("macs"),
            "memory": m.get("memory_bytes"),
            "peak_memory": m.get("peak_memory_bytes"),
            "latency": m.get("latency_ms"),
            "carbon": _carbon_kg(c),
            "carbon_method": _carbon_method(c),
        }

    def save(model, path):
        M.save_model(model, path)

    def load(path):
        return M.load(path)

    def spec(model):
        s = model.spec
        return s.to_dict() if hasattr(s, "to_dict") else dict(s)

    return Toolkit(
        build=build, train=train_fn, score=score_fn, measure=measure_fn, save=save, load=load, spec=spec,
        is_main=dist.is_main, barrier=dist.barrier,
        carbon_note="swnas.metrics.carbon (ML CO2 Impact formula: power x hours x PUE x grid intensity)",
    )


def _carbon_method(c: Any) -> str:
    if not isinstance(c, dict):
        return ""
    bits = [str(c.get("method", "?"))]
    for k in ("device", "power_watts", "n_devices", "pue", "carbon_intensity_kg_per_kwh"):
        if k in c:
            bits.append(f"{k}={c[k]}")
    return ", ".join(bits)


def _carbon_kg(c: Any) -> float | None:
    if isinstance(c, (int, float)):
        return float(c)
    if isinstance(c, dict):
        for key in ("kg_co2e", "kg", "co2e_kg", "kgCO2e", "emissions_kg", "co2_kg"):
            if isinstance(c.get(key), (int, float)):
                return float(c[key])
    return None


def _stage_scores_distributed(model, ds, cfg: SearchConfig, stage_scores):
    """Stage scores of ``model`` on the un-augmented training set.

    With one process this is ``swnas.features.stage_scores``. Under torchrun, when the criterion
    streams (PLS; inf-FS with ``corr="pearson"``), each rank runs the forward pass over its shard
    (every K-th image), accumulates one :class:`~swnas.scoring.streaming.StreamingScorer` per
    stage and sums the statistics with ``all_reduce`` before scoring, so every rank gets the
    single-process result. Criteria that need the whole matrix are scored on every rank in full.
    """
    from swnas import distributed as dist

    device = None if cfg.device == "auto" else cfg.device
    kw = dict(criterion=cfg.criterion, reduce=cfg.reduce, device=device, backend=cfg.backend,
              mean=ds.mean, std=ds.std, **cfg.score_params)
    if dist.world_size() <= 1:
        return stage_scores(model, ds.x_train, ds.y_train, **kw)
    import numpy as np
    import torch

    from swnas.features import iter_stage_batches
    from swnas.scoring._arrays import encode_labels
    from swnas.scoring.streaming import StreamingScorer, supports_streaming

    if not supports_streaming(cfg.criterion, **cfg.score_params):
        return stage_scores(model, ds.x_train, ds.y_train, **kw)
    n = int(ds.x_train.shape[0])
    codes, classes = encode_labels(ds.y_train, n, "labels")  # the global class coding, same on every rank
    r, w = dist.rank(), dist.world_size()
    x = ds.x_train[r::w]
    y = torch.from_numpy(np.asarray(codes, dtype=np.int64)[r::w])
    scorers = [StreamingScorer(cfg.criterion, n_classes=int(classes.shape[0]), backend=cfg.backend, **cfg.score_params)
               for _ in model.stages]
    for start, stop, feats in iter_stage_batches(model, x, cfg.reduce, device=device, mean=ds.mean, std=ds.std):
        yb = y[start:stop].to(feats[0].device)
        for sc, f in zip(scorers, feats):
            sc.update(f, yb)
    return [sc.all_reduce().result() for sc in scorers]


# --------------------------------------------------------------------------------------- one network
TRAIN_FORMAT = "swnas-train/1"


def train_architecture(
    *,
    spec: Any = None,
    module: str = "basic",
    stages: Sequence[int] | None = None,
    dataset: str = "digits",
    data: str | None = None,
    subset: int | None = None,
    recipe: str = "paper",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    out: str | Path = "runs/train",
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Train one architecture from scratch (``swnas train``): a found one or a uniform baseline.

    ``spec`` is an :class:`~swnas.models.ArchSpec`, its dict, or a JSON file (e.g. a search's
    ``specs/NN-A2.json``); otherwise ``module`` and ``stages`` describe it. Classes, input size and
    channels are set from the dataset, so a found architecture can move to another dataset.
    Writes ``OUT/model.pt`` (``swnas.models.load``-able) and ``OUT/train.json`` (name, stages,
    depth, spec, dataset, options and ``metrics`` with the keys of a search's networks), which
    ``swnas report`` lists as a baseline when OUT is ``SEARCH/baselines/NAME``.
    """
    import dataclasses as dc

    import torch

    from swnas import distributed as dist
    from swnas import models as M
    from swnas.data import load_dataset
    from swnas.metrics import carbon, measure
    from swnas.train import train

    if spec is None and stages is None:
        raise InputError("spec: give an architecture spec or the per-stage module counts")
    if isinstance(spec, (str, Path)):
        spec = M.ArchSpec.from_dict(read_json(spec, what="--spec"))
    elif isinstance(spec, dict):
        spec = M.ArchSpec.from_dict(spec)
    elif spec is None:
        spec = M.ArchSpec(module=module, stages=list(stages))
    if not isinstance(spec, M.ArchSpec):
        raise InputError(f"spec: expected an ArchSpec, a dict or a JSON path, got {type(spec).__name__}")
    dist.init_from_env()
    ds = load_dataset(dataset, data, subset=subset, seed=seed)
    spec = dc.replace(spec, num_classes=ds.num_classes, input_size=ds.input_size, in_channels=ds.in_channels)
    torch.manual_seed(seed)
    model = M.build(spec)
    r = train(model, ds, recipe=recipe, epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed,
              progress=progress and dist.is_main())
    used = str(next(model.parameters()).device)
    m = measure(model, input_size=ds.input_size, in_channels=ds.in_channels, latency=True, threads=1, batch=1)
    c = carbon(r.seconds, used)
    metrics = {
        "depth": m.get("depth"), "params": m.get("params"), "macs": m.get("macs"), "memory": m.get("memory_bytes"),
        "peak_memory": m.get("peak_memory_bytes"), "latency": m.get("latency_ms"), "carbon": _carbon_kg(c),
        "top1": r.top1, "top5": r.top5, "epochs": r.epochs, "train_seconds": r.seconds,
    }
    result = {
        "format": TRAIN_FORMAT, "name": name or spec.name, "stages": list(spec.stages), "depth": spec.depth,
        "spec": spec.to_dict(), "dataset": dataset,
        "options": {"data": data, "subset": subset, "recipe": recipe, "epochs": epochs, "batch_size": batch_size,
                    "lr": lr, "seed": seed, "device": device},
        "metrics": to_jsonable(metrics), "checkpoint": "model.pt",
    }
    if dist.is_main():
        out = Path(out)
        M.save_model(model, out / "model.pt")
        atomic_write_json(out / "train.json", result)
    dist.barrier()
    return result
