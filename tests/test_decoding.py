"""Greedy decoding and batched beam search: against each other, against exhaustive search and
teacher forcing, batch invariance, constraints, errors; a tiny Seq2Seq learns to reverse."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nlp_lstm.nn.decoding import Hypothesis, beam_search, greedy, length_penalty
from nlp_lstm.translation.net import Seq2Seq, Seq2SeqState

BOS, EOS = 2, 3


pytestmark = pytest.mark.usefixtures("one_thread")


class ToyModel:
    """A random recurrent model over V >= 4 tokens (<eos> = 3, <bos> = V, an input only) with
    a fake attention over S positions: a state (N, H) row per hypothesis, a pure step, rows
    reordered with index_select. ``bias`` is added to the logits (to favour some tokens)."""

    def __init__(self, vocab=4, hidden=6, positions=3, seed=0, scale=2.0, bias=None):
        g = torch.Generator().manual_seed(seed)
        self.V = self.bos = vocab
        self.w = torch.randn(hidden + vocab + 1, hidden, generator=g, dtype=torch.double)
        self.u = torch.randn(hidden, vocab, generator=g, dtype=torch.double) * scale
        self.a = torch.randn(hidden, positions, generator=g, dtype=torch.double)
        self.bias = torch.zeros(vocab, dtype=torch.double) if bias is None else bias.double()

    def initial(self, batch, seed=1):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, self.w.size(1), generator=g, dtype=torch.double)

    def step(self, tokens, state):
        x = torch.nn.functional.one_hot(tokens, self.V + 1).double()
        h = torch.tanh(torch.cat([state, x], 1) @ self.w)
        return h @ self.u + self.bias, h, (h @ self.a).softmax(1)

    @staticmethod
    def reorder(state, index):
        return state.index_select(0, index)

    def log_prob(self, tokens, state):
        """Teacher forcing: the log-probability of ``tokens`` from one state row (1, H)."""
        total, prev = 0.0, self.bos
        for tok in tokens:
            logits, state, _ = self.step(torch.tensor([prev]), state)
            total += float(logits.log_softmax(1)[0, tok])
            prev = tok
        return total


EOS_TOY = 3


def toy_search(model, batch=3, max_length=4, **kwargs):
    max_lengths = torch.full((batch,), max_length)
    return beam_search(model.step, model.initial(batch), reorder=model.reorder, bos_id=model.bos,
                       eos_id=EOS_TOY, max_lengths=max_lengths, **kwargs)


def all_hypotheses(vocab, max_length):
    """Every output: ended by <eos> within max_length tokens, or cut at max_length."""
    words = [w for w in range(vocab) if w != EOS_TOY]
    for n in range(max_length):
        for prefix in itertools.product(words, repeat=n):
            yield [*prefix, EOS_TOY]
    yield from (list(p) for p in itertools.product(words, repeat=max_length))


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_wide_beam_is_exact_search(alpha):
    """A beam wider than every step's candidate set cannot prune: it must return the exact
    n-best of all outputs, so any early stop that lost a better hypothesis would show."""
    V, max_length, n_best = 4, 4, 5
    model = ToyModel(V)
    K = (V - 1) ** (max_length - 1) * V  # candidates at the last step
    results = toy_search(model, beam_size=K, n_best=n_best, length_penalty_alpha=alpha)
    initial = model.initial(3)
    for b, hyps in enumerate(results):
        scored = sorted(((model.log_prob(h, initial[b : b + 1]) / length_penalty(len(h), alpha),
                          h) for h in all_hypotheses(V, max_length)), reverse=True)
        assert [h.tokens for h in hyps] == [h for _, h in scored[:n_best]]
        for hyp, (rank, tokens) in zip(hyps, scored, strict=False):
            assert hyp.ranking_score == pytest.approx(rank, abs=1e-12)
            assert hyp.score == pytest.approx(model.log_prob(tokens, initial[b : b + 1]),
                                              abs=1e-12)


class MarkovModel:
    """A handmade model: the next token's probabilities depend on the previous token only.
    ``table`` maps a previous token (<bos> = ``bos``) to {token: probability}; the rest of
    the V tokens share what is left."""

    def __init__(self, table, vocab=5):
        self.bos, self.V = vocab, vocab
        self.log_probs = torch.full((vocab + 1, vocab), 1e-9, dtype=torch.double)
        for prev, row in table.items():
            for token, p in row.items():
                self.log_probs[prev, token] = p
        self.log_probs = (self.log_probs / self.log_probs.sum(1, keepdim=True)).log()

    def step(self, tokens, state):
        return self.log_probs[tokens], state, None

    @staticmethod
    def reorder(state, index):
        return state.index_select(0, index)


def markov_search(model, max_length, **kwargs):
    return beam_search(model.step, torch.zeros(1, 1), reorder=model.reorder, bos_id=model.bos,
                       eos_id=EOS_TOY, max_lengths=torch.tensor([max_length]), **kwargs)[0]


def test_length_penalty_stop_looks_ahead_to_max_length():
    """<eos> at once scores log 0.55; 'a b b b ...' costs more (log 0.45 + log 0.2) but keeps
    its probability and, with alpha = 1, wins through its length penalty at the length limit.
    A stop on the current length's penalty would return [<eos>]."""
    a, b = 0, 1
    model = MarkovModel({5: {EOS_TOY: 0.55, a: 0.45}, a: {b: 0.2, EOS_TOY: 0.8}, b: {b: 1.0}})
    (best,) = markov_search(model, 30, beam_size=2, length_penalty_alpha=1.0)
    assert best.tokens == [a] + [b] * 29
    assert best.ranking_score > math.log(0.55)
    (best,) = markov_search(model, 30, beam_size=2)  # alpha 0: probability alone
    assert best.tokens == [EOS_TOY]


