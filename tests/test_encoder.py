"""The encoder: parity with nn.LSTM / nn.GRU, padding, gradients, variants, init, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlp_lstm.nn import LSTMEncoder, lstm_sequence
from nlp_lstm.nn.fused import fused_packed

IMPLS = ("loop", "fused", "auto")
TORCH_RNN = {"lstm": nn.LSTM, "gru": nn.GRU}
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


pytestmark = pytest.mark.usefixtures("one_thread")


def reference(rnn: nn.Module, x, lengths, state=None):
    """nn.LSTM / nn.GRU on the packed batch, padded back to (B, T, D*H)."""
    packed = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True,
                                  enforce_sorted=False)
    out, final = rnn(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, final


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def loss_of(out, final):
    """A loss that weights every output and final state differently."""
    weights = torch.linspace(-1, 1, out.size(-1), dtype=out.dtype)
    return (out.sin() * weights).sum() + sum((s * s).sum() for s in as_tuple(final))


def make_pair(cell, layers, bidirectional, dtype, impl, input_size=5, hidden=7):
    rnn = TORCH_RNN[cell](input_size, hidden, layers, batch_first=True,
                          bidirectional=bidirectional).to(dtype)
    enc = LSTMEncoder(input_size, hidden, layers, bidirectional=bidirectional, cell=cell,
                      impl=impl).to(dtype)
    enc.load_state_dict(rnn.state_dict())
    return rnn, enc


def initial_state(cell, layers, directions, batch, hidden, dtype):
    h0 = torch.randn(layers * directions, batch, hidden, dtype=dtype)
    return (h0, torch.randn_like(h0)) if cell == "lstm" else h0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize(("layers", "bidirectional"),
                         [(1, False), (1, True), (2, True), (3, False)])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parity_with_torch(cell, impl, layers, bidirectional, with_state, dtype):
    torch.manual_seed(layers)
    rnn, enc = make_pair(cell, layers, bidirectional, dtype, impl)
    B, T, D = 5, 8, 2 if bidirectional else 1
    x = torch.randn(B, T, 5, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([3, 8, 1, 6, 8])  # unsorted, with 1 and T
    state = initial_state(cell, layers, D, B, 7, dtype) if with_state else None

    out, final = enc(x, lengths, state)
    grads = torch.autograd.grad(loss_of(out, final), [x, *enc.parameters()])
    ref_out, ref_final = reference(rnn, x, lengths, state)
    ref_grads = torch.autograd.grad(loss_of(ref_out, ref_final), [x, *rnn.parameters()])

    tol = TOLERANCE[dtype]
    assert len(as_tuple(final)) == len(as_tuple(ref_final))
    for ours, theirs in zip((out, *as_tuple(final), *grads),
                            (ref_out, *as_tuple(ref_final), *ref_grads), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=tol)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parity_batch_of_one_and_no_lengths(cell, impl):
    torch.manual_seed(2)
    rnn, enc = make_pair(cell, 2, True, torch.float64, impl)
    x = torch.randn(1, 6, 5, dtype=torch.float64, requires_grad=True)
    for lengths in (None, [6], torch.tensor([4])):
        out, final = enc(x, lengths)
        ref_out, ref_final = reference(rnn, x, [6] if lengths is None else lengths)
        grads = torch.autograd.grad(loss_of(out, final), [x, *enc.parameters()])
        ref_grads = torch.autograd.grad(loss_of(ref_out, ref_final), [x, *rnn.parameters()])
        for ours, theirs in zip((out, *as_tuple(final), *grads),
                                (ref_out, *as_tuple(ref_final), *ref_grads), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packed_path_used_on_gpu_matches_torch(cell):
    """fused_packed is what a CUDA device runs for unequal lengths; check it on CPU."""
    torch.manual_seed(3)
    rnn, enc = make_pair(cell, 2, True, torch.float64, "fused")
    x = torch.randn(4, 7, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 7, 5, 1])
    state = initial_state(cell, 2, 2, 4, 7, torch.float64)
    out, final = fused_packed(cell, x, lengths, state, enc._flat_weights(), 2, 0.0, True, True)
    ref_out, ref_final = reference(rnn, x, lengths, state)
    for ours, theirs in zip((out, *as_tuple(final)), (ref_out, *as_tuple(ref_final)),
                            strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


VARIANTS = [
    {"impl": "loop"},
    {"impl": "fused"},
    {"impl": "auto"},
    {"impl": "loop", "cell": "gru"},
    {"impl": "fused", "cell": "gru"},
    {"impl": "auto", "layer_norm": True},
    {"impl": "loop", "layer_norm": True, "cell": "gru"},
    {"impl": "loop", "weight_drop": 0.5},
]


@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: "-".join(map(str, k.values())))
def test_padding_invariance(kwargs):
    """A sequence's outputs and final states do not depend on its padding or its batch."""
    torch.manual_seed(1)
    enc = LSTMEncoder(4, 6, 2, bidirectional=True, **kwargs).double().eval()
    lengths = [5, 2, 7]
    x = torch.randn(3, 7, 4, dtype=torch.double)
    x[1, 2:] = 1e3  # padding content must not matter
    out, final = enc(x, lengths)
    for b, n in enumerate(lengths):
        alone, final_alone = enc(x[b : b + 1, :n], [n])
        torch.testing.assert_close(out[b, :n], alone[0], rtol=0, atol=1e-12)
        for s, s1 in zip(as_tuple(final), as_tuple(final_alone), strict=True):
            torch.testing.assert_close(s[:, b], s1[:, 0], rtol=0, atol=1e-12)
        assert torch.count_nonzero(out[b, n:]) == 0  # zero after the sequence's end


