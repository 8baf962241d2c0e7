"""Skill policies on disk without pickle: safetensors weights plus the architecture as JSON.

Why: stable-baselines3's `policy.save` / `MultiInputActorCriticPolicy.load` store the constructor arguments
(spaces, classes, a schedule function) with `torch.save` and read them back with a full, pickle-based
`torch.load`: a crafted `policy.pt` runs arbitrary code the moment `--skills learned` or `embodia eval --run`
opens it. Here a policy file is a safetensors file (tensors only, a JSON header) whose metadata holds the
architecture as plain JSON: the observation and action spaces, the head sizes, the activation and the features
extractor, each named from an allow-list. Loading rebuilds the SB3 `MultiInputActorCriticPolicy` from that
description and copies the weights in; nothing in the file is ever executed. The same description is copied
into the shipped card (`architecture`), so a reader sees what a policy is without opening its weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from torch import nn

from agent.errors import InputError

ARCHITECTURE_FORMAT = "embodia.policy_architecture/1"
METADATA_KEY = "embodia.architecture"
SUFFIX = ".safetensors"
ACTIVATIONS: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (nn.Tanh, nn.ReLU, nn.ELU, nn.LeakyReLU,
                                                                         nn.GELU, nn.SiLU)}
_BOOL_KEYS = ("normalize_images", "use_sde", "ortho_init", "share_features_extractor")
_FLOAT_KEYS = ("log_std_init",)


class UnsafePolicyFileError(InputError):
    """A policy file that could run code when loaded (a pickle), refused before anything is read from it."""


def _policy_classes() -> dict[str, type]:
    """The policy classes a policy file may name: SB3's Gaussian one and the binned head (imported lazily)."""
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy

    from agent.policy_heads import BinnedActorCriticPolicy

    return {"MultiInputActorCriticPolicy": MultiInputActorCriticPolicy,
            "BinnedActorCriticPolicy": BinnedActorCriticPolicy}


def _extractors() -> dict[str, type]:
    """The features extractors a policy file may name (imported lazily: torch-heavy)."""
    from agent.policy_features import StandardizedExtractor
    from perception.extractor import MultiModalExtractor

    return {"StandardizedExtractor": StandardizedExtractor, "MultiModalExtractor": MultiModalExtractor}


def _bound(values: np.ndarray) -> float | list:
    """A Box bound as JSON: one number when uniform (inf as the string JSON lacks), else the nested list."""
    flat = np.unique(values)
    if flat.size == 1:
        value = float(flat[0])
        return value if np.isfinite(value) else ("inf" if value > 0 else "-inf")
    return [v if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values.astype(float).tolist()]


def _unbound(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    def number(v: Any) -> float:
        return float(v) if not isinstance(v, str) else {"inf": np.inf, "-inf": -np.inf}[v]

    if isinstance(value, list):
        return np.array([number(v) for v in value], dtype=dtype).reshape(shape)
    return np.full(shape, number(value), dtype=dtype)


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Box or Dict-of-Box space as JSON (the only kinds Embodia policies observe and act in)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound(space.low), "high": _bound(space.high)}
    raise ValueError(f"cannot describe a {type(space).__name__} space; expected Box or Dict of Box")


