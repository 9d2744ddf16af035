"""Peak resident memory of the current process, resettable (Linux /proc), for benchmarks."""

from __future__ import annotations

import os


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def reset_peak() -> int:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; return that RSS in bytes."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    return _status("VmRSS")


def peak_since_reset() -> int:
    """Peak RSS in bytes since the last :func:`reset_peak`."""
    return _status("VmHWM")
