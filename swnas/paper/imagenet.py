"""``swnas paper imagenet``: the paper's ImageNet (224 x 224) search, top-5 beside its 90.23%.

ICPR 2020, Section IV searches ImageNet with bottleneck residual modules (S = 4), delta = 2 and
weight transfer, and reports the final architecture's top-5 (90.23%). Here the donor is
torchvision's ImageNet-pretrained ResNet-50 (``--transfer torchvision:resnet50``, read from the
torch cache, never downloaded; :mod:`swnas.training.torchvision_donor`). Every torchvision ResNet (50, 101, 152) has 3
blocks in its first and last stage, and a candidate cannot be deeper than its donor, so
``m0 + delta <= 3``: with delta = 2 the search starts at m0 = 1 and runs one iteration (T_1 has 3
blocks per stage; a second T would need 5 wherever stage 1 or 4 grew). ResNet-50 is the donor:
the deeper ones do not lift the limit and cost more. The data is ``--data DIR``, an image folder
(``DIR/train/<class>/*``, ``DIR/val/<class>/*``) read at 224 px and streamed from disk
(:mod:`swnas.data.folder`).

``--smoke`` needs no data and no donor weights: it writes a tiny synthetic image folder
(``DIR/smoke-imagefolder``: 8 classes of 32 x 32 images, so that top-5 is not trivially 100%),
trains a small uniform bottleneck network on it as the donor (``DIR/baselines/donor-bottleneck``,
the role ResNet-50 plays) and runs the same search at 32 px, so that the whole path (folder,
bottleneck modules, weight transfer, top-5) is tested in seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.paper.runs import (
    PaperSettings,
    candidate_rows,
    ensure_search,
    ensure_training,
    match_best,
    pct,
    training_row,
)

__all__ = [
    "IMAGENET_DATASET",
    "IMAGENET_SEARCH",
    "SMOKE_FOLDER",
    "SMOKE_IMAGENET",
    "check_imagenet",
    "imagenet",
    "scale_options",
    "write_smoke_folder",
]

#: The loader the ImageNet table reads ``--data`` with.
IMAGENET_DATASET = "imagefolder"
#: The paper-scale search: bottleneck modules, 4 stages, delta 2, weight transfer from ResNet-50 at
#: 224 px; m0 1 and one iteration so that every network fits the donor (see the module's text).
IMAGENET_SEARCH: dict[str, Any] = {
    "module": "bottleneck",
    "stages": 4,
    "m0": 1,
    "delta": 2,
    "iterations": 1,
    "input_size": 224,
    "transfer": "torchvision:resnet50",
    "criterion": "pls",
}
#: The smoke scale: the same search at 32 px from a tiny donor trained here.
SMOKE_IMAGENET: dict[str, Any] = {
    "module": "bottleneck",
    "stages": 4,
    "m0": 1,
    "delta": 2,
    "iterations": 1,
    "input_size": 32,
    "criterion": "pls",
}
#: The smoke donor: a uniform bottleneck network of 3 blocks per stage, narrow.
SMOKE_DONOR_STAGES = [3, 3, 3, 3]
SMOKE_DONOR_WIDTHS = [4, 8, 16, 32]
#: Where the smoke run writes its synthetic folder (under --out) and its shape.
SMOKE_FOLDER = "smoke-imagefolder"
SMOKE_CLASSES, SMOKE_TRAIN_PER_CLASS, SMOKE_VAL_PER_CLASS, SMOKE_SIDE = 8, 8, 3, 32


def scale_options(st: PaperSettings) -> dict:
    """The search options this table sets itself (for the scale note)."""
    opts = SMOKE_IMAGENET if st.smoke else IMAGENET_SEARCH
    return {k: opts[k] for k in ("iterations", "m0", "delta")}


def check_imagenet(st: PaperSettings) -> None:
    """The ImageNet table's data options, checked before anything runs (:class:`InputError`)."""
    if st.dataset != IMAGENET_DATASET:
        raise InputError(
            f"--dataset: the imagenet table reads an image folder (--dataset {IMAGENET_DATASET}), not {st.dataset!r}"
        )
    if st.inherit:
        raise InputError(
            "--inherit: the imagenet table transfers weights from a donor, as the paper does; run it without --inherit"
        )
    if st.data is None and not st.smoke:
        raise InputError(
            "data: the imagenet table needs --data DIR, an image folder with train/<class>/ and "
            "val/<class>/ (ImageNet's), or --smoke for a tiny synthetic one"
        )
    if st.data is not None and not Path(st.data).is_dir():
        raise InputError(f"data: {st.data} is not a directory (an image folder with train/ and val/)")


