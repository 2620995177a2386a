"""eval and predict on a checkpoint made in the test session, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from nlp_lstm import __version__
from nlp_lstm.commands.predict import main as predict_main
from nlp_lstm.core.cli import compose_config
from nlp_lstm.drivers.evaluate import evaluate


def run_module(module: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NLP_LSTM_DEBUG": ""})


def predict(capsys, *args: str) -> tuple[int, str, str]:
    try:
        predict_main(list(args), task="sentiment")
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_prints_one_json_object_per_text(checkpoint, capsys):
    texts = ["The plot was not good.", "qwerty zxcv"]  # the second is only unknown words
    code, out, _ = predict(capsys, "--ckpt", str(checkpoint), *texts)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["text"] for r in rows] == texts
    for r in rows:
        assert r["label"] in ("negative", "positive")
        assert set(r["probs"]) == {"negative", "positive"}


def test_predict_reads_a_file(checkpoint, capsys, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("The film was great.\nThe cast was awful.\n")
    code, out, _ = predict(capsys, "--ckpt", str(checkpoint), "--input", str(f))
    assert code == 0 and len(out.splitlines()) == 2


def _tampered(tmp_path: Path, checkpoint: Path) -> Path:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    raw = torch.load(checkpoint, weights_only=True)
    raw["payload"] = Payload()
    path = tmp_path / "tampered.ckpt"
    torch.save(raw, path)
    return path


def _other_task(tmp_path: Path, checkpoint: Path) -> Path:
    raw = torch.load(checkpoint, weights_only=True)
    raw["nlp_lstm"]["task"] = "generation"
    path = tmp_path / "generation.ckpt"
    torch.save(raw, path)
    return path


def _format_1(tmp_path: Path, checkpoint: Path) -> Path:
    """A checkpoint as nlp-lstm 0.1 wrote it: no format field, the network on the module."""
    raw = torch.load(checkpoint, weights_only=True)
    raw["nlp_lstm"] = {"task": "sentiment", "model": "SentimentClassifier", "version": "0.1.0"}
    raw["state_dict"] = {k.removeprefix("net."): v for k, v in raw["state_dict"].items()}
    path = tmp_path / "format1.ckpt"
    torch.save(raw, path)
    return path


def _corrupt(tmp_path: Path, checkpoint: Path) -> Path:
    path = tmp_path / "corrupt.ckpt"
    path.write_bytes(checkpoint.read_bytes()[:1000])
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t, c: ["--ckpt", str(t / "missing.ckpt"), "hi"], "checkpoint not found"),
        (lambda t, c: ["--ckpt", str(_corrupt(t, c)), "hi"], "not a readable checkpoint"),
        (lambda t, c: ["--ckpt", str(_tampered(t, c)), "hi"], "refusing to load"),
        (lambda t, c: ["--ckpt", str(_other_task(t, c)), "hi"], "'generation' checkpoint"),
        (lambda t, c: ["--ckpt", str(_format_1(t, c)), "hi"],
         "is in checkpoint format 1 (written by nlp-lstm 0.1.0); this version "
         f"({__version__}) reads "
         "format 2: retrain the model"),
        (lambda t, c: ["--ckpt", str(c), "   "], "argument 1 is empty or whitespace"),
        (lambda t, c: ["--ckpt", str(c), ""], "argument 1 is empty"),
        (lambda t, c: ["--ckpt", str(c)], "no input"),
        (lambda t, c: ["--ckpt", str(c), "--input", str(t / "nofile.txt")], "not found"),
        (lambda t, c: ["--ckpt", str(c), "--input", str(_write(t / "e.txt", b""))], "is empty"),
        (lambda t, c: ["--ckpt", str(c), "--input", str(_write(t / "b.txt", b"ok\n\xff\n"))],
         "not valid UTF-8"),
    ],
)
def test_predict_bad_input_exits_2_with_one_line(make_args, message, checkpoint, tmp_path, capsys):
    code, out, err = predict(capsys, *make_args(tmp_path, checkpoint))
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "pwned").exists()  # the tampered payload never ran


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_eval_metrics_and_json_file(checkpoint, tmp_path, capsys):
    out_file = tmp_path / "m.json"
    metrics = evaluate(compose_config("eval", ["task=sentiment",
        f"ckpt_path={checkpoint}", "data.source.num_examples=600", "split=val",
        f"output={out_file}", "accelerator=cpu"]))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == metrics == json.loads(out_file.read_text())
    assert 0.0 <= metrics["val/acc"] <= 1.0 and metrics["examples"] == 60
    run_metrics = json.loads((checkpoint.parent.parent / "metrics.json").read_text())
    assert metrics["val/acc"] == pytest.approx(run_metrics["val/acc"])  # same model, same split


def test_eval_and_predict_from_the_command_line(checkpoint, tmp_path):
    """End to end in fresh processes: the checkpoint alone suffices."""
    ev = run_module("tasks.sentiment.eval", f"ckpt_path={checkpoint}",
                    "data.source.num_examples=600", f"output={tmp_path / 'e.json'}")
    assert ev.returncode == 0, ev.stderr
    assert "test/acc" in json.loads(ev.stdout.strip().splitlines()[-1])
    pr = run_module("tasks.sentiment.predict", "--ckpt", str(checkpoint), "--input", "-",
                    stdin="The acting was dull at first, but brilliant in the end.\n")
    assert pr.returncode == 0, pr.stderr
    assert json.loads(pr.stdout)["label"] in ("negative", "positive")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ckpt_path={ckpt}", "nosuchkey=1"], "Could not override 'nosuchkey'"),
        (["ckpt_path={ckpt}", "data=nosuchdata"], "nosuchdata"),
        (["ckpt_path={ckpt}", "split=nosplit"], "split='nosplit'"),
        (["ckpt_path={tmp}/missing.ckpt"], "checkpoint not found"),
        ([], "ckpt_path"),
    ],
)
def test_eval_bad_input_exits_2_without_traceback(args, message, checkpoint, tmp_path):
    args = [a.format(ckpt=checkpoint, tmp=tmp_path) for a in args]
    proc = run_module("tasks.sentiment.eval", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_train_bad_value_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", "model.pooling=median", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NLP_LSTM_DEBUG": ""},
    )
    assert proc.returncode == 2 and "pooling must be one of" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resuming_from_an_old_format_checkpoint_exits_2(checkpoint, tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", f"ckpt_path={_format_1(tmp_path, checkpoint)}",
         "data.source.num_examples=600", "trainer.max_epochs=3", f"hydra.run.dir={tmp_path}/run",
         "model.embedding_dim=32", "model.encoder.hidden_size=32"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NLP_LSTM_DEBUG": ""},
    )
    assert proc.returncode == 2, proc.stderr
    assert "error: the checkpoint is in checkpoint format 1" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("model", "encoder", "fits"), [
    ("sentiment_bilstm", "transformer", True), ("sentiment_bilstm", "gru", True),
    ("lstm_lm", "transformer", True), ("sentiment_student", "gru", True),
    ("sentiment_student", "lstm", True), ("sentiment_bow", "lstm", True),
    ("sentiment_student", "transformer", False), ("sentiment_bow", "gru", False),
])
def test_an_encoder_choice_without_settings_for_the_model_is_refused(model, encoder, fits):
    """model_encoder is an optional default: without the check a missing file would leave the
    LSTM in place under encoder=transformer, silently."""
    from nlp_lstm.core.cli import check_encoder_choice

    choices = {"model": model, "encoder": encoder}
    if fits:
        check_encoder_choice(choices)
    else:
        with pytest.raises(ValueError, match=f"encoder={encoder} does not fit model={model}"):
            check_encoder_choice(choices)


def test_train_with_an_encoder_the_model_lacks_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", "model=sentiment_student", "encoder=transformer",
         f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NLP_LSTM_DEBUG": ""},
    )
    assert proc.returncode == 2, proc.stderr
    assert "takes encoder=lstm | gru" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "config.yaml").exists()  # refused before anything is written


# ------------------------------------------------------- the nlp-lstm console script
def nlp_lstm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The installed console script (next to this interpreter), in a fresh process."""
    script = Path(sys.executable).parent / "nlp-lstm"
    return subprocess.run([str(script), *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "NLP_LSTM_DEBUG": ""})