def test_beam_one_is_greedy_when_eos_is_the_runner_up():
    """A beam of one keeps only its best candidate: an <eos> ranked second must not become a
    hypothesis, even though it would score better than greedy's continuation."""
    a = 0
    model = MarkovModel({5: {a: 0.6, EOS_TOY: 0.3}, a: {0: 0.3, 1: 0.26, 2: 0.22, 4: 0.2},
                         1: {0: 0.3, 1: 0.26, 2: 0.22, 4: 0.2}})
    (best,) = markov_search(model, 6, beam_size=1)
    (expected,) = greedy(model.step, torch.zeros(1, 1), bos_id=model.bos, eos_id=EOS_TOY,
                         max_lengths=torch.tensor([6]))
    assert best.tokens == expected.tokens == [a] * 6
    assert best.score == expected.score < math.log(0.3)


def test_beam_one_is_greedy_on_the_toy_model():
    model = ToyModel(6, seed=3)
    max_lengths = torch.tensor([1, 5, 9, 7])
    for kwargs in ({}, {"min_length": 2}, {"no_repeat_ngram_size": 2}):
        g = greedy(model.step, model.initial(4), bos_id=model.bos, eos_id=EOS_TOY,
                   max_lengths=max_lengths, **kwargs)
        b = beam_search(model.step, model.initial(4), reorder=model.reorder, bos_id=model.bos,
                        eos_id=EOS_TOY, max_lengths=max_lengths, beam_size=1, **kwargs)
        for x, (y,) in zip(g, b, strict=True):
            assert x.tokens == y.tokens and x.score == y.score
            torch.testing.assert_close(x.attention, y.attention, rtol=0, atol=0)


def test_cut_at_max_length():
    never_ends = torch.tensor([0.0, 0.0, 0.0, -50.0])  # <eos> (3) improbable
    model = ToyModel(4, bias=never_ends)
    for hyps in toy_search(model, max_length=5, beam_size=3, n_best=3):
        assert len(hyps) == 3 and all(len(h.tokens) == 5 and EOS_TOY not in h.tokens
                                      for h in hyps)
    lengths = torch.tensor([2, 6])
    for h, n in zip(greedy(model.step, model.initial(2), bos_id=model.bos, eos_id=EOS_TOY,
                           max_lengths=lengths), lengths.tolist(), strict=True):
        assert len(h.tokens) == n and h.attention.shape == (n, 3)


