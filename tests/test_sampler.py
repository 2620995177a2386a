"""Bucketed batches (coverage, limits, reproducibility, DDP, padding) and LM streams."""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.readers import read_sst2
from nlp_lstm.data.sampler import BucketBatchSampler, StreamBatcher, padding_waste


def _sst2_like(n: int, seed: int = 0) -> list[int]:
    """Skewed lengths in 1..60, most short (like SST-2 phrases), a long tail."""
    rng = random.Random(seed)
    return [min(60, max(1, round(rng.lognormvariate(2.2, 0.7)))) for _ in range(n)]


def _epoch(sampler: BucketBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


CONFIGS = [
    {"batch_size": 32},
    {"max_tokens": 500},
    {"batch_size": 32, "max_tokens": 300},
    {"batch_size": 7, "shuffle": False},
    {"max_tokens": 200, "shuffle": False},
    {"batch_size": 16, "bucket_size_multiplier": 1},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_index_once_per_epoch_and_len_is_exact(config: dict) -> None:
    lengths = _sst2_like(2_000)
    sampler = BucketBatchSampler(lengths, **config)
    for epoch in range(3):
        batches = _epoch(sampler, epoch)
        assert len(sampler) == len(batches)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(lengths)))


def test_batch_size_gives_full_batches_but_one() -> None:
    sampler = BucketBatchSampler(_sst2_like(1_000), batch_size=64)
    sizes = Counter(len(b) for b in _epoch(sampler, 0))
    assert sizes == Counter({64: 1_000 // 64, 1_000 % 64: 1})
    assert len(sampler) == 16


def test_drop_last_drops_the_partial_batch() -> None:
    sampler = BucketBatchSampler(_sst2_like(1_000), batch_size=64, drop_last=True)
    batches = _epoch(sampler, 0)
    assert len(batches) == len(sampler) == 15 and all(len(b) == 64 for b in batches)


def test_max_tokens_is_respected_and_long_examples_stand_alone() -> None:
    lengths = [*_sst2_like(3_000), 900, 1_200]  # two examples longer than max_tokens
    sampler = BucketBatchSampler(lengths, max_tokens=800)
    for epoch in range(2):
        for batch in _epoch(sampler, epoch):
            longest = max(lengths[i] for i in batch)
            assert len(batch) * longest <= 800 or len(batch) == 1
    alone = [b for b in _epoch(sampler, 0) if max(lengths[i] for i in b) > 800]
    assert sorted(alone) == [[3_000], [3_001]]


def test_same_seed_and_epoch_same_batches_other_epoch_or_seed_differs() -> None:
    lengths = _sst2_like(2_000)
    a = BucketBatchSampler(lengths, batch_size=32, seed=3)
    b = BucketBatchSampler(lengths, batch_size=32, seed=3)
    assert _epoch(a, 5) == _epoch(b, 5)
    assert _epoch(a, 5) != _epoch(a, 6)
    assert _epoch(a, 5) != _epoch(BucketBatchSampler(lengths, batch_size=32, seed=4), 5)
    # Shuffled within buckets too: batch contents change, not only their order.
    assert {tuple(sorted(x)) for x in _epoch(a, 5)} != {tuple(sorted(x)) for x in _epoch(a, 6)}


def test_no_shuffle_is_sorted_and_fixed() -> None:
    lengths = _sst2_like(500)
    sampler = BucketBatchSampler(lengths, batch_size=10, shuffle=False)
    first = _epoch(sampler, 0)
    assert first == _epoch(sampler, 1)
    flat = [lengths[i] for b in first for i in b]
    assert flat == sorted(flat)


def test_state_dict_resumes_the_right_shuffle() -> None:
    lengths = _sst2_like(1_000)
    sampler = BucketBatchSampler(lengths, max_tokens=400, seed=11)
    sampler.set_epoch(7)
    state = sampler.state_dict()
    expected = list(sampler)
    resumed = BucketBatchSampler(lengths, max_tokens=400)  # default seed, overwritten
    resumed.load_state_dict(state)
    assert resumed.epoch == 7 and list(resumed) == expected


@pytest.mark.parametrize("config", [{"batch_size": 32}, {"max_tokens": 500}])
@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_get_distinct_shards_and_equal_counts(config: dict, drop_last: bool) -> None:
    lengths = _sst2_like(2_003)
    replicas = 3
    for epoch in range(3):
        shards = []
        for rank in range(replicas):
            sampler = BucketBatchSampler(
                lengths, num_replicas=replicas, rank=rank, drop_last=drop_last, seed=1, **config
            )
            shards.append(_epoch(sampler, epoch))
            assert len(sampler) == len(shards[-1])
        assert len({len(s) for s in shards}) == 1  # same number of steps on every rank
        single = _epoch(BucketBatchSampler(lengths, drop_last=drop_last, seed=1, **config), epoch)
        # The ranks' batches together are the single-process batches: every-R-th of the
        # same list, padded by repeating (or truncated) to a multiple of R.
        together = [b for step in zip(*shards, strict=True) for b in step]
        if drop_last:
            assert together == single[: len(together)] and len(single) - len(together) < 3
            flat = [i for b in together for i in b]
            assert len(flat) == len(set(flat))  # disjoint across ranks
        else:
            pad = len(together) - len(single)
            assert 0 <= pad < replicas
            assert together == single + single[:pad]
            assert sorted({i for b in together for i in b}) == list(range(len(lengths)))


def test_ranks_disjoint_when_batches_split_evenly() -> None:
    lengths = _sst2_like(64 * 12)  # 12 full batches, 4 ranks
    shards = [
        {i for b in BucketBatchSampler(lengths, batch_size=64, num_replicas=4, rank=r) for i in b}
        for r in range(4)
    ]
    assert sum(len(s) for s in shards) == len(lengths)
    assert set().union(*shards) == set(range(len(lengths)))


@pytest.mark.parametrize(
    "config", [{"max_tokens": 2_000}, {"max_tokens": 4_000}, {"batch_size": 64}]
)
def test_bucketing_keeps_padding_waste_small_on_sst2_like_lengths(config: dict) -> None:
    lengths = _sst2_like(20_000)
    sampler = BucketBatchSampler(lengths, **config)
    for epoch in range(2):
        assert padding_waste(_epoch(sampler, epoch), lengths) < 0.10
    # Reference: plain random batches of 64 waste far more.
    order = list(range(len(lengths)))
    random.Random(0).shuffle(order)
    plain = [order[i : i + 64] for i in range(0, len(order), 64)]
    assert padding_waste(plain, lengths) > 0.5


def test_padding_waste_by_hand() -> None:
    lengths = [2, 4, 3, 3]
    # [2, 4] pads 2 positions; [3, 3] none; 12 real tokens.
    assert padding_waste([[0, 1], [2, 3]], lengths) == pytest.approx(2 / 12)
    assert padding_waste([], lengths) == 0.0


def test_works_as_a_dataloader_batch_sampler() -> None:
    lengths = _sst2_like(100)
    sampler = BucketBatchSampler(lengths, batch_size=8)
    loader = DataLoader(list(range(100)), batch_sampler=sampler)
    seen = torch.cat(list(loader))
    assert sorted(seen.tolist()) == list(range(100)) and len(loader) == 13


def test_bucket_sampler_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size, max_tokens"):
        BucketBatchSampler([1, 2])
    with pytest.raises(ValueError, match="rank"):
        BucketBatchSampler([1, 2], batch_size=1, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="lengths"):
        BucketBatchSampler([1, -2], batch_size=1)


def test_empty_data_gives_no_batches() -> None:
    sampler = BucketBatchSampler([], max_tokens=100, num_replicas=2, rank=1)
    assert list(sampler) == [] and len(sampler) == 0


# --- language-model streams --------------------------------------------------------------


def test_stream_shapes_shift_and_continuity() -> None:
    ids = torch.arange(1_000)
    batcher = StreamBatcher(ids, batch_size=4, seq_len=35)
    chunks = list(batcher)
    assert len(chunks) == len(batcher) == 8  # 250 tokens a stream, 249 input steps
    assert [x.shape[1] for x, _ in chunks] == [35] * 7 + [249 - 7 * 35]
    for x, y in chunks:
        assert x.shape == y.shape and x.shape[0] == 4 and x.dtype == torch.long
        assert torch.equal(y[:, :-1], x[:, 1:])  # targets are inputs shifted by one
    for (x0, y0), (x1, _) in itertools.pairwise(chunks):
        assert torch.equal(x1[:, 0], y0[:, -1])  # chunk k+1 continues chunk k in every row
        assert torch.equal(x1[:, 0], x0[:, -1] + 1)
    # Each row is one contiguous stretch of the original sequence.
    rows = torch.cat([x for x, _ in chunks], dim=1)
    assert torch.equal(rows, torch.arange(1_000).view(4, 250)[:, :249])


def test_stream_drop_last_and_indexing() -> None:
    batcher = StreamBatcher(list(range(1_000)), batch_size=4, seq_len=35, drop_last=True)
    assert len(batcher) == 7 and all(x.shape == (4, 35) for x, _ in batcher)
    assert torch.equal(batcher[-1][0], batcher[6][0])
    with pytest.raises(IndexError):
        batcher[7]


def test_stream_ranks_get_distinct_streams_and_equal_chunks() -> None:
    ids = torch.arange(10_007)
    per_rank = [
        StreamBatcher(ids, batch_size=3, seq_len=20, num_replicas=2, rank=r) for r in (0, 1)
    ]
    assert len(per_rank[0]) == len(per_rank[1])
    tokens = [set(torch.cat([x for x, _ in b], dim=1).flatten().tolist()) for b in per_rank]
    assert not tokens[0] & tokens[1]


def test_stream_through_a_dataloader_keeps_order() -> None:
    batcher = StreamBatcher(torch.arange(500), batch_size=2, seq_len=10)
    loaded = list(DataLoader(batcher, batch_size=None, shuffle=False))
    assert all(
        torch.equal(a, c) and torch.equal(b, d)
        for (a, b), (c, d) in zip(loaded, batcher, strict=True)
    )


def test_stream_too_short() -> None:
    with pytest.raises(ValueError, match="too few"):
        StreamBatcher([1, 2, 3], batch_size=2, seq_len=4)


@pytest.mark.realdata
@pytest.mark.skipif(not os.environ.get("NLP_LSTM_DATA"), reason="set NLP_LSTM_DATA")
@pytest.mark.parametrize("config", [{"max_tokens": 3_000}, {"batch_size": 64}])
def test_real_sst2_padding_waste(config: dict) -> None:
    rows = read_sst2(Path(os.environ["NLP_LSTM_DATA"]) / "sst2" / "train.tsv")
    lengths = [len(text.split()) for text, _ in rows]  # whitespace tokens as a proxy
    assert padding_waste(list(BucketBatchSampler(lengths, **config)), lengths) < 0.10


def test_uneven_shards_cover_every_example_exactly_once() -> None:
    lengths = [random.Random(i).randint(1, 30) for i in range(203)]
    for n, batch_size in ((203, 16), (5, 16)):  # the second: fewer batches than ranks at first
        seen: list[int] = []
        counts = set()
        for rank in range(3):
            sampler = BucketBatchSampler(lengths[:n], batch_size=batch_size, shuffle=False,
                                         num_replicas=3, rank=rank, even_shards=False)
            batches = list(sampler)
            counts.add(len(batches))
            assert len(batches) == len(sampler)
            seen += [i for b in batches for i in b]
        assert sorted(seen) == list(range(n))  # every example exactly once
        assert len(counts) == 1  # and every rank the same number of batches


def test_trainer_reshuffles_every_epoch(tmp_path: Path) -> None:
    """Through Lightning, as training runs it: each epoch draws its own batch order from the
    data module's bucketed sampler (Lightning sets the epoch on ``batch_sampler.sampler``
    only; before, every epoch repeated the first one's batches)."""
    import pytorch_lightning as pl

    from nlp_lstm.sentiment import SentimentDataModule
    from nlp_lstm.sentiment.corpus import SyntheticSentiment

    seen: list[tuple[int, int, list[list[int]]]] = []

    class Record(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def on_train_epoch_start(self) -> None:
            seen.append((self.current_epoch, self.trainer.train_dataloader.batch_sampler.epoch,
                         []))

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            seen[-1][2].append(batch["index"].tolist())
            return self.w.sum()  # a loss with a gradient; the rate is 0

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.0)

    dm = SentimentDataModule(SyntheticSentiment(200), loader=LoaderOptions(batch_size=16, seed=3))
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(Record(), datamodule=dm)
    assert [(epoch, sampler_epoch) for epoch, sampler_epoch, _ in seen] == [(0, 0), (1, 1), (2, 2)]
    orders = [batches for _, _, batches in seen]
    assert orders[0] != orders[1] and orders[1] != orders[2]
    # Each epoch is still the whole training split, once.
    assert all(sorted(i for b in batches for i in b) == sorted(i for b in orders[0] for i in b)
               for batches in orders)
    assert len({i for b in orders[0] for i in b}) == sum(len(b) for b in orders[0])
