"""Algorithm 1 itself: train A, train T, score both, grow the stages where T wins, rebuild A.

:class:`Search` holds the run's pieces (config, toolkit, state document, progress reporter, the
open directory) and its :meth:`Search.run` reads as the algorithm; :func:`run_search` opens the
directory (lock, state, checks) and runs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from swnas.records import tracking
from swnas.search import environment
from swnas.training import resume
from swnas.errors import InputError
from swnas.search.checkpoints import checkpoint_path
from swnas.search.config import CONTROL_CRITERIA, SearchConfig
from swnas.search.progress import Progress, fmt_seconds
from swnas.search.state import SearchState, metrics_record, resume_config
from swnas.search.toolkit import Toolkit
from swnas.records.atomic import atomic_save, atomic_write_json, file_sha256, inside

__all__ = ["Search", "SearchResult", "decide", "control_decision", "run_search"]


@dataclass
class SearchResult:
    """Outcome of :func:`run_search`: the state on disk, summarised."""

    out_dir: Path
    state: dict
    networks: list
    candidates: list
    final: int
    best: int | None
    status: str

    @property
    def final_stages(self) -> list:
        return list(self.networks[self.final]["stages"])


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


def control_decision(criterion: str, n_stages: int, seed: int, iteration: int) -> list[bool]:
    """The controls' rule: ``uniform`` grows every stage; ``random`` each with probability 1/2,
    drawn from a generator seeded by ``(seed, iteration)`` (the same on resume and on every rank)."""
    if criterion == "uniform":
        return [True] * n_stages
    if criterion != "random":
        raise InputError(f"criterion: {criterion!r} is not a control criterion ({', '.join(CONTROL_CRITERIA)})")
    import numpy as np

    rng = np.random.default_rng([int(seed), int(iteration), 0x5EED])
    return [bool(v) for v in rng.random(n_stages) < 0.5]


def _describe(role: str, iteration: int, inherit: bool) -> str:
    """How progress lines name a network (``T2 (A deepened)``, ``F2 (A1 fine-tuned as T2)``)."""
    if iteration == 0:
        return "initial network A"
    if role == "T":
        return f"T{iteration} (A deepened{', inherited' if inherit else ''})"
    if role == "F":
        return f"F{iteration} (A{iteration - 1} fine-tuned as long as T{iteration})"
    return f"A{iteration}{' (cut from T' + str(iteration) + ')' if inherit else ''}"


class Search:
    """One run of Algorithm 1 over an opened state (see :func:`run_search`)."""

    def __init__(self, cfg: SearchConfig, out: Path, tk: Toolkit, state: SearchState, progress: Progress):
        self.cfg, self.out, self.tk, self.state, self.progress = cfg, out, tk, state, progress
        self.main = bool(tk.is_main())
        self.models: dict[int, Any] = {}
        if cfg.inherit:
            progress.networks_per_iteration(3)

    # -- Algorithm 1
    def run(self) -> None:
        cfg = self.cfg
        from swnas.training.threads import apply_threads

        _, how = apply_threads(cfg.threads, cfg.dataset, cfg.input_size, cfg.device)  # before any network is built
        env = environment.search_environment(cfg.device, cfg.backend, cfg.criterion)  # E
        self.state.doc["environment"] = dict(env, threads_setting=how)
        if cfg.inherit and (self.tk.grow is None or self.tk.finetune is None):
            raise InputError("--inherit: this toolkit cannot grow networks (it has no grow/finetune)")
        A = self.ensure_trained("A", 0, [cfg.m0] * cast(int, cfg.stages))  # cfg is resolved (run_search)
        for k in range(1, cfg.iterations + 1):
            rec = self.state.step(k)
            if rec is not None and rec["stopped_early"]:
                break
            T = self.ensure_trained("T", k, [m + cfg.delta for m in A["stages"]], parent=A)
            ref = A
            if cfg.inherit:  # A fine-tuned as long as T, same schedule and seed: the equal-training reference
                ref = self.ensure_trained("F", k, list(A["stages"]), parent=A, seed=int(T["seed"]))
            if rec is None:
                rec = self.compare(k, A, T, ref)
                if rec["stopped_early"]:
                    break
            A = self.ensure_trained("A", k, list(rec["stages_after"]), parent=T)
            if rec["new_A"] != A["index"]:
                rec["new_A"] = A["index"]
                self.write()
        from swnas.search.final import run_final_epochs

        run_final_epochs(self)
        if self.state.status == "running":
            self.state.status = "complete"
        self.state.update_summary()
        self.write()
        self.tk.barrier()

    def compare(self, k: int, A: dict, T: dict, ref: dict | None = None) -> dict:
        """Score ``ref`` (A itself; in inherit mode A fine-tuned as long as T) and T, apply
        :func:`decide` (or a control criterion), record the step."""
        cfg = self.cfg
        ref = A if ref is None else ref
        what = "A" if ref is A else f"F{k} (A fine-tuned as T{k})"
        self.progress.step(self.state.steps_done(), f"scoring the stages of {what} and T{k} ({cfg.criterion})")
        if cfg.criterion in CONTROL_CRITERIA:
            grow = control_decision(cfg.criterion, len(A["stages"]), cfg.seed, k)
        else:
            self.ensure_scored([ref, T])
            grow = decide(ref["scores"], T["scores"])
            tracking.active().scores(k, ref["scores"], T["scores"])  # --track
        sa = ref["scores"] or [None] * len(grow)
        st = T["scores"] or [None] * len(grow)
        comps = [
            {"stage": i + 1, "score_A": a, "score_T": t, "grow": g} for i, (a, t, g) in enumerate(zip(sa, st, grow))
        ]
        rec = {
            "iteration": k,
            "A": A["index"],
            "T": T["index"],
            "comparisons": comps,
            "grown": [c["stage"] for c in comps if c["grow"]],
            "stages_before": list(A["stages"]),
            "stages_after": [m + (cfg.delta if g else 0) for m, g in zip(A["stages"], grow)],
            "no_growth": not any(grow),
            "new_A": None,
            "stopped_early": False,
        }
        if ref is not A:
            rec["reference"] = ref["index"]
        self.state.iterations.append(rec)
        ra = "A" if ref is A else "F"
        for c in comps:
            verdict = f"grow by {cfg.delta}" if c["grow"] else "keep"
            how = (
                f"score {ra} {c['score_A']:.6g} vs T {c['score_T']:.6g}"
                if c["score_A"] is not None
                else f"{cfg.criterion} control"
            )
            self.progress.say(f"    iteration {k} stage {c['stage']}: {how} -> {verdict}")
        if rec["no_growth"]:
            if cfg.stop_early:
                rec["stopped_early"] = True
                self.state.status = "stopped_early"
                self.progress.say(f"    iteration {k}: no stage grew; stopping early (--stop-early)")
            else:
                again = "fine-tuned" if cfg.inherit else "retrained"
                self.progress.say(
                    f"    iteration {k}: no stage grew; continuing with A {again}, as the paper "
                    "does (--stop-early stops here)"
                )
        self.write()
        self.tk.barrier()
        return rec

    # -- networks
    def ensure_trained(
        self, role: str, iteration: int, stages: list[int], parent: dict | None = None, seed: int | None = None
    ) -> dict:
        """The recorded network ``role``/``iteration``, training (and recording) it when missing.

        In inherit mode a network with a ``parent`` grows from the parent's trained weights
        (:attr:`Toolkit.grow`) and is fine-tuned (:attr:`Toolkit.finetune`); otherwise it is
        built afresh (or transferred) and trained. ``seed`` defaults to ``config.seed + index``.
        """
        net = self.state.find(role, iteration)
        if net is not None:
            if list(net["stages"]) != list(stages):
                raise InputError(
                    f"search state: {role}{iteration} has stages {net['stages']} but the run expects {stages}; "
                    "the state was edited or comes from another configuration"
                )
            return net
        index = len(self.state.networks)
        seed = self.cfg.seed + index if seed is None else int(seed)
        inherit = bool(self.cfg.inherit) and parent is not None
        kind = _describe(role, iteration, inherit)
        self.progress.step(
            self.state.steps_done(), f"{'fine-tuning' if inherit else 'training'} {kind}: stages {stages}"
        )
        t0 = time.perf_counter()
        if inherit:
            assert parent is not None  # inherit is only true with a parent
            grow_fn = cast("Callable[[Any, list, int], Any]", self.tk.grow)  # run() refused --inherit without them
            model = grow_fn(self.model(parent), list(stages), seed)
            trainer = cast("Callable[..., dict]", self.tk.finetune)
        else:
            model = self.tk.build(list(stages), seed)
            trainer = self.tk.train
        # per-epoch checkpoints in OUT/training/<name>/ let --resume continue inside a network (swnas.training.resume)
        work = resume.network_workdir(self.out, f"{index:02d}-{role}{iteration}")
        note = resume.describe_partial(work, kind)
        if note:
            self.progress.say(note)
        tr = dict(resume.train_with_checkpoints(trainer, model, seed, work))
        seconds = float(tr.get("seconds", time.perf_counter() - t0))
        meas = dict(self.tk.measure(model, seconds))
        if meas.get("carbon_method"):
            self.state.doc["carbon_method"] = str(meas["carbon_method"])
        net = {
            "index": index,
            "role": role,
            "iteration": iteration,
            "stages": list(stages),
            "depth": meas.get("depth"),
            "seed": seed,
            "scores": None,
            "metrics": metrics_record(meas, tr, seconds),
        }
        if tr.get("history") is not None:
            net["history"] = tr["history"]
        if inherit:
            assert parent is not None  # inherit is only true with a parent
            net["inherited_from"] = {
                "index": parent["index"],
                "role": parent["role"],
                "iteration": parent["iteration"],
                "checkpoint_sha256": parent.get("checkpoint_sha256"),
            }
        net.update(self.save_network(model, f"{index:02d}-{role}{iteration}"))
        self.state.add_network(net)
        live = self.state.current_a()  # keep the current A and the new network; drop the rest
        self.models = {k: v for k, v in self.models.items() if k == live}
        self.models[index] = model
        self.progress.train_times.append(time.perf_counter() - t0)
        self.write()
        self.tk.barrier()
        resume.finish_network(work, self.main)
        tracking.active().final(work.name, net["metrics"])  # --track
        top1 = tr.get("top1")
        acc = f"top-1 {100 * top1:.2f}%" if isinstance(top1, (int, float)) else "top-1 n/a"
        eta = self.progress.eta(len(self.state.networks), len(self.state.iterations), self.state.status == "running")
        self.progress.say(f"    {kind} trained in {fmt_seconds(time.perf_counter() - t0)}: {acc}{eta}")
        return net

    def save_network(self, model: Any, name: str) -> dict:
        """Write the checkpoint and spec (rank 0); the record's ``checkpoint``, ``checkpoint_sha256``, ``spec``."""
        ckpt, spec_path = f"checkpoints/{name}.pt", f"specs/{name}.json"
        rec = {"checkpoint": ckpt, "spec": spec_path}
        if self.main:
            path = atomic_save(lambda p: self.tk.save(model, p), inside(self.out, ckpt, "checkpoint"))
            atomic_write_json(inside(self.out, spec_path, "spec"), self.tk.spec(model))
            rec["checkpoint_sha256"] = file_sha256(path)
        return rec

    def model(self, net: dict) -> Any:
        idx = net["index"]
        if idx not in self.models:
            self.models[idx] = self.tk.load(str(checkpoint_path(self.out, net)))
        return self.models[idx]

    def ensure_scored(self, nets: list[dict]) -> None:
        todo = [n for n in nets if n["scores"] is None]
        if not todo:
            return
        t0 = time.perf_counter()
        for net in todo:
            scores = [float(s) for s in self.tk.score(self.model(net))]
            if len(scores) != len(net["stages"]):
                raise InputError(
                    f"scores: got {len(scores)} stage scores for a network with {len(net['stages'])} stages"
                )
            net["scores"] = scores
        self.progress.score_times.append(time.perf_counter() - t0)

    def write(self) -> None:
        if self.main:
            self.state.save(self.out)


