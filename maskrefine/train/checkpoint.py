"""Load a self-supervised ViT from a local checkpoint file: never a hub, never a URL.

``torch.load(weights_only=True)`` only: a file that needs pickled Python code to load is refused. DINO
(``dino_deitsmall8_pretrain.pth`` …, full training checkpoints with ``teacher``/``student``) and DINOv2
(``dinov2_vits14_pretrain.pth``, ``…_reg4_…``) key layouts are accepted; ``module.``, ``backbone.`` and
``_orig_mod.`` prefixes are removed, the DINO projection head (``head.*``) is ignored. The architecture
(width, depth, patch size, position grid, LayerScale, registers) is read from the tensor shapes.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskrefine._checks import short_list, short_repr
from maskrefine.errors import ConfigError
from maskrefine.train.preflight import check_checkpoint_path
from maskrefine.train.vit import ARCHS, VisionTransformer

__all__ = [
    "BackboneSpec",
    "LoadReport",
    "read_state_dict",
    "clean_state_dict",
    "infer_spec",
    "load_vit",
    "weights_digest",
]

_PREFIXES = ("module.", "backbone.", "_orig_mod.", "encoder.")
_WRAPPERS = ("teacher", "state_dict", "model")  # DINO releases the teacher; "student" is never preferred
_IGNORED = re.compile(r"^(head|fc|dino_head|ibot_head)\.")
_CHUNKED = re.compile(r"^blocks\.\d+\.(\d+)\.")


@dataclass(frozen=True, slots=True)
class BackboneSpec:
    """Shape of a ViT read from a state dict."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    pos_grid: int
    mlp_ratio: float
    layer_scale: bool
    num_register_tokens: int

    @property
    def arch(self) -> str:
        """Name in :data:`maskrefine.train.vit.ARCHS`, or ``"custom"``."""
        for name, (dim, depth, _) in ARCHS.items():
            if (dim, depth) == (self.embed_dim, self.depth):
                return name
        return "custom"

    @property
    def layout(self) -> str:
        """``"dinov2"`` (LayerScale) or ``"dino"``."""
        return "dinov2" if self.layer_scale else "dino"

    def build(self) -> VisionTransformer:
        """Return a randomly initialised ViT of this shape."""
        return VisionTransformer(
            patch_size=self.patch_size,
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            pos_grid=self.pos_grid,
            mlp_ratio=self.mlp_ratio,
            layer_scale=self.layer_scale,
            num_register_tokens=self.num_register_tokens,
        )


@dataclass(slots=True)
class LoadReport:
    """What :func:`load_vit` did: the spec, the wrapper key used, ignored keys (projection heads)."""

    spec: BackboneSpec
    wrapper: str | None = None
    ignored: list[str] = field(default_factory=list)


def _fail(path: Path, problem: str) -> ConfigError:
    return ConfigError(f"backbone checkpoint {path}: {problem}")


