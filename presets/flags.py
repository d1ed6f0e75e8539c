"""Print a preset as `dvc exp run` flags, after checking it against the params schema.

    dvc exp run $(python presets/flags.py zaremba-medium)

A preset is a YAML file here mapping dotted params keys to values; each becomes one `-S`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.config import parse_params  # noqa: E402
from pipeline.errors import UserError  # noqa: E402

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict:
    path = HERE / f"{name}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in HERE.glob("*.yaml"))
        raise UserError(f"unknown preset {name!r}; allowed {names}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def apply(params: dict, preset: dict) -> dict:
    """params with every leaf of the preset set: what its `flags` make `dvc exp run -S` do."""
    for key, value in leaves(preset).items():
        *parents, last = key.split(".")
        node = params
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return params


def leaves(preset: dict, prefix: str = "") -> dict:
    """{"a.b": {"c": 1}} -> {"a.b.c": 1}: one `-S` per scalar or list (an empty dict stays)."""
    out = {}
    for k, v in preset.items():
        if isinstance(v, dict) and v:
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def dump(value) -> str:
    """A value in DVC's (Hydra's) override grammar, without spaces: `$(...)` splits on them."""
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    if isinstance(value, dict):  # only the empty dict reaches here (see leaves)
        return "{}"
    return yaml.safe_dump(value).strip().removesuffix("\n...")


def flags(preset: dict) -> list[str]:
    return [arg for k, v in leaves(preset).items() for arg in ("-S", f"{k}={dump(v)}")]


def main() -> None:
    if len(sys.argv) != 2:
        print(f"usage: python {sys.argv[0]} PRESET", file=sys.stderr)
        sys.exit(2)
    try:
        preset = load(sys.argv[1])
        params = yaml.safe_load((HERE.parent / "params.yaml").read_text(encoding="utf-8"))
        parse_params(apply(params, preset), f"params.yaml + presets/{sys.argv[1]}.yaml")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(" ".join(flags(preset)))


if __name__ == "__main__":
    main()
