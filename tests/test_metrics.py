"""Cost metrics: parameters, MACs, the paper's memory, measured peak memory, CPU latency, carbon."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from swnas.errors import InputError
from swnas.models.metrics import (
    CarbonTracker,
    carbon,
    count_macs,
    count_params,
    cpu_latency_ms,
    measure,
    memory_bytes,
    peak_memory_bytes,
)
from swnas.models import ArchSpec, build


def test_macs_count_only_conv_and_linear():
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)
    )
    # conv: 5*5 outputs x 4 channels x (2*3*3) MACs; linear 100 x 3; BN/ReLU/bias not counted
    assert count_macs(net, input_size=5, in_channels=2) == 25 * 4 * 18 + 100 * 3
    assert count_params(net) == (2 * 4 * 9 + 4) + 8 + (100 * 3 + 3)
    with pytest.raises(InputError, match="input_size"):
        count_macs(net)  # no spec to take the input size from


def test_memory_bytes_follows_the_paper_convention():
    spec = ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1)
    net = build(spec)
    # outputs per image, as Keras lists the original's layers:
    stem = 3 * 16 * 64  # conv, BN, ReLU
    s1 = 5 * 16 * 64 + 16 * 64 + 16 * 64  # conv,BN,ReLU,conv,BN + add + ReLU
    s2 = 7 * 32 * 16 + 32 * 16  # ... + 1x1 projection
    s3 = 7 * 64 * 4 + 64 * 4
    head = 64 + 10  # pooling, linear
    acts = 64 + stem + s1 + s2 + s3 + head  # input included
    params = count_params(net)
    bufs = sum(b.numel() for b in net.buffers() if b.is_floating_point())
    assert memory_bytes(net) == 4 * (acts + params + bufs)


def test_peak_memory_is_between_weights_and_the_sum_of_all_outputs():
    net = build(ArchSpec(stages=[2, 2, 2], input_size=16))
    weights = sum(t.numel() * 4 for t in list(net.parameters()) + list(net.buffers()) if t.is_floating_point())
    peak = peak_memory_bytes(net)
    # at least weights + the input + one 16x16x16 map (and a second one alive while a block runs)
    assert peak >= weights + 4 * (3 * 256 + 2 * 16 * 256)
    assert peak <= memory_bytes(net) + 8 * 1024
    peak8 = peak_memory_bytes(net, batch=8)
    assert peak8 > peak and net.training  # training flag restored


def test_measure_returns_every_metric():
    net = build(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    m = measure(net, latency=True, threads=1, batch=2, min_run_time=0.05)
    assert set(m) >= {"depth", "params", "macs", "memory_bytes", "peak_memory_bytes", "latency_ms"}
    assert m["depth"] == 8 and m["params"] == count_params(net) and m["macs"] == count_macs(net)
    assert m["latency_ms"] > 0 and m["latency_batch"] == 2 and m["latency_threads"] == 1
    assert measure(net, latency=False)["latency_ms"] is None
    with pytest.raises(InputError, match="threads"):
        cpu_latency_ms(net, threads=0)
    with pytest.raises(InputError, match="model"):
        measure("resnet")


def test_carbon_formula_and_assumptions():
    r = carbon(3600, "GeForce GTX 1080 Ti", carbon_intensity=0.5)
    assert r["power_watts"] == 250.0 and r["method"] == "ml-co2-formula"
    assert math.isclose(r["energy_kwh"], 0.25) and math.isclose(r["kg_co2e"], 0.125)
    assert r["hours"] == 1.0 and r["carbon_intensity_kg_per_kwh"] == 0.5 and r["pue"] == 1.0
    r2 = carbon(1800, "cpu", power_watts=100, pue=1.5, n_devices=2)
    assert math.isclose(r2["kg_co2e"], 2 * 0.1 * 0.5 * 1.5 * 0.475)
    for bad in (
        {"seconds": -1},
        {"seconds": "1h"},
        {"seconds": 1, "carbon_intensity": 0},
        {"seconds": 1, "power_watts": -5},
    ):
        with pytest.raises(InputError):
            carbon(**bad)


def test_carbon_tracker_falls_back_to_the_formula():
    with CarbonTracker("cpu", use_codecarbon=False, power_watts=3600.0) as ct:
        torch.zeros(10).sum()
    assert ct.result is not None and ct.result["method"] == "ml-co2-formula"
    assert ct.result["power_watts"] == 3600.0
    # 3600 W for t seconds = t Wh = t/1000 kWh
    assert math.isclose(ct.result["kg_co2e"], ct.result["hours"] * 3.6 * 0.475, rel_tol=1e-12)
    try:
        import codecarbon  # noqa: F401
    except ImportError:  # codecarbon is optional: without it the tracker uses the formula
        with CarbonTracker("cpu") as ct2:
            pass
        assert ct2.result["method"] == "ml-co2-formula"
