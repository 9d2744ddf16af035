"""Run options from a file: ``--config run.yaml`` (or ``.json``), written back resolved.

A config file is a mapping of option names to values, e.g.::

    dataset: imagefolder
    data: /data/imagenet
    input_size: 224
    module: bottleneck
    stages: 4
    transfer: torchvision:resnet50

Names follow the command line with ``-`` or ``_`` (``batch-size`` and ``batch_size`` are the
same option). Options given on the command line override the file's. After resolving defaults
the search writes every option to ``OUT/config.yaml``; passing that file back with ``--config``
repeats the run. YAML needs PyYAML; JSON files (and writing, when PyYAML is absent, as JSON,
which YAML readers accept) do not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.records.atomic import atomic_write_text, to_jsonable

__all__ = ["load_config", "merge_options", "write_config", "CONFIG_NAME"]

CONFIG_NAME = "config.yaml"


def _yaml():
    try:
        import yaml
    except ImportError:
        return None
    return yaml


#: the largest config file read (a run's options take a few hundred bytes)
MAX_CONFIG_BYTES = 1 << 20


def _refuse_aliases(yaml: Any, text: str, p: Path) -> None:
    """Refuse YAML anchors and aliases: options need none, and aliases nested in aliases expand
    exponentially (a "billion laughs" file of 1 KB becomes gigabytes once walked or printed)."""
    for tok in yaml.scan(text):
        if isinstance(tok, (yaml.AliasToken, yaml.AnchorToken)):
            mark = tok.start_mark
            raise InputError(
                f"config: {p} uses a YAML anchor or alias (line {mark.line + 1}, column "
                f"{mark.column + 1}); write each option's value out instead"
            )


def load_config(path: str | os.PathLike, allowed: Iterable[str] | None = None) -> dict:
    """Read a YAML or JSON mapping of options; keys normalised to ``snake_case``.

    Parameters
    ----------
    path : path-like
        ``.yaml``/``.yml`` or ``.json`` (other suffixes: JSON is tried, then YAML).
    allowed : iterable of str, optional
        Known option names; any other key is an error that lists them.

    Raises
    ------
    InputError
        Missing file, a syntax error (with its position), a top level that is not a mapping,
        unknown options.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config: no such file: {p}")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise InputError(
            f"config: {p} is {p.stat().st_size} bytes; a run's options fit in {MAX_CONFIG_BYTES} "
            "(is it the right file?)"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"config: {p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    yaml = _yaml()
    is_yaml = p.suffix.lower() in (".yaml", ".yml")
    if is_yaml and yaml is None:
        raise InputError(f"config: reading {p} needs PyYAML (pip install pyyaml), or give the options as JSON")
    try:
        if is_yaml or (p.suffix.lower() != ".json" and yaml is not None and not text.lstrip().startswith("{")):
            _refuse_aliases(yaml, text, p)
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except InputError:
        raise
    except RecursionError:
        raise InputError(f"config: {p} is nested too deeply to be a run's options") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"config: {p} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except Exception as exc:  # yaml.YAMLError and its subclasses carry the position in str()
        raise InputError(f"config: {p} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(f"config: {p} must hold a mapping of option: value, got {type(data).__name__}")
    opts = {str(k).strip().replace("-", "_"): v for k, v in data.items()}
    if allowed is not None:
        known = set(allowed)
        unknown = sorted(set(opts) - known)
        if unknown:
            raise InputError(
                f"config: {p} has unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
    return opts


def merge_options(from_file: Mapping[str, Any], given: Mapping[str, Any]) -> dict:
    """The file's options overridden by those given on the command line (a new dict)."""
    out = dict(from_file)
    out.update(given)
    return out


def write_config(path: str | os.PathLike, options: Mapping[str, Any]) -> Path:
    """Write ``options`` atomically as YAML (JSON when PyYAML is absent), in the given order."""
    plain = to_jsonable(dict(options))
    yaml = _yaml()
    if yaml is not None:
        text = "# swnas run options, resolved; repeat with --config this-file\n"
        text += yaml.safe_dump(plain, sort_keys=False, default_flow_style=False)
    else:
        text = json.dumps(plain, indent=2) + "\n"
    return atomic_write_text(path, text)
