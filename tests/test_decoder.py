"""The attention decoder, the bridge and the Seq2Seq network: layout, init, teacher forcing
against stepping, purity, padding invariance, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nlp_lstm.nn import lengths_to_mask
from nlp_lstm.nn.attention import ATTENTIONS
from nlp_lstm.nn.bridge import Bridge
from nlp_lstm.nn.decoder import AttentionDecoder, DecoderState
from nlp_lstm.translation.net import Seq2Seq

V, E, H, M, L = 11, 6, 8, 10, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def make_decoder(**kwargs):
    torch.manual_seed(0)
    settings = {"attention": "luong_general", "num_layers": L} | kwargs
    return AttentionDecoder(V, E, H, M, **settings).double().eval()


def decoder_inputs(decoder):
    B, S, T = 3, 5, 4
    torch.manual_seed(1)
    memory = decoder.prepare_memory(torch.randn(B, S, M, dtype=torch.double))
    mask = lengths_to_mask(torch.tensor([5, 2, 4]), S)
    h = torch.randn(decoder.num_layers, B, H, dtype=torch.double)
    state = decoder.initial_state(h, torch.randn_like(h))
    tokens = torch.randint(0, V, (B, T))
    return tokens, state, memory, mask


def make_net(**kwargs):
    torch.manual_seed(2)
    settings = {"embedding_dim": 6, "hidden_size": 8, "decoder_layers": 2,
                "encoder": {"num_layers": 2}} | kwargs
    return Seq2Seq(13, 11, **settings).double().eval()


# -------------------------------------------------------------------- layout and init
@pytest.mark.parametrize(("attention", "input_feeding", "first_input"),
                         [("luong_general", True, E + H), ("luong_dot", False, E),
                          ("bahdanau", True, E + M + H), ("bahdanau", False, E + M)])
def test_parameter_names_and_shapes_are_nn_lstms(attention, input_feeding, first_input):
    memory = H if attention == "luong_dot" else M
    decoder = AttentionDecoder(V, E, H, memory, L, attention=attention,
                               input_feeding=input_feeding)
    shapes = {name: tuple(p.shape) for name, p in decoder.named_parameters()}
    reference = nn.LSTM(first_input, H, L)
    for name, p in reference.named_parameters():
        assert shapes[name] == tuple(p.shape)


def test_recurrence_is_nn_lstms():
    """Without input feeding, Luong's decoder state is nn.LSTM's over the target embeddings."""
    decoder = make_decoder(input_feeding=False)
    tokens, initial, memory, mask = decoder_inputs(decoder)
    lstm = nn.LSTM(E, H, L, batch_first=True).double()
    lstm.load_state_dict({k: v for k, v in decoder.state_dict().items()
                          if k.startswith(("weight_", "bias_"))})
    state = initial
    for t in range(tokens.size(1)):
        _, state, _ = decoder.step(tokens[:, t], state, memory, mask)
    _, (h, c) = lstm(decoder.embedding(tokens), (initial.h, initial.c))
    torch.testing.assert_close(state.h, h, rtol=0, atol=1e-12)
    torch.testing.assert_close(state.c, c, rtol=0, atol=1e-12)


def test_xavier_init_forget_bias_and_orthogonal_blocks():
    decoder = AttentionDecoder(V, E, H, M, 3)
    for k in range(3):
        total = getattr(decoder, f"bias_ih_l{k}") + getattr(decoder, f"bias_hh_l{k}")  # (4H,)
        assert torch.equal(total[H : 2 * H], torch.ones(H))
        assert torch.count_nonzero(total[:H]) == torch.count_nonzero(total[2 * H :]) == 0
        for block in getattr(decoder, f"weight_hh_l{k}").detach().split(H):  # 4 x (H, H)
            torch.testing.assert_close(block @ block.t(), torch.eye(H), rtol=0, atol=1e-5)
        w_ih = getattr(decoder, f"weight_ih_l{k}")
        assert w_ih.abs().max() <= (6 / sum(w_ih.shape)) ** 0.5
    torch_init = AttentionDecoder(V, E, H, M, init="torch")
    assert torch_init.bias_ih_l0.abs().max() <= H**-0.5 and torch_init.bias_ih_l0.std() > 0.1


def test_embedding_padding_row_is_zero():
    decoder = AttentionDecoder(V, E, H, M, padding_idx=0)
    assert torch.count_nonzero(decoder.embedding.weight[0]) == 0
    torch.testing.assert_close(decoder.embedding.weight[1:].std().item(), E**-0.5, rtol=0.5,
                               atol=0)


# ---------------------------------------------------------------- teacher forcing = steps
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_forward_equals_stepping(attention, input_feeding, tie):
    memory_size = H if attention == "luong_dot" else M
    torch.manual_seed(0)
    decoder = AttentionDecoder(V, E, H, memory_size, L, attention=attention,
                               input_feeding=input_feeding, tie_embeddings=tie,
                               dropout=0.3).double().eval()
    B, S = 3, 5
    memory = decoder.prepare_memory(torch.randn(B, S, memory_size, dtype=torch.double))
    mask = lengths_to_mask(torch.tensor([5, 2, 4]), S)
    h = torch.randn(L, B, H, dtype=torch.double)
    state = decoder.initial_state(h, torch.randn_like(h))
    tokens = torch.randint(0, V, (B, 6))
    logits = decoder(tokens, state, memory, mask)
    assert logits.shape == (B, 6, V)
    for t in range(tokens.size(1)):
        step_logits, state, weights = decoder.step(tokens[:, t], state, memory, mask)
        torch.testing.assert_close(logits[:, t], step_logits, rtol=0, atol=1e-12)
        assert torch.count_nonzero(weights[~mask]) == 0


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau"])
def test_target_lengths_skip_padded_steps_only(attention):
    """With target lengths, every real position's logits are those of the full loop (rows
    sorted and shrinking as targets end), and the attentional vectors past a length are 0."""
    decoder = make_decoder(attention=attention)
    tokens, state, memory, mask = decoder_inputs(decoder)
    lengths = torch.tensor([2, 4, 1])  # unsorted, with 1 and T
    full = decoder(tokens, state, memory, mask)
    hidden = decoder.attentional(tokens, state, memory, mask, lengths)
    packed = decoder.logits(hidden)
    real = lengths_to_mask(lengths, tokens.size(1))
    torch.testing.assert_close(packed[real], full[real], rtol=0, atol=1e-12)
    assert torch.count_nonzero(hidden[~real]) == 0
    garbage = tokens.masked_fill(~real, 7)  # tokens past the lengths must not matter
    torch.testing.assert_close(decoder(garbage, state, memory, mask, lengths)[real], full[real],
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(decoder(tokens, state, memory, mask, torch.tensor([4, 4, 4])),
                               full, rtol=0, atol=0)


def test_step_is_pure():
    decoder = make_decoder(attention="bahdanau")
    tokens, state, memory, mask = decoder_inputs(decoder)
    copies = [t.clone() for t in (*state, *memory, mask, tokens)]
    first = decoder.step(tokens[:, 0], state, memory, mask)
    second = decoder.step(tokens[:, 0], state, memory, mask)
    for a, b in zip((*state, *memory, mask, tokens), copies, strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(first[0], second[0], rtol=0, atol=0)


def test_state_select_reorders_rows():
    decoder = make_decoder()
    _, state, memory, _ = decoder_inputs(decoder)
    index = torch.tensor([2, 2, 0])
    picked = state.select(index)
    assert torch.equal(picked.h, state.h[:, index]) and torch.equal(picked.feed,
                                                                    state.feed[index])
    assert torch.equal(memory.select(index).keys, memory.keys[index])


def test_dropout_in_training_only():
    decoder = make_decoder(dropout=0.5)
    tokens, state, memory, mask = decoder_inputs(decoder)
    torch.testing.assert_close(decoder(tokens, state, memory, mask),
                               decoder(tokens, state, memory, mask), rtol=0, atol=0)
    decoder.train()
    assert not torch.allclose(decoder(tokens, state, memory, mask),
                              decoder(tokens, state, memory, mask))


@pytest.mark.parametrize("embedding_dim", [E, H])
def test_tied_output_layer_is_the_embedding(embedding_dim):
    torch.manual_seed(0)
    decoder = AttentionDecoder(V, embedding_dim, H, M, tie_embeddings=True)
    assert (decoder.out_proj is None) == (embedding_dim == H)
    x = torch.randn(4, H)
    projected = x if decoder.out_proj is None else x @ decoder.out_proj.weight.t()
    expected = projected @ decoder.embedding.weight.t() + decoder.out_bias
    torch.testing.assert_close(decoder.logits(x), expected)
    decoder.logits(x).sum().backward()
    assert decoder.embedding.weight.grad is not None
    assert not any(name.startswith("out.") for name, _ in decoder.named_parameters())


# --------------------------------------------------------------------------- bridge
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bridge(cell):
    torch.manual_seed(0)
    h_n = torch.randn(4, 3, 5)  # (L_enc*D = 2*2, B, H_enc)
    final = (h_n, torch.randn_like(h_n) * 10) if cell == "lstm" else h_n
    h_0, c_0 = Bridge("project", 4, 5, 3, 7)(final)
    assert h_0.shape == c_0.shape == (3, 3, 7)
    assert h_0.abs().max() < 1 and c_0.abs().max() > 1  # h bounded by tanh, c not
    assert not torch.equal(h_0, c_0)
    zeros = Bridge("none", 4, 5, 3, 7)(final)
    assert all(z.shape == (3, 3, 7) and torch.count_nonzero(z) == 0 for z in zeros)
    assert not list(Bridge("none", 4, 5, 3, 7).parameters())


def test_copy_bridge_puts_each_layers_directions_side_by_side():
    """OpenNMT-py's default: decoder layer l starts from [h_n^{l,fwd}; h_n^{l,bwd}]."""
    torch.manual_seed(0)
    h_n, c_n = torch.randn(4, 3, 5), torch.randn(4, 3, 5)  # (L=2 * D=2, B, H_enc)
    bridge = Bridge("copy", 4, 5, 2, 10)
    assert not list(bridge.parameters())
    h_0, c_0 = bridge((h_n, c_n))
    assert h_0.shape == c_0.shape == (2, 3, 10)
    for layer in range(2):
        torch.testing.assert_close(h_0[layer], torch.cat([h_n[2 * layer], h_n[2 * layer + 1]], 1))
        torch.testing.assert_close(c_0[layer], torch.cat([c_n[2 * layer], c_n[2 * layer + 1]], 1))
    one_way = Bridge("copy", 2, 5, 2, 5)((h_n[:2], c_n[:2]))  # unidirectional: as they are
    torch.testing.assert_close(one_way[0], h_n[:2])