@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: "-".join(map(str, k.values())))
def test_padded_steps_get_no_gradient(kwargs):
    torch.manual_seed(4)
    enc = LSTMEncoder(4, 6, 2, bidirectional=True, **kwargs).double()
    x = torch.randn(3, 7, 4, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([5, 2, 7])
    out, final = enc(x, lengths)
    (grad,) = torch.autograd.grad(loss_of(out, final), [x])
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(grad[b, n:]) == 0
        assert torch.count_nonzero(grad[b, :n]) > 0


@pytest.mark.parametrize("batch_sizes", [None, [3, 3, 2, 1]])
def test_lstm_sequence_gradcheck(batch_sizes):
    """The hand-written backward against finite differences, every input and both outputs,
    for full (T, B) steps and for a packed batch whose sequences end at different steps."""
    torch.manual_seed(5)
    T, B, H = 4, 3, 2
    gates = torch.randn(T, B, 4 * H) if batch_sizes is None else torch.randn(9, 4 * H)
    args = [gates, torch.randn(B, H), torch.randn(B, H), torch.randn(4 * H, H)]
    args = [a.double().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: lstm_sequence(*a, batch_sizes), args)


GRADCHECK_VARIANTS = [
    {"impl": "loop"},
    {"impl": "loop", "layer_norm": True},
    {"impl": "loop", "weight_drop": 0.3},
    {"impl": "loop", "cell": "gru"},
    {"impl": "loop", "cell": "gru", "layer_norm": True, "weight_drop": 0.3},
]


@pytest.mark.parametrize("kwargs", GRADCHECK_VARIANTS,
                         ids=lambda k: "-".join(map(str, k.values())))
def test_encoder_gradcheck_on_loop_path(kwargs):
    torch.manual_seed(6)
    layers = 2 if len(kwargs) == 1 else 1  # variants: one layer keeps the check in seconds
    enc = LSTMEncoder(3, 2, layers, bidirectional=True, **kwargs).double()
    params = list(enc.parameters())
    names = [n for n, _ in enc.named_parameters()]
    x = torch.randn(3, 4, 3, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([4, 1, 3])

    def run(x, *values):
        torch.manual_seed(0)  # the same weight-drop mask at every evaluation
        out, final = torch.func.functional_call(enc, dict(zip(names, values, strict=True)),
                                                (x, lengths))
        return out, *as_tuple(final)

    # Variants: fast_mode checks the Jacobian along random directions, in far fewer runs.
    assert torch.autograd.gradcheck(run, (x, *params), fast_mode=len(kwargs) > 1)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_state_dict_interchanges_both_ways(cell):
    rnn = TORCH_RNN[cell](5, 7, 2, batch_first=True, bidirectional=True)
    enc = LSTMEncoder(5, 7, 2, bidirectional=True, cell=cell)
    assert list(enc.state_dict()) == list(rnn.state_dict())
    rnn.load_state_dict(enc.state_dict())
    enc.load_state_dict(rnn.state_dict())


def test_xavier_init():
    H = 8
    enc = LSTMEncoder(5, H, 2, bidirectional=True)
    eye = torch.eye(H)
    for name, p in enc.named_parameters():
        if name.startswith("weight_hh"):
            for block in p.detach().split(H):  # 4 x (H, H)
                torch.testing.assert_close(block @ block.t(), eye, rtol=0, atol=1e-5)
        if name.startswith("bias_ih"):
            total = p + getattr(enc, name.replace("bias_ih", "bias_hh"))  # (4H,)
            assert torch.equal(total[H : 2 * H], torch.ones(H))
            assert torch.count_nonzero(total[:H]) == torch.count_nonzero(total[2 * H :]) == 0
        if name.startswith("weight_ih"):
            bound = (6 / sum(p.shape)) ** 0.5
            assert p.abs().max() <= bound
    gru = LSTMEncoder(5, H, cell="gru")
    assert torch.count_nonzero(gru.bias_ih_l0) == torch.count_nonzero(gru.bias_hh_l0) == 0
    for block in gru.weight_hh_l0.detach().split(H):  # 3 x (H, H)
        torch.testing.assert_close(block @ block.t(), eye, rtol=0, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_init(cell):
    """Chrono biases (Tallec & Ollivier 2018): log(tau), tau in [1, max_timescale - 1], on the
    LSTM forget gate (minus it on the input gate) or the GRU update gate; Xavier weights."""
    H, T = 64, 100
    torch.manual_seed(0)
    enc = LSTMEncoder(5, H, 2, bidirectional=True, cell=cell, init="chrono", max_timescale=T)
    for name, p in enc.named_parameters():
        if name.startswith("bias_ih"):
            total = (p + getattr(enc, name.replace("bias_ih", "bias_hh"))).detach()  # (G*H,)
            memory = total[H : 2 * H]  # f for the LSTM, z for the GRU
            assert memory.min() >= 0 and memory.max() <= math.log(T - 1) + 1e-6
            assert memory.std() > 0.3  # spread over timescales, not one value
            if cell == "lstm":
                assert torch.equal(total[:H], -memory)
                assert torch.count_nonzero(total[2 * H :]) == 0
            else:
                assert torch.count_nonzero(total[:H]) == torch.count_nonzero(total[2 * H :]) == 0
        if name.startswith("weight_hh"):
            for block in p.detach().split(H):
                torch.testing.assert_close(block @ block.t(), torch.eye(H), rtol=0, atol=1e-5)


def test_chrono_init_learns_a_recall_the_default_init_does_not_start_on():
    """A 40-step delayed recall (one of 4 signals among noise, read at the end): 300 Adam steps
    from chrono biases solve it; at the default forget bias of 1.0 the gradient through 40
    steps (~0.73^40) is too small to start learning in that budget."""
    def run(init, **kwargs):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(1)
        emb, enc = torch.nn.Embedding(12, 8), LSTMEncoder(8, 24, init=init, **kwargs)
        head = torch.nn.Linear(24, 4)
        params = [*emb.parameters(), *enc.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=1e-2)

        def batch(n):
            x = torch.randint(4, 12, (n, 45), generator=g)  # noise
            y = torch.randint(0, 4, (n,), generator=g)
            x[:, 4] = y  # the signal, 40 steps before the end
            return x, y

        for _ in range(300):
            x, y = batch(32)
            loss = torch.nn.functional.cross_entropy(head(enc(emb(x))[0][:, -1]), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        x, y = batch(512)
        with torch.no_grad():
            return (head(enc(emb(x))[0][:, -1]).argmax(1) == y).float().mean().item()

    assert run("chrono", max_timescale=64) > 0.9
    assert run("xavier") < 0.5


def test_torch_init():
    enc = LSTMEncoder(5, 16, init="torch")
    for p in enc.parameters():
        assert p.abs().max() <= 0.25 and p.std() > 0.05


def test_layer_norm_parameters():
    enc = LSTMEncoder(5, 7, bidirectional=True, layer_norm=True)
    assert enc.ln_ih_weight_l0.shape == enc.ln_hh_bias_l0_reverse.shape == (28,)
    assert enc.ln_c_weight_l0.shape == (7,)
    assert enc._resolve_impl() == "loop"


def test_auto_picks():
    assert LSTMEncoder(3, 4)._resolve_impl() == "fused"
    assert LSTMEncoder(3, 4, cell="gru")._resolve_impl() == "fused"
    assert LSTMEncoder(3, 4, layer_norm=True)._resolve_impl() == "loop"
    dropped = LSTMEncoder(3, 4, weight_drop=0.5)
    assert dropped._resolve_impl() == "loop"
    assert dropped.eval()._resolve_impl() == "fused"  # DropConnect is a no-op in eval
    x, lengths = torch.randn(2, 3, 3), torch.tensor([3, 1])
    assert LSTMEncoder(3, 4)._resolve_impl(x, None) == "fused"
    assert LSTMEncoder(3, 4)._resolve_impl(x, lengths) == "loop"  # unequal lengths on CPU
    assert LSTMEncoder(3, 4, cell="gru")._resolve_impl(x, lengths) == "fused"
    step = torch.randn(1, 1, 3)  # one step of one sequence: oneDNN's per-call setup dominates
    assert LSTMEncoder(3, 4)._resolve_impl(step, None) == "loop"
    assert LSTMEncoder(3, 4, cell="gru")._resolve_impl(step, None) == "fused"
    assert LSTMEncoder(3, 4)._resolve_impl(torch.randn(2, 1, 3), None) == "fused"


def test_a_generation_step_equals_the_fused_kernel():
    torch.manual_seed(3)
    auto, fused = LSTMEncoder(3, 5, 2), LSTMEncoder(3, 5, 2, impl="fused")
    fused.load_state_dict(auto.state_dict())
    x = torch.randn(1, 6, 3, dtype=torch.float64)
    auto, fused = auto.double(), fused.double()
    out_a, state_a = auto(x[:, :1])
    out_f, state_f = fused(x[:, :1])
    for t in range(1, 6):  # step by step, carrying the state, as LanguageModelNet.step does
        out_a, state_a = auto(x[:, t : t + 1], state=state_a)
        out_f, state_f = fused(x[:, t : t + 1], state=state_f)
    torch.testing.assert_close(out_a, out_f, rtol=0, atol=1e-12)
    torch.testing.assert_close(state_a, state_f, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_dropout_between_layers_in_training_only(impl):
    torch.manual_seed(7)
    enc = LSTMEncoder(4, 6, 2, dropout=0.5, impl=impl)
    plain = LSTMEncoder(4, 6, 2, impl=impl)
    plain.load_state_dict(enc.state_dict())
    x, lengths = torch.randn(3, 5, 4), [5, 3, 2]
    torch.testing.assert_close(enc.eval()(x, lengths)[0], plain.eval()(x, lengths)[0])
    enc.train()
    assert not torch.allclose(enc(x, lengths)[0], plain(x, lengths)[0])
    one_layer = LSTMEncoder(4, 6, 1, dropout=0.5, impl=impl).train()
    torch.testing.assert_close(one_layer(x, lengths)[0], one_layer(x, lengths)[0])


def test_weight_drop_is_random_in_training_and_off_in_eval():
    torch.manual_seed(8)
    enc = LSTMEncoder(4, 6, weight_drop=0.5)
    x = torch.randn(2, 5, 4)
    assert not torch.allclose(enc(x)[0], enc(x)[0])
    enc.eval()
    plain = LSTMEncoder(4, 6, impl="loop").eval()
    plain.load_state_dict(enc.state_dict())
    torch.testing.assert_close(enc(x)[0], plain(x)[0])


@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: "-".join(map(str, k.values())))
def test_autocast_bfloat16(kwargs):
    torch.manual_seed(9)
    enc = LSTMEncoder(8, 16, 2, bidirectional=True, **kwargs).eval()
    x, lengths = torch.randn(3, 6, 8, requires_grad=True), [6, 2, 4]
    expected, _ = enc(x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, final = enc(x, lengths)
    assert out.shape == expected.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), expected, rtol=0, atol=0.1)
    loss_of(out.float(), tuple(s.float() for s in as_tuple(final))).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[1, 2:].abs().max() == 0


@pytest.mark.parametrize("impl", ["loop", "fused"])
def test_torch_compile(impl):
    torch.manual_seed(10)
    enc = LSTMEncoder(4, 5, bidirectional=True, impl=impl)
    x, lengths = torch.randn(2, 3, 4), torch.tensor([3, 2])
    compiled = torch.compile(enc, backend="eager")  # traces our code; no C++ compiler needed
    out, (h, c) = compiled(x, lengths)
    ref, (ref_h, ref_c) = enc(x, lengths)
    for ours, theirs in ((out, ref), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(ours, theirs)
    out.sum().backward()


@pytest.mark.slow
def test_torch_compile_inductor():
    torch.manual_seed(10)
    enc = LSTMEncoder(4, 5, bidirectional=True, impl="loop")
    x, lengths = torch.randn(2, 3, 4), torch.tensor([3, 2])
    out, _ = torch.compile(enc)(x, lengths)
    torch.testing.assert_close(out, enc(x, lengths)[0])


def test_lengths_as_list_or_int32():
    enc = LSTMEncoder(3, 4).eval()
    x = torch.randn(2, 5, 3)
    a = enc(x, [5, 2])[0]
    b = enc(x, torch.tensor([5, 2], dtype=torch.int32))[0]
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"impl": "cudnn"}, "impl"),
        ({"cell": "rnn"}, "cell"),
        ({"init": "kaiming"}, "init"),
        ({"init": "chrono"}, "max_timescale"),
        ({"init": "chrono", "max_timescale": 2}, "max_timescale"),
        ({"max_timescale": 50}, "init='chrono' only"),
        ({"dropout": 1.0}, "dropout"),
        ({"weight_drop": -0.1}, "weight_drop"),
        ({"impl": "fused", "layer_norm": True}, "layer_norm"),
        ({"impl": "fused", "weight_drop": 0.2}, "weight_drop"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTMEncoder(3, 4, **kwargs)


@pytest.mark.parametrize(
    ("x", "lengths", "state", "message"),
    [
        (torch.randn(5, 3), None, None, "3-D"),
        (torch.randn(2, 5, 4), None, None, "features"),
        (torch.randn(2, 5, 3), [5], None, "1-D of size B=2"),
        (torch.randn(2, 5, 3), [[5, 5]], None, "1-D of size B=2"),
        (torch.randn(2, 5, 3), [0, 5], None, r"\[1, T=5\]"),
        (torch.randn(2, 5, 3), [6, 5], None, r"\[1, T=5\]"),
        (torch.randn(2, 5, 3), torch.tensor([5.0, 5.0]), None, "integers"),
        (torch.randn(2, 5, 3), None, (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)), "c_0"),
        (torch.randn(2, 5, 3), None, torch.zeros(1, 2, 4), "tuple"),
    ],
)
def test_forward_errors(x, lengths, state, message):
    enc = LSTMEncoder(3, 4)
    with pytest.raises(ValueError, match=message):
        enc(x, lengths, state)


def test_gru_state_errors():
    enc = LSTMEncoder(3, 4, cell="gru")
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="tensor h_0"):
        enc(x, None, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="h_0 has shape"):
        enc(x, None, torch.zeros(1, 3, 4))
