"""The language-model network: shapes, carried state, causality, the attention window,
generation steps, tied embeddings, dropout, errors, and a tiny model that learns a string."""

from __future__ import annotations

import pytest
import torch

from nlp_lstm.generation.net import LanguageModelNet, LMState, window_mask
from nlp_lstm.nn.dropout import embedding_dropout, locked_dropout
from nlp_lstm.nn.sampling import sample

V = 13


def make(attention: str = "none", window: int = 4, **kwargs) -> LanguageModelNet:
    """A small double-precision net in eval mode (no dropout), seeded."""
    torch.manual_seed(0)
    encoder = {"hidden_size": 10, "num_layers": 2} | kwargs.pop("encoder", {})
    net = LanguageModelNet(V, embedding_dim=6, encoder=encoder, attention=attention,
                           attention_window=window, **kwargs)
    return net.double().eval()


CONFIGS = [  # (attention, window, encoder)
    ("none", 4, {}),
    ("window", 3, {}),  # W < T of the halves below
    ("window", 12, {}),  # W > T
    ("none", 4, {"cell": "gru"}),
    ("window", 3, {"cell": "gru", "impl": "loop"}),
    ("window", 5, {"layer_norm": True, "num_layers": 1}),
]


@pytest.mark.parametrize(("attention", "window", "encoder"), CONFIGS)
def test_shapes(attention, window, encoder):
    net = make(attention, window, encoder=encoder)
    logits, state = net(torch.randint(0, V, (3, 7)))
    assert logits.shape == (3, 7, V)
    L = net.num_layers
    assert state.h.shape == (L, 3, 10)
    assert (state.c is None) == (net.cell == "gru")
    if attention == "window":
        assert state.memory.shape == (3, window, 10) and state.memory_mask.shape == (3, window)
        # The first batch fills min(W, T) slots, the newest last.
        assert state.memory_mask.sum(1).tolist() == [min(window, 7)] * 3
        assert state.memory_mask[:, -1].all()
    else:
        assert state.memory is None and state.memory_mask is None


@pytest.mark.parametrize(("attention", "window", "encoder"), CONFIGS)
def test_carried_state_equals_one_long_sequence(attention, window, encoder):
    net = make(attention, window, encoder=encoder)
    tokens = torch.randint(0, V, (3, 16))
    whole, whole_state = net(tokens)
    logits, state = [], None
    for chunk in tokens.split(5, dim=1):  # T = 5, 5, 5, 1
        out, state = net(chunk, state)
        logits.append(out)
        state = state.detach()
    torch.testing.assert_close(torch.cat(logits, 1), whole, rtol=0, atol=1e-12)
    for ours, theirs in zip(state, whole_state, strict=True):
        if theirs is None:
            assert ours is None
        else:
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("attention", ["none", "window"])
def test_never_looks_ahead(attention):
    net = make(attention, 3)
    tokens = torch.randint(0, V, (2, 12))
    logits, _ = net(tokens)
    for j in (0, 5, 11):
        changed = tokens.clone()
        changed[:, j] = (changed[:, j] + 1) % V
        new, _ = net(changed)
        torch.testing.assert_close(new[:, :j], logits[:, :j], rtol=0, atol=0)
        assert not torch.allclose(new[:, j], logits[:, j])  # the change itself does reach


def test_window_mask():
    memory_mask = torch.tensor([[False, True], [True, True]])  # W = 2
    mask = window_mask(memory_mask, 3)  # keys: 2 memory slots, then positions 0, 1, 2
    assert mask[1].int().tolist() == [[1, 1, 1, 0, 0],
                                      [0, 1, 1, 1, 0],
                                      [0, 0, 1, 1, 1]]
    assert mask[0, 0].int().tolist() == [0, 1, 1, 0, 0]  # a slot before the text is no key


def position_wise(net: LanguageModelNet) -> LanguageModelNet:
    """Cut the recurrence: no recurrent weights, forget gates shut (sigmoid(-1e4) is exactly 0),
    so h_t depends on token t alone and only attention carries information across time."""
    H = net.hidden_size
    with torch.no_grad():
        for layer in net.layers:
            layer.weight_hh_l0.zero_()
            layer.bias_ih_l0[H : 2 * H] = -1e4
    return net


@pytest.mark.parametrize("chunks", [[14], [6, 8]])  # one batch; two, memory carried
def test_attention_window_bound(chunks):
    W = 3
    net = position_wise(make("window", W))
    tokens = torch.randint(0, V, (2, 14))

    def run(x):
        state, out = None, []
        for chunk in x.split(chunks, dim=1):
            logits, state = net(chunk, state)
            out.append(logits)
        return torch.cat(out, 1)  # (B, T, V)

    base = run(tokens)
    t = 9
    for back in range(t + 1):
        changed = tokens.clone()
        changed[:, t - back] = (changed[:, t - back] + 1) % V
        moved = not torch.allclose(run(changed)[:, t], base[:, t], rtol=0, atol=1e-12)
        assert moved == (back <= W), back  # positions t - W .. t reach t, earlier ones do not

    # Without attention the cut recurrence passes nothing along: the cut is real.
    plain = position_wise(make("none"))
    changed = tokens.clone()
    changed[:, t - 1] = (changed[:, t - 1] + 1) % V
    torch.testing.assert_close(plain(changed)[0][:, t], plain(tokens)[0][:, t], rtol=0, atol=0)


