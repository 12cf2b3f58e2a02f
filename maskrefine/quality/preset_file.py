"""Refine presets: a named or file-stored refiner setting (method, guide, parameters, upsampling).

* :data:`REFINE_PRESETS`: built-in presets (``paper``: the mean guide, radius 9, eps 1e-3 of the paper).
* :func:`read_preset_file` / :func:`write_preset_file`: a small TOML file (or JSON with the same
  structure) that ``maskrefine tune`` writes and ``maskrefine apply --preset-file`` reads::

      # written by maskrefine tune
      [refine]
      method = "guided"
      guide = "color"
      upsample = "bilinear"

      [refine.params]
      radius = 8
      eps = 0.001

  A parameter left to the method's preset (``None``, e.g. the bilateral solver's sigmas) is not
  written to TOML (which has no null; reading fills it in again) and is ``null`` in JSON. Only
  ``[refine]`` is read; other tables (``[tune]``: how the setting was found) are informational.
  Reading refuses anything but a regular file (a FIFO would block, a folder is no file) and files over
  64 KiB. Writing goes through a temporary file and a rename, and refuses an output path that exists
  (unless ``overwrite``) or is anything but a regular file (symlink, FIFO, folder).
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maskrefine._checks import short_repr
from maskrefine.errors import ConfigError, parse_problem
from maskrefine.io.imageio import write_text_atomic
from maskrefine.pipeline.guards import file_path_argument, job_flags
from maskrefine.quality.grid import Candidate
from maskrefine.refiners import REFINERS

__all__ = [
    "REFINE_PRESETS",
    "read_preset_file",
    "write_preset_file",
    "preset_to_toml",
    "check_preset_output",
    "check_replaceable",
]

#: Built-in refine presets (``maskrefine apply --preset NAME``).
REFINE_PRESETS: dict[str, Candidate] = {
    "paper": Candidate.make("guided", "mean", "bilinear", radius=9, eps=1e-3),
}

_MAX_BYTES = 64 * 1024


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: cannot write the non-finite number {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string (\" \\ \uXXXX escapes) is a valid TOML basic string
    raise TypeError(f"{where}: cannot write a value of type {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    """Return ``key`` bare where TOML allows it (ASCII letters, digits, ``_``, ``-``), else quoted."""
    if key and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in key):
        return key
    return json.dumps(key)


def preset_to_toml(candidate: Candidate, info: Mapping[str, Any] | None = None) -> str:
    """Return the TOML text of a preset file for ``candidate``.

    ``info`` (flat, scalar values) goes to the ``[tune]`` table.
    """
    lines = ["# maskrefine refine preset: maskrefine apply --preset-file THIS_FILE", "[refine]"]
    data = candidate.to_dict()
    for key in ("method", "guide", "upsample"):
        lines.append(f"{key} = {_toml_value(data[key], key)}")
    lines += ["", "[refine.params]"]
    for key, value in data["params"].items():
        if value is None:  # "the method's preset decides" (bilateral_solver, crf): TOML has no null
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value, f'params.{key}')}")
    if info:
        lines += ["", "[tune]"]
        for key, value in info.items():
            lines.append(f"{_toml_key(str(key))} = {_toml_value(value, f'tune.{key}')}")
    return "\n".join(lines) + "\n"


def _regular_file(path: Path, what: str) -> os.stat_result:
    try:
        st = os.stat(path)  # follows a symlink: a link to a regular file is read as that file
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: file not found (or a dangling symlink)") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (FIFO, device or socket?)"
        raise ConfigError(f"{what} {path}: is {kind}; expected a TOML or JSON file")
    return st


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object's dict, refusing a key given twice (``json`` keeps the last one silently).

    TOML refuses a repeated key itself; the same preset written as JSON must not quietly pick one.
    """
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"key {short_repr(key)} is given twice")
        data[key] = value
    return data


