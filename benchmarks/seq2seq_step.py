"""Training-step and decoding time of the translation network (``Seq2Seq``) at Multi30k's shape.

    python -m benchmarks.seq2seq_step [--threads 2] [--runs 10] [--encoder-hidden 256]

Shape (issue 10's peer, OpenNMT-py on Multi30k): B 64 sentences, source and target lengths
uniform in 6..24 (mean 15; Multi30k averages about 13 BPE tokens), joint vocabulary V 8000,
E 256, H 512, a bidirectional 2-layer encoder (H_enc 256 per direction, OpenNMT-py's ``brnn``
convention; ``--encoder-hidden 512`` doubles it), a 2-layer decoder, Luong general attention with
input feeding, dropout 0.3, label smoothing 0.1, AdamW.

Training step = forward, backward and optimizer step. Candidates, interleaved round by round
after warm-up rounds (load drifts hit all alike), medians reported with the ratio to the
baseline:

- ``reference``: the baseline, the same network in plain PyTorch modules laid out as
  OpenNMT-py's RNN seq2seq: ``nn.LSTM`` on a ``PackedSequence``, an ``nn.LSTMCell`` stack stepped
  over every padded target position, the output layer after the loop, cross-entropy ignoring
  padding.
- ``Seq2Seq padded``: ``Seq2Seq.forward`` on the padded batch, cross-entropy ignoring padding.
- ``Seq2Seq packed``: ``Seq2Seq.attentional`` with the target lengths (padded steps skipped)
  and the output layer on the real target tokens only.

Decoding: a random ``Seq2Seq`` of that shape, 64 sentences, every max length 30 (a random model
rarely ends early, so every step runs); greedy is the baseline of beam 5.

Legend: B batch, S source length, T target length, V vocabulary, E embedding, H hidden.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlp_lstm.nn import beam_search, greedy, lengths_to_mask
from nlp_lstm.translation.net import Seq2Seq, Seq2SeqState

B, V, E, H, LAYERS, DROPOUT, SMOOTHING = 64, 8000, 256, 512, 2, 0.3, 0.1
PAD, BOS, EOS = 0, 2, 3


class Reference(nn.Module):
    """The baseline: OpenNMT-py's RNN seq2seq layout in plain PyTorch modules."""

    def __init__(self, encoder_hidden: int) -> None:
        super().__init__()
        self.src_embedding = nn.Embedding(V, E, padding_idx=PAD)
        self.tgt_embedding = nn.Embedding(V, E, padding_idx=PAD)
        self.encoder = nn.LSTM(E, encoder_hidden, LAYERS, batch_first=True, bidirectional=True,
                               dropout=DROPOUT)
        self.bridge = nn.Linear(2 * encoder_hidden, H) if 2 * encoder_hidden != H else None
        self.cells = nn.ModuleList([nn.LSTMCell(E + H if k == 0 else H, H)
                                    for k in range(LAYERS)])
        self.attention_in = nn.Linear(H, 2 * encoder_hidden, bias=False)  # general: W_a
        self.attention_out = nn.Linear(2 * encoder_hidden + H, H, bias=False)
        self.generator = nn.Linear(H, V)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> torch.Tensor:
        packed = pack_padded_sequence(self.dropout(self.src_embedding(src)), src_lengths,
                                      batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        mask = lengths_to_mask(src_lengths, src.size(1))  # (B, S)
        # The initial state: both directions of each layer, concatenated (L, B, 2 H_enc).
        h = torch.cat([h_n[0::2], h_n[1::2]], dim=2)
        c = torch.cat([c_n[0::2], c_n[1::2]], dim=2)
        if self.bridge is not None:
            h, c = self.bridge(h), self.bridge(c)
        hs, cs = list(h), list(c)
        feed = memory.new_zeros(src.size(0), H)
        outputs = []
        for emb in self.dropout(self.tgt_embedding(tgt_in)).unbind(1):  # T x (B, E)
            x = torch.cat([emb, feed], dim=1)
            for k, cell in enumerate(self.cells):
                hs[k], cs[k] = cell(x, (hs[k], cs[k]))
                x = self.dropout(hs[k]) if k < LAYERS - 1 else hs[k]
            scores = torch.bmm(memory, self.attention_in(x).unsqueeze(2)).squeeze(2)  # (B, S)
            weights = scores.masked_fill(~mask, float("-inf")).softmax(1)
            context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
            feed = self.dropout(torch.tanh(self.attention_out(torch.cat([context, x], 1))))
            outputs.append(feed)
        return self.generator(torch.stack(outputs, dim=1))  # (B, T, V)


def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    src_lengths = torch.randint(6, 25, (B,))
    tgt_lengths = torch.randint(6, 25, (B,)) + 1  # with <bos> (tgt_in) or <eos> (tgt_out)
    S, T = int(src_lengths.max()), int(tgt_lengths.max())
    src = torch.randint(4, V, (B, S)).masked_fill(torch.arange(S) >= src_lengths[:, None], PAD)
    tgt = torch.randint(4, V, (B, T + 1))
    tgt[:, 0] = BOS
    tgt = tgt.masked_fill(torch.arange(T + 1) > tgt_lengths[:, None], PAD)
    return {"src": src, "src_lengths": src_lengths, "tgt_in": tgt[:, :-1],
            "tgt_out": tgt[:, 1:], "tgt_lengths": tgt_lengths}


def network(encoder_hidden: int) -> Seq2Seq:
    return Seq2Seq(V, V, pad_id=PAD, embedding_dim=E, hidden_size=H,
                   encoder={"num_layers": LAYERS, "hidden_size": encoder_hidden},
                   decoder_layers=LAYERS, attention="luong_general", dropout=DROPOUT)


def training_steps(encoder_hidden: int) -> dict[str, Callable[[], None]]:
    data = batch()
    src, src_lengths, tgt_in, tgt_out = (data[k] for k in ("src", "src_lengths", "tgt_in",
                                                           "tgt_out"))
    tgt_lengths = data["tgt_lengths"]
    real = lengths_to_mask(tgt_lengths, tgt_in.size(1))  # (B, T)

    def padded_loss(net: nn.Module) -> torch.Tensor:
        logits = net(src, src_lengths, tgt_in)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD,
                               label_smoothing=SMOOTHING)

    def packed_loss(net: Seq2Seq) -> torch.Tensor:
        hidden = net.attentional(src, src_lengths, tgt_in, tgt_lengths)[real]  # (N, H)
        return F.cross_entropy(net.decoder.logits(hidden), tgt_out[real],
                               label_smoothing=SMOOTHING)

    def step_of(net: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor]
                ) -> Callable[[], None]:
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def step() -> None:
            loss = loss_fn(net)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    torch.manual_seed(1)
    return {"reference": step_of(Reference(encoder_hidden).train(), padded_loss),
            "Seq2Seq padded": step_of(network(encoder_hidden).train(), padded_loss),
            "Seq2Seq packed": step_of(network(encoder_hidden).train(), packed_loss)}


