"""The built wheel works on its own: installed with the locked dependencies into a fresh venv
(offline, from uv's cache that ``make setup`` filled), its ``nlp-lstm`` composes the configs it
carries, trains, evaluates and reads a user's own config folder, from an empty directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

UV = ROOT / ".venv" / "uv" / "bin" / "uv"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding the lock's packages and the project's wheel (not editable)."""
    uv = UV if UV.is_file() else shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (make setup installs it unless USE_UV=0)")
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLP_LSTM_", "VIRTUAL_ENV"))}
    env |= {"HOME": str(tmp), "NLP_LSTM_CACHE": str(tmp / "cache"),
            "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))}
    # Built from a copy: setuptools' build/ folder would otherwise keep modules since deleted.
    source = tmp / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "outputs", "multirun", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache", "*.ckpt"))
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
          "--no-build-isolation", "--quiet", "-w", str(tmp / "dist")], cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("nlp_lstm-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    python = str(venv / "bin" / "python")
    _run([str(uv), "pip", "install", "--offline", "--quiet", "--python", python,
          "--require-hashes", "-r", str(ROOT / "requirements.lock")], cwd=tmp, env=env)
    _run([str(uv), "pip", "install", "--offline", "--quiet", "--python", python, "--no-deps",
          str(wheel)], cwd=tmp, env=env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return wheel, env


def test_the_repository_conf_is_the_package_conf() -> None:
    """One set of configs: conf/ at the top of the repository links to nlp_lstm/conf."""
    assert (ROOT / "conf").is_symlink()
    assert (ROOT / "conf").resolve() == (ROOT / "nlp_lstm" / "conf").resolve()
    assert len(list((ROOT / "conf").rglob("*.yaml"))) > 50


def test_installed_wheel_runs_from_an_empty_directory(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    wheel, env = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {"nlp_lstm/" + p.relative_to(ROOT / "nlp_lstm").as_posix()
               for p in (ROOT / "nlp_lstm" / "conf").rglob("*.yaml")}
    assert configs <= names, sorted(configs - names)[:5]
    assert not any(n.startswith(("tests/", "benchmarks/", "tasks/")) for n in names)

    empty = tmp_path / "empty"
    empty.mkdir()
    # Not the repository's code: the installed package, from site-packages.
    where = _run(["python", "-c", "import nlp_lstm; print(nlp_lstm.__file__)"], empty, env)
    assert "site-packages" in where.stdout and str(ROOT) not in where.stdout

    usage = _run(["nlp-lstm", "--help"], empty, env).stdout
    assert "train" in usage and "eval" in usage

    _run(["nlp-lstm", "train", "debug=fdr", "hydra.run.dir=fdr"], empty, env)
    assert (empty / "fdr" / "config.yaml").is_file()
    # fast_dev_run writes no checkpoint: a short real run (debug=limit) gives one to evaluate.
    _run(["nlp-lstm", "train", "debug=limit", "hydra.run.dir=run"], empty, env)
    checkpoint = empty / "run" / "checkpoints" / "best.ckpt"
    scored = _run(["nlp-lstm", "eval", f"ckpt_path={checkpoint}", "split=val"], empty, env)
    assert "val/acc" in scored.stdout + scored.stderr

    # A user's own config folder, by Hydra's usual means: --config-dir adds it to the search path.
    mine = tmp_path / "myconf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /task: sentiment\n"
        "data:\n  batch_size: 8\n")
    shown = _run(["nlp-lstm", "train", "--config-dir", str(tmp_path / "myconf"),
                  "experiment=mine", "--cfg", "job"], empty, env).stdout
    assert "batch_size: 8" in shown
