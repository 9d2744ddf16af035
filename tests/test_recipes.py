"""swnas.training.recipes: the ``original`` recipe as data, decay scopes, Keras time-based decay, costs per epoch."""

from __future__ import annotations

import pytest
import torch

from swnas.errors import InputError
from swnas.models import ArchSpec, build
from swnas.training.recipes import (
    FINAL_EPOCHS,
    TRANSFER_EPOCHS,
    ScheduleFactor,
    get_recipe,
    images_per_epoch,
    make_optimizer,
    make_scheduler,
    steps_per_epoch,
    training_images,
)


def test_original_recipe_is_the_released_code():
    r = get_recipe("original")
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.nesterov) == (200, 128, 0.01, 0.9, True)
    assert r.weight_decay == pytest.approx(2e-4)  # Keras l2(1e-4): gradient 2e-4 * w
    assert (r.copies_per_epoch, r.decay_scope, r.init, r.normalize) == (3, "conv_kernels", "he_normal", "pixel_mean")
    assert r.lr_decay == pytest.approx(1e-6) and r.milestone_epochs() == [100, 150]
    p = get_recipe("paper")
    assert (p.copies_per_epoch, p.decay_scope, p.lr_decay, p.init, p.normalize) == (1, "all", 0.0, "default", "channel")
    assert (FINAL_EPOCHS, TRANSFER_EPOCHS) == (100, 50)


def test_steps_and_images_per_epoch():
    r, p = get_recipe("original"), get_recipe("paper")
    assert images_per_epoch(r, 50_000) == 150_000 and steps_per_epoch(r, 50_000) == 1172
    assert images_per_epoch(p, 50_000) == 50_000 and steps_per_epoch(p, 50_000) == 391
    assert training_images(r, 50_000) == 30_000_000 and training_images(p, 45_000, epochs=100) == 4_500_000


def test_decay_scopes_split_kernels_from_bn_and_biases():
    net = build(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    conv_kernels = {id(m.weight) for m in net.modules() if isinstance(m, torch.nn.Conv2d)}
    opt = make_optimizer(net, get_recipe("original"))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == pytest.approx(2e-4) and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == conv_kernels
    assert id(net.fc.weight) in {id(p) for p in plain["params"]}  # the dense layer is not decayed
    assert len(decayed["params"]) + len(plain["params"]) == len(list(net.parameters()))
    from dataclasses import replace

    both = make_optimizer(net, replace(get_recipe("original"), decay_scope="kernels")).param_groups[0]
    assert {id(p) for p in both["params"]} == conv_kernels | {id(net.fc.weight)}
    assert len(make_optimizer(net, get_recipe("paper")).param_groups) == 1


def test_keras_time_based_decay_multiplies_the_schedule():
    r = get_recipe("original")
    f = ScheduleFactor(r, steps_per_epoch=10)
    assert f(0) == 1.0
    assert f(5) == pytest.approx(1.0 / (1 + 5e-6))
    assert f(10 * 100) == pytest.approx(0.1 / (1 + 1e-3))  # after the first milestone
    # the optimiser's rate follows it step by step
    net = torch.nn.Linear(2, 2)
    opt = make_optimizer(net, get_recipe("original", epochs=2))
    sched = make_scheduler(opt, get_recipe("original", epochs=2), steps_per_epoch=4)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 3e-6))
    state = sched.state_dict()
    torch.save(state, "/dev/null")  # only numbers: loadable with weights_only


@pytest.mark.parametrize(
    "field, value",
    [("copies_per_epoch", 0), ("decay_scope", "bn"), ("lr_decay", -1.0), ("init", "xavier"), ("normalize", "zca")],
)
def test_bad_recipe_fields_name_themselves(field, value):
    from dataclasses import replace

    with pytest.raises(InputError, match=field):
        get_recipe(replace(get_recipe("paper"), **{field: value}))


@pytest.mark.slow
def test_original_recipe_trains_three_copies_per_epoch():
    from swnas.data import load_dataset
    from swnas.models import initialize
    from swnas.training.trainer import train

    ds = load_dataset("digits", subset=100)
    net = initialize(build(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1)), "he_normal")
    h = train(net, ds, recipe="original", epochs=1, batch_size=50, device="cpu", progress=False).history[0]
    assert h["images_per_second"] * h["seconds"] == pytest.approx(300, rel=1e-6)  # 3 x 100 images, 6 steps
    # one epoch, milestones at epochs 0 and 1: after the 6 steps the rate is 0.01 * 0.01 / (1 + 6e-6)
    assert h["lr"] == pytest.approx(1e-4 / (1 + 6e-6))
