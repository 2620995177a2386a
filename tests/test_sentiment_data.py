"""Sentiment sources: SST-2 (downloaded from a local server, or read from the data root) and the
user's TSV files; the data_stats command."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from conftest import HTTPFiles

from nlp_lstm.core.cli import compose_config
from nlp_lstm.data import TokenizerTrainer
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.evaluation.stats import data_stats
from nlp_lstm.sentiment import SentimentDataModule
from nlp_lstm.sentiment.data import SST2, LabeledTSV

TRAIN = "sentence\tlabel\na gripping film \t1\ndull and flat \t0\nnot bad at all \t1\n"
DEV = "sentence\tlabel\nit is great .\t1\nit is awful .\t0\n"


def _glue_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("SST-2/train.tsv", TRAIN)
        z.writestr("SST-2/dev.tsv", DEV)
        z.writestr("SST-2/test.tsv", "index\tsentence\n0\tunlabeled\n")
    return buffer.getvalue()


def test_sst2_downloads_missing_files_into_the_root(server: HTTPFiles, tmp_path: Path):
    server.files["/SST-2.zip"] = _glue_zip()
    mirror = {f"sst2/{name}": {"url": server.url("/SST-2.zip"), "member": f"SST-2/{name}"}
              for name in ("train.tsv", "dev.tsv")}
    dm = SentimentDataModule(SST2(urls=mirror), root=str(tmp_path),
                             loader=LoaderOptions(batch_size=2))
    dm.prepare_data()
    dm.setup()
    assert (tmp_path / "sst2" / "train.tsv").read_text() == TRAIN
    assert len(dm.dataset("train")) == 3 and len(dm.dataset("val")) == 2
    assert dm.splits == ("train", "val") and dm.labels == ("negative", "positive")
    assert server.hits["/SST-2.zip"] == 1  # the archive is fetched once for both files


def test_sst2_offline_error_names_url_path_and_data_root(server: HTTPFiles, tmp_path: Path):
    mirror = {"sst2/train.tsv": {"url": server.url("/gone.zip"), "member": "SST-2/train.tsv"}}
    with pytest.raises(DataError) as err:
        SST2(urls=mirror).prepare(tmp_path)
    message = str(err.value)
    assert "/gone.zip" in message and str(tmp_path / "sst2") in message
    assert "data.root" in message and "\n" not in message
    assert not list((tmp_path / "sst2").glob("*.tsv"))


def test_sst2_without_download_says_where_to_put_it(tmp_path: Path):
    with pytest.raises(DataError, match=r"data\.root"):
        SST2(download=False).prepare(tmp_path)


def _tsv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_user_tsv_any_label_names_and_header(tmp_path: Path):
    train = _tsv(tmp_path / "train.tsv", "text\tlabel\ngreat\tpos\nawful\tneg\nfine\tneutral\n")
    val = _tsv(tmp_path / "val.tsv", "so great\tpos\n")  # no header here
    dm = SentimentDataModule(LabeledTSV(train, val), loader=LoaderOptions(batch_size=4))
    dm.setup()
    assert dm.labels == ("neg", "neutral", "pos")
    assert dm.dataset("val")[0][1] == 2
    assert dm.splits == ("train", "val")


def test_user_tsv_malformed_line_raises_or_is_skipped_and_counted(tmp_path: Path):
    train = _tsv(tmp_path / "train.tsv", "good\t1\nno tab here\nbad\t0\n")
    with pytest.raises(DataError, match=r"train.tsv, line 2"):
        SentimentDataModule(LabeledTSV(train), loader=LoaderOptions(batch_size=2)).setup()
    dm = SentimentDataModule(LabeledTSV(train), loader=LoaderOptions(batch_size=2, on_error="skip"))
    dm.setup()
    assert len(dm.dataset("train")) == 2 and dm.skipped["train"] == 1
    assert dm.statistics()["splits"]["train"]["skipped"] == 1


def test_user_tsv_unknown_label_in_val(tmp_path: Path):
    train = _tsv(tmp_path / "train.tsv", "good\tpos\nbad\tneg\n")
    val = _tsv(tmp_path / "val.tsv", "meh\tmixed\n")
    dm = SentimentDataModule(LabeledTSV(train, val), loader=LoaderOptions(batch_size=2))
    dm.setup()
    with pytest.raises(DataError, match="'mixed' is not one of"):
        dm.dataset("val")


def test_tokenizer_is_cached_once_and_reused(tmp_path: Path):
    def make() -> SentimentDataModule:
        return SentimentDataModule(LabeledTSV(_tsv(tmp_path / "t.tsv", "a b\tx\nc\ty\n")),
                                   tokenizer=TokenizerTrainer("word"), cache_dir=str(tmp_path),
                                   loader=LoaderOptions(batch_size=2))

    first = make()
    first.prepare_data()
    cached = list((tmp_path / "tokenizers").glob("*.json"))
    assert len(cached) == 1
    second = make()
    second.setup()  # loads the cached file, as every DDP rank does
    assert second.tokenizer.to_json() == cached[0].read_text()


def test_data_stats_json_line(capsys):
    cfg = compose_config("data_stats", ["data.source.num_examples=500"],
                         return_hydra_config=True)
    stats = data_stats(cfg, name=cfg.hydra.runtime.choices.data)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == stats and last["data"] == "sentiment_synthetic"
    assert last["splits"]["train"]["examples"] == 400
    assert set(last["splits"]["val"]) == {"examples", "tokens", "characters"}
    assert 0.0 <= last["padding_waste"] < 0.10 and last["vocab_size"] > 4


@pytest.mark.realdata
def test_sst2_real_counts_and_padding_waste(tmp_path: Path):
    root = os.environ.get("NLP_LSTM_DATA")
    if not root:
        pytest.skip("set NLP_LSTM_DATA to the data root")
    cfg = compose_config("data_stats", ["data=sst2", f"paths.data_dir={root}",
                                        f"paths.cache_dir={tmp_path}"], return_hydra_config=True)
    stats = data_stats(cfg, name="sst2")
    assert stats["splits"]["train"]["examples"] == 67_349
    assert stats["splits"]["val"]["examples"] == 872
    assert stats["padding_waste"] < 0.10