def write_smoke_folder(root: Path, seed: int = 0) -> Path:
    """Write (once) a tiny image folder whose classes differ in colour and texture; returns ``root``."""
    import numpy as np
    from PIL import Image

    done = root / ".complete"
    if done.is_file():
        return root
    rng = np.random.default_rng(seed)
    for split, n in (("train", SMOKE_TRAIN_PER_CLASS), ("val", SMOKE_VAL_PER_CLASS)):
        for c in range(SMOKE_CLASSES):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.zeros((SMOKE_SIDE, SMOKE_SIDE, 3))
                base[..., c % 3] = 120.0 + 40.0 * (c // 3)
                base[:: c + 2, :, :] += 60.0  # stripes, one spacing per class
                img = np.clip(base + rng.normal(0.0, 30.0, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{split}{c}_{i}.png")
    done.write_text("synthetic smoke folder\n")
    return root


def _donor(st: PaperSettings, data: str, opts: dict) -> tuple[str, dict | None]:
    """The transfer donor: torchvision's ResNet-50 (paper scale) or a small bottleneck network trained
    here (smoke: ``DIR/baselines/donor-bottleneck``, returned with its training result)."""
    if not st.smoke:
        return str(IMAGENET_SEARCH["transfer"]), None
    from swnas.models import ArchSpec

    spec = ArchSpec(module="bottleneck", stages=list(SMOKE_DONOR_STAGES), widths=list(SMOKE_DONOR_WIDTHS), stem=8)
    out = st.out / "baselines" / "donor-bottleneck"
    res = ensure_training(
        st,
        out,
        "donor-bottleneck",
        spec,
        dataset=IMAGENET_DATASET,
        data=data,
        subset=opts.get("subset"),
        seed=st.seed,
        val_split=opts["val_split"],
        input_size=int(SMOKE_IMAGENET["input_size"]),
    )
    return str(out / "model.pt"), res


def imagenet(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """The donor (smoke: trained here) and every candidate of the ImageNet search, with top-5 and
    top-1 after the final epochs; the last candidate is the row paired with the paper's 90.23%."""
    check_imagenet(st)
    data = st.data if st.data is not None else str(write_smoke_folder(st.out / SMOKE_FOLDER, st.seed))
    base = dict(st.search_options(), dataset=IMAGENET_DATASET, data=data)
    transfer, donor = _donor(st, data, base)
    opts: dict[str, Any] = dict(
        SMOKE_IMAGENET if st.smoke else IMAGENET_SEARCH, dataset=IMAGENET_DATASET, data=data, transfer=transfer
    )
    out, state = ensure_search(st, "imagenet-pls", **opts)
    rows = []
    if donor is not None:
        row = training_row("imagenet", "donor", donor, times=True)
        row.update(top5=pct(donor["metrics"].get("top5")), note="smoke stand-in for ResNet-50: the transfer donor")
        rows.append(row)
    cands = candidate_rows(out, state, "imagenet", times=True)
    for r, idx in zip(cands, state["candidates"]):
        net = state["networks"][idx]
        r["top5"] = pct((net.get("final") or {}).get("top5", net["metrics"].get("top5")))
    if cands:
        last = cands[-1]
        it = last["row"].replace(" (best)", "")
        last["note"] = f"{it}, the search's last candidate (the paper's final architecture)"
        last["row"] = "final"
    rows += match_best(cands)
    n = state["config"]
    from swnas.training.recipes import TRANSFER_EPOCHS

    donor_text = "a small bottleneck network trained here on the smoke folder" if st.smoke else transfer
    note = (
        f"ImageNet search (ICPR 2020, Section IV: bottleneck modules, weight transfer, delta 2, top-5 90.23 "
        f"for the final architecture): {n['stages']} stages of {n['module']} modules, m0 {n['m0']}, delta "
        f"{n['delta']}, {n['iterations']} iteration(s), at {n.get('input_size')} px, each network fine-tuned "
        f"from the donor ({donor_text}) "
        f"for {n.get('finetune_epochs') or n.get('epochs') or TRANSFER_EPOCHS} epoch(s), then the "
        "candidates' final epochs. Every torchvision ResNet has 3 blocks in its first and last stage and a "
        "candidate cannot be deeper than its donor, so m0 + delta <= 3: m0 1 and one iteration (the paper's "
        "m0 and iteration count for ImageNet are not printed). Top-5 and top-1 are on the folder's val/ "
        "images after the final epochs; 'final' is the search's last candidate."
    )
    notes = [note]
    if st.smoke:
        notes.append(
            f"Smoke scale: a synthetic folder of {SMOKE_CLASSES} classes of {SMOKE_SIDE} px images "
            f"({SMOKE_FOLDER}/), not ImageNet; the rows check the pipeline and reproduce nothing."
        )
    return rows, notes
