"""Text generation (understanding / chat): batched, streaming, over the static KV cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..models.janus import JanusModel
from ..models.linear import prepack
from ..processing.processor import ChatBatch, EncodedChat, JanusProcessor
from .decode import make_decode_step, prefill, step
from .sampling import (
    SamplingParams,
    apply_repetition_penalty,
    draw_noise_per,
    make_generator,
    sample,
    sample_with_noise,
)

Conversation = list[dict[str, Any]]


@dataclass(frozen=True)
class TextGenParams:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 = greedy, the official default for understanding
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = field(default_factory=tuple)  # extra stop strings (the template's are always used)
    seed: int | None = None
    compile: bool = False
    # look, then answer (generation/look.py): ask this question about the first user turn's images first (the
    # shapes world's "List the objects."), then answer with the model's own answer to it in the chat; "" = off
    look: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.look, str):
            raise ValueError(f"look must be a question (a string), got {self.look!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        SamplingParams(self.temperature, self.top_k, self.top_p)

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_k, self.top_p)


@dataclass
class TokenEvent:
    """New tokens of one decoding step: ``tokens[r]`` is row r's token, or -1 once the row has finished."""

    tokens: list[int]
    finished: list[bool]


@torch.inference_mode()
def generate_token_steps(model: JanusModel, batch: ChatBatch, params: TextGenParams, eos_id: int,
                         image_token_id: int, stop_check: Any = None,
                         generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
                         logits_hook: Callable[[int, torch.Tensor], None] | None = None) -> Iterator[TokenEvent]:
    """Yield one :class:`TokenEvent` per step until every row has hit EOS, a stop, or the token limit.

    ``stop_check(row, new_token) -> bool`` may end a row early (stop strings). ``generator`` replaces
    ``params.seed``'s: one for all rows, or one per row (a row then samples as it would alone).
    ``logits_hook(step, logits)`` may edit each step's float logits [R, V] in place before sampling.
    """
    device = model.lm_head.weight.device
    dtype = model.lm_head.weight.dtype
    batch = batch.to(device, dtype)
    ctx = model.cfg.llm.max_position_embeddings
    budget = min(params.max_new_tokens, ctx - batch.input_ids.shape[1])
    if budget < 1:
        raise ValueError(f"the prompt ({batch.input_ids.shape[1]} tokens) fills the model's context ({ctx})")
    embeds = model.embed_inputs(batch.input_ids, batch.pixel_values, image_token_id)
    hidden, state = prefill(model, embeds, batch.attention_mask, budget)
    gen = make_generator(params.seed, device) if generator is None else generator
    per_row = not (gen is None or isinstance(gen, torch.Generator))
    if per_row and len(gen) != batch.input_ids.shape[0]:  # type: ignore[arg-type]
        raise ValueError(f"{len(gen)} generators for {batch.input_ids.shape[0]} rows")  # type: ignore[arg-type]
    if params.compile:
        prepack(model, rows=batch.input_ids.shape[0])  # the compiled step reaches each CPU kernel through an opaque op
    fn = make_decode_step(params.compile)
    r = batch.input_ids.shape[0]
    finished = [False] * r
    penalise = params.repetition_penalty != 1.0
    seen = None
    if penalise:  # which tokens each row has seen, only kept when a penalty uses it
        seen = torch.zeros(r, model.cfg.llm.vocab_size, dtype=torch.bool, device=device)
        seen.scatter_(1, batch.input_ids.masked_fill(batch.attention_mask == 0, 0), True)
    sp = params.sampling
    for i in range(budget):
        logits = model.text_logits(hidden).float()  # [R, V]
        if seen is not None:
            logits = apply_repetition_penalty(logits, seen, params.repetition_penalty)
        if logits_hook is not None:
            logits_hook(i, logits)
        if per_row and not sp.greedy:
            nxt = sample_with_noise(logits, sp, draw_noise_per(gen, 1, logits.shape[-1], device))  # type: ignore[arg-type]
        else:
            nxt = sample(logits, sp, gen)  # type: ignore[arg-type]  # [R]
        if seen is not None:
            seen.scatter_(1, nxt[:, None], True)
        toks = nxt.tolist()
        out = []
        for row, t in enumerate(toks):
            if finished[row]:
                out.append(-1)
                continue
            out.append(t)
            if t == eos_id or (stop_check is not None and stop_check(row, t)):
                finished[row] = True
        if i == budget - 1:
            finished = [True] * r
        yield TokenEvent(out, list(finished))
        if all(finished):
            return
        hidden = step(state, model, model.llm.embed_tokens(nxt)[:, None], i, fn)


