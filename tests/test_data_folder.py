"""Image folders streamed from disk (swnas.data.folder): indexing without decoding, transforms,
determinism, workers, layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swnas.data.decode import TRAIN_DRAWS, DiskBatches, PathTable, _crop_box, decode_eval, decode_train
from swnas.data.folder import FolderDataset, open_imagefolder
from swnas.errors import InputError

CLASSES = ("ant", "bee", "cat")


def _write(path: Path, rgb: tuple[int, int, int], size: tuple[int, int], fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:] = rgb
    arr[:, : w // 2, 0] = 255  # left half differs: flips are visible
    Image.fromarray(arr).save(path, format=fmt, quality=95)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    for ci, c in enumerate(CLASSES):
        for k in range(6):
            _write(root / "train" / c / f"{k}.jpg", (40 * ci, 80, 120), (48 + 8 * k, 40 + 4 * ci))
        for k in range(2):
            _write(root / "val" / c / f"{k}.png", (40 * ci, 80, 120), (40, 40), fmt="PNG")
    return root


def test_path_table_round_trip():
    paths = ["/a/b.jpg", "/c/ümlaut.jpg", "", "/x" * 50]
    t = PathTable(paths)
    assert [t[i] for i in range(len(t))] == paths
    assert [t.take(np.array([3, 0]))[i] for i in range(2)] == [paths[3], paths[0]]


def test_open_indexes_without_decoding(folder, monkeypatch):
    import swnas.data.folder as dd

    calls = []
    real = dd.decode_eval
    monkeypatch.setattr(dd, "decode_eval", lambda *a, **k: calls.append(a) or real(*a, **k))
    ds = open_imagefolder(folder, input_size=16, stats_sample=4)
    assert len(calls) == 4  # only the channel-statistics sample is decoded
    assert (len(ds.train), len(ds.test), ds.num_classes, ds.classes) == (18, 6, 3, list(CLASSES))
    assert ds.y_train.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert all(0 < m < 1 for m in ds.mean) and all(s > 0 for s in ds.std)


def test_val_split_and_subset(folder):
    ds = open_imagefolder(folder, input_size=16, subset=12, val_split=0.25, stats_sample=2)
    assert len(ds.train) + len(ds.val) == 12
    assert sorted(np.bincount(ds.y_train).tolist() + np.bincount(ds.y_val).tolist()) == [1, 1, 1, 3, 3, 3]
    train_files = {ds.train.paths[i] for i in range(len(ds.train))}
    assert not train_files & {ds.val.paths[i] for i in range(len(ds.val))}


def test_tiny_imagenet_val_layout(tmp_path):
    for c in ("n01", "n02"):
        for k in range(2):
            _write(tmp_path / "train" / c / "images" / f"{c}_{k}.jpg", (9, 9, 9), (20, 20))
    for k in range(3):
        _write(tmp_path / "val" / "images" / f"val_{k}.jpg", (9, 9, 9), (20, 20))
    (tmp_path / "val" / "val_annotations.txt").write_text(
        "val_0.jpg\tn02\t0\t0\t1\t1\nval_1.jpg\tn01\t0\t0\t1\t1\nval_2.jpg\tn02\t0\t0\t1\t1\n"
    )
    ds = open_imagefolder(tmp_path, input_size=8, stats_sample=1)
    assert ds.y_test.tolist() == [1, 0, 1] and len(ds.train) == 4
    x, y = next(iter(DiskBatches(ds.test, input_size=8, batch_size=8, train=False, workers=0)))
    assert x.shape == (3, 8, 8, 3) and y.tolist() == [1, 0, 1]


def test_bad_inputs_name_the_argument(tmp_path, folder):
    with pytest.raises(InputError, match="not a directory"):
        open_imagefolder(tmp_path / "missing")
    with pytest.raises(InputError, match="train/ and val/"):
        open_imagefolder(tmp_path)
    with pytest.raises(InputError, match="input_size"):
        open_imagefolder(folder, input_size=2)
    with pytest.raises(InputError, match="workers"):
        DiskBatches(open_imagefolder(folder, input_size=8, stats_sample=1).train, input_size=8, workers=-1)
    bad = tmp_path / "bad"
    _write(bad / "train" / "a" / "0.jpg", (1, 2, 3), (10, 10))
    (bad / "train" / "b").mkdir(parents=True)
    (bad / "train" / "b" / "0.jpg").write_bytes(b"not a jpeg")
    _write(bad / "val" / "a" / "0.jpg", (1, 2, 3), (10, 10))
    _write(bad / "val" / "b" / "0.jpg", (1, 2, 3), (10, 10))
    with pytest.raises(InputError, match="cannot read image .*b/0.jpg"):
        open_imagefolder(bad, input_size=8, stats_sample=2)


def test_eval_view_is_resize_then_centre_crop(tmp_path):
    # 64x32 image: left 32 columns red channel 255; eval at 16 px: short side -> 18, crop 16 of 36 wide
    p = tmp_path / "x.png"
    _write(p, (0, 0, 0), (64, 32), fmt="PNG")
    out = decode_eval(str(p), 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    # the centre crop straddles the red/black edge in the middle: left half red, right half black
    assert out[:, :7, 0].min() > 200 and out[:, 9:, 0].max() < 60


def test_train_view_flip_and_crop_statistics(tmp_path):
    p = tmp_path / "x.png"
    _write(p, (0, 0, 0), (40, 40), fmt="PNG")
    u = np.full(TRAIN_DRAWS, 0.99)  # area 99 %, widest ratio tried first -> fits after some tries
    plain = decode_train(str(p), 20, u)
    u[-1] = 0.0
    flipped = decode_train(str(p), 20, u)
    assert np.array_equal(flipped, plain[:, ::-1])
    rng = np.random.default_rng(0)
    boxes = np.array([_crop_box(200, 100, rng.random(TRAIN_DRAWS)) for _ in range(2000)])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 100).all()
    frac = w * h / 20000
    assert frac.min() >= 0.075 and frac.max() <= 1.0
    assert (w / h).min() >= 0.74 and (w / h).max() <= 1.35
    # the same distribution as torchvision's RandomResizedCrop (which draws from torch's RNG)
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    ref = np.array(
        [RandomResizedCrop.get_params(torch.empty(1, 100, 200), (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(2000)]
    )  # (top, left, height, width)
    ref_frac = ref[:, 2] * ref[:, 3] / 20000
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(frac, q) - np.quantile(ref_frac, q)) < 0.03
    assert abs(np.mean(w / h) - np.mean(ref[:, 3] / ref[:, 2])) < 0.03


def test_jpeg_reduced_decoding_matches_full(tmp_path):
    # a 512 px JPEG evaluated at 32 px is decoded at 1/8 scale; the result stays close to a full decode
    rng = np.random.default_rng(0)
    big = np.kron(rng.integers(0, 255, (8, 8, 3)), np.ones((64, 64, 1))).astype(np.uint8)
    p = tmp_path / "big.jpg"
    Image.fromarray(big).save(p, quality=95)
    fast = decode_eval(str(p), 32).astype(float)
    with Image.open(p) as im:
        side = 512 * 32 / round(32 * 256 / 224)
        o = (512 - side) / 2
        full = np.asarray(im.convert("RGB").resize((32, 32), Image.BILINEAR, box=(o, o, o + side, o + side)))
    assert np.abs(fast - full).mean() < 6.0


def test_batches_same_for_any_worker_count_and_epoch_dependent(folder):
    ds = open_imagefolder(folder, input_size=16, stats_sample=2)
    kw = dict(input_size=16, batch_size=6, seed=3)
    b0 = list(DiskBatches(ds.train, workers=0, **kw).epoch(1))
    b2 = list(DiskBatches(ds.train, workers=2, **kw).epoch(1))
    assert len(b0) == 3 and all(x.shape == (6, 16, 16, 3) and x.dtype == torch.uint8 for x, _ in b0)
    for (xa, ya), (xb, yb) in zip(b0, b2):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = list(DiskBatches(ds.train, workers=0, **kw).epoch(2))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(b0, other))
    resumed = list(DiskBatches(ds.train, workers=0, **kw).epoch(1, start_step=2))
    assert torch.equal(resumed[0][0], b0[2][0])
    seen = torch.cat([y for _, y in b0])
    assert sorted(seen.tolist()) == sorted(ds.y_train.tolist())  # 18 = 3 x 6: every image once


def test_copies_per_epoch_show_each_image_that_often_with_its_own_augmentation(folder):
    ds = open_imagefolder(folder, input_size=16, stats_sample=2)
    kw = dict(input_size=16, batch_size=6, seed=3, workers=0)
    one = DiskBatches(ds.train, **kw)
    assert [j[0].tolist() for j in DiskBatches(ds.train, copies=1, **kw).jobs(1)] == [
        j[0].tolist() for j in one.jobs(1)
    ]
    three = DiskBatches(ds.train, copies=3, **kw)
    jobs = three.jobs(1)
    assert three.steps == len(jobs) == 3 * one.steps  # 54 positions in batches of 6
    idx = np.concatenate([i for i, _ in jobs])
    np.testing.assert_array_equal(np.bincount(idx, minlength=len(ds.train)), np.full(len(ds.train), 3))
    # the three copies of an image are drawn with different augmentation numbers
    draws = np.concatenate([u for _, u in jobs])
    first = draws[idx == 0]
    assert len(first) == 3 and len({tuple(u) for u in first}) == 3
    with pytest.raises(InputError, match="copies"):
        DiskBatches(ds.train, copies=0, **kw)


def test_ranks_split_the_global_batch(folder):
    ds = open_imagefolder(folder, input_size=8, stats_sample=1)
    kw = dict(input_size=8, batch_size=6, seed=1, workers=0)
    whole = list(DiskBatches(ds.train, **kw).epoch(0))
    parts = [list(DiskBatches(ds.train, rank=r, world_size=2, **kw).epoch(0)) for r in (0, 1)]
    for s, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][s][0], parts[1][s][0]]), x)
        assert torch.equal(torch.cat([parts[0][s][1], parts[1][s][1]]), y)
    with pytest.raises(InputError, match="divisible by the world size"):
        DiskBatches(ds.train, input_size=8, batch_size=5, world_size=2)


def test_eval_batches_cover_the_split_in_order(folder):
    ds = open_imagefolder(folder, input_size=12, in_channels=1, stats_sample=2)
    got = list(DiskBatches(ds.test, input_size=12, in_channels=1, batch_size=4, train=False, workers=0))
    assert [len(y) for _, y in got] == [4, 2]
    assert torch.cat([y for _, y in got]).tolist() == ds.y_test.tolist()
    assert got[0][0].shape == (4, 12, 12, 1) and len(ds.mean) == 1


# ------------------------------------------------------------------------------ wired into swnas


def _tiny_model(ds):
    from swnas import models as M

    torch.manual_seed(0)
    return M.build(
        M.ArchSpec(
            module="basic",
            stages=[1, 1, 1],
            num_classes=ds.num_classes,
            input_size=ds.input_size,
            in_channels=ds.in_channels,
        )
    )


def test_load_dataset_streams_large_folders(folder, monkeypatch):
    import swnas.data.folder as dd
    from swnas.data import Dataset, load_dataset

    small = load_dataset("imagefolder", folder, input_size=16)  # auto: 24 x 16 x 16 x 3 bytes fit in memory
    assert isinstance(small, Dataset) and small.x_train.shape == (18, 16, 16, 3)
    monkeypatch.setattr(dd, "STREAM_ABOVE_BYTES", 1000)
    big = load_dataset("imagefolder", folder, input_size=16, workers=0)
    assert isinstance(big, FolderDataset) and big.workers == 0 and len(big.train) == 18
    assert isinstance(load_dataset("imagefolder", folder, input_size=16, stream=True, workers=0), FolderDataset)
    with pytest.raises(InputError, match="stream"):
        load_dataset("imagefolder", folder, input_size=16, stream="sometimes")


@pytest.mark.slow
def test_train_and_evaluate_from_disk_resume_equal(folder, tmp_path):
    from swnas.training.trainer import train

    ds = open_imagefolder(folder, input_size=16, workers=0, stats_sample=4)
    kw = dict(epochs=2, batch_size=6, lr=0.05, device="cpu", seed=1, progress=False)
    ref_model = _tiny_model(ds)
    ref = train(ref_model, ds, **kw)
    assert ref.epochs == 2 and 0.0 <= ref.top1 <= 1.0 and np.isfinite(ref.loss)
    assert ref.history[0]["images_per_second"] > 0
    # stop after epoch 1 (the callback raises), then resume from the epoch checkpoint
    ck = tmp_path / "ck"

    def stop(epoch, stats):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_tiny_model(ds), ds, checkpoint_dir=ck, callbacks=[stop], **kw)
    model = _tiny_model(ds)
    got = train(model, ds, checkpoint_dir=ck, **kw)
    assert got.resumed_from == 1
    assert [h["loss"] for h in got.history] == [h["loss"] for h in ref.history]
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_stage_scores_from_disk_match_in_memory(folder):
    from swnas.features import stage_scores, stage_scores_of

    ds = open_imagefolder(folder, input_size=16, workers=0, stats_sample=4)
    model = _tiny_model(ds)
    x = np.stack([decode_eval(ds.train.paths[i], 16) for i in range(len(ds.train))])
    want = stage_scores(model, x, ds.y_train, criterion="pls", mean=ds.mean, std=ds.std, n_components=2)
    for crit, params in (("pls", {"n_components": 2}), ("inffs", {})):
        got = stage_scores_of(model, ds, crit, batch_size=5, **params)
        ref = want if crit == "pls" else stage_scores(model, x, ds.y_train, criterion=crit, mean=ds.mean, std=ds.std)
        assert len(got) == 3
        for g, w in zip(got, ref):
            assert g.stage == pytest.approx(w.stage, rel=1e-4, abs=1e-6)


def test_ensemble_of_a_streamed_folder_matches_decoded_arrays(folder):
    from swnas.reporting.ensemble import evaluate_ensemble, evaluate_ensemble_on

    ds = open_imagefolder(folder, input_size=16, workers=0, stats_sample=4)
    models = [_tiny_model(ds) for _ in range(2)]
    torch.manual_seed(5)
    models[1] = __import__("swnas.models", fromlist=["build"]).build(models[0].spec)  # other weights
    xt = np.stack([decode_eval(ds.test.paths[i], 16) for i in range(len(ds.test))])
    want = evaluate_ensemble(models, xt, ds.y_test, mean=ds.mean, std=ds.std, device="cpu")
    got = evaluate_ensemble_on(models, ds, "test", batch_size=4, device="cpu")  # the folder's own statistics
    assert got.n_test == len(ds.test) == 6
    assert got.member_top1 == want.member_top1 and got.top1 == want.top1 and got.top5 == want.top5


@pytest.mark.slow
def test_search_and_ensemble_over_a_streamed_folder(folder, tmp_path, monkeypatch):
    """The real toolkit over a streamed image folder: training, stage scores, metrics and the ensemble
    from disk, the ensemble on the image size the search trained at."""
    import swnas.data.folder as dd
    from swnas.search import SearchConfig, load_state, run_search

    monkeypatch.setattr(dd, "STREAM_ABOVE_BYTES", 1000)
    cfg = SearchConfig(
        dataset="imagefolder",
        data=str(folder),
        input_size=16,
        workers=0,
        iterations=1,
        stages=3,
        m0=1,
        delta=1,
        epochs=1,
        batch_size=6,
        lr=0.05,
        device="cpu",
    )
    run_search(cfg, tmp_path / "out", echo=None)
    state = load_state(tmp_path / "out")
    assert len(state["networks"]) == 3 and state["config"]["input_size"] == 16
    assert all(np.isfinite(s) for n in state["networks"][:2] for s in n["scores"])
    assert all(0.0 <= n["metrics"]["top1"] <= 1.0 and len(n["history"]) == 1 for n in state["networks"])
    import swnas.reporting.ensemble as E

    sizes = []
    real = E.evaluate_ensemble_on
    monkeypatch.setattr(
        E,
        "evaluate_ensemble_on",
        lambda models, data, *a, **k: (
            sizes.append((type(data).__name__, data.input_size)) or real(models, data, *a, **k)
        ),
    )
    res = E.ensemble_search(tmp_path / "out", device="cpu")
    assert sizes == [("FolderDataset", 16)]  # reopened streamed, at the search's image size
    cand = [state["networks"][i] for i in state["candidates"]]
    assert res.members == state["candidates"] and res.n_test == 6
    # the members' test accuracy is the one recorded after their final epochs: same split, size and normalisation
    assert res.member_top1 == [n["final"]["top1"] for n in cand]
    assert (tmp_path / "out" / "ensemble.json").is_file()