def safe_torch_load(path: str | os.PathLike[str], what: str = "backbone checkpoint") -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with clear errors (ConfigError)."""
    file = check_checkpoint_path(path, what)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"unsupported GLOBAL (\S+)", text)
        if found is not None or "GLOBAL" in text:
            name = found.group(1) if found else "a Python object"
            raise ConfigError(
                f"{what} {file}: refused: it holds pickled Python objects ({name}) that only load by running "
                "code. maskrefine loads with torch.load(weights_only=True) and never unpickles code; re-save "
                "the weights with torch.save(model.state_dict(), path)"
            ) from None
        detail = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("Unsupported")), "")
        raise ConfigError(
            f"{what} {file}: cannot read as a torch checkpoint (not a torch.save file, or a pickle that "
            f"weights-only loading cannot parse{': ' + detail if detail else ''})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - zip/format errors of every kind
        raise ConfigError(
            f"{what} {file}: cannot read as a torch checkpoint (truncated, damaged or not a torch.save "
            f"file; {type(exc).__name__}: {_first_sentence(str(exc))})"
        ) from None


def _first_sentence(text: str, limit: int = 200) -> str:
    """Return the first sentence of ``text``'s first line (torch's explanations follow it), cut at a word.

    A sentence is taken to end at ". " (not at the dots of a file name or a version); longer than
    ``limit`` characters, it is cut at the last space before the limit and ends with "...".
    """
    line = text.strip().split("\n", 1)[0].strip()
    end = line.find(". ")
    sentence = line if end < 0 else line[:end]
    sentence = sentence.rstrip(".")
    if len(sentence) <= limit:
        return sentence
    cut = sentence.rfind(" ", 0, limit)
    return sentence[: cut if cut > 0 else limit].rstrip(" ,;:") + "..."


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str | None]:
    """Load a checkpoint file safely and return ``(tensors by key, wrapper key used or None)``."""
    obj = safe_torch_load(path)
    file = Path(os.fspath(path))
    wrapper = None
    if isinstance(obj, dict):
        for key in _WRAPPERS:
            if isinstance(obj.get(key), dict):
                obj, wrapper = obj[key], key
                break
    if not isinstance(obj, dict) or not obj:
        raise _fail(file, f"expected a state dict (key -> tensor); got {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    nested = [k for k, v in obj.items() if isinstance(v, dict) and _holds_a_vit(v)]
    if not tensors or (nested and not _holds_a_vit(obj)):
        where = f"under its {wrapper!r} entry" if wrapper else "at its top level"
        if nested:
            raise _fail(
                file,
                f"holds no ViT tensors {where}; they are under {short_list(nested)}, and maskrefine reads "
                f"the weights directly or under {', '.join(map(repr, _WRAPPERS))}: save the backbone's own "
                "state dict (torch.save(checkpoint[key], path))",
            )
        raise _fail(file, f"holds no tensors {where}; its keys: {short_list(list(obj))}")
    return tensors, wrapper


def _holds_a_vit(state: dict[object, object]) -> bool:
    """Whether ``state`` has a tensor under a key ending in ``cls_token`` (after any prefix)."""
    return any(
        isinstance(k, str) and (k == "cls_token" or k.endswith(".cls_token")) and isinstance(v, torch.Tensor)
        for k, v in state.items()
    )


def clean_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Strip wrapper prefixes, flatten DINOv2 block chunks, drop projection heads.

    Returns ``(cleaned, ignored_keys)``.
    """
    cleaned: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        name = key
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, changed = name[len(prefix) :], True
        name = _CHUNKED.sub(r"blocks.\1.", name)
        if _IGNORED.match(name):
            ignored.append(key)
            continue
        cleaned[name] = value
    return cleaned, ignored