@pytest.mark.parametrize(("attention", "window", "encoder"), CONFIGS)
def test_steps_after_prompt_equal_teacher_forcing(attention, window, encoder):
    net = make(attention, window, encoder=encoder)
    tokens = torch.randint(0, V, (2, 15))
    forced, _ = net(tokens)  # (B, T, V)
    logits, state = net.prompt(tokens[:, :6])
    stepped = [logits]
    for t in range(6, 15):
        logits, state = net.step(tokens[:, t], state)
        stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, 1), forced[:, 5:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("attention", ["none", "window"])
def test_padded_rows_equal_rows_alone(attention):
    net = make(attention, 3)
    tokens = torch.randint(0, V, (3, 8))
    lengths = [8, 2, 5]
    logits, state = net(tokens, lengths=torch.tensor(lengths))
    for b, n in enumerate(lengths):
        alone, alone_state = net(tokens[b : b + 1, :n])
        torch.testing.assert_close(logits[b, :n], alone[0], rtol=0, atol=1e-12)
        for name in ("h", "c", "memory", "memory_mask"):
            ours, theirs = getattr(state, name), getattr(alone_state, name)
            if theirs is not None:
                dim = 1 if name in ("h", "c") else 0  # (L, B, H) or (B, W, ...)
                torch.testing.assert_close(ours.select(dim, b), theirs.select(dim, 0),
                                           rtol=0, atol=1e-12)


def test_state_detach_and_repeat():
    net = make("window", 3).train()
    _, state = net(torch.randint(0, V, (2, 5)))
    assert state.h.requires_grad and state.memory.requires_grad
    detached = state.detach()
    assert not any(t is not None and t.requires_grad for t in detached)  # cache: None
    torch.testing.assert_close(detached.h, state.h.detach())
    repeated = detached.repeat_interleave(3)
    assert repeated.h.shape == (2, 6, 10) and repeated.memory.shape == (6, 3, 10)
    assert torch.equal(repeated.memory[3], detached.memory[1])


@pytest.mark.parametrize(("embedding_dim", "projection"), [(6, True), (10, False)])
def test_tied_embeddings_share_storage(embedding_dim, projection):
    net = LanguageModelNet(V, embedding_dim=embedding_dim, encoder={"hidden_size": 10})
    assert net.decoder.weight is net.embedding.weight
    assert net.decoder.weight.data_ptr() == net.embedding.weight.data_ptr()
    assert (net.projection is not None) == projection
    names = [n for n, _ in net.named_parameters()]
    assert "decoder.weight" not in names and "embedding.weight" in names  # counted once
    logits, _ = net(torch.randint(0, V, (2, 3)))
    logits.sum().backward()
    assert net.embedding.weight.grad is not None

    untied = LanguageModelNet(V, embedding_dim=embedding_dim, encoder={"hidden_size": 10},
                              tie_embeddings=False)
    assert untied.decoder.weight.shape == (V, 10) and untied.projection is None
    assert untied.decoder.weight.data_ptr() != untied.embedding.weight.data_ptr()


def test_pad_embedding_is_zero():
    net = LanguageModelNet(V, embedding_dim=6, encoder={"hidden_size": 10}, pad_id=0)
    assert torch.count_nonzero(net.embedding.weight[0]) == 0


def test_locked_and_embedding_dropout():
    torch.manual_seed(0)
    x = torch.ones(4, 9, 50)
    out = locked_dropout(x, 0.5, training=True)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask for all steps
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)
    weight = torch.ones(40, 3)
    dropped = embedding_dropout(weight, 0.5, training=True)
    rows = dropped.sum(1)
    assert set(rows.unique().tolist()) == {0.0, 6.0}  # whole rows, kept ones scaled by 2
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        locked_dropout(x, 1.0, training=True)


