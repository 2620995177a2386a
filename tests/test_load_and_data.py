"""``nlp_lstm.load`` reads a checkpoint or an export of the same model and predicts alike; a
checkpoint remembers the data it was trained on, which ``nlp-lstm eval`` scores unless given
``data=``, and names when it cannot be found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_train

import nlp_lstm
from nlp_lstm.commands.eval import main as eval_main
from nlp_lstm.commands.export import export
from nlp_lstm.drivers.train import train
from nlp_lstm.training.checkpoint import CheckpointError, read_checkpoint

TEXTS = ["a fine , moving film .", "dull and far too long .", "it is a film ."]


def test_load_takes_a_checkpoint_or_an_export_and_predicts_alike(checkpoint, tmp_path,
                                                                  one_thread):
    export(checkpoint, tmp_path / "export")
    from_checkpoint = nlp_lstm.load(checkpoint)
    from_export = nlp_lstm.load(tmp_path / "export")
    assert type(from_checkpoint).__module__.startswith("nlp_lstm.sentiment.")
    assert type(from_export).__name__ == "OnnxClassifier"
    (ours, cut), (theirs, cut_onnx) = from_checkpoint.predict(TEXTS), from_export.predict(TEXTS)
    assert cut == cut_onnx == 0
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-5)


def test_load_refuses_what_it_cannot_read(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file or export directory"):
        nlp_lstm.load(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="providers and threads apply to ONNX exports"):
        nlp_lstm.load(checkpoint, threads=2)
    with pytest.raises(CheckpointError, match="'generation'"):
        nlp_lstm.load(checkpoint, task="generation")


def _tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tsv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny sentiment model trained on a user's TSV files (not the task's default data)."""
    folder = tmp_path_factory.mktemp("tsv")
    words = {"pos": ["good", "great", "fine", "moving"], "neg": ["bad", "dull", "awful", "long"]}
    rows = [(f"a {words[label][i % 4]} film number {i}", label)
            for i in range(120) for label in ("pos", "neg")]
    train_file = _tsv(folder / "train.tsv", rows[:200])
    val_file = _tsv(folder / "val.tsv", rows[200:])  # 40 rows
    overrides = [o for o in TINY if not o.startswith("data.source.")]
    train(compose_train(folder / "run", [*overrides, "data=tsv", f"data.source.train={train_file}",
                                         f"data.source.val={val_file}"]))
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    return Path(metrics["checkpoint"]), train_file, val_file


def _eval(argv: list[str], output: Path) -> dict:
    eval_main([*argv, f"output={output}"])
    return json.loads(output.read_text())


def test_the_checkpoint_records_its_data_unresolved(tsv_run):
    checkpoint, _, val_file = tsv_run
    data = read_checkpoint(checkpoint)["nlp_lstm"]["data"]
    assert data["config"]["source"]["val"] == str(val_file)
    assert data["config"]["root"] == "${paths.data_dir}"  # the evaluating machine's data root


def test_eval_without_data_scores_the_checkpoint_on_its_own_data(tsv_run, tmp_path, one_thread):
    checkpoint, train_file, val_file = tsv_run
    own = _eval([f"ckpt_path={checkpoint}", "split=val"], tmp_path / "own.json")
    given = _eval([f"ckpt_path={checkpoint}", "split=val", "data=tsv",
                   f"data.source.train={train_file}", f"data.source.val={val_file}"],
                  tmp_path / "given.json")
    assert own["examples"] == given["examples"] == 40
    assert own["val/acc"] == given["val/acc"]
    # data.* overrides apply to the checkpoint's data: the training file scored as val.
    swapped = _eval([f"ckpt_path={checkpoint}", "split=val", f"data.source.val={train_file}"],
                    tmp_path / "swapped.json")
    assert swapped["examples"] == 200



def test_eval_reads_a_checkpoint_whose_data_config_is_flat(tsv_run, tmp_path, one_thread):
    """0.3.0's first builds recorded the loader options at the top of the data node
    (``batch_size``, not ``loader.batch_size``); eval nests them."""
    checkpoint, _, _ = tsv_run
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = state["nlp_lstm"]["data"]["config"]
    loader = config.pop("loader")
    del loader["_target_"]
    config.update(loader)  # as 0.3.0's first builds wrote it
    assert "batch_size" in config and "loader" not in config
    flat = tmp_path / "flat.ckpt"
    torch.save(state, flat)
    scored = _eval([f"ckpt_path={flat}", "split=val"], tmp_path / "flat.json")
    assert scored["examples"] == 40

def test_eval_names_the_checkpoints_data_when_it_is_missing(tsv_run, tmp_path, capsys):
    checkpoint, _, val_file = tsv_run
    moved = tmp_path / "elsewhere.tsv"
    val_file.rename(moved)
    try:
        with pytest.raises(SystemExit) as e:
            eval_main([f"ckpt_path={checkpoint}", "split=val", f"output={tmp_path / 'm.json'}"])
        lines = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(lines) == 1, lines
        assert lines[0].startswith(f"error: {checkpoint} was trained on data=")
        assert str(val_file) in lines[0] and "give data=" in lines[0]
    finally:
        moved.rename(val_file)