def test_min_length_forbids_early_eos():
    ends_now = torch.tensor([0.0, 0.0, 0.0, 30.0, 0.0])  # <eos> (3) almost certain
    model = ToyModel(5, bias=ends_now)
    assert all(h.tokens == [EOS_TOY] for (h,) in toy_search(model, max_length=8, beam_size=2))
    for hyps in toy_search(model, max_length=8, beam_size=3, n_best=3, min_length=3):
        for h in hyps:
            assert EOS_TOY not in h.tokens[:3] and h.tokens[-1] == EOS_TOY
    for h in greedy(model.step, model.initial(3), bos_id=model.bos, eos_id=EOS_TOY,
                    max_lengths=torch.full((3,), 8), min_length=4):
        assert len(h.tokens) == 5 and h.tokens[-1] == EOS_TOY


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_blocks_repeats(n):
    favourite = torch.tensor([6.0, 5.0, 0.0, -9.0, 0.0, 0.0])  # 0 then 1, never <eos>
    model = ToyModel(6, seed=1, bias=favourite)
    outputs = [h.tokens for hyps in toy_search(model, max_length=12, beam_size=4, n_best=4,
                                               no_repeat_ngram_size=n) for h in hyps]
    outputs += [h.tokens for h in greedy(model.step, model.initial(3), bos_id=model.bos,
                                         eos_id=EOS_TOY, max_lengths=torch.full((3,), 12),
                                         no_repeat_ngram_size=n)]
    for tokens in outputs:
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        assert len(grams) == len(set(grams)), tokens
    unconstrained = toy_search(model, max_length=12, beam_size=4)
    assert any(len(set(h.tokens)) < len(h.tokens) for (h,) in unconstrained)  # it would repeat


def test_n_best_are_distinct_and_ordered():
    model = ToyModel(6, seed=2)
    for alpha in (0.0, 1.0):
        for hyps in toy_search(model, max_length=6, beam_size=5, n_best=5,
                               length_penalty_alpha=alpha):
            assert len(hyps) == 5
            ranks = [h.ranking_score for h in hyps]
            assert ranks == sorted(ranks, reverse=True)
            assert len({tuple(h.tokens) for h in hyps}) == 5
            for h in hyps:
                assert h.ranking_score == pytest.approx(
                    h.score / length_penalty(len(h.tokens), alpha), abs=1e-12)


def test_greedy_without_reorder_and_without_attention():
    """A language model's step (no attention): greedy runs finished rows along if it may not
    reorder the state, with the same result."""
    model = ToyModel(6, seed=4)

    def step(tokens, state):
        logits, state, _ = model.step(tokens, state)
        return logits, state, None

    max_lengths = torch.tensor([3, 8, 5])
    shrinking = greedy(step, model.initial(3), bos_id=model.bos, eos_id=EOS_TOY,
                       max_lengths=max_lengths, reorder=model.reorder)
    plain = greedy(step, model.initial(3), bos_id=model.bos, eos_id=EOS_TOY,
                   max_lengths=max_lengths)
    assert shrinking == plain and all(h.attention is None for h in plain)
    (beam,) = toy_search(ToyModel(6, seed=4), batch=1, max_length=5, beam_size=2)
    assert beam[0].attention.shape == (len(beam[0].tokens), 3)
    (lm_beam,) = beam_search(step, model.initial(1), reorder=model.reorder, bos_id=model.bos,
                             eos_id=EOS_TOY, max_lengths=torch.tensor([5]), beam_size=2)
    assert lm_beam[0].attention is None