def read_preset_file(path: str | os.PathLike[str]) -> Candidate:
    """Read a preset file (TOML, or JSON when the name ends in ``.json``) into a :class:`Candidate`.

    Raises
    ------
    ConfigError
        Empty path, missing file, not a regular file, too large, not valid TOML/JSON, no ``[refine]``
        table, or an invalid setting (unknown method, guide, parameter or value); the message names the
        file.
    """
    if not str(path):
        raise ConfigError("preset file: the path is empty")
    path = file_path_argument(path, "preset file")  # `Path` alone would drop a final "/"
    st = _regular_file(path, "preset file")
    if st.st_size == 0:
        raise ConfigError(f"preset file {path}: file is empty (0 bytes)")
    if st.st_size > _MAX_BYTES:
        raise ConfigError(
            f"preset file {path}: {st.st_size} bytes is too large for a preset (max {_MAX_BYTES})"
        )
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"preset file {path}: cannot read as UTF-8 text ({exc})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_object_without_repeated_keys)
        else:
            data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # see parse_problem
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"preset file {path}: not valid {kind} ({parse_problem(exc)})") from None
    refine = data.get("refine") if isinstance(data, dict) else None
    if not isinstance(refine, dict):
        raise ConfigError(f"preset file {path}: no [refine] table (method, guide, upsample, [refine.params])")
    if "method" not in refine:
        raise ConfigError(f"preset file {path}: [refine] has no `method`")
    for key in ("method", "guide", "upsample"):
        if key in refine and not isinstance(refine[key], str):
            raise ConfigError(f"preset file {path}: `{key}` must be a string; got {short_repr(refine[key])}")
    if refine.get("method") == "auto":
        raise ConfigError(
            f"preset file {path}: method 'auto' is the default already; a preset names a refiner"
        )
    if refine["method"] not in REFINERS:  # the registry's own message would list 'auto' too
        listed = ", ".join(repr(name) for name in REFINERS if name != "auto")
        raise ConfigError(
            f"preset file {path}: `method` must be one of {listed}; got {short_repr(refine['method'])}"
        )
    try:
        return Candidate.from_dict(refine)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"preset file {path}: {exc}") from None


def check_replaceable(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse an output path that is empty, a symlink, or exists as anything but a regular file."""
    from maskrefine.pipeline.guards import file_path_argument  # late: it imports OpenCV

    path = file_path_argument(path, what)  # a file name: not empty, not bytes, not too long, not "dir/"
    if path.is_symlink():
        raise ConfigError(f"{what} {path}: is a symlink; refusing to write through it")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{what} {path}: exists and is not a regular file; refusing to replace it")
    return path


def check_preset_output(path: str | os.PathLike[str], what: str, *, overwrite: bool = False) -> Path:
    """Vet an output path for a preset file; return it as a ``Path``.

    Refuse a path that is empty, exists (unless ``overwrite``, and then only a regular file), is a
    symlink, FIFO or folder, or whose parent folder does not exist.
    """
    (overwrite,) = job_flags(overwrite=overwrite)  # truthiness would read "no" as yes: replace the file
    path = check_replaceable(path, what)
    if path.exists() and not overwrite:
        raise ConfigError(f"{what} {path}: exists; use --overwrite to replace it")
    if not path.parent.is_dir():
        state = (
            f"{path.parent} is not a folder"
            if path.parent.exists()
            else f"folder {path.parent} does not exist"
        )
        raise ConfigError(f"{what} {path}: {state}")
    return path


def write_preset_file(
    path: str | os.PathLike[str],
    candidate: Candidate,
    *,
    info: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``candidate`` as a preset file atomically (TOML; JSON when the name ends in ``.json``).

    Raises
    ------
    ConfigError
        The path is empty, a symlink, FIFO or folder, exists without ``overwrite``, or its folder is
        missing.
    """
    path = check_preset_output(path, "preset file", overwrite=overwrite)
    text = preset_to_toml(candidate, info)  # also checks every value, naming its key, for JSON too
    if path.suffix.lower() == ".json":
        payload: dict[str, Any] = {"refine": candidate.to_dict()}
        if info:
            payload["tune"] = dict(info)
        text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)
