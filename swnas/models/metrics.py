"""Cost metrics of a network: depth, parameters, MACs, memory, CPU latency and training carbon.

Conventions (those of the paper, so the numbers compare with its Table III):

- **MACs** ("FLOPs" in the paper): multiply-accumulates of the convolution and linear layers only
  (BN, ReLU, pooling and additions are not counted), from ``torch.utils.flop_counter`` on one
  image: MACs = FLOPs / 2 of those ops. ResNet-56 on 32x32: 125.7 M.
- **memory_bytes**: 4 bytes x (the input + every layer's output for one image + every parameter and
  floating buffer). "Every layer" means every leaf module except pass-through identities, plus the
  residual sums (the blocks' ``preact`` points), which is how Keras lists the original's layers.
- **peak_memory_bytes**: measured during one inference of ``batch`` images: on a GPU the CUDA
  allocator's peak; on the CPU the peak of the bytes held by live tensors (parameters, buffers,
  input and activations), tracked op by op.
- **latency_ms**: median CPU time of one forward pass of ``batch`` images with ``threads`` threads
  (``torch.utils.benchmark``), in eval mode under ``torch.inference_mode``.
"""

from __future__ import annotations

import copy
import time
import weakref
from typing import Any, cast

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from swnas.errors import InputError

__all__ = [
    "count_params",
    "count_macs",
    "memory_bytes",
    "peak_memory_bytes",
    "cpu_latency_ms",
    "measure",
    "carbon",
    "CarbonTracker",
    "DEVICE_WATTS",
    "DEFAULT_CARBON_INTENSITY",
]

# Board power (TDP, watts) of common training devices, as the ML CO2 Impact calculator uses.
DEVICE_WATTS: dict[str, float] = {
    "h200": 700.0,
    "h100": 700.0,
    "a100": 400.0,
    "v100": 300.0,
    "a10": 150.0,
    "l4": 72.0,
    "t4": 70.0,
    "rtx 4090": 450.0,
    "rtx 3090": 350.0,
    "titan x": 250.0,
    "1080 ti": 250.0,
    "cpu": 65.0,
}
# kg CO2e per kWh: world average electricity carbon intensity (IEA, 2019: 475 g/kWh).
DEFAULT_CARBON_INTENSITY = 0.475


def _spec_defaults(model: nn.Module, input_size: int | None, in_channels: int | None) -> tuple[int, int]:
    spec = getattr(model, "spec", None)
    if input_size is None:
        input_size = getattr(spec, "input_size", None)
    if in_channels is None:
        in_channels = getattr(spec, "in_channels", None)
    for name, v in (("input_size", input_size), ("in_channels", in_channels)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"{name}: must be a positive integer (the model has no spec to take it from), got {v!r}")
    return cast(int, input_size), cast(int, in_channels)


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InputError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    return model


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (trainable ones only if asked); buffers (BN statistics) are not counted."""
    _check_model(model)
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


_MAC_OPS = ("convolution", "addmm", "mm", "bmm", "baddbmm")


@torch.no_grad()
def count_macs(model: nn.Module, input_size: int | None = None, in_channels: int | None = None) -> int:
    """Multiply-accumulates of the conv and linear layers for one image (the paper's "FLOPs")."""
    from torch.utils.flop_counter import FlopCounterMode

    _check_model(model)
    input_size, in_channels = _spec_defaults(model, input_size, in_channels)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, in_channels, input_size, input_size, device=_device_of(model))
    try:
        with FlopCounterMode(display=False) as fc:
            model(x)
    finally:
        model.train(was_training)
    flops = 0
    for op, n in fc.get_flop_counts().get("Global", {}).items():
        name = str(op).split(".")[1] if "." in str(op) else str(op)
        if name in _MAC_OPS or name.startswith("convolution"):
            flops += int(n)
    return flops // 2


def _is_pass_through(name: str, m: nn.Module) -> bool:
    return isinstance(m, nn.Identity) and not name.endswith("preact")


