"""Algorithm 1 of Stage-Wise NAS, resumable: its loop, its decision rule and its state on disk.

The loop (Jordao et al., ICPR 2020)::

    A <- S stages of m0 modules; train A; C <- {}
    for k in 1..n:
        T <- A with every stage deepened by delta; train T
        score every stage of A and of T on the (un-augmented) training part
        grow stage i by delta exactly where score_T,i > score_A,i (all n iterations run
        even when nothing grows, unless stop_early)
        A <- rebuilt with the new depths; train A; C <- C + {A}
    train every candidate final_epochs more (:mod:`~swnas.search.final`)

Training, scoring, measuring and checkpointing are injected through a :class:`Toolkit`, so the
decision rule, the resume logic and the outputs can be exercised with controlled fakes;
:func:`default_toolkit` wires the real modules (``swnas.data``, ``swnas.models``, ``swnas.training.trainer``,
``swnas.features``, ``swnas.models.metrics``, ``swnas.training.transfer``).

State on disk (``OUT/search.json``, rewritten atomically after every trained network and every
scoring step):

``format``
    ``"swnas-search/1"``.
``config``
    Every option of the search (:class:`SearchConfig` as a dict, defaults resolved).
``status``
    ``"running"``, ``"complete"`` or ``"stopped_early"`` (no stage grew and ``stop_early`` set).
``networks``
    Every network evaluated, in the order trained. Each entry: ``index``, ``role`` (``"A"`` or
    ``"T"``), ``iteration`` (0 for the initial A), ``stages`` (modules per stage), ``depth``,
    ``seed`` (``config.seed + index``), ``scores`` (per-stage scores in stage order, ``null``
    until scored; only networks that took part in a comparison are scored), ``metrics``
    (``params, macs, memory, latency, carbon, top1, top5, val_top1`` plus ``depth, peak_memory,
    train_seconds, epochs``; units in ``metric_units``), for candidates after their final training
    ``final`` (``epochs, top1, top5, val_top1, train_seconds, checkpoint, checkpoint_sha256``),
    ``checkpoint`` and ``spec`` (paths
    relative to OUT: weights loadable with ``swnas.models.load`` and the architecture as JSON)
    and ``checkpoint_sha256`` (the checkpoint's content hash, checked whenever it is loaded).
``candidates``
    The candidate set C as **indices into** ``networks``: the A of each iteration 1..n (n entries
    after n iterations). ``initial`` is the index of the starting network A0, not a candidate.
``iterations``
    One record per scoring step: ``iteration``, ``A`` and ``T`` (network indices),
    ``comparisons`` (``stage`` numbered from 1, ``score_A``, ``score_T``, ``grow``), ``grown``
    (stage numbers that grew), ``stages_before``, ``stages_after``, ``no_growth``, ``new_A``
    (index of the rebuilt A, ``null`` until trained) and ``stopped_early``.
``final`` / ``best``
    Index of the last A trained and of the candidate with the highest *validation* top-1 (after
    its final epochs when they ran); ``best`` is ``null`` without a validation split.

The fields ``metrics.latency``, ``metrics.carbon`` and ``metrics.train_seconds`` are timings; every
other field of a resumed run equals that of an uninterrupted run with the same seed
(:func:`comparable_state` strips the timings and the file hashes).

Modules: :mod:`~swnas.search.config` (options), :mod:`~swnas.search.state` (the document and its
queries, resume rules), :mod:`~swnas.search.progress` (log and ETA), :mod:`~swnas.search.loop`
(Algorithm 1), :mod:`~swnas.search.toolkit` (what it calls), :mod:`~swnas.search.validate` (options
checked up front), :mod:`~swnas.search.opening` (lock, checks, state), and
:mod:`~swnas.search.checkpoints` (checked loading). See ``docs/reliability.md``.
"""

from __future__ import annotations

from swnas.search.config import FORMAT, LOG_FILE, METRIC_UNITS, STATE_FILE, TIMING_KEYS, SearchConfig
from swnas.search.state import (
    RESUME_FREE,
    candidate_name,
    comparable_state,
    load_state,
    metrics_record,
    pick_candidate,
    resume_config,
)
from swnas.search.toolkit import Toolkit, default_toolkit, measure_network
from swnas.search.loop import SearchResult, decide, run_search
from swnas.search.checkpoints import checkpoint_path, final_record, load_model, load_recorded
from swnas.search.validate import validate_options

__all__ = [
    "SearchConfig",
    "Toolkit",
    "SearchResult",
    "STATE_FILE",
    "LOG_FILE",
    "FORMAT",
    "TIMING_KEYS",
    "METRIC_UNITS",
    "RESUME_FREE",
    "decide",
    "run_search",
    "load_state",
    "resume_config",
    "comparable_state",
    "default_toolkit",
    "measure_network",
    "metrics_record",
    "candidate_name",
    "pick_candidate",
    "checkpoint_path",
    "load_model",
    "load_recorded",
    "final_record",
    "validate_options",
]