class _RowText:
    """Incremental detokenisation of one row: emits text once it is final, cuts at the first stop string."""

    def __init__(self, processor: JanusProcessor, stops: Sequence[str]) -> None:
        self.processor = processor
        self.stops = [s for s in stops if s]
        tok = processor.tokenizer
        self.specials = (tok.special.bos, tok.special.eos, tok.special.pad)
        self.ids: list[int] = []
        self.emitted = 0
        self.stopped = False

    def _text(self) -> str:
        """Text so far (specials kept so stop strings made of special tokens are seen), cut at a stop."""
        full = self.processor.decode(self.ids, skip_special_tokens=False)
        cut = min((k for k in (full.find(s) for s in self.stops) if k >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            full = full[:cut]
        for t in self.specials:
            full = full.replace(t, "")
        return full

    def push(self, token: int) -> str:
        """Add a token and return the text that became final."""
        self.ids.append(token)
        text = self._text()
        if not self.stopped:
            text = text.rstrip("\ufffd")  # an incomplete multi-byte character: wait for its other bytes
            hold = 0
            for s in self.stops:  # hold back a tail that may grow into a stop string
                for m in range(min(len(s) - 1, len(text)), 0, -1):
                    if text.endswith(s[:m]):
                        hold = max(hold, m)
                        break
            text = text[: len(text) - hold]
        return self._emit(text)

    def flush(self) -> str:
        return self._emit(self._text())

    def _emit(self, ready: str) -> str:
        piece = ready[self.emitted:]
        self.emitted = max(self.emitted, len(ready))
        return piece


def _stops(processor: JanusProcessor, params: TextGenParams) -> list[str]:
    return [*processor.template.stop_strings, *params.stop]


def stream_chat(model: JanusModel, processor: JanusProcessor, conversations: Sequence[Conversation],
                params: TextGenParams | None = None, system_prompt: str | None = None
                ) -> Iterator[tuple[int, str]]:
    """Stream ``(row, text piece)`` for a batch of conversations (different images and lengths). With
    ``params.look`` each conversation first gets the model's answer to that question (:func:`.look.look_first`)."""
    if params is not None and params.look:
        from .look import look_first

        conversations = look_first(model, processor, conversations, params.look, params, system_prompt)[0]
    return stream_encoded(model, processor, [processor.encode_chat(list(c), system_prompt) for c in conversations],
                          params)


def stream_encoded(model: JanusModel, processor: JanusProcessor, encoded: Sequence[EncodedChat],
                   params: TextGenParams | None = None, stops: Sequence[Sequence[str]] | None = None,
                   finish: list[dict[str, Any]] | None = None) -> Iterator[tuple[int, str]]:
    """:func:`stream_chat` on conversations already encoded with ``processor.encode_chat`` (a server
    validates them first, then batches them). ``stops``: extra stop strings per row, beside ``params.stop``.
    ``finish``, when given, receives per row ``{"completion_tokens", "finish_reason": "stop"|"length"}``."""
    params = params or TextGenParams()
    batch = processor.batch(list(encoded))
    rows = [_RowText(processor, [*_stops(processor, params), *(stops[i] if stops else ())])
            for i in range(len(encoded))]
    pending: list[tuple[int, str]] = []

    def stop_check(row: int, tok: int) -> bool:
        piece = rows[row].push(tok)
        if piece:
            pending.append((row, piece))
        return rows[row].stopped

    tok = processor.tokenizer
    ended = [False] * len(rows)  # by EOS or a stop string (not by the token limit)
    for ev in generate_token_steps(model, batch, params, tok.eos_id, tok.image_id, stop_check):
        for row, t in enumerate(ev.tokens):
            if t == tok.eos_id or (t >= 0 and rows[row].stopped):
                ended[row] = True
        yield from pending
        pending.clear()
    for row, rt in enumerate(rows):
        rest = rt.flush()
        if rest:
            yield row, rest
    if finish is not None:
        finish[:] = [{"completion_tokens": len(rt.ids) + (1 if ended[k] and not rt.stopped else 0),
                      "finish_reason": "stop" if ended[k] else "length"} for k, rt in enumerate(rows)]


def generate_text(model: JanusModel, processor: JanusProcessor, conversations: Sequence[Conversation],
                  params: TextGenParams | None = None, system_prompt: str | None = None) -> list[str]:
    """Answers for a batch of conversations (one string per conversation)."""
    out = [""] * len(conversations)
    for row, piece in stream_chat(model, processor, conversations, params, system_prompt):
        out[row] += piece
    return [o.strip() for o in out]


def chat(model: JanusModel, processor: JanusProcessor, conversation: Conversation | str,
         images: Sequence[Any] = (), params: TextGenParams | None = None, system_prompt: str | None = None) -> str:
    """Answer one conversation; a plain string is one user turn (with ``images`` placed before the text)."""
    if isinstance(conversation, str):
        parts: list[dict[str, Any]] = [{"type": "image", "image": im} for im in images]
        parts.append({"type": "text", "text": conversation})
        conversation = [{"role": "user", "content": parts}]
    return generate_text(model, processor, [conversation], params, system_prompt)[0]
