"""``swnas train`` (swnas.experiments.train_architecture.train_architecture) starts from the recipe's initialisation."""

from __future__ import annotations

import math

import pytest
import torch

import swnas.training.trainer
from swnas import models as M
from swnas.experiments.train_architecture import train_architecture


class _Seen(Exception):
    """Stops the run once the trainer has been handed the network."""


def _initial_weights(monkeypatch, tmp_path, recipe: str) -> tuple[dict, object]:
    """The weights of the network ``swnas train`` hands to the trainer (training itself is skipped)."""
    seen: dict = {}

    def spy(model, data, **kw):
        seen["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        seen["spec"] = model.spec
        raise _Seen

    monkeypatch.setattr(swnas.training.trainer, "train", spy)
    with pytest.raises(_Seen):
        train_architecture(
            stages=[1, 1, 1],
            dataset="digits",
            subset=60,
            recipe=recipe,
            epochs=1,
            batch_size=30,
            seed=3,
            device="cpu",
            out=tmp_path / recipe,
            progress=False,
        )
    return seen["state"], seen["spec"]


def test_original_baseline_is_he_normal(monkeypatch, tmp_path):
    state, spec = _initial_weights(monkeypatch, tmp_path, "original")
    net = M.build(spec)
    kernels = [n + ".weight" for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    ratios = []
    for k in kernels:
        w = state[k]
        sigma = math.sqrt(2.0 / w[0].numel())  # fan-in
        ratios.append((w / sigma).flatten())
        assert float(w.abs().max()) <= 2.0 * sigma + 1e-6, k  # truncated at two standard deviations
    r = torch.cat(ratios)
    # a normal truncated at +-2 sigma has standard deviation 0.8796 sigma
    assert float(r.std()) == pytest.approx(0.8796, abs=0.03)
    assert all(
        float(v.abs().max()) == 0.0
        for k, v in state.items()
        if k.endswith("bias") and "bn" not in k and k.replace(".bias", ".weight") in kernels
    )


def test_paper_baseline_keeps_the_builders_initialisation(monkeypatch, tmp_path):
    state, spec = _initial_weights(monkeypatch, tmp_path, "paper")
    torch.manual_seed(3)
    ref = M.build(spec).state_dict()
    assert state.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(state[k], ref[k], rtol=0, atol=0)
    # the stem (fan-in 9, fan-out 144) is not drawn at he-normal's fan-in scale
    stem = next(v for k, v in state.items() if v.ndim == 4)
    assert float(stem.std()) < 0.5 * math.sqrt(2.0 / stem[0].numel())
