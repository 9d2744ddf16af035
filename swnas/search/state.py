"""The search's state document (``OUT/search.json``): reading it back checked, querying it, resuming it.

The fields are described in :mod:`swnas.search`. Everything the search does is recorded here
before the next step starts, so a process killed at any moment resumes from the last record.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

from swnas.errors import InputError
from swnas.search.config import FORMAT, LOG_FILE, METRIC_UNITS, SEARCH_OPTIONS, STATE_FILE, TIMING_KEYS, SearchConfig
from swnas.records.atomic import atomic_write_json, read_json, to_jsonable

__all__ = [
    "SearchState",
    "load_state",
    "resume_config",
    "comparable_state",
    "metrics_record",
    "RESUME_FREE",
    "RESUME_RULES",
    "ROLES",
    "cost_summary",
    "candidate_name",
    "pick_candidate",
]

# The --resume rules derive from the option table (swnas.search.config.SEARCH_OPTIONS).
# Options that may differ when resuming whatever was done: they do not change what is computed
# (and ``quiet``, a session option the command line may pass with them).
RESUME_FREE = tuple(o.name for o in SEARCH_OPTIONS if o.resume == "always") + ("quiet",)
# options that change how networks are built or trained, and those that change how they are scored
_TRAINING = tuple(o.name for o in SEARCH_OPTIONS if o.resume == "until_trained")
_SCORING = tuple(o.name for o in SEARCH_OPTIONS if o.resume == "until_scored")
#: Network roles: A (the current network; A0 the initial one, A1..An the candidates), T (A deepened
#: by delta), F (inherit mode: A fine-tuned as long as T, the reference T is compared with).
ROLES = ("A", "T", "F")
_NET_KEYS = {
    "index": int,
    "role": str,
    "iteration": int,
    "stages": list,
    "seed": int,
    "metrics": dict,
    "checkpoint": str,
    "spec": str,
}
_ITER_KEYS = {
    "iteration": int,
    "A": int,
    "T": int,
    "comparisons": list,
    "grown": list,
    "stages_before": list,
    "stages_after": list,
    "no_growth": bool,
    "stopped_early": bool,
}


def candidate_name(net: dict) -> str:
    """How every output names a candidate: ``A1``, ``A2``, ... (the A of its iteration, Algorithm 1).

    ``search.json`` keeps network indices (``"candidates": [2, 4], "best": 2``); tables, charts,
    progress lines and ``swnas export`` show and take these names.
    """
    return f"A{int(net['iteration'])}"


def pick_candidate(state: dict, which: str | None = "best") -> int:
    """The network index of the candidate ``which`` names in a search state.

    Parameters
    ----------
    state : dict
        A search state (:func:`load_state`).
    which : str or None
        ``"best"`` (or ``None``): the candidate with the highest validation accuracy, or the last
        candidate when the search had no validation split; ``"last"``: the last candidate;
        ``"A1"``, ``"A2"``, ...: that candidate (case-insensitive).

    Raises
    ------
    InputError
        No candidate yet, a name that is no candidate of this search, or a bare number (names,
        not positions, pick a candidate).
    """
    cands = list(state.get("candidates") or [])
    if not cands:
        raise InputError("the search has no trained candidate yet")
    nets = state["networks"]
    names = [candidate_name(nets[i]) for i in cands]
    listed = ", ".join(names)
    key = "best" if which is None else str(which).strip()
    if key.lower() == "best":
        best = state.get("best")
        return best if isinstance(best, int) and best in cands else cands[-1]
    if key.lower() == "last":
        return cands[-1]
    if key.isdigit():
        raise InputError(
            f"--candidate {key}: name the candidate, not its position: best, last or one of "
            f"{listed} (e.g. --candidate A{int(key)})"
        )
    for i, name in zip(cands, names):
        if key.upper() == name:
            return i
    raise InputError(f"--candidate {key}: not a candidate of this search; give best, last or one of {listed}")


def metrics_record(measured: dict, trained: dict, seconds: float) -> dict:
    """A network's ``metrics`` entry (the one place its keys are chosen).

    ``measured`` is what :attr:`Toolkit.measure` returns, ``trained`` what :attr:`Toolkit.train`
    returns; ``seconds`` is the training time.
    """
    return to_jsonable(
        {
            "depth": measured.get("depth"),
            "params": measured.get("params"),
            "macs": measured.get("macs"),
            "memory": measured.get("memory"),
            "peak_memory": measured.get("peak_memory"),
            "latency": measured.get("latency"),
            "carbon": measured.get("carbon"),
            "top1": trained.get("top1"),
            "top5": trained.get("top5"),
            "val_top1": trained.get("val_top1"),
            "epochs": trained.get("epochs"),
            "images_trained": trained.get("images"),
            "train_seconds": float(seconds),
        }
    )


class SearchState:
    """The JSON document of one search and the queries Algorithm 1 asks of it."""

    def __init__(self, doc: dict):
        self.doc = doc

    @classmethod
    def new(cls, cfg: SearchConfig, carbon_note: str = "") -> SearchState:
        return cls(
            {
                "format": FORMAT,
                "config": cfg.to_dict(),
                "status": "running",
                "networks": [],
                "candidates": [],
                "iterations": [],
                "final": None,
                "best": None,
                "metric_units": METRIC_UNITS,
                "carbon_method": carbon_note,
                "log": LOG_FILE,
            }
        )

    @classmethod
    def load(cls, out_dir: str | Path) -> SearchState:
        return cls(load_state(out_dir))

    def save(self, out_dir: Path) -> None:
        atomic_write_json(Path(out_dir) / STATE_FILE, self.doc)

    # -- queries
    @property
    def networks(self) -> list[dict]:
        return self.doc["networks"]

    @property
    def iterations(self) -> list[dict]:
        return self.doc["iterations"]

    @property
    def candidates(self) -> list[int]:
        return self.doc["candidates"]

    @property
    def status(self) -> str:
        return self.doc["status"]

    @status.setter
    def status(self, value: str) -> None:
        self.doc["status"] = value

    def find(self, role: str, iteration: int) -> dict | None:
        """The network trained as ``role`` (``"A"``/``"T"``) of ``iteration``, if any."""
        return next((n for n in self.networks if n["role"] == role and n["iteration"] == iteration), None)

    def step(self, iteration: int) -> dict | None:
        """The scoring record of ``iteration``, if that step is done."""
        return next((r for r in self.iterations if r["iteration"] == iteration), None)

    def steps_done(self) -> int:
        return len(self.networks) + len(self.iterations)

    def current_a(self) -> int | None:
        """Index of the latest A (the initial network before the first candidate)."""
        return next((n["index"] for n in reversed(self.networks) if n["role"] == "A"), None)

    # -- updates
    def add_network(self, net: dict) -> None:
        """Record a trained network; an A of iteration >= 1 is a candidate, A0 the starting network."""
        self.networks.append(net)
        if net["role"] == "A":
            if net["iteration"] >= 1:
                self.candidates.append(net["index"])
            else:
                self.doc["initial"] = net["index"]
        self.update_summary()

    def update_summary(self) -> None:
        """``final`` = the last A; ``best`` = the candidate with the highest validation top-1
        (after its final epochs when they ran; earliest on ties), ``None`` without a validation split.
        Test accuracy never chooses."""
        final = self.current_a()
        if final is None:
            return
        self.doc["final"] = final
        nets = self.networks

        def val(i: int) -> float | None:
            fin = nets[i].get("final")
            v = fin.get("val_top1") if isinstance(fin, dict) else None
            if not isinstance(v, (int, float)):
                v = nets[i]["metrics"].get("val_top1")
            return v if isinstance(v, (int, float)) else None

        scored = [i for i in self.candidates if val(i) is not None]
        self.doc["best"] = max(scored, key=lambda i: (val(i), -i)) if scored else None
        self.doc["cost"] = cost_summary(self.doc)


def cost_summary(doc: dict) -> dict | None:
    """Images trained by the search, and by the paper's protocol at the same settings.

    The paper's protocol trains A0 and every T_k and A_k as long as A0 (from scratch, or
    fine-tuned from a donor for the same epochs), so its images are ``A0's x (1 + 2 n)`` for the
    ``n`` candidates trained, plus the same final epochs. ``growth_*`` counts T_1..T_n, A_1..A_n
    (and the F_k of inherit mode) only: what inherit mode changes. ``None`` when a network did not
    report its images (a toolkit without image counts).
    """
    nets = doc.get("networks") or []
    a0 = next((n for n in nets if n.get("role") == "A" and n.get("iteration") == 0), None)

    def images(rec: Any) -> int | None:
        v = rec.get("images_trained") if isinstance(rec, dict) else None
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    if a0 is None or any(images(n.get("metrics")) is None for n in nets):
        return None
    reported = [images(n["final"]) for n in nets if isinstance(n.get("final"), dict)]
    if any(f is None for f in reported):
        return None
    finals = cast("list[int]", reported)
    per_net = images(a0["metrics"])
    assert per_net is not None  # every network's metrics report images (checked above)
    n_cand = sum(1 for n in nets if n.get("role") == "A" and n.get("iteration", 0) >= 1)
    growth = sum(cast(int, images(n["metrics"])) for n in nets if n is not a0)
    growth_paper = 2 * n_cand * per_net
    total = per_net + growth + sum(finals)
    paper = per_net * (1 + 2 * n_cand) + sum(finals)
    return {
        "images_trained": total,
        "paper_protocol_images": paper,
        "ratio": total / paper if paper else None,
        "growth_images": growth,
        "growth_images_paper_protocol": growth_paper,
        "growth_ratio": growth / growth_paper if growth_paper else None,
    }


# --------------------------------------------------------------------------------------- reading
def load_state(out_dir: str | Path) -> dict:
    """Read ``OUT/search.json`` (clear :class:`InputError` when missing, corrupt, foreign or inconsistent)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"search directory: no such directory: {out_dir}")
    path = out_dir / STATE_FILE
    state = read_json(path, what="search state")
    if not isinstance(state, dict) or "format" not in state:
        raise InputError(f"search state: {path} is not a swnas search state (format {FORMAT})")
    if state.get("format") != FORMAT:
        fmt = state.get("format")
        shown = repr(fmt)[:60] if not isinstance(fmt, str) else fmt[:60]
        raise InputError(
            f"search state: {path} has format {shown}, but this version of swnas reads {FORMAT}; "
            "open it with the swnas version that wrote it (or a newer one)"
        )
    for key, kind in (
        ("config", dict),
        ("networks", list),
        ("candidates", list),
        ("iterations", list),
        ("status", str),
    ):
        if key not in state:
            raise InputError(f"search state: {path} lacks {key!r}")
        if not isinstance(state[key], kind):
            raise InputError(f"search state: {path}: {key!r} must be a {kind.__name__}")
    _check_entries(state, path)
    return state


