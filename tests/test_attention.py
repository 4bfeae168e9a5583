"""The attention wrapper: fp32 on CPU when training in half precision, plain SDPA otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from januspro.models import attention
from januspro.models.attention import sdpa


def _qkv(dtype: torch.dtype, grad: bool) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 4, 12, 8, generator=g).to(dtype).requires_grad_(grad) for _ in range(3)]


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[torch.dtype, bool]]:
    """Records (q dtype, autocast on) of every SDPA call the wrapper makes."""
    seen: list[tuple[torch.dtype, bool]] = []
    real = F.scaled_dot_product_attention

    def record(q, k, v, **kw):
        seen.append((q.dtype, torch.is_autocast_enabled("cpu")))
        return real(q, k, v, **kw)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", record)
    return seen


@pytest.mark.parametrize("causal", [False, True])
def test_training_in_bf16_attends_in_fp32_and_matches(monkeypatch, causal):
    q, k, v = _qkv(torch.bfloat16, grad=True)
    mask = None if causal else torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1)) > 0.3
    if mask is not None:
        mask |= torch.eye(12, dtype=torch.bool)
    ref = [t.detach().float().requires_grad_() for t in (q, k, v)]
    want = F.scaled_dot_product_attention(*ref, attn_mask=mask, is_causal=causal)
    want.sum().backward()
    seen = _spy(monkeypatch)
    out = sdpa(q, k, v, attn_mask=mask, is_causal=causal)
    out.float().sum().backward()
    assert seen == [(torch.float32, False)]
    assert out.dtype == torch.bfloat16  # the caller's dtype comes back
    torch.testing.assert_close(out.float(), want, atol=2e-2, rtol=2e-2)
    for got, r in zip((q, k, v), ref, strict=True):
        assert got.grad is not None and got.grad.dtype == torch.bfloat16
        torch.testing.assert_close(got.grad.float(), r.grad, atol=3e-2, rtol=3e-2)


def test_under_autocast_the_output_keeps_the_autocast_dtype(monkeypatch):
    q, k, v = _qkv(torch.float32, grad=True)
    seen = _spy(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sdpa(q, k, v, is_causal=True)
        plain = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert seen == [(torch.float32, False), (torch.float32, True)]  # ours paused autocast, the plain call not
    assert out.dtype == plain.dtype == torch.bfloat16
    out.float().sum().backward()
    assert q.grad is not None and q.grad.dtype == torch.float32


@pytest.mark.parametrize(("dtype", "grad"), [(torch.bfloat16, False), (torch.float32, True)])
def test_inference_and_fp32_training_are_plain_sdpa(monkeypatch, dtype, grad):
    q, k, v = _qkv(dtype, grad=grad)
    seen = _spy(monkeypatch)
    out = sdpa(q, k, v, is_causal=True)
    assert seen == [(dtype, False)]
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_training_benchmark_runs_and_writes_its_table(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "bench_train.py"
    out = tmp_path / "RESULTS.md"
    res = subprocess.run([sys.executable, str(script), "--stages", "stage2", "--reps", "1", "--inner", "1",
                          "--items", "40", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    table = out.read_text()
    assert "## bench_train.py" in table and "| stage2 | (" in table
    bad = subprocess.run([sys.executable, str(script), "--stages", "stage9"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown stage" in bad.stderr
    zero = subprocess.run([sys.executable, str(script), "--reps", "0"], capture_output=True, text=True)
    assert zero.returncode == 2 and "must be at least 1" in zero.stderr
