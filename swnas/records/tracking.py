"""Experiment tracking for long searches: ``--track tensorboard|mlflow|jsonl``.

A :class:`Tracker` receives what a search produces -- the options, every network's per-epoch
loss, accuracy, learning rate and images/s, every iteration's per-stage scores of A and T, and each
network's final metrics -- and forwards it to one sink:

``tensorboard``
    Event files under ``OUT/tensorboard/`` (needs the ``tensorboard`` package; view with
    ``tensorboard --logdir OUT/tensorboard``). Network 7 (T3)'s curves are ``07-T3/loss`` etc.
``mlflow``
    One run per search, named after OUT, in experiment ``swnas`` of ``OUT/mlflow.db`` (artifacts
    under ``OUT/mlflow-artifacts/``) unless the user set ``MLFLOW_TRACKING_URI``, whose server or
    store is then used as configured. MLflow's telemetry is turned off (``MLFLOW_DISABLE_TELEMETRY``,
    ``DO_NOT_TRACK``) unless the user set those variables: by default nothing reaches the network
    and nothing is written outside OUT (:func:`mlflow_settings`).
``jsonl``
    ``OUT/track.jsonl``, one JSON object per event; needs nothing.

Only rank 0 tracks. A sink that is not installed is a clear error before any training starts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from swnas.errors import BackendUnavailableError, InputError
from swnas.records.atomic import to_jsonable

__all__ = [
    "TRACKERS",
    "Tracker",
    "make_tracker",
    "check_tracker",
    "mlflow_settings",
    "MLFLOW_QUIET_ENV",
    "network_tag",
    "activate",
    "active",
    "epoch_callback",
]

TRACKERS = ("none", "tensorboard", "mlflow", "jsonl")


def network_tag(index: int, role: str, iteration: int) -> str:
    """``07-T3``: the network's index, role and iteration, sortable (as its checkpoint's name)."""
    return f"{int(index):02d}-{role}{int(iteration)}"


def _finite(stats: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in stats.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }


class Tracker:
    """The sink-independent interface; this base class tracks nothing (``--track none``)."""

    kind = "none"

    def config(self, options: dict) -> None:
        """The resolved options of the run."""

    def epoch(self, tag: str, stats: dict) -> None:
        """One finished epoch of network ``tag`` (the trainer's history entry)."""

    def scores(self, iteration: int, scores_a: list[float], scores_t: list[float]) -> None:
        """One iteration's per-stage scores of A and T."""

    def final(self, tag: str, metrics: dict) -> None:
        """A trained network's metrics (accuracy, params, MACs, ...)."""

    def close(self) -> None:
        """Flush and release the sink."""


class _JsonLines(Tracker):
    kind = "jsonl"

    def __init__(self, out: Path):
        import os

        out.mkdir(parents=True, exist_ok=True)
        # appended to (a resumed search keeps its earlier events); never through a symbolic link
        fd = os.open(out / "track.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        self.fh = os.fdopen(fd, "a", encoding="utf-8")

    def _write(self, obj: dict) -> None:
        self.fh.write(json.dumps(to_jsonable(obj), allow_nan=False) + "\n")
        self.fh.flush()

    def config(self, options):
        self._write({"event": "config", "options": options})

    def epoch(self, tag, stats):
        self._write({"event": "epoch", "network": tag, **_finite(stats)})

    def scores(self, iteration, scores_a, scores_t):
        self._write({"event": "scores", "iteration": iteration, "A": list(scores_a), "T": list(scores_t)})

    def final(self, tag, metrics):
        self._write({"event": "final", "network": tag, **_finite(metrics)})

    def close(self):
        self.fh.close()


class _TensorBoard(Tracker):
    kind = "tensorboard"

    def __init__(self, out: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise BackendUnavailableError(
                "--track tensorboard needs the tensorboard package (pip install tensorboard)"
            ) from exc
        self.w = SummaryWriter(log_dir=str(out / "tensorboard"))

    def config(self, options):
        self.w.add_text("config", "```\n" + json.dumps(to_jsonable(options), indent=2) + "\n```")

    def epoch(self, tag, stats):
        step = int(stats.get("epoch", 0))
        for k, v in _finite(stats).items():
            if k != "epoch":
                self.w.add_scalar(f"{tag}/{k}", v, step)

    def scores(self, iteration, scores_a, scores_t):
        for s, (a, t) in enumerate(zip(scores_a, scores_t), start=1):
            self.w.add_scalars(f"scores/stage{s}", {"A": float(a), "T": float(t)}, int(iteration))

    def final(self, tag, metrics):
        head = tag.split("-")[0]
        index = int(head) if head.isdigit() else 0  # network tags start with the network's index
        for k, v in _finite(metrics).items():
            self.w.add_scalar(f"final/{k}", v, index)

    def close(self):
        self.w.close()


#: environment variables that keep MLflow off the network (its telemetry), set unless the user set them
MLFLOW_QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
MLFLOW_EXPERIMENT = "swnas"


def mlflow_settings(out: str | Path, environ: dict | None = None) -> dict:
    """Where ``--track mlflow`` logs, without importing MLflow.

    Returns ``{"env": {...}, "tracking_uri": str | None, "artifact_location": str | None}``:
    the variables to set (those of :data:`MLFLOW_QUIET_ENV` the user did not set), and, unless
    ``MLFLOW_TRACKING_URI`` is set, a SQLite store ``OUT/mlflow.db`` with artifacts in
    ``OUT/mlflow-artifacts`` (``None`` for both when the user configured a store).
    """
    import os

    env = os.environ if environ is None else environ
    out = Path(out).absolute()
    quiet = {k: v for k, v in MLFLOW_QUIET_ENV.items() if k not in env}
    if env.get("MLFLOW_TRACKING_URI"):
        return {"env": quiet, "tracking_uri": None, "artifact_location": None}
    return {
        "env": quiet,
        "tracking_uri": "sqlite:///" + str(out / "mlflow.db"),
        "artifact_location": (out / "mlflow-artifacts").as_uri(),
    }


class _MLflow(Tracker):
    kind = "mlflow"

    def __init__(self, out: Path):
        import os

        st = mlflow_settings(out)
        os.environ.update(st["env"])  # before MLflow is imported: its telemetry reads them then
        try:
            import mlflow
        except ImportError as exc:
            raise BackendUnavailableError("--track mlflow needs the mlflow package (pip install mlflow)") from exc
        self.m = mlflow
        experiment_id = None
        if st["tracking_uri"] is not None:  # our own store under OUT
            out.mkdir(parents=True, exist_ok=True)
            mlflow.set_tracking_uri(st["tracking_uri"])
            exp = mlflow.get_experiment_by_name(MLFLOW_EXPERIMENT)
            experiment_id = (
                exp.experiment_id
                if exp is not None
                else mlflow.create_experiment(MLFLOW_EXPERIMENT, artifact_location=st["artifact_location"])
            )
        self.run = mlflow.start_run(run_name=out.name, experiment_id=experiment_id)

    def config(self, options):
        self.m.log_params({k: str(v)[:250] for k, v in to_jsonable(options).items()})

    def epoch(self, tag, stats):
        step = int(stats.get("epoch", 0))
        self.m.log_metrics({f"{tag}.{k}": v for k, v in _finite(stats).items() if k != "epoch"}, step=step)

    def scores(self, iteration, scores_a, scores_t):
        vals = {f"score.stage{s}.A": float(a) for s, a in enumerate(scores_a, 1)}
        vals.update({f"score.stage{s}.T": float(t) for s, t in enumerate(scores_t, 1)})
        self.m.log_metrics(vals, step=int(iteration))

    def final(self, tag, metrics):
        self.m.log_metrics({f"{tag}.final.{k}": v for k, v in _finite(metrics).items()})

    def close(self):
        self.m.end_run()


_PACKAGES = {"tensorboard": ("torch.utils.tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_tracker(kind: str | None) -> None:
    """Refuse an unknown ``--track`` or one whose package is missing, writing nothing anywhere."""
    import importlib

    k = "none" if kind is None else str(kind).lower()
    if k not in TRACKERS:
        raise InputError(f"track must be one of {list(TRACKERS)}, got {kind!r}")
    if k in _PACKAGES:
        module, package = _PACKAGES[k]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise BackendUnavailableError(f"--track {k} needs the {package} package (pip install {package})") from exc


def make_tracker(kind: str | None, out_dir: str | Path, *, rank: int = 0) -> Tracker:
    """The tracker for ``--track kind`` writing under ``out_dir``; a no-op one on ranks other than 0.

    Raises
    ------
    InputError
        Unknown ``kind``.
    BackendUnavailableError
        The sink's package is not installed.
    """
    k = "none" if kind is None else str(kind).lower()
    if k not in TRACKERS:
        raise InputError(f"track must be one of {list(TRACKERS)}, got {kind!r}")
    if k == "none" or rank != 0:
        return Tracker()
    out = Path(out_dir)
    return {"jsonl": _JsonLines, "tensorboard": _TensorBoard, "mlflow": _MLflow}[k](out)


_ACTIVE: list[Tracker] = [Tracker()]


def activate(tracker: Tracker) -> Tracker:
    """Make ``tracker`` the one the search and trainer report to (:func:`active`); returns it."""
    _ACTIVE[0] = tracker
    return tracker


def active() -> Tracker:
    """The tracker of the current run (a no-op one unless :func:`activate` was called)."""
    return _ACTIVE[0]


def epoch_callback(tag: str):
    """A trainer callback ``cb(epoch, stats)`` that reports every epoch of network ``tag``."""
    return lambda _epoch, stats: active().epoch(tag, stats)
