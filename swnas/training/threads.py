"""How many CPU threads torch uses inside one operation (``--threads``).

Small networks on small images (``digits`` 8x8, CIFAR-10 and ImageNet 32x32) gain nothing from
intra-op threads: each convolution is too small to split, and when another process shares the
cores the threads wait on each other (the issue that asked for ``--threads`` measured a search
taking 10 min with torch's default threads beside another job and 48 s with one). So the default is
**one thread for inputs of at most 32 px on the CPU**, and torch's own default otherwise (larger
images, or a GPU, where the CPU only feeds the device). ``--threads N`` sets it; the count used is
recorded in the run's ``environment`` (``threads``, ``threads_setting``).

CPU results depend on the thread count and on the CPU's instruction set: the order of floating-
point reductions changes with both, and a stage decision that hinges on the 4th or 5th digit of a
score can go the other way (README, "Threads").
"""

from __future__ import annotations

__all__ = ["SMALL_INPUT_PX", "default_threads", "apply_threads"]

#: inputs of at most this side (pixels) train on one CPU thread unless ``--threads`` says otherwise
SMALL_INPUT_PX = 32
_SMALL_DATASETS = {"digits": 8, "cifar10": 32, "imagenet32": 32}


def default_threads(dataset: str, input_size: int | None, device: str = "auto") -> int | None:
    """The default intra-op thread count: 1 for inputs of at most 32 px on the CPU, else ``None`` (torch's)."""
    side = input_size if input_size is not None else _SMALL_DATASETS.get(str(dataset).lower())
    if side is None or side > SMALL_INPUT_PX:
        return None
    dev = str(device or "auto").lower()
    if dev.startswith("cuda"):
        return None
    if dev == "auto":
        try:
            import torch

            if torch.cuda.is_available():
                return None
        except ImportError:  # pragma: no cover - the search needs torch
            return None
    return 1


def apply_threads(
    threads: int | None, dataset: str, input_size: int | None = None, device: str = "auto"
) -> tuple[int, str]:
    """Set torch's intra-op thread count: ``threads`` when given, else :func:`default_threads`.

    Returns
    -------
    (int, str)
        The count now in use and how it was chosen (for the run's ``environment``).
    """
    import torch

    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            from swnas.errors import InputError

            raise InputError(f"threads: expected a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
        return torch.get_num_threads(), "--threads"
    auto = default_threads(dataset, input_size, device)
    if auto is not None:
        torch.set_num_threads(auto)
        return torch.get_num_threads(), f"default: {auto} for inputs of at most {SMALL_INPUT_PX} px on the CPU"
    return torch.get_num_threads(), "default: torch's (larger inputs or a GPU)"
