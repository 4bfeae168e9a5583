"""Generation: greedy parity with transformers, cache vs full forward, batching, CFG layout, seeds."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import BOI, BOS, EOS, IMAGE_TOKEN_ID, PAD, make_oracle, mixed_batch, save_oracle
from januspro.checkpoint import load_model
from januspro.generation.decode import prefill
from januspro.generation.image import ImageGenParams, generate_codes, unconditional_ids
from januspro.generation.sampling import (
    SamplingParams,
    apply_repetition_penalty,
    filter_top_k,
    filter_top_p,
    make_generator,
    sample,
)
from januspro.generation.text import TextGenParams, generate_token_steps
from januspro.models.llm import attention_mask, positions_from_padding
from januspro.processing.processor import ChatBatch

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module", params=["a", "b"])
def pair(request, tmp_path_factory):
    oracle = make_oracle(request.param)
    ours = load_model(save_oracle(oracle, tmp_path_factory.mktemp(f"gen_{request.param}")))
    return oracle, ours


def _prompt(g: torch.Generator, n: int, vocab: int) -> list[int]:
    return [BOS] + torch.randint(10, vocab, (n,), generator=g).tolist() + [BOI]


def _left(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(map(len, rows))
    ids = torch.full((len(rows), t), PAD)
    mask = torch.zeros(len(rows), t, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, t - len(r):] = torch.tensor(r)
        mask[i, t - len(r):] = 1
    return ids, mask


def _greedy_codes(ours, prompts, weight=3.0, n=1):
    return generate_codes(ours, prompts, [unconditional_ids(p, PAD) for p in prompts],
                          ImageGenParams(cfg_weight=weight, temperature=0, n=n), PAD)


def test_greedy_image_codes_match_transformers(pair):
    oracle, ours = pair
    g = torch.Generator().manual_seed(0)
    prompts = [_prompt(g, 7, oracle.spec["vocab"]), _prompt(g, 3, oracle.spec["vocab"])]
    for batch in ([prompts[0]], prompts):
        ids, mask = _left(batch)
        ref = oracle.hf.generate(ids, attention_mask=mask, generation_mode="image", do_sample=False,
                                 guidance_scale=3.0)
        got = _greedy_codes(ours, batch)
        assert torch.equal(got, ref)
        for row in got:  # the sequences really vary, so equality means something
            assert row.unique().numel() > 3


@torch.no_grad()
def test_greedy_text_matches_transformers(pair):
    oracle, ours = pair
    ids, pad, pixels, _ = mixed_batch(oracle.spec)
    n_new = 12
    params = TextGenParams(max_new_tokens=n_new, temperature=0)
    # each row alone (no padding), then both rows together (left-padded, different images)
    n_img = [1, 2]
    for rows in ([0], [1], [0, 1]):
        first_img = [sum(n_img[:r]) for r in rows]
        px = torch.cat([pixels[f:f + n_img[r]] for f, r in zip(first_img, rows, strict=True)])
        if len(rows) == 1:
            keep = pad[rows[0]].bool()
            b_ids, b_mask = ids[rows[0]][keep][None], torch.ones(1, int(keep.sum()), dtype=torch.long)
        else:
            b_ids, b_mask = ids, pad
        ref = oracle.hf.generate(input_ids=b_ids, pixel_values=px, attention_mask=b_mask, max_new_tokens=n_new,
                                 min_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=PAD)
        ref = ref[:, b_ids.shape[1]:]
        steps = list(generate_token_steps(ours, ChatBatch(b_ids, b_mask, px), params, eos_id=-1,
                                          image_token_id=IMAGE_TOKEN_ID))
        got = torch.tensor([ev.tokens for ev in steps]).T
        assert torch.equal(got, ref), (rows, got, ref)
        assert all(r.unique().numel() > 2 for r in got)


@torch.no_grad()
def test_cached_decode_equals_full_forward(pair):
    _, ours = pair
    g = torch.Generator().manual_seed(2)
    prompt = _prompt(g, 5, ours.cfg.llm.vocab_size)
    codes = _greedy_codes(ours, [prompt], weight=1.0)[0]  # weight 1: conditional logits only
    emb = torch.cat([ours.llm.embed_tokens(torch.tensor([prompt])), ours.embed_image_codes(codes[None, :-1])], 1)
    logits = ours.image_logits(ours(emb))[0, len(prompt) - 1:]  # full forward, no cache
    assert torch.equal(logits.argmax(-1), codes)
    # text: cached greedy tokens equal the argmax of a full forward over prompt + answer
    ids = torch.tensor([[BOS] + torch.randint(10, 200, (6,), generator=g).tolist()])
    steps = list(generate_token_steps(ours, ChatBatch(ids, torch.ones_like(ids), torch.zeros(0)),
                                      TextGenParams(max_new_tokens=8), -1, IMAGE_TOKEN_ID))
    new = torch.tensor([[ev.tokens[0] for ev in steps]])
    full = ours.text_logits(ours(ours.llm.embed_tokens(torch.cat([ids, new[:, :-1]], 1))))
    assert torch.equal(full[0, ids.shape[1] - 1:].argmax(-1), new[0])


@torch.no_grad()
def test_batched_prompts_equal_alone(pair):
    _, ours = pair
    g = torch.Generator().manual_seed(3)
    prompts = [_prompt(g, k, ours.cfg.llm.vocab_size) for k in (9, 2, 5)]
    batched = _greedy_codes(ours, prompts)
    for i, p in enumerate(prompts):
        assert torch.equal(batched[i], _greedy_codes(ours, [p])[0])
    # and the prefill hidden states agree within fp tolerance
    ids, mask = _left(prompts)
    h_batch, _ = prefill(ours, ours.llm.embed_tokens(ids), mask, 4)
    for i, p in enumerate(prompts):
        h_one, _ = prefill(ours, ours.llm.embed_tokens(torch.tensor([p])), torch.ones(1, len(p)), 4)
        torch.testing.assert_close(h_batch[i], h_one[0], rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_prefill_last_only_equals_full_last_row(pair):
    """The prefill runs its last layer for the last query only; hidden state and cache equal a full pass."""
    _, ours = pair
    g = torch.Generator().manual_seed(4)
    ids, mask = _left([_prompt(g, k, ours.cfg.llm.vocab_size) for k in (7, 3)])
    for rows, pad in ((ids, mask), (ids[:1], mask[:1])):  # padded (boolean mask) and unpadded (causal SDPA)
        emb = ours.llm.embed_tokens(rows)
        t = rows.shape[1]
        key = torch.cat([pad.bool(), torch.ones(rows.shape[0], 2, dtype=torch.bool)], 1)
        full_mask = attention_mask(key[:, :t], torch.arange(t))
        lean_mask = None if bool(pad.all()) else full_mask
        pos = positions_from_padding(pad.bool())
        caches = [ours.new_cache(rows.shape[0], t + 2) for _ in range(2)]
        full = ours(emb, pos, full_mask, caches[0], torch.arange(t), None, t)
        lean = ours(emb, pos, lean_mask, caches[1], torch.arange(t), None, t, last_only=True)
        assert lean.shape == (rows.shape[0], 1, full.shape[-1])
        torch.testing.assert_close(lean[:, 0], full[:, -1], rtol=1e-5, atol=1e-5)
        for a, b in zip(caches[0].k + caches[0].v, caches[1].k + caches[1].v, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def _official_interleaved(model, prompt, n, weight, temperature, seed):
    """DeepSeek's generation loop (interleaved cond/uncond rows, no padding), re-run step by step; ``weight`` may
    be a list with one guidance weight per code."""
    g = make_generator(seed)
    tokens = torch.tensor([prompt] * (2 * n))
    tokens[1::2, 1:-1] = PAD
    emb = model.llm.embed_tokens(tokens)
    out = torch.zeros(n, model.cfg.vq.num_tokens, dtype=torch.long)
    for i in range(model.cfg.vq.num_tokens):
        logits = model.image_logits(model(emb)[:, -1])
        w = weight[i] if isinstance(weight, list) else weight
        logits = logits[1::2] + w * (logits[0::2] - logits[1::2])
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=g)
        out[:, i] = nxt[:, 0]
        step_emb = model.embed_image_codes(torch.cat([nxt, nxt], 1).view(-1))[:, None]
        emb = torch.cat([emb, step_emb], 1)
    return out


@torch.no_grad()
def test_cfg_layout_equals_official_interleaved(pair):
    _, ours = pair
    g = torch.Generator().manual_seed(4)
    prompt = _prompt(g, 6, ours.cfg.llm.vocab_size)
    ref = _official_interleaved(ours, prompt, n=3, weight=4.0, temperature=1.0, seed=11)
    got = generate_codes(ours, [prompt], [unconditional_ids(prompt, PAD)],
                         ImageGenParams(cfg_weight=4.0, temperature=1.0, n=3), PAD, make_generator(11))
    assert torch.equal(got, ref)


@torch.no_grad()
def test_guidance_schedule(pair):
    """``cfg_end``: the weight of code i is linear between the first and last code's, as in a reference loop."""
    _, ours = pair
    g = torch.Generator().manual_seed(7)
    prompt = _prompt(g, 5, ours.cfg.llm.vocab_size)
    t = ours.cfg.vq.num_tokens
    params = ImageGenParams(cfg_weight=6.0, cfg_end=1.0, temperature=1.0, n=2)
    weights = params.cfg_weights(t)
    assert weights[0] == 6.0 and weights[-1] == pytest.approx(1.0) and len(weights) == t
    assert all(a > b for a, b in zip(weights, weights[1:], strict=False))

    def run(p):
        return generate_codes(ours, [prompt], [unconditional_ids(prompt, PAD)], p, PAD, make_generator(12))

    got = run(params)
    assert torch.equal(got, _official_interleaved(ours, prompt, n=2, weight=weights, temperature=1.0, seed=12))
    assert not torch.equal(got, run(ImageGenParams(cfg_weight=6.0, temperature=1.0, n=2)))
    flat = ImageGenParams(cfg_weight=4.0, cfg_end=4.0, temperature=1.0, n=2)  # a flat schedule is the constant weight
    assert torch.equal(run(flat), run(ImageGenParams(cfg_weight=4.0, temperature=1.0, n=2)))
    # a schedule that ends anywhere but 1 needs the unconditional rows even when it starts at 1
    assert ImageGenParams(cfg_weight=1.0, cfg_end=3.0).uses_guidance
    assert not ImageGenParams(cfg_weight=1.0).uses_guidance
    with pytest.raises(ValueError, match="cfg_end"):
        ImageGenParams(cfg_end=-1.0)


