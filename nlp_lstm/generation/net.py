"""The language-model network, torch only: a stack of LSTM layers with an optional window of
attention over its own past (or a causal Transformer), and an output layer tied to the embedding.

    tokens (B, T) -> embedding (B, T, E) -> L single-layer ``LSTMEncoder``s (B, T, H)
    -> attention "window": tanh(W_c [context; h_t]) (B, T, O)
       or none: a linear projection to O when O != H
    -> output layer (B, T, V)

with O = E when the output layer is tied to the embedding, else H. (With attention, W_c maps
straight to O: an (H, H) combination followed by an (H, E) projection would add about 13% to
the cost per token of a 2-layer LSTM with E = 128, H = 512, for logits of the same rank.)

Everything is causal, and all that one batch passes to the next is ``LMState``: the final
(h, c) of every layer and, with attention, the top layer's last W hidden states. So a long
text run as contiguous batches (truncated BPTT: the caller detaches the state between them)
gives the logits of the text run at once, and generation is the same forward with T = 1.

With ``encoder.kind: transformer`` a causal pre-norm ``TransformerEncoder`` replaces the LSTM
layers (and the attention window: the Transformer attends to its whole context already):

    tokens (B, T) -> embedding (B, T, E) -> TransformerEncoder, causal (B, T, H)
    -> a linear projection to O when O != H -> output layer (B, T, V)

Its state is the encoder's key/value cache (``LMState.cache``), and ``carries_state`` is False:
a training or validation batch is read on its own (causal attention within the batch; absolute
positions restart at 0), never continued from the previous batch as the LSTM's is, since its
positions end at ``encoder.max_length``. ``prompt`` and ``step`` do continue it: a step reads one
token against the cached keys and values (cost growing with the context, unlike the LSTM's),
and past ``encoder.max_length`` tokens the cache shrinks to its last half, re-read
(``nlp_lstm.nn.transformer``).

Regularisation (AWD-LSTM, Merity et al. 2018), every one off by default:

- ``dropout_embedding``: drops whole word types (rows of the embedding matrix) per batch;
- ``dropout_input``, ``dropout_hidden``, ``dropout_output``: locked (variational) dropout, one
  mask per sequence shared by all time steps, on the embeddings, between LSTM layers and on
  the vector fed to the output layer;
- ``weight_drop`` in the ``encoder`` mapping: DropConnect on the recurrent weights.

The layers are single-layer ``LSTMEncoder``s, not one multi-layer one, because the encoder's own
``dropout`` between layers draws a new mask at every step; locked dropout goes between our
layers instead. (On CPU, L fused single-layer calls cost the same as one L-layer call.)

The output layer is a full softmax over V, or with ``adaptive_cutoffs`` an adaptive softmax
(Grave et al. 2017): the frequent words in a head, the rare ones in tail clusters of smaller
projections. The distribution stays exact; the cost per token falls by about 10x for a 32k word
vocabulary, where the full softmax is 90% of a CPU step. Training and evaluation score the
target only (``target_log_probs``); ``forward`` returns the full log-probabilities (as logits:
their log-sum-exp is 0), for generation.

Legend: B batch, T time, E embedding size, H hidden, L layers, V vocab, W attention window,
O the size of the vector fed to the output layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn.dropout import embedding_dropout, locked_dropout
from nlp_lstm.nn.encoder import ENCODER_KINDS, LSTMEncoder
from nlp_lstm.nn.transformer import KVCache, TransformerEncoder

ATTENTIONS = ("none", "window")
# Encoder arguments the ``encoder`` mapping may set (input_size comes from the embedding; the
# Transformer is always causal).
ENCODER_KEYS = ("hidden_size", "num_layers", "cell", "layer_norm", "weight_drop", "init",
                "max_timescale", "impl")
TRANSFORMER_KEYS = ("hidden_size", "num_layers", "nhead", "dim_feedforward", "dropout",
                    "activation", "positions", "max_length")


class LMState(NamedTuple):
    """What a batch hands to the next contiguous batch (or a generation step to the next).

    h, c: (L, B, H) final states of every layer, as in ``nn.LSTM``; c is None for ``cell="gru"``.
    memory: (B, W, H) the top layer's last W hidden states, oldest first; None without attention.
    memory_mask: (B, W) True where the memory holds a real state (False before the text began).
    cache: the Transformer's ``KVCache``; then every other field is None (and cache is None for
        the LSTM).
    """

    h: torch.Tensor | None = None
    c: torch.Tensor | None = None
    memory: torch.Tensor | None = None
    memory_mask: torch.Tensor | None = None
    cache: KVCache | None = None

    def detach(self) -> LMState:
        """The same values cut from the graph, for the next batch of truncated BPTT."""
        return LMState(*(None if t is None else t.detach() for t in self))

    def repeat_interleave(self, n: int) -> LMState:
        """Every sequence's state n times in a row (B -> B*n), e.g. to draw n samples from one
        prompt read once."""
        h, c, memory, mask, cache = self
        return LMState(None if h is None else h.repeat_interleave(n, dim=1),  # (L, B*n, H)
                       None if c is None else c.repeat_interleave(n, dim=1),  # (L, B*n, H)
                       None if memory is None else memory.repeat_interleave(n, dim=0),
                       None if mask is None else mask.repeat_interleave(n, dim=0),  # (B*n, W)
                       None if cache is None else cache.repeat_interleave(n))


def window_mask(memory_mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Which keys each query may attend to.

    The keys are the W memory slots followed by the T current positions, so key j is text
    position j - W relative to the batch start. Query t sees keys t .. t + W, i.e. positions
    t - W .. t: the W before it and itself, never a later one, and memory slots only where
    ``memory_mask`` is True.

    Args:
        memory_mask: (B, W) bool, True = a real state.
        steps: T.

    Returns:
        (B, T, W + T) bool, True = may attend.
    """
    B, W = memory_mask.shape
    query = torch.arange(steps, device=memory_mask.device).unsqueeze(1)  # (T, 1)
    key = torch.arange(W + steps, device=memory_mask.device).unsqueeze(0)  # (1, W+T)
    band = (key >= query) & (key <= query + W)  # (T, W+T)
    real = torch.cat([memory_mask, memory_mask.new_ones(B, steps)], dim=1)  # (B, W+T)
    return band.unsqueeze(0) & real.unsqueeze(1)  # (B, T, W+T)


