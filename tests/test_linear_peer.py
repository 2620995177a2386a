"""The sentiment task's linear peer (``benchmarks/linear_peer.py``), on the embedded corpus;
skipped without its extra (``pip install -e '.[text-peers]'``)."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("sklearn")

from benchmarks.linear_peer import linear_peer, main

SMALL = "data.source.num_examples=600"  # the corpus the session's checkpoint was trained on


def test_the_peer_chooses_c_on_training_data_only():
    train = [(f"a {w} film {i}", y) for i in range(60)
             for w, y in (("good", 1), ("great", 1), ("bad", 0), ("dull", 0))]
    evaluation = {"same": [("a good film", 1), ("a dull film", 0)],
                  "flipped": [("a good film", 0), ("a dull film", 1)]}
    peer = linear_peer(train, evaluation, c_grid=(0.5, 4.0))
    assert peer["accuracy"] == {"same": 1.0, "flipped": 0.0}  # fitted without looking at either
    assert peer["C"] in (0.5, 4.0) and set(peer["held_out"]) == {0.5, 4.0}


def test_one_command_prints_the_peer_beside_our_checkpoint(checkpoint, tmp_path, capsys,
                                                            one_thread):
    rows = main(["--data", "sentiment_synthetic", "--override", SMALL, "--threads", "1",
                 "--ckpt", f"sentiment_synthetic={checkpoint}",
                 "--ckpt", f"sentiment_synthetic:again={checkpoint}", "--out", str(tmp_path)])
    assert [(r["split"], r["model"]) for r in rows] == [
        ("val", "tfidf-logreg"), ("val", "ours"), ("val", "again"),
        ("test", "tfidf-logreg"), ("test", "ours"), ("test", "again")]
    assert rows[1]["accuracy"] == rows[2]["accuracy"]  # the same checkpoint, named twice
    peer, ours = rows[:2]
    assert peer["examples"] == ours["examples"] == 60 and peer["train_examples"] == 480
    # The embedded corpus turns on word order (negation, contrast): near chance for a bag of
    # n-grams on 480 sentences, which the accuracy need not beat here.
    assert 0.0 <= peer["accuracy"][0] <= 1.0 and 0.0 <= ours["accuracy"][0] <= 1.0
    assert peer["C"] in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    printed = capsys.readouterr().out
    assert "| sentiment_synthetic | val | tfidf-logreg |" in printed
    assert "| sentiment_synthetic | val | ours |" in printed
    assert json.loads((tmp_path / "linear_peer.json").read_text()) == rows


def test_a_checkpoint_for_data_not_asked_for_is_refused(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--data", "sentiment_synthetic", "--ckpt", "imdb=x.ckpt", "--out", str(tmp_path)])
    assert e.value.code == 2
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["nlp_lstm"]["data"] = {"choice": "sst2", "config": {}}
    torch.save(state, tmp_path / "sst2.ckpt")
    with pytest.raises(SystemExit) as e:
        main(["--data", "sentiment_synthetic", "--override", SMALL,
              "--ckpt", f"sentiment_synthetic={tmp_path / 'sst2.ckpt'}", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "was trained on data=sst2, not data=sentiment_synthetic" in capsys.readouterr().err
