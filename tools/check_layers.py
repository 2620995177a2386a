"""Fails when a module or package of ``nlp_lstm`` is on no floor of the layers contract.

import-linter checks the imports of the modules a contract names and says nothing of the rest,
so a new module at the package root would escape every check. Run by ``make lint``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "nlp_lstm"


def children(package_dir: Path) -> list[str]:
    """The package's direct children: modules (``x.py``) and subpackages (``x/__init__.py``)."""
    names = [p.stem for p in package_dir.glob("*.py") if p.name != "__init__.py"]
    names += [p.name for p in package_dir.iterdir() if (p / "__init__.py").is_file()]
    return sorted(names)


def floors(pyproject: Path) -> list[str]:
    """The modules named by the floors contract (the layers contract without containers)."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"]
                    if c["type"] == "layers" and not c.get("containers"))
    return [name.strip() for layer in contract["layers"] for name in re.split(r"[|:]", layer)]


def main() -> int:
    named = set(floors(ROOT / "pyproject.toml"))
    missing = [f"{PACKAGE}.{c}" for c in children(ROOT / PACKAGE) if f"{PACKAGE}.{c}" not in named]
    if missing:
        print("error: on no floor of the layers contract in pyproject.toml (so import-linter "
              "checks none of their imports): " + ", ".join(missing), file=sys.stderr)
        return 1
    print(f"layers: all {len(named)} children of {PACKAGE} are on a floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