def _check_fields(entry: Any, keys: dict, where: str) -> None:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object, got {type(entry).__name__}")
    for k, kind in keys.items():
        if k not in entry:
            raise InputError(f"{where}: lacks {k!r}")
        v = entry[k]
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise InputError(f"{where}: {k!r} must be a {kind.__name__}, got {v!r}")


#: the largest integer a state may hold (search.json is written by swnas; anything larger is crafted)
_MAX_INT = 2**53
_METRIC_KEYS = (
    "depth",
    "params",
    "macs",
    "memory",
    "peak_memory",
    "latency",
    "carbon",
    "top1",
    "top5",
    "val_top1",
    "epochs",
    "images_trained",
    "train_seconds",
)
_FINAL_NUMBERS = ("epochs", "top1", "top5", "val_top1", "train_seconds", "images_trained")


def _is_number(v: Any) -> bool:
    """A JSON number swnas could have written: not a bool, finite, within :data:`_MAX_INT`."""
    import math

    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) <= _MAX_INT if isinstance(v, int) else math.isfinite(v) and abs(v) <= _MAX_INT


def _check_numbers(obj: Any, keys: Any, where: str, what: str) -> None:
    """Every ``obj[k]`` for ``k`` in ``keys`` (all keys when ``None``) is a number or null."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: {what!r} must be an object, got {type(obj).__name__}")
    for k in obj if keys is None else keys:
        v = obj.get(k)
        if v is not None and not _is_number(v):
            raise InputError(f"{where}: {what}.{k} must be a number or null, got {_short(v)}")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_network_fields(net: dict, where: str) -> None:
    from swnas.models.io import MAX_MODULES

    for k in ("index", "iteration", "seed"):
        if not _is_number(net[k]):
            raise InputError(f"{where}: {k!r} = {_short(net[k])} is out of range")
    if any(isinstance(s, int) and s > MAX_MODULES for s in net["stages"]):
        raise InputError(f"{where}: 'stages' {_short(net['stages'])} holds more than {MAX_MODULES} modules in a stage")
    _check_numbers(net["metrics"], _METRIC_KEYS, where, "metrics")
    sc = net.get("scores")
    if isinstance(sc, list) and not all(v is None or _is_number(v) for v in sc):
        raise InputError(f"{where}: 'scores' must be numbers (or null), got {_short(sc)}")
    hist = net.get("history")
    if hist is not None:
        if not isinstance(hist, list):
            raise InputError(f"{where}: 'history' must be a list of epochs, got {_short(hist)}")
        for e, entry in enumerate(hist):
            _check_numbers(entry, None, where, f"history[{e}]")
    fin = net.get("final")
    if fin is not None:
        _check_numbers(fin, _FINAL_NUMBERS, where, "final")
        if not isinstance(fin.get("checkpoint"), str):
            raise InputError(f"{where}: final.checkpoint must be a path, got {_short(fin.get('checkpoint'))}")
    if net.get("depth") is not None and not _is_number(net["depth"]):
        raise InputError(f"{where}: 'depth' must be a number, got {_short(net['depth'])}")
    # every checkpoint a search records has its hash; without one a foreign file of the same shape
    # could not be told apart, so a missing or null hash is refused, never a reason to skip the check
    for rec, what in ((net, "checkpoint_sha256"), (fin, "final.checkpoint_sha256")):
        if rec is None:
            continue
        v = rec.get("checkpoint_sha256")
        if not (isinstance(v, str) and len(v) == 64 and all(ch in "0123456789abcdef" for ch in v)):
            raise InputError(
                f"{where}: {what} is {_short(v)}, not the SHA-256 of the checkpoint; swnas cannot tell "
                "that the file is the one it wrote (restore the search.json written with it)"
            )


def _check_iteration_fields(rec: dict, n_stages: int, where: str) -> None:
    for k in ("grown", "stages_before", "stages_after"):
        if not all(_is_number(v) and isinstance(v, int) for v in rec[k]):
            raise InputError(f"{where}: {k!r} must be a list of integers, got {_short(rec[k])}")
    for c, comp in enumerate(rec["comparisons"]):
        w = f"{where}: comparisons[{c}]"
        if not isinstance(comp, dict):
            raise InputError(f"{w}: expected an object, got {_short(comp)}")
        stage = comp.get("stage")
        if not (isinstance(stage, int) and not isinstance(stage, bool) and 1 <= stage <= n_stages):
            raise InputError(f"{w}: 'stage' must be a stage number 1..{n_stages}, got {_short(stage)}")
        for k in ("score_A", "score_T"):
            if comp.get(k) is not None and not _is_number(comp.get(k)):
                raise InputError(f"{w}: {k!r} must be a number or null, got {_short(comp.get(k))}")
        if not isinstance(comp.get("grow"), bool):
            raise InputError(f"{w}: 'grow' must be true or false, got {_short(comp.get('grow'))}")


def _check_entries(state: dict, path: Path) -> None:
    for key in ("environment", "cost"):
        if state.get(key) is not None and not isinstance(state[key], dict):
            raise InputError(f"search state: {path}: {key!r} must be an object, got {_short(state[key])}")
    nets = state["networks"]
    n = len(nets)
    for i, net in enumerate(nets):
        where = f"search state: {path}: networks[{i}]"
        _check_fields(net, _NET_KEYS, where)
        _check_network_fields(net, where)
        if net["index"] != i:
            raise InputError(f"{where}: 'index' is {net['index']}, expected {i}")
        if net["role"] not in ROLES:
            raise InputError(f"{where}: 'role' must be one of {', '.join(ROLES)}, got {net['role']!r}")
        if not net["stages"] or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in net["stages"]
        ):
            raise InputError(f"{where}: 'stages' must be positive module counts, got {net['stages']!r}")
        sc = net.get("scores")
        if sc is not None and (not isinstance(sc, list) or len(sc) != len(net["stages"])):
            raise InputError(f"{where}: 'scores' must be null or one number per stage")

    def index_ok(v: Any, role: str | None) -> bool:
        ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n
        return ok and (role is None or nets[v]["role"] == role)

    for j, c in enumerate(state["candidates"]):
        if not index_ok(c, "A"):
            raise InputError(f"search state: {path}: candidates[{j}] = {c!r} is not the index of a trained A")
    for key in ("final", "best"):
        v = state.get(key)
        if v is not None and not index_ok(v, "A"):
            raise InputError(f"search state: {path}: {key!r} = {v!r} is not the index of a trained A")
    if any(net["role"] == "A" for net in nets) and state.get("final") is None:
        raise InputError(f"search state: {path}: 'final' must be set once an A is trained")
    for j, rec in enumerate(state["iterations"]):
        where = f"search state: {path}: iterations[{j}]"
        _check_fields(rec, _ITER_KEYS, where)
        for key, role in (("A", "A"), ("T", "T")):
            if not index_ok(rec[key], role):
                raise InputError(f"{where}: {key!r} = {_short(rec[key])} is not the index of a trained {role}")
        _check_iteration_fields(rec, len(nets[rec["A"]]["stages"]), where)
        if rec.get("reference") is not None and not index_ok(rec["reference"], "F"):
            raise InputError(f"{where}: 'reference' = {rec['reference']!r} is not the index of a trained F")
        if rec.get("new_A") is not None and not index_ok(rec["new_A"], "A"):
            raise InputError(f"{where}: 'new_A' = {rec['new_A']!r} is not the index of a trained A")


# --------------------------------------------------------------------------------------- resuming
def _flag(key: str) -> str:
    return "--param" if key == "score_params" else f"--{key.replace('_', '-')}"


def _fewer_iterations(state: dict, new: Any) -> str | None:
    scored = len(state["iterations"])
    return f"{scored} iteration(s) are already done" if new < scored else None


def _stopped_early(state: dict, new: Any) -> str | None:
    stopped = any(r.get("stopped_early") for r in state["iterations"])
    return "the run already stopped early under it" if stopped else None


def _final_trained(state: dict, new: Any) -> str | None:
    done = sum(1 for n in state["networks"] if isinstance(n.get("final"), dict))
    return f"{done} candidate(s) already had their final training" if done else None


#: The own ``--resume`` rule of every option whose ``resume`` is ``"rule"``: ``rule(state, new)``
#: says why the option cannot take the value ``new`` (``None``: it can).
RESUME_RULES = {"iterations": _fewer_iterations, "stop_early": _stopped_early, "final_epochs": _final_trained}


def _resume_blockers(state: dict, key: str, new: Any, stored: Any) -> str | None:
    """Why option ``key`` cannot change from ``stored`` to ``new`` in this run (``None``: it can)."""
    trained, scored = len(state["networks"]), len(state["iterations"])
    if trained == 0:
        return None  # nothing computed yet: every option may still change
    if key in _TRAINING:
        return f"{trained} network(s) were trained with it"
    if key in _SCORING:
        return f"{scored} scoring step(s) used it" if scored else None
    if key in RESUME_RULES:
        return RESUME_RULES[key](state, new)
    return "swnas has no --resume rule for it"  # an option declared without one (tests/test_options.py)


def resume_config(out_dir: str | Path, overrides: dict | None = None) -> SearchConfig:
    """The stored config of a search, with the options given again on the command line applied.

    ``overrides`` holds only the options the user gave explicitly. ``device``, ``quiet`` and
    ``backend`` may always change; the other options may change as long as nothing already
    computed depends on them (no network trained yet; a scoring option before the first scoring
    step; ``iterations`` not below the steps done). Any other difference raises
    :class:`InputError` naming the option and what depends on it.
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
            raise InputError(f"{_flag(key)}: not an option of a search")
        new = to_jsonable(value)
        if key == "score_params":
            new = dict(stored["score_params"], **new)
        if new == stored[key]:
            continue
        why = _resume_blockers(state, key, new, stored[key])
        if why is None:
            setattr(cfg, key, new if key == "score_params" else value)
        else:
            conflicts.append(f"{_flag(key)} {value!r} (stored {stored[key]!r}): {why}")
    if conflicts:
        raise InputError(
            f"--resume {out_dir}: option(s) conflict with the stored run: {'; '.join(conflicts)}. "
            "Drop them to continue the run as configured, or start a new search in another --out."
        )
    return cfg


def comparable_state(state: dict) -> dict:
    """A copy of a state without its timings and file hashes (what two equivalent runs agree on)."""
    s = copy.deepcopy(state)
    for net in s.get("networks", []):
        net.pop("checkpoint_sha256", None)
        if isinstance(net.get("inherited_from"), dict):
            net["inherited_from"].pop("checkpoint_sha256", None)
        for k in TIMING_KEYS:
            net.get("metrics", {}).pop(k, None)
        for epoch in net.get("history") or []:  # per-epoch timings
            epoch.pop("seconds", None)
            epoch.pop("images_per_second", None)
        fin = net.get("final")
        if isinstance(fin, dict):  # the final training's timing and checkpoint hash
            fin.pop("train_seconds", None)
            fin.pop("checkpoint_sha256", None)
    s.pop("environment", None)
    return s