def test_seeds(pair):
    _, ours = pair
    g = torch.Generator().manual_seed(5)
    prompt = _prompt(g, 4, ours.cfg.llm.vocab_size)

    def run(seed):
        return generate_codes(ours, [prompt], [unconditional_ids(prompt, PAD)], ImageGenParams(n=2), PAD,
                              make_generator(seed))

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # n samples of one prompt differ


def test_per_prompt_generators_equal_prompts_alone(pair):
    _, ours = pair
    g = torch.Generator().manual_seed(6)
    prompts = [_prompt(g, k, ours.cfg.llm.vocab_size) for k in (6, 2, 4)]
    params = ImageGenParams(n=2, cfg_weight=3.0)

    def run(batch, seeds):
        return generate_codes(ours, batch, [unconditional_ids(p, PAD) for p in batch], params, PAD,
                              [make_generator(s) for s in seeds] if len(seeds) > 1 else make_generator(seeds[0]))

    together = run(prompts, [10, 11, 12])
    alone = torch.cat([run([p], [s]) for p, s in zip(prompts, (10, 11, 12), strict=True)])
    assert torch.equal(together, alone)
    assert not torch.equal(together[0], together[2])  # the rows really sample: prompts give different codes
    shared = generate_codes(ours, prompts, [unconditional_ids(p, PAD) for p in prompts], params, PAD,
                            make_generator(10))  # one generator for the batch: only prompt 0's first draw agrees
    assert torch.equal(shared[:2, 0], together[:2, 0]) and not torch.equal(shared, together)
    with pytest.raises(ValueError, match="2 generators for 3 prompts"):
        generate_codes(ours, prompts, [unconditional_ids(p, PAD) for p in prompts], params, PAD,
                       [make_generator(0), make_generator(1)])


