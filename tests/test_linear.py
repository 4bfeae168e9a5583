"""The CPU inference Linear: oneDNN-packed weights and the few-row path equal nn.Linear."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from januspro.models import linear as L


def _layer(out_f: int = 1024, in_f: int = 1024, bias: bool = True) -> L.Linear:
    torch.manual_seed(0)
    return L.Linear(in_f, out_f, bias=bias)  # 1M weights: above MIN_WEIGHT


@pytest.mark.parametrize("rows", [1, 2, 16, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_equals_linear(rows, dtype):
    lin = _layer().to(dtype)
    x = torch.randn(rows, 3, 1024).to(dtype)
    with torch.inference_mode():
        y = lin(x)
    if dtype in L._UNSUPPORTED:  # this CPU's oneDNN cannot pack bf16: the plain kernels ran
        assert lin.packed is None
    else:
        assert lin.packed is not None, "an inference call on CPU packs a large weight"
    ref = F.linear(x.float(), lin.weight.float(), lin.bias.float())
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(y.float(), ref, rtol=tol, atol=tol * ref.abs().max().item())
    assert set(lin.state_dict()) == {"weight", "bias"}  # the packed copy is not part of the state


def test_repacks_after_weight_change_and_skips_training():
    lin = _layer(bias=False)
    x = torch.randn(2, 1024)
    with torch.no_grad():
        first = lin(x)
        lin.weight.mul_(2.0)  # in place: the version changes, the packed copy must follow
        torch.testing.assert_close(lin(x), 2 * first, rtol=1e-4, atol=1e-4)
    packed = lin.packed
    assert packed is not None
    lin2 = copy.deepcopy(lin)  # the packed copy stays outside the module
    assert lin2.packed is None
    y = lin2(x)  # grad enabled and a trainable weight: the autograd path, nothing packed
    assert y.requires_grad and lin2.packed is None
    y.sum().backward()
    assert lin2.weight.grad is not None


def test_packing_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("JANUSPRO_CPU_PACK", "0")
    lin = _layer()
    with torch.inference_mode():
        y = lin(torch.randn(4, 1024))
    assert lin.packed is None and y.shape == (4, 1024)


def test_no_packing_without_memory(monkeypatch):
    monkeypatch.setattr(L, "available_memory", lambda: 1 << 20)
    lin = _layer()
    x = torch.randn(4, 1024)
    with torch.inference_mode():
        y = lin(x)
    assert lin.packed is None
    torch.testing.assert_close(y, F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


def test_unsupported_dtype_falls_back(monkeypatch):
    def refuse(w, _):
        raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx512bw")

    monkeypatch.setattr(L, "_UNSUPPORTED", set())
    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse)
    lin = _layer()
    x = torch.randn(4, 1024)
    with torch.inference_mode():
        y = lin(x)
    assert lin.packed is None and torch.float32 in L._UNSUPPORTED
    torch.testing.assert_close(y, F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


def test_compiled_call_keeps_the_packed_weight(monkeypatch):
    lin = _layer()
    if not L.packing_enabled() or L.prepack(lin) == 0:
        pytest.skip("oneDNN cannot pack fp32 here")
    calls = []
    real = L.Linear.packed

    def spy(self):
        calls.append(self)
        return real.fget(self)

    monkeypatch.setattr(L.Linear, "packed", property(spy))
    f = torch.compile(lambda x: torch.relu(lin(x)) * 2.0, dynamic=False)
    x = torch.randn(2, 1024)
    with torch.inference_mode():
        y = f(x)
    assert calls == [lin], "the compiled function found the packed weight (through januspro::packed_linear)"
    ref = torch.relu(F.linear(x, lin.weight, lin.bias)) * 2.0
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