def test_dropout_only_in_training():
    net = make("window", 3, dropout_embedding=0.2, dropout_input=0.2, dropout_hidden=0.2,
               dropout_output=0.2, encoder={"weight_drop": 0.3})
    tokens = torch.randint(0, V, (2, 6))
    torch.testing.assert_close(net(tokens)[0], net(tokens)[0], rtol=0, atol=0)  # eval
    net.train()
    assert not torch.allclose(net(tokens)[0], net(tokens)[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder": {"hidden_size": 8, "dropout": 0.2}}, "dropout_hidden"),
        ({"encoder": {"hidden_size": 8, "bidirectional": True}}, "left to right"),
        ({"encoder": {"hidden_size": 8, "nonsense": 1}}, "nonsense"),
        ({"encoder": {"num_layers": 2}}, "hidden_size is required"),
        ({"encoder": {"hidden_size": 8, "num_layers": 0}}, "num_layers"),
        ({"encoder": [8]}, "mapping"),
        ({"attention": "global"}, "attention must be one of"),
        ({"attention": "window", "attention_window": 0}, "attention_window"),
        ({"dropout_hidden": 1.0}, "dropout_hidden"),
        ({"pad_id": V}, "pad_id"),
        ({"embedding_dim": 0}, "embedding_dim"),
    ],
)
def test_constructor_errors(kwargs, message):
    args = {"embedding_dim": 6, "encoder": {"hidden_size": 8}} | kwargs
    with pytest.raises(ValueError, match=message):
        LanguageModelNet(V, **args)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n: n(torch.randint(0, V, (5,))), "2-D"),
        (lambda n: n(torch.rand(2, 5)), "integer ids"),
        (lambda n: n(torch.tensor([[1, V]])), rf"\[0, {V}\)"),
        (lambda n: n(torch.tensor([[-1, 2]])), "min -1"),
        (lambda n: n(torch.zeros(2, 0, dtype=torch.long)), "at least one"),
        (lambda n: n(torch.zeros(2, 3, dtype=torch.long), (torch.zeros(2, 2, 10),) * 2),
         "LMState"),
        (lambda n: n(torch.zeros(3, 3, dtype=torch.long),
                     n(torch.zeros(2, 3, dtype=torch.long))[1]), r"state.h .* \(2, 3, 10\)"),
        (lambda n: n(torch.zeros(2, 3, dtype=torch.long),
                     LMState(torch.zeros(2, 2, 10), torch.zeros(2, 2, 10))),
         r"state.memory has shape None, expected \(2, 3, 10\)"),
        (lambda n: n.step(torch.zeros(2, 1, dtype=torch.long), None), "1-D"),
    ],
)
def test_forward_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(make("window", 3))


def test_learns_a_repeated_string_and_greedy_generates_it_back():
    text = "the cat sat on the mat. "
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(ch) for ch in text * 80])  # (N,)
    torch.manual_seed(0)
    net = LanguageModelNet(len(chars), embedding_dim=32, encoder={"hidden_size": 32},
                           attention="window", attention_window=8)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    streams = ids.view(8, -1)  # (B, N/B), 8 contiguous streams
    T = 30
    for _ in range(10):  # epochs of truncated BPTT: 7 batches (B, T), the state carried
        state = None
        for start in range(0, streams.size(1) - T, T):
            x, y = streams[:, start : start + T], streams[:, start + 1 : start + T + 1]
            logits, state = net(x, state)  # (B, T, V)
            state = state.detach()
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert loss.item() < 0.1
    net.eval()
    prompt = torch.tensor([[chars.index(ch) for ch in "the c"]])  # (1, P)
    logits, state = net.prompt(prompt)
    out = sample(net.step, state, logits, 40, temperature=0.0)
    generated = "".join(chars[i] for i in out.tokens[0].tolist())
    assert "the c" + generated == (text * 3)[: 5 + 40]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_init_reaches_every_layer(cell):
    """encoder.init=chrono with max_timescale: each single-layer LSTM/GRU of the stack gets
    chrono biases (log tau on the forget or update gate)."""
    torch.manual_seed(0)
    net = LanguageModelNet(11, embedding_dim=6, encoder={
        "hidden_size": 16, "num_layers": 2, "cell": cell, "init": "chrono",
        "max_timescale": 100})
    for layer in net.layers:
        memory = layer.bias_ih_l0[16:32].detach()  # (H,): f (LSTM) or z (GRU)
        assert memory.min() >= 0 and memory.max() <= torch.tensor(99.0).log() + 1e-6
        assert memory.std() > 0.3
    with pytest.raises(ValueError, match="max_timescale"):
        LanguageModelNet(11, embedding_dim=6, encoder={"hidden_size": 16, "init": "chrono"})


@pytest.mark.parametrize("std", [1.0, 0.1])
def test_embedding_init_std(std):
    torch.manual_seed(0)
    net = LanguageModelNet(4000, embedding_dim=64, encoder={"hidden_size": 16},
                           tie_embeddings=False, embedding_init_std=std)
    assert net.embedding.weight.std().item() == pytest.approx(std, rel=0.02)
    with pytest.raises(ValueError, match="embedding_init_std must be a positive number, got 0"):
        LanguageModelNet(10, embedding_dim=8, encoder={"hidden_size": 8}, embedding_init_std=0)