def decoders(encoder_hidden: int) -> dict[str, Callable[[], None]]:
    data = batch()
    torch.manual_seed(1)
    net = network(encoder_hidden).eval()
    max_lengths = torch.full((B,), 30)

    def run_greedy() -> None:
        with torch.no_grad():
            state = net.encode(data["src"], data["src_lengths"])
        greedy(net.step, state, bos_id=BOS, eos_id=EOS, max_lengths=max_lengths,
               reorder=Seq2SeqState.select)

    def run_beam() -> None:
        with torch.no_grad():
            state = net.encode(data["src"], data["src_lengths"])
        beam_search(net.step, state, reorder=Seq2SeqState.select, bos_id=BOS, eos_id=EOS,
                    max_lengths=max_lengths, beam_size=5)

    return {"greedy": run_greedy, "beam 5": run_beam}


def medians(candidates: dict[str, Callable[[], None]], runs: int, warmup: int
            ) -> dict[str, float]:
    times: dict[str, list[float]] = {label: [] for label in candidates}
    for round_ in range(warmup + runs):
        for label, run in candidates.items():
            start = time.perf_counter()
            run()
            if round_ >= warmup:
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--encoder-hidden", type=int, default=H // 2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, median of "
          f"{args.runs} runs after {args.warmup} warm-up rounds; B {B}, lengths 6..24, V {V}, "
          f"E {E}, H {H}, encoder 2x{args.encoder_hidden} bi L{LAYERS}, decoder L{LAYERS}")
    print("| part | candidate | ms | vs baseline | sentences/s |")
    print("|---|---|---:|---:|---:|")
    for part, candidates, baseline in (
        ("training step", training_steps(args.encoder_hidden), "reference"),
        ("decoding, max length 30", decoders(args.encoder_hidden), "greedy"),
    ):
        result = medians(candidates, args.runs, args.warmup)
        for label, seconds in result.items():
            print(f"| {part} | {label} | {seconds * 1e3:.0f} | "
                  f"{seconds / result[baseline]:.2f}x | {B / seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