@pytest.mark.parametrize("shape", [(4, 5, 2, 7), (4, 5, 3, 10), (4, 5, 1, 10)])
def test_copy_bridge_needs_matching_shapes(shape):
    with pytest.raises(ValueError, match=r"bridge 'copy'.*use 'project'"):
        Bridge("copy", *shape)


def test_bridge_reads_each_sentence_separately():
    torch.manual_seed(0)
    bridge = Bridge("project", 4, 5, 2, 7)
    h_n, c_n = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    h_0, c_0 = bridge((h_n, c_n))
    h_1, c_1 = bridge((h_n[:, 1:2], c_n[:, 1:2]))
    torch.testing.assert_close(h_0[:, 1:2], h_1)
    torch.testing.assert_close(c_0[:, 1:2], c_1)


# -------------------------------------------------------------------------- Seq2Seq
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"attention": "bahdanau", "bridge": "none"}, {"attention": "luong_dot"},
     {"attention": "luong_concat", "input_feeding": False, "tie_embeddings": True},
     {"encoder": {"cell": "gru", "num_layers": 1, "bidirectional": False}},
     {"encoder": {"num_layers": 3, "hidden_size": 5, "impl": "fused"}, "decoder_layers": 1}],
    ids=["default", "bahdanau-none", "dot", "concat-nofeed-tied", "gru", "deep-fused"],
)
def test_seq2seq_padding_invariance(kwargs):
    """A sentence alone and inside a padded batch of others gets the same logits."""
    net = make_net(**kwargs)
    src = torch.randint(4, 13, (3, 7))
    src_lengths = torch.tensor([4, 7, 2])
    src[0, 4:] = 0
    src[2, 2:] = 0
    tgt = torch.randint(4, 11, (3, 5))
    tgt_lengths = torch.tensor([5, 2, 3])
    logits = net(src, src_lengths, tgt)
    packed = net(src, src_lengths, tgt, tgt_lengths)
    assert logits.shape == packed.shape == (3, 5, 11)
    for b, (n, m) in enumerate(zip(src_lengths.tolist(), tgt_lengths.tolist(), strict=True)):
        alone = net(src[b : b + 1, :n], src_lengths[b : b + 1], tgt[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone, rtol=0, atol=1e-12)
        torch.testing.assert_close(packed[b, :m], alone[0, :m], rtol=0, atol=1e-12)


def test_seq2seq_forward_equals_stepping():
    net = make_net(attention="bahdanau")
    src, src_lengths = torch.randint(4, 13, (2, 5)), torch.tensor([5, 3])
    tgt = torch.randint(4, 11, (2, 4))
    logits = net(src, src_lengths, tgt)
    state = net.encode(src, src_lengths)
    for t in range(4):
        step_logits, state, _ = net.step(tgt[:, t], state)
        torch.testing.assert_close(logits[:, t], step_logits, rtol=0, atol=1e-12)


def test_seq2seq_encoder_settings_and_shared_embeddings():
    net = Seq2Seq(9, 9, hidden_size=8, share_embeddings=True,
                  encoder={"cell": "gru", "impl": "loop"})
    assert net.encoder.hidden_size == 4 and net.encoder.num_directions == 2
    assert net.encoder.cell == "gru" and net.encoder.impl == "loop"
    assert net.src_embedding.weight is net.decoder.embedding.weight
    assert net.decoder.memory_size == 8
    assert torch.count_nonzero(net.src_embedding.weight[0]) == 0


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attention": "luong"}, "attention must be one of"),
        ({"bridge": "clone"}, "bridge must be one of"),
        ({"encoder": {"input_size": 3}}, r"unknown encoder setting\(s\) \['input_size'\]"),
        ({"encoder": {"layers": 3}}, r"unknown encoder setting\(s\) \['layers'\]"),
        ({"encoder": {"cell": "rnn"}}, "cell must be one of"),
        ({"hidden_size": 7}, "must split over 2 directions"),
        ({"share_embeddings": True}, "share_embeddings needs one vocabulary"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"decoder_layers": 0}, "num_layers must be a positive integer"),
        ({"attention": "luong_dot", "encoder": {"hidden_size": 3}}, "query size = memory size"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seq2Seq(13, 11, **({"hidden_size": 8} | kwargs))


def test_call_errors():
    decoder = make_decoder()
    tokens, state, memory, mask = decoder_inputs(decoder)
    with pytest.raises(ValueError, match="tokens must be 1-D"):
        decoder.step(tokens, state, memory, mask)
    with pytest.raises(ValueError, match="tokens must be 2-D"):
        decoder(tokens.double(), state, memory, mask)
    with pytest.raises(ValueError, match=r"state \(h, c\) must be \(2, 3, 8\)"):
        decoder(tokens, DecoderState(state.h[:1], state.c[:1], state.feed), memory, mask)
    with pytest.raises(ValueError, match=r"memory must be \(B=2"):
        decoder(tokens[:2], state.select(torch.tensor([0, 1])), memory, mask)
    with pytest.raises(ValueError, match="memory_mask must be bool"):
        decoder(tokens, state, memory, mask.long())
    with pytest.raises(ValueError, match="h_0 has shape"):
        decoder.initial_state(state.h[:1], state.c)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=4\], got min 0"):
        decoder(tokens, state, memory, mask, torch.tensor([0, 2, 3]))
    with pytest.raises(ValueError, match="lengths must be 1-D integers of size B=3"):
        decoder(tokens, state, memory, mask, torch.tensor([2.0, 2.0, 3.0]))
    net = make_net()
    with pytest.raises(ValueError, match="src must be 2-D"):
        net(torch.zeros(3, dtype=torch.long), torch.tensor([1]), torch.zeros(1, 2).long())
    with pytest.raises(ValueError, match="tgt_in must be 2-D"):
        net(torch.ones(2, 3).long(), torch.tensor([3, 3]), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"tgt_in must be \(B=2"):
        net(torch.ones(2, 3).long(), torch.tensor([3, 3]), torch.ones(3, 2).long())
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=3\]"):
        net(torch.ones(2, 3).long(), torch.tensor([4, 3]), torch.ones(2, 2).long())