@torch.no_grad()
def memory_bytes(
    model: nn.Module, input_size: int | None = None, in_channels: int | None = None, bytes_per_value: int = 4
) -> int:
    """The paper's memory: 4 bytes x (input + every layer's output for one image + parameters and buffers)."""
    _check_model(model)
    input_size, in_channels = _spec_defaults(model, input_size, in_channels)
    total = [in_channels * input_size * input_size]
    hooks = []

    def hook(_m, _inp, out):
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                total[0] += t[0].numel() if t.ndim > 0 else 1

    for name, m in model.named_modules():
        if len(list(m.children())) == 0 and not _is_pass_through(name, m):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, in_channels, input_size, input_size, device=_device_of(model)))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    bufs = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return int(bytes_per_value * (total[0] + params + bufs))


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of storages created by ops while they stay alive; records the peak."""

    def __init__(self, baseline: int) -> None:
        super().__init__()
        self.current = baseline
        self.peak = baseline
        self._live: dict[int, list[int]] = {}

    def _release(self, key: int) -> None:
        entry = self._live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self._live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                st = t.untyped_storage()
                key = st.data_ptr()
                if key == 0:
                    continue
                entry = self._live.get(key)
                if entry is None:
                    entry = self._live[key] = [st.nbytes(), 0]
                    self.current += entry[0]
                    self.peak = max(self.peak, self.current)
                entry[1] += 1
                weakref.finalize(t, self._release, key)
        return out


@torch.no_grad()
def peak_memory_bytes(
    model: nn.Module, input_size: int | None = None, in_channels: int | None = None, batch: int = 1
) -> int:
    """Measured peak bytes during one inference of ``batch`` images (weights and input included)."""
    _check_model(model)
    input_size, in_channels = _spec_defaults(model, input_size, in_channels)
    dev = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(batch, in_channels, input_size, input_size, device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            model(x)
            torch.cuda.synchronize(dev)
            return int(torch.cuda.max_memory_allocated(dev))
        static = sum(t.untyped_storage().nbytes() for t in list(model.parameters()) + list(model.buffers()))
        static += x.untyped_storage().nbytes()
        mode = _LiveTensorBytes(static)
        with mode:
            out = model(x)
        del out
        return int(mode.peak)
    finally:
        model.train(was_training)


def cpu_latency_ms(
    model: nn.Module,
    input_size: int | None = None,
    in_channels: int | None = None,
    *,
    batch: int = 1,
    threads: int = 1,
    min_run_time: float = 1.0,
) -> float:
    """Median CPU wall time of one forward pass of ``batch`` images, in milliseconds.

    The model is copied to the CPU in eval mode; ``threads`` fixes torch's intra-op threads for
    the measurement (``torch.utils.benchmark.Timer(num_threads=...)``).
    """
    import logging

    # importing torch.utils.benchmark pulls in cpp_extension, which logs a warning on machines
    # without a CUDA runtime; it concerns compiling extensions, not timing, so keep it off screen
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    _check_model(model)
    input_size, in_channels = _spec_defaults(model, input_size, in_channels)
    if not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads: must be a positive integer, got {threads!r}")
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch: must be a positive integer, got {batch!r}")
    net = copy.deepcopy(model).cpu().eval()
    x = torch.randn(batch, in_channels, input_size, input_size)

    def run() -> None:
        with torch.inference_mode():
            net(x)

    run()  # warm-up
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return float(m.median * 1e3)


def measure(
    model: nn.Module,
    *,
    input_size: int | None = None,
    in_channels: int | None = None,
    latency: bool = True,
    threads: int = 1,
    batch: int = 1,
    min_run_time: float = 1.0,
) -> dict[str, Any]:
    """Every cost metric of ``model`` in one dict.

    Returns
    -------
    dict
        ``depth`` (spec depth, or the number of conv + linear layers when there is no spec),
        ``params``, ``macs``, ``memory_bytes``, ``peak_memory_bytes`` (batch ``batch``),
        ``latency_ms`` (None when ``latency=False``), and ``latency_batch``, ``latency_threads``.
    """
    _check_model(model)
    input_size, in_channels = _spec_defaults(model, input_size, in_channels)
    spec = getattr(model, "spec", None)
    depth = getattr(spec, "depth", None)
    if depth is None:
        depth = sum(1 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    out: dict[str, Any] = {
        "depth": int(depth),
        "params": count_params(model),
        "macs": count_macs(model, input_size, in_channels),
        "memory_bytes": memory_bytes(model, input_size, in_channels),
        "peak_memory_bytes": peak_memory_bytes(model, input_size, in_channels, batch=batch),
        "latency_ms": None,
        "latency_batch": batch,
        "latency_threads": threads,
    }
    if latency:
        out["latency_ms"] = cpu_latency_ms(
            model, input_size, in_channels, batch=batch, threads=threads, min_run_time=min_run_time
        )
    return out


# ---------------------------------------------------------------------------------------- carbon
def _device_power(device: str | torch.device | None) -> tuple[str, float]:
    """(device description, assumed watts) for ``device`` ('cpu', 'cuda', 'cuda:1' or a name)."""
    name = str(device if device is not None else "cpu")
    desc = name
    if name.startswith("cuda") and torch.cuda.is_available():
        try:
            idx = torch.device(name).index or 0
            desc = torch.cuda.get_device_name(idx)
        except Exception:  # pragma: no cover - driver quirks
            desc = name
    low = desc.lower()
    for key, watts in DEVICE_WATTS.items():
        if key != "cpu" and key in low:
            return desc, watts
    if low.startswith("cuda") or "nvidia" in low or "gpu" in low:
        return desc, 300.0
    return desc, DEVICE_WATTS["cpu"]


def carbon(
    seconds: float,
    device: str | torch.device | None = "cpu",
    *,
    power_watts: float | None = None,
    carbon_intensity: float = DEFAULT_CARBON_INTENSITY,
    pue: float = 1.0,
    n_devices: int = 1,
) -> dict[str, Any]:
    """Training emissions by the ML CO2 Impact calculator's formula.

    ``kg CO2e = n_devices x power (kW) x hours x PUE x carbon intensity (kg/kWh)``.

    Parameters
    ----------
    seconds : float
        Wall time of the training.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``/``"cuda:K"`` (its name is looked up in :data:`DEVICE_WATTS`) or a
        device name such as ``"GTX 1080 Ti"``.
    power_watts : float, optional
        Overrides the assumed board power.
    carbon_intensity : float
        kg CO2e per kWh (default: world average, 0.475).
    pue : float
        Data-centre power usage effectiveness (1.0 = none counted).

    Returns
    -------
    dict
        ``kg_co2e``, ``energy_kwh``, ``method`` ("ml-co2-formula") and every assumption:
        ``device``, ``power_watts``, ``n_devices``, ``hours``, ``carbon_intensity_kg_per_kwh``, ``pue``.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise InputError(f"seconds: must be a non-negative number, got {seconds!r}")
    for name, v in (("carbon_intensity", carbon_intensity), ("pue", pue)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise InputError(f"{name}: must be a positive number, got {v!r}")
    if not isinstance(n_devices, int) or n_devices < 1:
        raise InputError(f"n_devices: must be a positive integer, got {n_devices!r}")
    desc, watts = _device_power(device)
    if power_watts is not None:
        if isinstance(power_watts, bool) or not isinstance(power_watts, (int, float)) or not power_watts > 0:
            raise InputError(f"power_watts: must be a positive number, got {power_watts!r}")
        watts = float(power_watts)
    hours = float(seconds) / 3600.0
    energy = n_devices * watts / 1000.0 * hours * pue
    return {
        "kg_co2e": energy * carbon_intensity,
        "energy_kwh": energy,
        "method": "ml-co2-formula",
        "device": desc,
        "power_watts": watts,
        "n_devices": n_devices,
        "hours": hours,
        "carbon_intensity_kg_per_kwh": float(carbon_intensity),
        "pue": float(pue),
    }


class CarbonTracker:
    """Measure a training's emissions: codecarbon when installed, else the formula of :func:`carbon`.

    >>> with CarbonTracker("cuda") as ct:          # doctest: +SKIP
    ...     train(...)
    >>> ct.result["kg_co2e"]                        # doctest: +SKIP
    """

    def __init__(self, device: str | torch.device | None = "cpu", use_codecarbon: bool = True, **formula: Any) -> None:
        self.device = device
        self.formula = formula
        self.use_codecarbon = use_codecarbon
        self.result: dict[str, Any] | None = None
        self._tracker: Any = None
        self._t0 = 0.0

    def __enter__(self) -> CarbonTracker:
        self._t0 = time.perf_counter()
        if self.use_codecarbon:
            try:
                from codecarbon import OfflineEmissionsTracker

                self._tracker = OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False, log_level="error")
                self._tracker.start()
            except Exception:  # not installed or cannot read the power sensors
                self._tracker = None
        return self

    def __exit__(self, *exc: Any) -> None:
        seconds = time.perf_counter() - self._t0
        if self._tracker is not None:
            try:
                kg = float(self._tracker.stop() or 0.0)
                self.result = {
                    "kg_co2e": kg,
                    "method": "codecarbon",
                    "hours": seconds / 3600.0,
                    "device": str(self.device),
                }
                return
            except Exception:  # pragma: no cover - fall back to the formula
                pass
        self.result = carbon(seconds, self.device, **self.formula)