class WindowAttention(nn.Module):
    """Single-head causal attention of each position over its last W top-layer states and its
    own (Luong et al. 2015, "general" score, scaled by 1/sqrt(H)):

        score(t, s) = (W_a h_t) . h_s / sqrt(H)         for s = t - W .. t
        context_t   = sum_s softmax_s(score(t, s)) h_s
        output_t    = tanh(W_c [context_t; h_t])        (O,)

    Position t attends to itself too: every query has at least one key (no empty softmax at
    the start of a text), and attending to itself is how the model ignores the past. Training
    runs all T queries at once over the W + T keys [memory; current] under ``window_mask``; a
    generation step has W + 1 keys, so its cost does not grow with the text.

    Args:
        hidden_size: H.
        window: W >= 1.
        output_size: O, the size of output_t.
    """

    def __init__(self, hidden_size: int, window: int, output_size: int) -> None:
        super().__init__()
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"attention_window must be a positive integer, got {window!r}")
        self.window = window
        self.query = nn.Linear(hidden_size, hidden_size, bias=False)  # W_a
        self.combine = nn.Linear(2 * hidden_size, output_size)  # W_c

    def empty_memory(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory before a text begins: (B, W, H) zeros, (B, W) all False."""
        B, H = hidden.size(0), hidden.size(2)
        memory = hidden.new_zeros(B, self.window, H)  # (B, W, H)
        return memory, torch.zeros(B, self.window, dtype=torch.bool, device=hidden.device)

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attend, and slide the memory along.

        Args:
            hidden: (B, T, H) top-layer states.
            memory: (B, W, H) the states before them.
            memory_mask: (B, W) True = real.
            lengths: (B,) real positions per row (padding after them), None = all T.

        Returns:
            output (B, T, O), the new memory (B, W, H): the last W states up to each row's
            length, and its mask (B, W).
        """
        B, T, _ = hidden.shape
        W = self.window
        keys = torch.cat([memory.to(hidden.dtype), hidden], dim=1)  # (B, W+T, H)
        mask = window_mask(memory_mask, T)  # (B, T, W+T)
        context = F.scaled_dot_product_attention(self.query(hidden), keys, keys,
                                                 attn_mask=mask)  # (B, T, H)
        output = torch.tanh(self.combine(torch.cat([context, hidden], dim=2)))  # (B, T, O)
        real = torch.cat([memory_mask, memory_mask.new_ones(B, T)], dim=1)  # (B, W+T)
        if lengths is None:
            return output, keys[:, T:], real[:, T:]  # (B, W, H), (B, W)
        # Row b's last W real states are keys lengths[b] .. lengths[b] + W - 1.
        index = lengths.view(B, 1) + torch.arange(W, device=hidden.device)  # (B, W)
        new_memory = keys.gather(1, index.unsqueeze(2).expand(-1, -1, keys.size(2)))  # (B, W, H)
        return output, new_memory, real.gather(1, index)  # (B, W, H), (B, W)


class LanguageModelNet(nn.Module):
    """Embedding -> L LSTM layers -> optional window attention -> output layer, or embedding ->
    a causal Transformer -> output layer (see the module docstring).

    Args:
        vocab_size: V.
        embedding_dim: E.
        encoder: ``LSTMEncoder`` keyword arguments for the layers: ``hidden_size`` (required),
            ``num_layers`` (default 1), ``cell``, ``layer_norm``, ``weight_drop``, ``init``,
            ``impl``. No ``dropout`` but 0 (use ``dropout_hidden``, locked) and no
            ``bidirectional`` (a language model reads left to right). Or ``kind: transformer``
            and ``TransformerEncoder`` arguments: ``hidden_size`` (required), ``num_layers``,
            ``nhead``, ``dim_feedforward``, ``dropout`` (inside its blocks), ``activation``,
            ``positions``, ``max_length`` (the context); never ``causal: false``.
        pad_id: the padding token, whose embedding stays zero; None if there is none.
        attention: ``"none"`` or ``"window"`` (LSTM only).
        attention_window: W, the past positions each position attends to.
        dropout_embedding: probability of dropping a word type (AWD-LSTM ``dropoute``).
        dropout_input: locked dropout on the embeddings (``dropouti``).
        dropout_hidden: locked dropout between LSTM layers (``dropouth``); 0 with a Transformer
            (its dropout is ``encoder.dropout``).
        dropout_output: locked dropout before the output layer (``dropout``).
        tie_embeddings: the output layer's weight is the embedding matrix (Press & Wolf 2017;
            Inan et al. 2017); without attention, a linear projection H -> E precedes it when
            H != E.
        adaptive_cutoffs: increasing token ids in (0, V) that end the head and each tail cluster
            of an adaptive softmax (e.g. [2000, 10000]; the tokenizer numbers words by
            frequency); None: a full softmax. Needs ``tie_embeddings=False``.
        embedding_init_std: the embedding's N(0, std) initialisation: 1 (``nn.Embedding``'s)
            for characters, about 0.1 for a large untied word vocabulary.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        embedding_dim: int,
        encoder: Mapping[str, Any],
        pad_id: int | None = None,
        attention: str = "none",
        attention_window: int = 64,
        dropout_embedding: float = 0.0,
        dropout_input: float = 0.0,
        dropout_hidden: float = 0.0,
        dropout_output: float = 0.0,
        tie_embeddings: bool = True,
        adaptive_cutoffs: Sequence[int] | None = None,
        embedding_init_std: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(embedding_init_std, (int, float)) or not embedding_init_std > 0:
            raise ValueError(f"embedding_init_std must be a positive number, got "
                             f"{embedding_init_std!r}")
        self.embedding_init_std = float(embedding_init_std)
        if pad_id is not None and not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id must be in [0, {vocab_size}) or None, got {pad_id!r}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.dropouts = {"embedding": dropout_embedding, "input": dropout_input,
                         "hidden": dropout_hidden, "output": dropout_output}
        for name, p in self.dropouts.items():
            if not 0.0 <= p < 1.0:
                raise ValueError(f"dropout_{name} must be in [0, 1), got {p!r}")
        if adaptive_cutoffs is not None:
            cutoffs = list(adaptive_cutoffs)
            if (not cutoffs or any(not isinstance(c, int) for c in cutoffs)
                    or cutoffs != sorted(set(cutoffs)) or cutoffs[0] < 1
                    or cutoffs[-1] >= vocab_size):
                raise ValueError(f"adaptive_cutoffs must be increasing integers in (0, "
                                 f"{vocab_size}), got {adaptive_cutoffs!r}")
            if tie_embeddings:
                raise ValueError("adaptive_cutoffs: the adaptive softmax has its own output "
                                 "clusters; set tie_embeddings=false")
        self.kind, layer_args = self._layer_args(encoder)
        hidden_size = layer_args.pop("hidden_size")
        num_layers = layer_args.pop("num_layers", 1)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"encoder.num_layers must be a positive integer, got {num_layers!r}")
        if self.kind == "transformer":
            if attention != "none":
                raise ValueError(f"attention={attention!r} adds a window of attention to the "
                                 "LSTM; the Transformer attends to its context already: set "
                                 "attention='none'")
            if dropout_hidden:
                raise ValueError(f"dropout_hidden={dropout_hidden!r} is the locked dropout "
                                 "between LSTM layers; the Transformer's is encoder.dropout")

        self.vocab_size, self.embedding_dim, self.pad_id = vocab_size, embedding_dim, pad_id
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.attention = attention
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.layers: nn.ModuleList | None = None
        self.transformer: TransformerEncoder | None = None
        if self.kind == "transformer":
            self.cell = None
            self.transformer = TransformerEncoder(embedding_dim, hidden_size, num_layers,
                                                  causal=True, **layer_args)
        else:
            self.cell = layer_args.get("cell", "lstm")
            self.layers = nn.ModuleList(
                LSTMEncoder(embedding_dim if k == 0 else hidden_size, hidden_size, 1,
                            **layer_args)
                for k in range(num_layers)
            )
        out = embedding_dim if tie_embeddings else hidden_size  # O
        self.attend = (WindowAttention(hidden_size, attention_window, out)
                       if attention == "window" else None)
        self.projection = (nn.Linear(hidden_size, out)
                           if self.attend is None and out != hidden_size else None)
        self.adaptive = adaptive_cutoffs is not None
        self.decoder: nn.Module = (
            nn.AdaptiveLogSoftmaxWithLoss(out, vocab_size, list(adaptive_cutoffs), div_value=4.0)
            if self.adaptive else nn.Linear(out, vocab_size))
        self.reset_parameters()
        if tie_embeddings:
            self.decoder.weight = self.embedding.weight  # one Parameter, one storage

    @staticmethod
    def _layer_args(encoder: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The encoder's kind and its arguments, checked."""
        if not isinstance(encoder, Mapping):
            raise ValueError(f"encoder must be a mapping of LSTMEncoder arguments, got "
                             f"{type(encoder).__name__}")
        args = dict(encoder)
        kind = args.pop("kind", "recurrent")
        if kind not in ENCODER_KINDS:
            raise ValueError(f"unknown encoder kind {kind!r}; expected one of {ENCODER_KINDS}")
        if kind == "transformer":
            if not args.pop("causal", True):
                raise ValueError("encoder.causal=False: a language model reads left to right")
            keys = TRANSFORMER_KEYS
        else:
            keys = ENCODER_KEYS
            if args.pop("dropout", 0.0):
                raise ValueError(f"encoder.dropout={encoder['dropout']!r} is not used: the "
                                 "language model puts locked dropout between its layers, set "
                                 "dropout_hidden")
            if args.get("bidirectional"):
                raise ValueError("encoder.bidirectional=True: a language model reads left to "
                                 "right")
            args.pop("bidirectional", None)
        unknown = sorted(set(args) - set(keys))
        if unknown:
            raise ValueError(f"unknown {kind} encoder arguments {unknown}, expected some of "
                             f"{list(keys)}")
        if "hidden_size" not in args:
            raise ValueError("encoder.hidden_size is required")
        return kind, args

    @property
    def carries_state(self) -> bool:
        """Whether contiguous batches continue the previous batch's state (the LSTM: truncated
        BPTT) or are read on their own (the Transformer)."""
        return self.transformer is None

    @property
    def context(self) -> int | None:
        """The most tokens one forward call reads (the Transformer's positions), or None."""
        return None if self.transformer is None else self.transformer.max_length

    def reset_parameters(self) -> None:
        # N(0, 1), nn.Embedding's default. The small uniform(-0.1, 0.1) of PyTorch's
        # word_language_model (tuned for SGD at lr 20) starves the xavier-initialised LSTM of
        # input under Adam: measured on the story corpus (E 64, H 256, L 2, tied, lr 3e-3),
        # the loss sat at the unigram entropy (3.1 nats) for 500 steps, against 0.45 after 60
        # steps with N(0, 1) (0.5: 1.21, 0.25: 1.73). A large word vocabulary without tied
        # weights wants less: a rare word's input row sees a few dozen updates, which leave an
        # N(0, 1) row mostly noise (measured on IMDB: nearest neighbours of 'great' random);
        # embedding_init_std=0.1 lets what the rows learn dominate.
        nn.init.normal_(self.embedding.weight, std=self.embedding_init_std)
        with torch.no_grad():
            if self.pad_id is not None:
                self.embedding.weight[self.pad_id].zero_()
            if not self.adaptive:
                self.decoder.bias.zero_()

    # ------------------------------------------------------------------ checks
    def _check(
        self, tokens: torch.Tensor, state: LMState | None
    ) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens)
            raise ValueError(f"tokens must be a 2-D tensor (B, T), got {shape}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be integer ids, got dtype {tokens.dtype}")
        B, T = tokens.shape
        if B == 0 or T == 0:
            raise ValueError(f"tokens need at least one sequence and one step, got {(B, T)}")
        lo, hi = (int(v) for v in tokens.aminmax())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got min {lo} and "
                             f"max {hi}")
        if state is None:
            return
        if not isinstance(state, LMState):
            raise ValueError(f"state must be an LMState or None, got {type(state).__name__}")
        if self.transformer is not None:
            if state.cache is None or any(t is not None for t in state[:4]):
                raise ValueError("the state of a Transformer language model holds its cache "
                                 "only: LMState(cache=...) as prompt() or step() returned it")
            return  # the encoder checks the cache against the batch
        if state.cache is not None:
            raise ValueError("state.cache is a Transformer's; this language model is an LSTM")
        expected = {"h": (self.num_layers, B, self.hidden_size),
                    "c": (self.num_layers, B, self.hidden_size) if self.cell == "lstm" else None}
        if self.attend is not None:
            expected |= {"memory": (B, self.attend.window, self.hidden_size),
                         "memory_mask": (B, self.attend.window)}
        for name in LMState._fields[:4]:
            value, shape = getattr(state, name), expected.get(name)
            got = None if value is None else tuple(value.shape)
            if got != shape:
                raise ValueError(f"state.{name} has shape {got}, expected {shape}")

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        tokens: torch.Tensor,
        state: LMState | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, LMState]:
        """Next-token logits (log-probabilities with an adaptive softmax).

        Args:
            tokens: (B, T) ids.
            state: where the text left off (the previous batch's returned state, detached);
                None starts a text.
            lengths: (B,) real tokens per row when rows are right-padded; None = all T.

        Returns:
            logits (B, T, V), position t predicting token t + 1, and the state after each row's
            last real token.
        """
        x, state = self.features(tokens, state, lengths)  # (B, T, O)
        return self.output(x), state

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The output layer: features (B, T, O) -> logits (B, T, V)."""
        if self.adaptive:
            B, T, width = x.shape
            return self.decoder.log_prob(x.reshape(B * T, width)).view(B, T, -1)  # (B, T, V)
        return self.decoder(x)

    def target_log_probs(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log p(target) (B, T) from features (B, T, O), without the full (B, T, V) of an
        adaptive softmax; in float32."""
        if self.adaptive:
            B, T, width = x.shape
            scored = self.decoder(x.reshape(B * T, width).float(), target.reshape(B * T))
            return scored.output.view(B, T)  # (B, T)
        logits = self.decoder(x).float()  # (B, T, V)
        return -F.cross_entropy(logits.flatten(0, 1), target.flatten(),
                                reduction="none").view_as(target)  # (B, T)

    def features(
        self,
        tokens: torch.Tensor,
        state: LMState | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, LMState]:
        """What the output layer reads: (B, T, O), and the state (see ``forward``)."""
        self._check(tokens, state)
        weight = embedding_dropout(self.embedding.weight, self.dropouts["embedding"],
                                   self.training)  # (V, E)
        x = F.embedding(tokens, weight, self.pad_id)  # (B, T, E)
        x = locked_dropout(x, self.dropouts["input"], self.training)
        if self.transformer is not None:
            x, cache = self.transformer(x, lengths, None if state is None else state.cache)
            if self.projection is not None:
                x = self.projection(x)  # (B, T, O)
            x = locked_dropout(x, self.dropouts["output"], self.training)
            return x, LMState(cache=cache)  # (B, T, O)
        h_n, c_n = [], []
        for k, layer in enumerate(self.layers):
            if k:
                x = locked_dropout(x, self.dropouts["hidden"], self.training)
            layer_state = None
            if state is not None:
                h0 = state.h[k : k + 1]  # (1, B, H)
                layer_state = (h0, state.c[k : k + 1]) if self.cell == "lstm" else h0
            x, final = layer(x, lengths, layer_state)  # (B, T, H)
            h_n.append(final[0] if self.cell == "lstm" else final)  # (1, B, H)
            c_n.append(final[1] if self.cell == "lstm" else None)
        h = torch.cat(h_n)  # (L, B, H)
        c = torch.cat(c_n) if self.cell == "lstm" else None  # (L, B, H)
        memory = memory_mask = None
        if self.attend is not None:
            if state is None:
                memory, memory_mask = self.attend.empty_memory(x)
            else:
                memory, memory_mask = state.memory, state.memory_mask
            if lengths is not None:
                lengths = torch.as_tensor(lengths).to(device=x.device, dtype=torch.int64)
            x, memory, memory_mask = self.attend(x, memory, memory_mask, lengths)  # (B, T, O)
        elif self.projection is not None:
            x = self.projection(x)  # (B, T, O)
        x = locked_dropout(x, self.dropouts["output"], self.training)
        return x, LMState(h, c, memory, memory_mask)  # (B, T, O)

    # -------------------------------------------------------------- generation
    def prompt(
        self, tokens: torch.Tensor, state: LMState | None = None
    ) -> tuple[torch.Tensor, LMState]:
        """Read a prompt in one forward call: tokens (B, P), P >= 1 -> the logits of the token
        after it (B, V) and the state to generate from. (Without a prompt, start from a token
        that separates documents, e.g. a newline for character models.)"""
        logits, state = self(tokens, state)  # (B, P, V)
        return logits[:, -1], state

    def step(self, token: torch.Tensor, state: LMState | None) -> tuple[torch.Tensor, LMState]:
        """One generation step, the forward with T = 1: token (B,) -> logits (B, V), state.
        Matches the teacher-forced logits of the whole text up to float rounding (a
        Transformer's: of the text within its context, ``nlp_lstm.nn.transformer``)."""
        if not isinstance(token, torch.Tensor) or token.dim() != 1:
            shape = tuple(token.shape) if isinstance(token, torch.Tensor) else type(token)
            raise ValueError(f"token must be a 1-D tensor (B,), got {shape}")
        logits, state = self(token.unsqueeze(1), state)  # (B, 1, V)
        return logits.squeeze(1), state
