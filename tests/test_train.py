"""swnas.training.trainer / augment / recipes: augmentation against a per-image reference, schedules,
reproducibility, exact resume from checkpoints, evaluation and bad input (all on the CPU)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn as nn

from swnas.data.augment import crop_flip, normalize, random_params
from swnas.data import Dataset, channel_stats, load_dataset
from swnas.errors import InputError
from swnas.training.recipes import PAPER_SEARCH_RUNS, ScheduleFactor, crop_padding, estimate_training_hours, get_recipe
from swnas.training.trainer import CHECKPOINT_NAME, evaluate, load_checkpoint, predict_logits, train


def tiny_data(n: int = 64, size: int = 8, channels: int = 1, classes: int = 4, seed: int = 0) -> Dataset:
    """A learnable toy set: each class brightens a different quadrant."""
    rng = np.random.default_rng(seed)

    def make(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(m) % classes
        x = rng.integers(0, 90, (m, size, size, channels)).astype(np.int64)
        h = size // 2
        for c in range(classes):
            r, q = divmod(c % 4, 2)
            x[y == c, r * h : (r + 1) * h, q * h : (q + 1) * h] += 150
        return x.clip(0, 255).astype(np.uint8), y.astype(np.int64)

    xtr, ytr = make(n)
    xte, yte = make(max(classes, n // 4))
    mean, std = channel_stats(xtr)
    return Dataset("synthetic", xtr, ytr, xte, yte, classes, size, channels, mean, std)


def small_net(channels: int = 1, classes: int = 4, bn: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(channels, 8, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(8))
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, classes)]
    return nn.Sequential(*layers)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------- augmentation


def _reference_crop_flip(x: np.ndarray, oy, ox, fl, pad: int) -> np.ndarray:
    out = np.empty_like(x)
    for b in range(len(x)):  # per-image reference
        p = np.pad(x[b], ((pad, pad), (pad, pad), (0, 0)))
        c = p[oy[b] : oy[b] + x.shape[1], ox[b] : ox[b] + x.shape[2]]
        out[b] = c[:, ::-1] if fl[b] else c
    return out


@pytest.mark.parametrize("pad, size, channels", [(4, 32, 3), (1, 8, 1), (0, 5, 3)])
def test_crop_flip_matches_per_image_reference(pad, size, channels):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (17, size, size, channels), generator=g, dtype=torch.uint8)
    oy, ox, fl = random_params(17, pad, True, generator=g, device=torch.device("cpu"))
    assert int(oy.min()) >= 0 and int(oy.max()) <= 2 * pad and fl.dtype == torch.bool
    out = crop_flip(x, oy, ox, fl, pad)
    ref = _reference_crop_flip(x.numpy(), oy.numpy(), ox.numpy(), fl.numpy(), pad)
    assert out.dtype == torch.uint8 and np.array_equal(out.numpy(), ref)
    # identity crop without flip returns the input
    ident = torch.full((17,), pad, dtype=torch.long)
    assert torch.equal(crop_flip(x, ident, ident, torch.zeros(17, dtype=torch.bool), pad), x)


def test_random_params_without_flip_and_offsets_cover_range():
    g = torch.Generator().manual_seed(1)
    oy, ox, fl = random_params(4000, 2, False, generator=g, device=torch.device("cpu"))
    assert not bool(fl.any())
    assert set(oy.tolist()) == {0, 1, 2, 3, 4} and set(ox.tolist()) == {0, 1, 2, 3, 4}


def test_normalize_matches_float64_and_layout():
    x = torch.randint(0, 256, (3, 4, 5, 3), dtype=torch.uint8)
    mean = np.array([0.4, 0.5, 0.6])
    std = np.array([0.2, 0.25, 0.3])
    scale = torch.tensor(1 / (255 * std), dtype=torch.float32).view(1, 3, 1, 1)
    shift = torch.tensor(-mean / std, dtype=torch.float32).view(1, 3, 1, 1)
    ref = (x.numpy().astype(np.float64) / 255 - mean) / std
    for cl in (False, True):
        y = normalize(x, scale, shift, channels_last=cl)
        assert y.shape == (3, 3, 4, 5) and y.dtype == torch.float32
        np.testing.assert_allclose(y.numpy(), ref.transpose(0, 3, 1, 2), rtol=0, atol=1e-5)
        assert y.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


# --------------------------------------------------------------------------- recipes


def test_paper_recipe_and_scaled_milestones():
    r = get_recipe("paper")
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.nesterov, r.weight_decay) == (200, 128, 0.01, 0.9, True, 1e-4)
    assert r.milestone_epochs() == [100, 150]
    r20 = get_recipe("paper", epochs=20, batch_size=64, lr=0.1)
    assert r20.milestone_epochs() == [10, 15] and r20.batch_size == 64 and r20.lr == 0.1
    f = ScheduleFactor(r20, steps_per_epoch=3)
    assert f(0) == 1.0 and f(29) == 1.0 and f(30) == pytest.approx(0.1) and f(44) == pytest.approx(0.1)
    assert f(45) == pytest.approx(0.01) and f(59) == pytest.approx(0.01)


def test_fast_recipe_one_cycle_shape():
    r = get_recipe("fast", epochs=4)
    assert r.schedule == "onecycle" and r.label_smoothing == 0.1 and r.nesterov and r.batch_size > 128
    f = ScheduleFactor(r, steps_per_epoch=25)  # 100 steps, 25 warm-up
    vals = [f(s) for s in range(100)]
    assert vals[0] == pytest.approx(r.start_factor)
    assert max(vals) == pytest.approx(1.0) and int(np.argmax(vals)) == 25
    assert all(a <= b for a, b in zip(vals[:26], vals[1:26]))
    assert all(a >= b for a, b in zip(vals[25:], vals[26:]))
    assert f(100) == pytest.approx(r.end_factor)


def test_recipe_errors_and_padding_rule():
    with pytest.raises(InputError, match="recipe"):
        get_recipe("slow")
    for kw in (dict(epochs=0), dict(batch_size=-1), dict(lr=float("nan")), dict(lr=0)):
        with pytest.raises(InputError):
            get_recipe("paper", **kw)
    assert crop_padding(32) == 4 and crop_padding(8) == 1 and crop_padding(64) == 8 and crop_padding(3) == 1


def test_estimate_training_hours():
    # 50,000 images x (11 x 200 + 5 x 100) epochs = 135 M images
    assert sum(m * e for m, e in PAPER_SEARCH_RUNS) == 2700
    assert estimate_training_hours(135e6 / 3600) == pytest.approx(1.0)
    assert estimate_training_hours(1000.0, eval_fraction=0.1) == pytest.approx(135e6 * 1.1 / 1000 / 3600)
    with pytest.raises(InputError):
        estimate_training_hours(0.0)


# --------------------------------------------------------------------------- training


def test_training_is_reproducible_and_seed_dependent():
    data = tiny_data()
    runs = []
    for seed in (5, 5, 6):
        m = small_net()
        train(m, data, epochs=2, batch_size=16, lr=0.05, seed=seed, progress=False, device="cpu")
        runs.append(_weights(m))
    _assert_same(runs[0], runs[1])
    assert not torch.equal(runs[0]["0.weight"], runs[2]["0.weight"])


def test_killed_training_resumes_exactly(tmp_path):
    data = tiny_data()
    kw = dict(epochs=3, batch_size=16, lr=0.05, seed=1, progress=False, device="cpu")
    full = small_net()
    r_full = train(full, data, **kw)

    def kill_after_first(epoch: int, stats: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")

    ck = tmp_path / "ck"
    with pytest.raises(KeyboardInterrupt):
        train(small_net(), data, checkpoint_dir=ck, callbacks=[kill_after_first], **kw)
    saved = load_checkpoint(ck / CHECKPOINT_NAME)
    assert saved["epoch"] == 1 and len(saved["history"]) == 1
    assert [p.name for p in ck.iterdir()] == [CHECKPOINT_NAME]  # no temp file left behind
    # weights_only loading of the raw file works, and it holds every piece of state
    raw = torch.load(ck / CHECKPOINT_NAME, weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "history", "config"} <= raw.keys()

    resumed = small_net(seed=123)  # different init: everything must come from the checkpoint
    r_res = train(resumed, data, checkpoint_dir=ck, **kw)
    assert r_res.resumed_from == 1 and r_res.epochs == 3
    _assert_same(_weights(full), _weights(resumed))
    assert [h["loss"] for h in r_res.history] == [h["loss"] for h in r_full.history]
    assert r_res.top1 == r_full.top1
    # a finished run resumes to the same result without training
    again = small_net(seed=7)
    r_again = train(again, data, checkpoint_dir=ck, **kw)
    assert r_again.resumed_from == 3
    _assert_same(_weights(full), _weights(again))


def test_checkpoint_of_another_run_or_corrupt_is_rejected(tmp_path):
    data = tiny_data()
    kw = dict(batch_size=16, lr=0.05, progress=False, device="cpu")
    train(small_net(), data, epochs=1, checkpoint_dir=tmp_path, **kw)
    with pytest.raises(InputError, match="different run"):
        train(small_net(), data, epochs=1, seed=9, checkpoint_dir=tmp_path, **kw)
    with pytest.raises(InputError, match="does not fit"):
        train(small_net(bn=False), data, epochs=1, checkpoint_dir=tmp_path, **kw)
    blob = (tmp_path / CHECKPOINT_NAME).read_bytes()
    (tmp_path / CHECKPOINT_NAME).write_bytes(blob[: len(blob) // 3])
    with pytest.raises(InputError, match="corrupt"):
        train(small_net(), data, epochs=1, checkpoint_dir=tmp_path, **kw)


def test_training_learns_digits_and_reports(caplog):
    data = load_dataset("digits", subset=600, val_split=0.2, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 16, 10),
    )
    with caplog.at_level(logging.INFO, logger="swnas.train"):
        r = train(model, data, epochs=6, batch_size=32, lr=0.05, progress=False, device="cpu")
    assert r.epochs == 6 and len(r.history) == 6 and r.world_size == 1 and r.device == "cpu"
    assert r.top1 > 0.85 and r.val_top1 is not None and r.val_top1 > 0.85  # chance is 0.1
    assert r.top5 >= r.top1 and r.history[-1]["loss"] < r.history[0]["loss"]
    assert r.images_per_second > 0 and r.seconds > 0
    assert r.history[-1]["lr"] == pytest.approx(0.0005)  # two milestones at 3 and 4.5 -> 5
    assert sum("epoch 6/6" in m for m in caplog.messages) == 1
    again = evaluate(model, data.x_test, data.y_test, mean=data.mean, std=data.std, batch_size=50)
    assert again["top1"] == pytest.approx(r.top1) and again["loss"] == pytest.approx(r.loss, rel=1e-5)


def test_fast_recipe_and_bf16_autocast_run_on_cpu():
    data = tiny_data(n=96)
    m = small_net()
    r = train(m, data, recipe="fast", epochs=2, batch_size=32, progress=False, device="cpu", amp="bf16")
    assert r.recipe["schedule"] == "onecycle" and np.isfinite(r.loss)
    assert all(p.dtype == torch.float32 for p in m.parameters())


def test_small_dataset_shrinks_batch():
    data = tiny_data(n=12)
    r = train(small_net(), data, epochs=1, progress=False, device="cpu")  # batch 128 > 12 images
    assert r.images_per_second > 0 and r.history[0]["epoch"] == 1


# --------------------------------------------------------------------------- evaluate / predict


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_evaluate_and_predict_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 3, 3, 2), dtype=np.uint8)
    y = rng.integers(0, 7, 40)
    w = torch.tensor(rng.normal(size=(7, 18)), dtype=torch.float32)
    model = _Linear(w).train()
    mean, std = (0.5, 0.4), (0.25, 0.3)
    logits = predict_logits(model, x, mean=mean, std=std, batch_size=16)
    xn = (x.astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    ref = xn.transpose(0, 3, 1, 2).reshape(40, -1) @ w.double().numpy().T
    assert logits.shape == (40, 7) and logits.dtype == torch.float32
    np.testing.assert_allclose(logits.numpy(), ref, rtol=0, atol=1e-4)
    assert model.training  # mode restored
    res = evaluate(model, x, y, mean=mean, std=std, batch_size=16)
    order = np.argsort(-ref, axis=1)
    assert res["top1"] == pytest.approx(np.mean(order[:, 0] == y))
    assert res["top5"] == pytest.approx(np.mean((order[:, :5] == y[:, None]).any(1)))
    lse = np.log(np.exp(ref - ref.max(1, keepdims=True)).sum(1)) + ref.max(1)
    assert res["loss"] == pytest.approx(np.mean(lse - ref[np.arange(40), y]), abs=1e-4)
    # float NCHW input is used as given
    xf = torch.tensor(xn.transpose(0, 3, 1, 2), dtype=torch.float32)
    np.testing.assert_allclose(predict_logits(model, xf).numpy(), ref, rtol=0, atol=1e-4)


def test_evaluate_bad_input():
    model = _Linear(torch.zeros(3, 4))
    x = np.zeros((5, 2, 2, 1), np.uint8)
    with pytest.raises(InputError, match="mean and std"):
        evaluate(model, x, np.zeros(5, int))
    with pytest.raises(InputError, match="must match"):
        evaluate(model, x, np.zeros(4, int), mean=(0.5,), std=(0.5,))
    with pytest.raises(InputError, match="0..2"):
        evaluate(model, x, np.full(5, 3), mean=(0.5,), std=(0.5,))
    with pytest.raises(InputError, match="4-D"):
        evaluate(model, np.zeros((5, 4), np.uint8), np.zeros(5, int), mean=(0.5,), std=(0.5,))
    with pytest.raises(InputError, match="dtype"):
        evaluate(model, np.zeros((5, 2, 2, 1), np.int32), np.zeros(5, int), mean=(0.5,), std=(0.5,))
    with pytest.raises(InputError, match="channels"):
        evaluate(model, x, np.zeros(5, int), mean=(0.5, 0.5), std=(0.5, 0.5))


def test_train_bad_input():
    data = tiny_data()
    with pytest.raises(InputError, match="Dataset"):
        train(small_net(), {"x": 1}, progress=False)
    with pytest.raises(InputError, match="fp16"):
        train(small_net(), data, amp="fp16", device="cpu", progress=False)
    with pytest.raises(InputError, match="amp"):
        train(small_net(), data, amp="int8", device="cpu", progress=False)
    with pytest.raises(InputError, match="seed"):
        train(small_net(), data, seed=-1, device="cpu", progress=False)
    with pytest.raises(InputError, match="model"):
        train("resnet", data, device="cpu", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            train(small_net(), data, device="cuda", progress=False)


# --------------------------------------------------------------------------- GPU (skipped without one)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_augmentation_matches_cpu_reference_and_training_runs(tmp_path):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randint(0, 256, (33, 32, 32, 3), dtype=torch.uint8, device="cuda")
    oy, ox, fl = random_params(33, 4, True, generator=g, device=torch.device("cuda"))
    out = crop_flip(x, oy, ox, fl, 4)
    ref = _reference_crop_flip(x.cpu().numpy(), oy.cpu().numpy(), ox.cpu().numpy(), fl.cpu().numpy(), 4)
    assert out.is_cuda and np.array_equal(out.cpu().numpy(), ref)
    data = tiny_data(n=96, size=16, channels=3)
    model = small_net(channels=3)
    r = train(model, data, epochs=2, batch_size=32, lr=0.05, device="cuda", progress=False, checkpoint_dir=tmp_path)
    assert r.device.startswith("cuda") and np.isfinite(r.loss) and r.epochs == 2
    assert next(model.parameters()).is_cuda
    ck = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert ck["epoch"] == 2 and "cuda" in ck["rng"]
    cpu_logits = predict_logits(model.cpu(), data.x_test, mean=data.mean, std=data.std)
    gpu_logits = predict_logits(model.cuda(), data.x_test, mean=data.mean, std=data.std, amp="none")
    torch.testing.assert_close(gpu_logits, cpu_logits, rtol=1e-2, atol=1e-2)  # cuDNN may use TF32


def test_a_plugged_in_batch_source_sees_the_plan_and_trains_identically():
    """``batches=`` replaces where batches come from; a source following the plan gives the same run."""
    from swnas.data.batches import EpochPlan, InMemoryBatches

    data = tiny_data(n=96)
    seen = []

    class Recording(InMemoryBatches):
        def epoch(self, epoch):
            for xb, yb in super().epoch(epoch):
                seen.append((epoch, tuple(xb.shape)))
                yield xb, yb

    def factory(plan, device):
        assert isinstance(plan, EpochPlan) and plan.global_batch == 32 and plan.steps == 3
        return Recording(data.x_train, data.y_train, data.mean, data.std, plan, device)

    kw = dict(epochs=2, batch_size=32, lr=0.05, progress=False, device="cpu", seed=4)
    torch.manual_seed(0)
    a = small_net()
    ra = train(a, data, **kw)
    torch.manual_seed(0)
    b = small_net()
    rb = train(b, data, batches=factory, **kw)
    assert [e for e, _ in seen] == [0, 0, 0, 1, 1, 1] and seen[0][1][0] == 32
    assert [h["loss"] for h in ra.history] == [h["loss"] for h in rb.history]
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_epoch_plan_draws_the_same_global_batches_on_every_rank():
    from swnas.data.batches import EpochPlan

    plans = [EpochPlan.make(n=50, batch_size=16, world_size=2, rank=r, pad=1, flip=True, seed=3) for r in (0, 1)]
    assert plans[0].steps == 3 and plans[0].per_rank == 8 and plans[0].images_per_epoch == 48
    draws = [p.draw(1, torch.device("cpu")) for p in plans]
    whole = torch.cat([draws[0][0], draws[1][0]], dim=1).flatten()
    assert whole.unique().numel() == 48  # the two shards split one permutation
    assert not torch.equal(plans[0].draw(2, torch.device("cpu"))[0], draws[0][0])  # epochs differ
    with pytest.raises(InputError, match="divisible by the world size"):
        EpochPlan.make(n=50, batch_size=15, world_size=2, rank=0, pad=1, flip=True, seed=0)