def test_sampling_filters():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert filter_top_k(logits, 2).isinf().tolist() == [[True, False, False, True]]
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert filter_top_p(probs, 0.7).isinf().tolist() == [[False, False, True, True]]
    assert filter_top_p(probs, 0.01).isinf().tolist() == [[False, True, True, True]]
    assert sample(logits, SamplingParams(temperature=0)).item() == 1
    g = make_generator(0)
    draws = {sample(logits, SamplingParams(temperature=1.0, top_k=1), g).item() for _ in range(20)}
    assert draws == {1}
    seen = torch.tensor([[False, True, False, True]])
    pen = apply_repetition_penalty(torch.tensor([[1.0, 2.0, -1.0, -2.0]]), seen, 2.0)
    assert pen.tolist() == [[1.0, 1.0, -1.0, -4.0]]
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="cfg_weight"):
        ImageGenParams(cfg_weight=-1)
    with pytest.raises(ValueError, match="n \\(images per prompt\\)"):
        ImageGenParams(n=0)


def test_eos_stops_rows_independently(pair):
    _, ours = pair
    ids, mask = _left([[BOS, 11, 12, 13], [BOS, 14]])
    steps = list(generate_token_steps(ours, ChatBatch(ids, mask, torch.zeros(0)), TextGenParams(max_new_tokens=6),
                                      eos_id=EOS, image_token_id=IMAGE_TOKEN_ID,
                                      stop_check=lambda row, tok: row == 0))
    assert steps[0].finished == [True, False]
    assert all(ev.tokens[0] == -1 for ev in steps[1:])
    assert len(steps) == 6 and steps[-1].finished == [True, True]