def test_the_console_script_lists_its_commands_and_refuses_unknown_ones():
    listed = nlp_lstm("--help")
    assert listed.returncode == 0
    for command in ("train", "eval", "predict", "translate", "generate", "export", "serve",
                    "data-stats", "plot"):
        assert f"  {command} " in listed.stdout
    unknown = nlp_lstm("fit")
    assert unknown.returncode == 2 and "unknown command 'fit'" in unknown.stderr


def test_the_console_script_evaluates_and_predicts_any_task(checkpoint, tmp_path):
    """eval without task= reads it from the checkpoint; predict serves every task."""
    ev = nlp_lstm("eval", f"ckpt_path={checkpoint}", "data.source.num_examples=600",
                  "split=val", f"output={tmp_path / 'e.json'}")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert metrics == json.loads((tmp_path / "e.json").read_text()) and "val/acc" in metrics
    pr = nlp_lstm("predict", "--ckpt", str(checkpoint), "The plot was not good.")
    assert pr.returncode == 0, pr.stderr
    assert json.loads(pr.stdout)["text"] == "The plot was not good."
    bad = nlp_lstm("predict", "--ckpt", str(checkpoint), " ")
    assert bad.returncode == 2 and "argument 1 is empty or whitespace" in bad.stderr


def test_train_runs_through_train_py_and_the_console_script(tmp_path):
    for command in ([sys.executable, "train.py"], [str(Path(sys.executable).parent / "nlp-lstm"),
                                                   "train"]):
        out = tmp_path / command[-1].replace(".", "_")
        proc = subprocess.run([*command, "debug=fdr", "trainer.accelerator=cpu",
                               f"hydra.run.dir={out}", f"paths.output_dir={out}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (out / "config.yaml").is_file()


@pytest.mark.parametrize("module", ["tasks.sentiment.eval", "tasks.translation.eval",
                                    "tasks.generation.eval", "tasks.sentiment.predict",
                                    "tasks.translation.translate", "tasks.generation.generate",
                                    "tasks.export", "tasks.serve", "tasks.plot",
                                    "tasks.data_stats"])
def test_every_documented_module_command_still_answers(module):
    proc = run_module(module, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