def infer_spec(
    state: dict[str, torch.Tensor], *, path: str | os.PathLike[str] = "<state dict>"
) -> BackboneSpec:
    """Read the ViT shape from the tensors of a cleaned state dict (ConfigError naming a missing key)."""
    file = Path(os.fspath(path))
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            prefixed = sorted(k for k in state if k.endswith("." + key))
            hint = (
                f" (it has {short_repr(prefixed[0])}: a prefix other than "
                f"{', '.join(map(repr, _PREFIXES))}, which are removed; save the keys without it)"
                if prefixed
                else ""
            )
            raise _fail(file, f"missing key {key!r}: not a ViT in the DINO/DINOv2 layout{hint}")
    proj = state["patch_embed.proj.weight"]
    if proj.ndim != 4 or proj.shape[1] != 3 or proj.shape[2] != proj.shape[3] or 0 in proj.shape:
        raise _fail(
            file, f"key 'patch_embed.proj.weight' has shape {tuple(proj.shape)}; expected (D, 3, p, p)"
        )
    dim, patch = int(proj.shape[0]), int(proj.shape[2])
    pos = state["pos_embed"]
    grid = math.isqrt(max(0, int(pos.shape[1]) - 1)) if pos.ndim == 3 else -1
    if pos.ndim != 3 or grid * grid != pos.shape[1] - 1 or pos.shape[2] != dim:
        raise _fail(file, f"key 'pos_embed' has shape {tuple(pos.shape)}; expected (1, 1 + g*g, {dim})")
    indices = {int(m.group(1)) for k in state if (m := re.match(r"^blocks\.(\d+)\.", k))}
    depth = max(indices) + 1
    fc1 = state["blocks.0.mlp.fc1.weight"]
    if fc1.ndim != 2 or fc1.shape[1] != dim or fc1.shape[0] == 0:
        raise _fail(
            file, f"key 'blocks.0.mlp.fc1.weight' has shape {tuple(fc1.shape)}; expected (hidden, {dim})"
        )
    hidden = int(fc1.shape[0])
    registers = 0
    if "register_tokens" in state:
        tokens = state["register_tokens"]
        if tokens.ndim != 3 or tokens.shape[0] != 1 or tokens.shape[2] != dim:
            raise _fail(
                file, f"key 'register_tokens' has shape {tuple(tokens.shape)}; expected (1, R, {dim})"
            )
        registers = int(tokens.shape[1])
    heads = max(1, dim // 64)  # DINO's and DINOv2's rule: 64 channels per head
    if dim % heads:
        raise _fail(
            file,
            f"key 'patch_embed.proj.weight' gives a width of {dim}, not a multiple of its {heads} attention "
            "heads (width // 64): not a DINO/DINOv2 ViT",
        )
    return BackboneSpec(
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        patch_size=patch,
        pos_grid=grid,
        mlp_ratio=hidden / dim,
        layer_scale="blocks.0.ls1.gamma" in state,
        num_register_tokens=registers,
    )


def load_vit(
    path: str | os.PathLike[str], *, arch: str | None = None, patch_size: int | None = None
) -> tuple[VisionTransformer, LoadReport]:
    """Build a ViT from a local DINO/DINOv2 checkpoint file (weights only), frozen, in eval mode.

    Parameters
    ----------
    path : path-like
        Local checkpoint file. URLs, folders, FIFOs and empty files are refused.
    arch : str, optional
        Expected size (a key of :data:`maskrefine.train.vit.ARCHS`); checked against the shapes.
    patch_size : int, optional
        Expected patch size; checked against ``patch_embed.proj.weight``.

    Returns
    -------
    (VisionTransformer, LoadReport)

    Raises
    ------
    ConfigError
        Naming the file and: missing/empty/unreadable, pickled code, not a ViT, missing or unexpected keys
        (by name), a shape mismatch or NaN/infinite weights (naming the key), or an ``arch``/``patch_size``
        that disagrees.
    """
    state, wrapper = read_state_dict(path)
    file = Path(os.fspath(path))
    state, ignored = clean_state_dict(state)
    spec = infer_spec(state, path=file)
    if patch_size is not None and patch_size != spec.patch_size:
        raise _fail(
            file,
            f"key 'patch_embed.proj.weight' has patch size {spec.patch_size}, but patch size {patch_size} "
            "was asked for",
        )
    if arch is not None and arch not in ("auto", spec.arch):
        if arch not in ARCHS:
            raise ConfigError(f"arch must be one of auto, {', '.join(ARCHS)}; got {short_repr(arch)}")
        dim, depth, _ = ARCHS[arch]
        raise _fail(
            file,
            f"holds a ViT of width {spec.embed_dim} and depth {spec.depth} (key 'cls_token'), but arch "
            f"{arch!r} (width {dim}, depth {depth}) was asked for",
        )
    model = spec.build()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {short_list(missing, 8)}")
        if unexpected:
            parts.append(f"unexpected keys: {short_list(unexpected, 8)}")
        raise _fail(file, "; ".join(parts) + f" (for a {spec.layout} ViT, width {spec.embed_dim})")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise _fail(
                file, f"key {key!r} has shape {tuple(state[key].shape)}; expected {tuple(tensor.shape)}"
            )
        if state[key].is_floating_point() and not bool(torch.isfinite(state[key]).all()):
            raise _fail(file, f"key {key!r} holds NaN or infinite values (a damaged or diverged checkpoint)")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.requires_grad_(False)
    model.eval()
    return model, LoadReport(spec=spec, wrapper=wrapper, ignored=ignored)


def weights_digest(module: torch.nn.Module) -> str:
    """Return the SHA-256 (hex) of a module's state dict: keys, dtypes, shapes and bytes, in key order.

    It names the weights, not the file: the same tensors saved again, moved, or wrapped and prefixed
    otherwise give the same digest; other weights of the same shape give another.
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}|{data.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(memoryview(data.view(torch.uint8).numpy()))
    return digest.hexdigest()
