"""The paper's last step: each candidate A_1..A_n trained ``final_epochs`` more after the search.

The search decides on the networks as trained (200 epochs in the paper); the candidates are then
trained 100 more epochs (Tables III and IV report these 300-epoch accuracies). Here that training
continues a *copy* of each candidate from its checkpoint, so the search's own records (scores,
decisions) never change. It is resumable at two levels: the trainer checkpoints every epoch under
``OUT/final/NN-A<k>/`` and a finished candidate is recorded in its ``search.json`` entry as::

    "final": {"epochs": E, "top1": ..., "top5": ..., "val_top1": ..., "train_seconds": ...,
              "checkpoint": "checkpoints/NN-A<k>-final.pt", "checkpoint_sha256": "..."}

The rate is the training schedule's last one (``docs/protocol.md``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from swnas.search.state import candidate_name
from swnas.records.atomic import atomic_save, file_sha256, inside, to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    from swnas.search.loop import Search

__all__ = ["ensure_final", "run_final_epochs"]


def run_final_epochs(search: Search) -> None:
    """Give every candidate its final training (skipped when ``final_epochs`` is 0 or the toolkit has none)."""
    cfg, tk = search.cfg, search.tk
    if not cfg.final_epochs or tk.final_train is None:
        return
    cands = list(search.state.candidates)
    for j, idx in enumerate(cands):
        ensure_final(search, search.state.networks[idx], f"[final {j + 1}/{len(cands)}]")
    search.state.update_summary()
    search.write()


def ensure_final(search: Search, net: dict, label: str = "[final]") -> dict:
    """``net``'s final record, training the candidate ``final_epochs`` more when it is missing."""
    cfg, tk = search.cfg, search.tk
    rec = net.get("final")
    if isinstance(rec, dict) and rec.get("epochs") == cfg.final_epochs:
        return rec
    name = f"{net['index']:02d}-{net['role']}{net['iteration']}"  # file names; people read A1, A2, ...
    shown = candidate_name(net)
    search.progress.say(f"{label} final training of {shown}: {cfg.final_epochs} more epochs")
    t0 = time.perf_counter()
    model = copy.deepcopy(search.model(net))
    run_dir = inside(search.out, f"final/{name}", "final training directory")
    final_train = cast("Callable[[Any, int, int, str], dict]", tk.final_train)  # run_final_epochs checked it
    tr = dict(final_train(model, int(net["seed"]), int(cast(int, cfg.final_epochs)), str(run_dir)))
    ckpt = f"checkpoints/{name}-final.pt"
    rec = {
        "epochs": int(cast(int, cfg.final_epochs)),
        "top1": tr.get("top1"),
        "top5": tr.get("top5"),
        "val_top1": tr.get("val_top1"),
        "train_seconds": float(tr.get("seconds", time.perf_counter() - t0)),
        "images_trained": tr.get("images"),
        "checkpoint": ckpt,
    }
    if search.main:
        path = atomic_save(lambda p: tk.save(model, p), inside(search.out, ckpt, "checkpoint"))
        rec["checkpoint_sha256"] = file_sha256(path)
    net["final"] = to_jsonable(rec)
    search.state.update_summary()
    search.write()
    search.tk.barrier()
    from swnas.training.resume import finish_network

    finish_network(run_dir, search.main)  # its epoch checkpoint is no longer needed (final/ goes once empty)
    top1 = rec["top1"]
    acc = f"test top-1 {100 * top1:.2f}%" if isinstance(top1, (int, float)) else "test top-1 n/a"
    val = rec["val_top1"]
    if isinstance(val, (int, float)):
        acc = f"validation top-1 {100 * val:.2f}%, {acc}"
    search.progress.say(f"    {shown} after {cfg.final_epochs} final epochs: {acc}")
    return net["final"]
