"""The sentiment task's linear peer, side by side with our checkpoints: what a user would pick
instead of an LSTM, TF-IDF unigrams and bigrams into a logistic regression (scikit-learn), on
exactly our splits (the data module's own sources: SST-2 dev as ``val``; IMDB's held-out last
2,500 training reviews as ``val``; a ``test`` split wherever the data root has one).

    NLP_LSTM_DATA=../shared/data python -m benchmarks.linear_peer --data sst2 imdb \\
        [--ckpt sst2=RUN/checkpoints/best.ckpt ...] [--ckpt imdb:whole=PATH ...] \\
        [--out benchmarks/results]

The peer: ``TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)``
(lowercased, scikit-learn's word pattern) and ``LogisticRegression(solver="liblinear")``,
whose C is chosen from ``C_GRID`` on a stratified 10% of the training split held out (seed 0),
then refitted on the whole training split: no evaluation split is looked at before scoring.
It is deterministic, so it runs once; its time is the selection plus the final fit.

Ours: every ``--ckpt DATA=PATH`` (give one per seed) scored by ``nlp_lstm.drivers.evaluate``
on the same split, with the data settings the checkpoint was trained with (a model trained on
whole reviews is scored on whole reviews), as ``nlp-lstm eval ckpt_path=PATH split=val`` would;
mean ± sample std over the checkpoints. Rows go to ``OUT/linear_peer.json`` and a table is printed.

Needs the optional extra: ``pip install -e '.[text-peers]'`` (scikit-learn).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate

from nlp_lstm.core.cli import bad_input_exits, compose_config
from nlp_lstm.data.errors import DataError

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def splits(data: str, overrides: Sequence[str] = ()) -> tuple[dict[str, list], tuple[str, ...]]:
    """The ``(text, label index)`` pairs of ``train`` and every evaluation split that ``data=``
    has under the data root (``test`` only where present), and the label names."""
    cfg = compose_config("eval", ["task=sentiment", f"data={data}", "ckpt_path=unused",
                                  *overrides])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    found = {"train": datamodule._examples("train"), "val": datamodule._examples("val")}
    with contextlib.suppress(DataError, ValueError):  # no test split under this data root
        found["test"] = datamodule._examples("test")
    return found, tuple(datamodule.labels)


def linear_peer(train: Sequence[tuple[str, int]], evaluation: dict[str, Sequence[tuple[str, int]]],
                c_grid: Sequence[float] = C_GRID, seed: int = 0) -> dict[str, Any]:
    """Fits the peer on ``train`` (C chosen on a held-out tenth of it) and returns its accuracy
    on each split of ``evaluation``, the chosen C and the seconds it took to fit."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    def vectorizer() -> TfidfVectorizer:
        return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)

    def classifier(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, solver="liblinear", max_iter=1000)

    texts, labels = [t for t, _ in train], [y for _, y in train]
    start = time.perf_counter()
    fit_texts, held_texts, fit_labels, held_labels = train_test_split(
        texts, labels, test_size=0.1, random_state=seed, stratify=labels)
    features = vectorizer().fit(fit_texts)  # one vocabulary for the whole grid
    fit_x, held_x = features.transform(fit_texts), features.transform(held_texts)
    held_out = {c: float(classifier(c).fit(fit_x, fit_labels).score(held_x, held_labels))
                for c in c_grid}
    best = max(c_grid, key=lambda c: (held_out[c], -c))  # ties: the stronger regulariser
    features = vectorizer().fit(texts)
    model = classifier(best).fit(features.transform(texts), labels)
    seconds = time.perf_counter() - start
    scores = {split: float(model.score(features.transform([t for t, _ in pairs]),
                                       [y for _, y in pairs]))
              for split, pairs in evaluation.items()}
    return {"accuracy": scores, "C": best, "held_out": held_out, "fit_seconds": round(seconds, 1)}


def check_trained_on(checkpoint: str, data: str) -> None:
    """A ValueError unless ``checkpoint`` records ``data=`` as its data (or records none)."""
    from nlp_lstm.training.checkpoint import read_checkpoint

    trained = (read_checkpoint(checkpoint).get("nlp_lstm", {}).get("data") or {}).get("choice")
    if trained not in (None, data):
        raise ValueError(f"{checkpoint} was trained on data={trained}, not data={data}")


def ours(checkpoint: str, split: str, threads: int, overrides: Sequence[str] = ()) -> float:
    """Our checkpoint's accuracy on ``split`` of the data it was trained on, as ``nlp-lstm eval
    ckpt_path=... split=...`` reports it: with the checkpoint's own data settings (its length
    policy, say), ``overrides`` applied to them."""
    import torch

    from nlp_lstm.drivers.evaluate import evaluate

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        cfg = compose_config("eval", ["task=sentiment", f"ckpt_path={checkpoint}",
                                      f"split={split}", f"output={folder}/metrics.json"])
        return float(evaluate(cfg, trained_data=list(overrides))[f"{split}/acc"])


def mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.linear_peer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["sst2", "imdb"],
                        help="data= configs of the sentiment task")
    parser.add_argument("--ckpt", action="append", default=[], metavar="DATA[:NAME]=PATH",
                        help="one of our checkpoints to score beside the peer (one per seed; "
                             "NAME, default ours, names a row: its seeds are averaged)")
    parser.add_argument("--override", action="append", default=[],
                        help="a data.* override for every data set (e.g. data.source.val=...)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    checkpoints: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for item in args.ckpt:
        key, sep, path = item.partition("=")
        data, _, name = key.partition(":")
        if not sep or not path or data not in args.data:
            parser.error(f"--ckpt must be DATA[:NAME]=PATH with DATA one of {args.data}, got "
                         f"{item!r}")
        checkpoints[data][name or "ours"].append(path)

    rows: list[dict[str, Any]] = []
    with bad_input_exits():
        for data, named in checkpoints.items():
            for path in (p for paths in named.values() for p in paths):
                check_trained_on(path, data)  # once a checkpoint, before any fitting
        for data in args.data:
            found, _ = splits(data, args.override)
            evaluation = {s: pairs for s, pairs in found.items() if s != "train"}
            peer = linear_peer(found["train"], evaluation)
            for split, accuracy in peer["accuracy"].items():
                rows.append({"data": data, "split": split, "model": "tfidf-logreg",
                             "accuracy": [accuracy], "examples": len(evaluation[split]),
                             "train_examples": len(found["train"]), "C": peer["C"],
                             "fit_seconds": peer["fit_seconds"]})
                for name, paths in checkpoints[data].items():
                    scores = [ours(path, split, args.threads, args.override)
                              for path in paths]
                    rows.append({"data": data, "split": split, "model": name,
                                 "accuracy": scores, "examples": len(evaluation[split]),
                                 "checkpoints": paths})

    print("| data | split | model | accuracy | runs | examples | fit s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['data']} | {row['split']} | {row['model']} | {mean_std(row['accuracy'])} "
              f"| {len(row['accuracy'])} | {row['examples']:,} | {row.get('fit_seconds', '')} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "linear_peer.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