def test_positions_from_padding():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert positions_from_padding(mask).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]
    m = attention_mask(mask.bool(), torch.arange(4))
    assert m[0, 0, 0].tolist() == [True, False, False, False]  # a padding query sees only itself
    assert m[0, 0, 3].tolist() == [False, False, True, True]


def test_sampling_matches_softmax_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]]).expand(40000, 5)
    for temp in (1.0, 0.5):
        got = sample(logits, SamplingParams(temperature=temp), make_generator(3))
        freq = torch.bincount(got, minlength=5).float() / got.numel()
        want = (logits[0] / temp).softmax(-1)
        assert (freq - want).abs().max() < 0.01, (freq, want)
        assert freq[4] == 0  # a filtered token is never drawn


def test_sampling_noise_is_exponential_and_seeded():
    from januspro.generation.sampling import draw_noise

    x = draw_noise(64, 8192, make_generator(5))
    assert x.min() >= 0 and torch.isfinite(x).all()
    assert abs(x.mean().item() - 1) < 0.01 and abs(x.var().item() - 1) < 0.02  # Exp(1): mean 1, variance 1
    for t in (0.5, 1.0, 3.0):  # tail P(E > t) = exp(-t)
        assert abs((x > t).float().mean().item() - math.exp(-t)) < 0.004
    assert torch.equal(draw_noise(4, 100, make_generator(5)), draw_noise(4, 100, make_generator(5)))
    assert not torch.equal(draw_noise(4, 100, make_generator(5)), draw_noise(4, 100, make_generator(6)))