def run_search(
    config: SearchConfig | None = None,
    out_dir: str | Path = "runs/search",
    *,
    toolkit: Toolkit | None = None,
    resume: bool = False,
    echo: Callable[[str], None] | None = print,
    lock: Any = None,
) -> SearchResult:
    """Run (or continue) Algorithm 1 with its whole state in ``out_dir``.

    Parameters
    ----------
    config : SearchConfig, optional
        With ``resume``, ``None`` means the stored config (see :func:`resume_config`).
    out_dir : path
        The state directory; must not hold a search unless ``resume``.
    toolkit : Toolkit, optional
        Injected training/scoring/measuring; default :func:`~swnas.search.default_toolkit`.
    resume : bool
        Continue the search stored in ``out_dir``; finished steps are not repeated.
    echo : callable or None
        Where progress lines go (``None``: silent). The log file ``OUT/search.log`` gets them too.
    lock : RunLock, optional
        A lock on ``out_dir`` the caller already holds (:func:`swnas.search.opening.lock_out`);
        without it the run takes (and releases) its own.

    Returns
    -------
    SearchResult
    """
    from swnas.search.opening import open_run

    out = Path(out_dir)
    if resume:
        cfg = resume_config(out) if config is None else config.resolved()
    else:
        cfg = (config or SearchConfig()).resolved()
    with open_run(cfg, out, toolkit, resume, echo, held=lock) as (tk, state, progress):
        Search(cfg, out, tk, state, progress).run()
    s = state.doc
    return SearchResult(
        out_dir=out,
        state=s,
        networks=s["networks"],
        candidates=s["candidates"],
        final=s["final"],
        best=s["best"],
        status=s["status"],
    )