@pytest.mark.parametrize(
    ("kwargs", "message", "greedy_too"),
    [
        ({"beam_size": 0}, "beam_size must be an integer >= 1, got 0", False),
        ({"beam_size": 2, "n_best": 3}, r"n_best must be an integer in \[1, beam_size=2\], got 3",
         False),
        ({"n_best": 0}, "n_best must be", False),
        ({"length_penalty_alpha": -0.5}, "length_penalty_alpha must be >= 0", False),
        ({"max_lengths": torch.tensor([2.0])}, "max_lengths must be a non-empty 1-D integer", True),
        ({"max_lengths": 5}, "max_lengths must be a non-empty 1-D integer tensor", True),
        ({"max_lengths": torch.tensor([3, 0])}, "max_lengths must be >= 1", True),
        ({"min_length": -1}, "min_length must be a non-negative integer", True),
        ({"no_repeat_ngram_size": -2}, "no_repeat_ngram_size must be", True),
    ],
)
def test_errors(kwargs, message, greedy_too):
    model = ToyModel()
    settings = {"bos_id": model.bos, "eos_id": EOS_TOY, "max_lengths": torch.tensor([4, 4])}
    with pytest.raises(ValueError, match=message):
        beam_search(model.step, model.initial(2), reorder=model.reorder, **(settings | kwargs))
    if greedy_too:
        with pytest.raises(ValueError, match=message):
            greedy(model.step, model.initial(2), **(settings | kwargs))


# -------------------------------------------------------------------- on a real network
@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Seq2Seq(17, 15, embedding_dim=8, hidden_size=10, decoder_layers=2,
                   attention="bahdanau", encoder={"num_layers": 2}).double().eval()


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    src = torch.randint(4, 17, (5, 7))
    src_lengths = torch.tensor([7, 3, 5, 1, 6])
    src = src.masked_fill(torch.arange(7) >= src_lengths.unsqueeze(1), 0)
    return src, src_lengths, 2 * src_lengths + 3  # max lengths a * S + b


def decode(net, src, src_lengths, max_lengths, beam_size=None, **kwargs):
    state = net.encode(src, src_lengths)
    if beam_size is None:
        return greedy(net.step, state, bos_id=BOS, eos_id=EOS, max_lengths=max_lengths,
                      reorder=Seq2SeqState.select, **kwargs)
    return beam_search(net.step, state, reorder=Seq2SeqState.select, bos_id=BOS, eos_id=EOS,
                       max_lengths=max_lengths, beam_size=beam_size, **kwargs)


def teacher_forced(net, src, src_lengths, tokens):
    """Log-probability and attention of ``tokens`` for one sentence, by teacher forcing."""
    tgt_in = torch.tensor([[BOS, *tokens[:-1]]])
    with torch.no_grad():
        log_probs = net(src, src_lengths, tgt_in).log_softmax(2)[0]  # (T, V)
    state, rows = net.encode(src, src_lengths), []
    for token in tgt_in[0]:
        with torch.no_grad():
            _, state, attention = net.step(token.view(1), state)
        rows.append(attention[0])
    return float(log_probs.gather(1, torch.tensor(tokens).unsqueeze(1)).sum()), torch.stack(rows)


def test_beam_one_is_greedy(net, batch):
    for kwargs in ({}, {"min_length": 2, "no_repeat_ngram_size": 2}):
        g = decode(net, *batch, **kwargs)
        b = decode(net, *batch, beam_size=1, **kwargs)
        for x, (y,) in zip(g, b, strict=True):
            assert x.tokens == y.tokens and x.score == y.score
            assert torch.equal(x.attention, y.attention)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_scores_and_attention_are_the_models(net, batch, alpha):
    """Every hypothesis's score is the teacher-forced log-probability of its tokens, its
    ranking score that over the length penalty, its attention rows the model's."""
    src, src_lengths, max_lengths = batch
    results = decode(net, *batch, beam_size=4, n_best=3, length_penalty_alpha=alpha)
    for b, hyps in enumerate(results):
        assert len(hyps) == 3
        for h in hyps:
            assert len(h.tokens) <= max_lengths[b]
            score, attention = teacher_forced(net, src[b : b + 1], src_lengths[b : b + 1],
                                              h.tokens)
            assert h.score == pytest.approx(score, abs=1e-10)
            assert h.ranking_score == pytest.approx(score / length_penalty(len(h.tokens), alpha),
                                                    abs=1e-10)
            torch.testing.assert_close(h.attention, attention, rtol=0, atol=1e-10)
            assert torch.count_nonzero(h.attention[:, src_lengths[b] :]) == 0