def test_compiled_image_step_equals_eager(pair):
    """The compiled decode step gives the same codes; prompts of other lengths reuse it (cache bucketing)."""
    from torch._dynamo.utils import counters

    _, ours = pair
    g = torch.Generator().manual_seed(6)
    vocab = ours.cfg.llm.vocab_size
    prompts = [_prompt(g, 5, vocab), _prompt(g, 9, vocab)]

    def run(ps, compile, seed=3):
        return generate_codes(ours, ps, [unconditional_ids(p, PAD) for p in ps],
                              ImageGenParams(cfg_weight=4.0, temperature=1.0, n=2, compile=compile), PAD,
                              make_generator(seed))

    eager = run(prompts, False)
    assert torch.equal(run(prompts, True), eager)
    graphs = counters["stats"]["unique_graphs"]
    other = [_prompt(g, 7, vocab), _prompt(g, 12, vocab)]  # longer prompts, same batch: same cache bucket
    assert torch.equal(run(other, True, seed=4), run(other, False, seed=4))
    assert counters["stats"]["unique_graphs"] == graphs, "a prompt of another length recompiled the step"

    def scheduled(compile):
        return generate_codes(ours, prompts, [unconditional_ids(p, PAD) for p in prompts],
                              ImageGenParams(cfg_weight=5.0, cfg_end=1.0, temperature=1.0, n=2, compile=compile),
                              PAD, make_generator(5))

    assert torch.equal(scheduled(True), scheduled(False))
    # the weight is a tensor input: one more graph for the schedule, not one per code
    assert counters["stats"]["unique_graphs"] <= graphs + 1


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (8, 2)])
def test_decode_attention_equals_sdpa(heads, kv_heads):
    import torch.nn.functional as F

    from januspro.models.llm import decode_attention

    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, heads, 1, 16, generator=g)
    k, v = torch.randn(2, 3, kv_heads, 20, 16, generator=g)
    mask = torch.rand(3, 1, 1, 20, generator=g) > 0.4
    mask[..., 0] = True
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=kv_heads != heads)
    torch.testing.assert_close(decode_attention(q, k, v, mask), ref, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_bf16_cached_decode_matches_full_forward(pair):
    """Eager bf16 decode steps attend through SDPA (fp32 ones through decode_attention); they stay equal to
    a full uncached forward within bf16 precision, for a padded and an unpadded row."""
    import copy

    from januspro.generation.decode import step

    model = copy.deepcopy(pair[1]).to(torch.bfloat16)
    g = torch.Generator().manual_seed(5)
    ids = torch.tensor([[BOS] + torch.randint(10, 200, (9,), generator=g).tolist()])
    emb = model.llm.embed_tokens(ids)  # [1, 10, H]
    full = model(emb)[0].float()  # [10, H], no cache
    short = model(emb[:, 2:])[0].float()  # the same tokens without the first two
    pad = torch.ones(2, 6, dtype=torch.long)
    pad[1, :2] = 0  # row 1: left-padded, its prompt is tokens 2..5
    _, state = prefill(model, emb[:, :6].expand(2, -1, -1).contiguous(), pad, 4)
    for i in range(4):
        hidden = step(state, model, emb[:, 6 + i:7 + i].expand(2, -1, -1).contiguous(), i).float()
        torch.testing.assert_close(hidden[0], full[6 + i], rtol=0.05, atol=0.05)
        torch.testing.assert_close(hidden[1], short[4 + i], rtol=0.05, atol=0.05)


def test_attended_slots():
    from types import SimpleNamespace

    from januspro.generation.decode import attended_slots

    state = SimpleNamespace(prompt_len=30, cache=SimpleNamespace(max_len=640))
    assert [attended_slots(state, i) for i in (0, 5, 609)] == [31, 36, 640]  # eager: exactly the filled slots
    compiled = {attended_slots(state, i, compiled=True) for i in range(610)}
    assert compiled == {128, 256, 384, 512, 640}  # a few buckets, so a few compiled graphs
    assert all(attended_slots(state, i, compiled=True) >= 31 + i for i in range(610))
