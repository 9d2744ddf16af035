"""The ``original`` recipe's per-pixel mean subtraction: in training batches, evaluation and stage
scoring; the channel-normalised recipes unchanged (their batches pinned to the per-channel formula)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import swnas.training.trainer
from swnas.data.augment import crop_flip_normalize
from swnas.data import input_normalization, load_dataset, mean_image
from swnas.errors import InputError
from swnas.data.batches import InMemoryBatches, norm_tensors
from swnas.models import ArchSpec, build


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", subset=96, val_split=0.25, seed=1)


def _reference_batch(x: np.ndarray, oy, ox, fl, pad: int, mean, std) -> np.ndarray:
    """Per image, float64: normalise, pad with zeros, crop, mirror (the released code's order for a
    per-pixel mean); per channel: crop the uint8 image first (padding = 0 before normalising)."""
    per_pixel = np.asarray(mean).ndim == 3
    out = []
    for b in range(len(x)):
        img = x[b].astype(np.float64)
        if per_pixel:
            p = np.pad(img / 255.0 - mean, ((pad, pad), (pad, pad), (0, 0)))
        else:
            p = (np.pad(img, ((pad, pad), (pad, pad), (0, 0))) / 255.0 - np.asarray(mean)) / np.asarray(std)
        c = p[oy[b] : oy[b] + x.shape[1], ox[b] : ox[b] + x.shape[2]]
        out.append((c[:, ::-1] if fl[b] else c).transpose(2, 0, 1))
    return np.stack(out)


def test_mean_image_is_the_training_split_mean(digits):
    m = mean_image(digits.x_train)
    assert m.shape == digits.x_train.shape[1:] and m.dtype == np.float32
    np.testing.assert_allclose(m, digits.x_train.astype(np.float64).mean(0) / 255.0, rtol=0, atol=1e-7)
    assert digits.train_mean_image is digits.train_mean_image  # computed once
    mean, std = input_normalization(digits, "pixel_mean")
    assert mean is digits.train_mean_image and std == (1.0,)
    # the validation images are not part of it
    full = load_dataset("digits", subset=96, seed=1)
    assert not np.allclose(full.train_mean_image, m, atol=1e-4)
    # the channel recipes get the per-channel statistics, as before
    assert input_normalization(digits, "channel") == (digits.mean, digits.std)
    with pytest.raises(InputError, match="normalize"):
        input_normalization(digits, "zca")


@pytest.mark.parametrize("normalize", ["channel", "pixel_mean"])
def test_training_batches_match_the_reference(digits, normalize):
    mean, std = input_normalization(digits, normalize)
    g = torch.Generator().manual_seed(3)
    x = torch.from_numpy(digits.x_train[:20])
    from swnas.data.augment import random_params

    oy, ox, fl = random_params(20, 2, True, generator=g, device=torch.device("cpu"))
    scale, shift = norm_tensors(mean, std, torch.device("cpu"))
    got = crop_flip_normalize(x, oy, ox, fl, 2, scale, shift)
    ref = _reference_batch(x.numpy(), oy.numpy(), ox.numpy(), fl.numpy(), 2, mean, std)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-5)
    if normalize == "pixel_mean":  # the padding is 0 (the mean), not minus the mean image
        border = got[oy == 0][:, :, 0, :]
        assert border.numel() and float(border.abs().max()) == 0.0


def _record_batches(monkeypatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []

    class Recording(InMemoryBatches):
        def epoch(self, epoch):
            for xb, yb in super().epoch(epoch):
                seen.append(xb.clone())
                yield xb, yb

    monkeypatch.setattr("swnas.data.arrays.InMemoryBatches", Recording)
    return seen


def _net():
    torch.manual_seed(0)
    return build(ArchSpec(stages=[1, 1, 1], num_classes=10, input_size=8, in_channels=1))


@pytest.mark.slow
def test_original_recipe_trains_on_zero_mean_pixels(digits, monkeypatch):
    seen = _record_batches(monkeypatch)
    evaluated = []
    real_eval = swnas.training.trainer.evaluate_split

    def spy(model, data, which, **kw):
        evaluated.append((which, kw["mean"]))
        return real_eval(model, data, which, **kw)

    monkeypatch.setattr(swnas.training.trainer, "evaluate_split", spy)
    n = len(digits.y_train)  # batches of n cover each image 3 times per epoch (3 copies)
    swnas.training.trainer.train(
        _net(), digits, recipe="original", epochs=1, batch_size=n, pad=0, device="cpu", progress=False
    )
    xs = torch.cat(seen)
    assert xs.shape[0] == 3 * n
    # every pixel's mean over the training images is 0: the training mean image was subtracted
    assert float(xs.mean(0).abs().max()) < 1e-5
    assert float(xs.std()) < 0.5  # and nothing was divided by a std (digits' pixel std is ~0.36)
    # validation (each epoch) and test were normalised with the same image
    assert {w for w, _ in evaluated} == {"val", "test"}
    assert all(np.array_equal(m, digits.train_mean_image) for _, m in evaluated)


def test_paper_recipe_batches_are_channel_normalised_as_before(digits, monkeypatch):
    seen = _record_batches(monkeypatch)
    swnas.training.trainer.train(
        _net(), digits, recipe="paper", epochs=1, batch_size=len(digits.y_train), pad=0, device="cpu", progress=False
    )
    xs = torch.cat(seen).double()
    assert xs.shape[0] == len(digits.y_train)
    x = torch.from_numpy(digits.x_train).double().permute(0, 3, 1, 2) / 255.0
    ref = (x - digits.mean[0]) / digits.std[0]
    # the same multiset of images: compare sorted per-image sums and the channel moments
    torch.testing.assert_close(xs.sum((1, 2, 3)).sort().values, ref.sum((1, 2, 3)).sort().values, rtol=0, atol=1e-3)
    assert float(xs.mean()) == pytest.approx(0.0, abs=1e-5) and float(xs.std(unbiased=False)) == pytest.approx(
        1.0, abs=1e-4
    )
    assert float(xs.mean(0).abs().max()) > 0.5  # per pixel it is not centred


def test_stage_scores_use_the_recipes_normalisation(digits, monkeypatch):
    from swnas.search import SearchConfig
    from swnas.search.toolkit import stage_scores_for

    got = {}

    def fake_scores(model, data, *a, **kw):
        got.update(kw)
        return []

    monkeypatch.setattr("swnas.features.stage_scores_of", fake_scores)
    for recipe, expect in (("original", digits.train_mean_image), ("paper", np.asarray(digits.mean))):
        cfg = SearchConfig(dataset="digits", recipe=recipe, device="cpu").resolved()
        stage_scores_for(_net(), digits, cfg)
        np.testing.assert_array_equal(np.asarray(got["mean"]), expect)


def test_stage_features_subtract_the_mean_image(digits):
    from swnas.features import stage_features

    net = _net()
    m = digits.train_mean_image
    x = digits.x_train[:16]
    a = stage_features(net, x, "gap", mean=m, std=(1.0,))
    pre = torch.from_numpy(x.astype(np.float32) / 255.0 - m).permute(0, 3, 1, 2).contiguous()
    b = stage_features(net, pre, "gap")
    for fa, fb in zip(a, b):
        np.testing.assert_allclose(fa, fb, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="per-pixel mean image"):
        stage_features(net, x, "gap", mean=m[:4], std=(1.0,))


def test_evaluate_rejects_a_mean_image_of_another_size(digits):
    with pytest.raises(InputError, match="per-pixel mean image"):
        swnas.training.trainer.evaluate(_net(), digits.x_test, digits.y_test, mean=np.zeros((4, 4, 1)), std=(1.0,))


def _folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, k in (("train", 5), ("val", 2)):
        for c in ("a", "b"):
            for i in range(k):
                (root / split / c).mkdir(parents=True, exist_ok=True)
                arr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.png")
    return root


def test_streamed_folder_mean_image_and_evaluation(tmp_path, monkeypatch):
    from swnas.data.decode import decode_eval
    from swnas.data.folder import open_imagefolder

    ds = open_imagefolder(_folder(tmp_path / "imgs"), input_size=8, workers=0, stats_sample=4)
    x = np.stack([decode_eval(p, 8) for p in ds.train.paths])
    img = ds.pixel_mean(sample=len(x))  # every training image: the exact mean image
    np.testing.assert_allclose(img, x.astype(np.float64).mean(0) / 255.0, rtol=0, atol=1e-6)
    mean, std = input_normalization(ds, "pixel_mean")
    assert mean.shape == (8, 8, 3) and std == (1.0, 1.0, 1.0)
    net = build(ArchSpec(stages=[1, 1, 1], num_classes=2, input_size=8, in_channels=3))
    xt = np.stack([decode_eval(p, 8) for p in ds.test.paths])
    want = swnas.training.trainer.evaluate(net, xt, ds.y_test, mean=img, std=std)
    got = swnas.training.trainer.evaluate_split(net, ds, "test", mean=img, std=std, batch_size=3)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    # the trainer evaluates a streamed folder with the recipe's normalisation too
    seen = []
    real = swnas.training.trainer.evaluate_split

    def spy(model, data, which, **kw):
        seen.append(kw["mean"])
        return real(model, data, which, **kw)

    monkeypatch.setattr("swnas.training.trainer.evaluate_split", spy)
    from dataclasses import replace

    from swnas.training.recipes import get_recipe

    one_copy = replace(get_recipe("original"), copies_per_epoch=1)
    swnas.training.trainer.train(net, ds, recipe=one_copy, epochs=1, batch_size=5, device="cpu", progress=False)
    assert len(seen) == 1 and seen[0] is ds.pixel_mean()
    # the recipe's three augmented copies per epoch, streamed: each training image comes 3 times
    from swnas.data.decode import DiskBatches

    labels = []
    real_epoch = DiskBatches.epoch

    def count(self, epoch=0, start_step=0):
        for xb, yb in real_epoch(self, epoch, start_step):
            if self.train:
                labels.append(yb)
            yield xb, yb

    monkeypatch.setattr(DiskBatches, "epoch", count)
    swnas.training.trainer.train(net, ds, recipe="original", epochs=1, batch_size=5, device="cpu", progress=False)
    assert torch.cat(labels).numel() == 3 * len(ds.train)
    assert sorted(torch.cat(labels).tolist()) == sorted(3 * ds.y_train.tolist())