def test_a_sentence_alone_and_in_a_batch_decodes_alike(net, batch):
    src, src_lengths, max_lengths = batch
    together = decode(net, *batch, beam_size=4, n_best=2, length_penalty_alpha=0.6)
    together_greedy = decode(net, *batch)
    for b, n in enumerate(src_lengths.tolist()):
        alone_args = (src[b : b + 1, :n], src_lengths[b : b + 1], max_lengths[b : b + 1])
        (alone,) = decode(net, *alone_args, beam_size=4, n_best=2, length_penalty_alpha=0.6)
        (alone_greedy,) = decode(net, *alone_args)
        for x, y in zip((*alone, alone_greedy), (*together[b], together_greedy[b]), strict=True):
            assert x.tokens == y.tokens
            assert x.score == pytest.approx(y.score, abs=1e-10)
            torch.testing.assert_close(x.attention, y.attention[:, :n], rtol=0, atol=1e-10)


def test_beam_never_scores_below_greedy(net, batch):
    greedy_scores = [h.score for h in decode(net, *batch)]
    for beam_size in (2, 5):
        beam_scores = [hyps[0].score for hyps in decode(net, *batch, beam_size=beam_size)]
        assert all(b >= g - 1e-12 for b, g in zip(beam_scores, greedy_scores, strict=True))
    assert any(b > g for b, g in zip(beam_scores, greedy_scores, strict=True))


def test_hypothesis_fields():
    h = Hypothesis([5, 3], -1.5, -1.2, None)
    assert h.tokens == [5, 3] and h.score == -1.5 and h.ranking_score == -1.2


@pytest.mark.parametrize(
    "kwargs",
    [{"attention": "luong_general"}, {"attention": "luong_dot"},
     {"attention": "luong_concat", "input_feeding": False},
     {"attention": "bahdanau", "bridge": "none", "tie_embeddings": True},
     {"encoder": {"cell": "gru", "num_layers": 1}}],
    ids=["general", "dot", "concat-nofeed", "bahdanau-none-tied", "gru"],
)
def test_tiny_seq2seq_learns_to_reverse(kwargs):
    """Eight 5-token sentences and their reversals: a tiny network learns them in seconds,
    and greedy and beam search both return every reversal exactly."""
    torch.manual_seed(0)
    src = torch.randint(4, 12, (8, 5))
    tgt_in = torch.cat([torch.full((8, 1), BOS), src.flip(1)], 1)  # (8, 6)
    tgt_out = torch.cat([src.flip(1), torch.full((8, 1), EOS)], 1)  # (8, 6)
    lengths = torch.full((8,), 5)
    net = Seq2Seq(12, 12, **({"embedding_dim": 16, "hidden_size": 32, "decoder_layers": 1,
                              "dropout": 0.0, "encoder": {"num_layers": 1}} | kwargs))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(200):
        logits = net(src, lengths, tgt_in)  # (8, 6, V)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    net.eval()
    expected = tgt_out.tolist()
    assert [h.tokens for h in decode(net, src, lengths, lengths + 3)] == expected
    assert [hyps[0].tokens for hyps in decode(net, src, lengths, lengths + 3, beam_size=3)] == \
        expected


def test_detokenize_and_token_pieces_of_a_hypothesis():
    """One torch-free rule for a hypothesis's text, used by the model and the ONNX runtime:
    <eos> is dropped from the text and named among the pieces."""
    from nlp_lstm.inference import detokenize, token_pieces

    class Words:
        eos_id = 2

        def decode(self, ids: list[int]) -> str:
            words = {3: "ein", 4: "Hund", 5: "."}
            return " ".join(words[i] for i in ids if i != self.eos_id)

    assert detokenize(Words(), [3, 4, 5, 2]) == "ein Hund ."
    assert detokenize(Words(), [3, 4]) == "ein Hund"
    assert token_pieces(Words(), [3, 4, 2]) == ["ein", "Hund", "<eos>"]