def space_from_json(data: dict[str, Any]) -> spaces.Space:
    """The inverse of `space_to_json`, refusing anything else."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "Dict":
        return spaces.Dict({str(k): space_from_json(v) for k, v in data["spaces"].items()})
    if kind == "Box":
        shape = tuple(int(n) for n in data["shape"])
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in "fiu":
            raise InputError(f"Box dtype must be numeric, got {data['dtype']!r}")
        return spaces.Box(_unbound(data["low"], shape, dtype), _unbound(data["high"], shape, dtype), shape, dtype)
    raise InputError(f"expected a space description with type Box or Dict, got {kind!r}")


INIT_ONLY_KWARGS = ("pretrained", "freeze_pretrained")
"""Extractor arguments that say how weights started, not what the network is: the saved weights already hold
what a pretrained checkpoint put there, so a policy file must not send its reader looking for that checkpoint."""


def architecture(policy: Any) -> dict[str, Any]:
    """What it takes to rebuild `policy` (an SB3 `MultiInputActorCriticPolicy`), as plain JSON."""
    params = policy._get_constructor_parameters()
    extractor = params["features_extractor_class"].__name__
    activation = params["activation_fn"].__name__
    if extractor not in _extractors():
        raise InputError(f"features extractor {extractor} is not one a policy file may name: {sorted(_extractors())}")
    if activation not in ACTIVATIONS:
        raise InputError(f"activation {activation} is not one a policy file may name: {sorted(ACTIVATIONS)}")
    kwargs = {k: v for k, v in (params.get("features_extractor_kwargs") or {}).items() if k not in INIT_ONLY_KWARGS}
    if not all(isinstance(v, (int, float, str, bool)) or v is None for v in kwargs.values()):
        raise InputError(f"features_extractor_kwargs must be plain numbers and strings, got {kwargs!r}")
    net_arch = params["net_arch"]
    kind = type(policy).__name__
    if kind not in _policy_classes():
        raise InputError(f"policy class {kind} is not one a policy file may name: {sorted(_policy_classes())}")
    head = {"action_bins": int(params["action_bins"])} if "action_bins" in params else {}
    return {"format": ARCHITECTURE_FORMAT, "policy": kind, **head,
            "observation_space": space_to_json(params["observation_space"]),
            "action_space": space_to_json(params["action_space"]),
            "net_arch": {k: list(v) for k, v in net_arch.items()} if isinstance(net_arch, dict) else list(net_arch),
            "activation_fn": activation, "features_extractor_class": extractor, "features_extractor_kwargs": kwargs,
            **{k: bool(params[k]) for k in _BOOL_KEYS if k in params},
            **{k: float(params[k]) for k in _FLOAT_KEYS if k in params}}


def build_policy(arch: dict[str, Any], device: str = "cpu") -> Any:
    """A fresh SB3 policy with the described architecture (weights still random)."""
    if not isinstance(arch, dict) or arch.get("format") != ARCHITECTURE_FORMAT:
        found = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise InputError(f"expected a policy architecture with format {ARCHITECTURE_FORMAT!r}, found {found!r}")
    extractors = _extractors()
    if arch["features_extractor_class"] not in extractors or arch["activation_fn"] not in ACTIVATIONS:
        raise InputError(f"unknown features extractor {arch['features_extractor_class']!r} or activation "
                         f"{arch['activation_fn']!r}; allowed: {sorted(extractors)}, {sorted(ACTIVATIONS)}")
    classes = _policy_classes()
    kind = arch.get("policy", "MultiInputActorCriticPolicy")
    if kind not in classes:
        raise InputError(f"unknown policy class {kind!r}; allowed: {sorted(classes)}")
    head = {"action_bins": int(arch["action_bins"])} if "action_bins" in arch else {}
    if kind == "BinnedActorCriticPolicy" and not head:
        raise InputError("a BinnedActorCriticPolicy architecture must give action_bins")
    policy = classes[kind](
        space_from_json(arch["observation_space"]), space_from_json(arch["action_space"]), lambda _: 0.0, **head,
        net_arch=arch["net_arch"], activation_fn=ACTIVATIONS[arch["activation_fn"]],
        features_extractor_class=extractors[arch["features_extractor_class"]],
        features_extractor_kwargs=dict(arch.get("features_extractor_kwargs") or {}),
        **{k: arch[k] for k in (*_BOOL_KEYS, *_FLOAT_KEYS) if k in arch})
    return policy.to(device)


def save_policy(policy: Any, path: str | Path) -> Path:
    """Write `policy`'s weights as safetensors, its architecture in the file's metadata (no pickle)."""
    from safetensors.torch import save_model

    path = Path(path)
    save_model(policy, str(path), metadata={METADATA_KEY: json.dumps(architecture(policy))})
    return path


def _refuse_pickle(path: Path) -> None:
    """Pickle-based torch/SB3 files start as a zip archive or a raw pickle; name the problem before reading."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raise UnsafePolicyFileError(
            f"{path} is a pickle-based torch/SB3 file; loading it could run arbitrary code, so Embodia loads only "
            f"safetensors policies ({SUFFIX}). Convert a file you trust with 'embodia convert-policy {path}'")


def read_architecture(path: str | Path) -> dict[str, Any]:
    """The architecture stored in a safetensors policy file's metadata."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for a damaged header
        raise InputError(f"{path} is not a safetensors policy file ({type(error).__name__}: {error})") from error
    if METADATA_KEY not in metadata:
        raise InputError(f"{path} has no {METADATA_KEY!r} metadata; it was not written by agent.policy_io.save_policy")
    try:
        return json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: the architecture metadata is not JSON ({error})") from error


def load_policy(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the SB3 policy described in `path` and load its weights; never unpickles anything."""
    from safetensors.torch import load_model

    path = Path(path)
    policy = build_policy(read_architecture(path), device)
    try:
        load_model(policy, str(path), strict=True, device=device)
    except Exception as error:  # missing/unexpected keys or shapes: the file does not match its own header
        raise InputError(f"{path}: weights do not fit the architecture it describes ({error})") from error
    policy.set_training_mode(False)
    return policy
