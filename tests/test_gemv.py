"""The hand-written few-row kernel (gemv.c): equal to F.linear on every shape it takes, built once per machine,
and simply not offered where it cannot be built."""

from __future__ import annotations

import platform

import pytest
import torch
import torch.nn.functional as F

from januspro.models import gemv as G
from januspro.models import linear as L

needs_gemv = pytest.mark.skipif(not G.available(), reason=f"gemv kernel not built: {G.why_unavailable()}")


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """A process that has not tried to build the kernel yet, building into an empty folder."""
    monkeypatch.setattr(G, "_LIB", None)
    monkeypatch.setattr(G, "_TRIED", False)
    monkeypatch.setattr(G, "_ERROR", None)
    monkeypatch.setenv("JANUSPRO_KERNEL_DIR", str(tmp_path / "kernels"))
    return tmp_path / "kernels"


@needs_gemv
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(64, 128), (37, 53), (130, 1000), (5, 7)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_equals_linear(dtype, rows, shape, bias, threads):
    """Full blocks of four weight rows and the rows left over, whole vectors and the features left over."""
    n, k = shape
    g = torch.Generator().manual_seed(n * 1000 + k + rows)
    w = torch.randn(n, k, generator=g).to(dtype)
    x = torch.randn(rows, k, generator=g).to(dtype)
    b = torch.randn(n, generator=g).to(dtype) if bias else None
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y = G.gemv(x, w, b)
    finally:
        torch.set_num_threads(before)
    ref = F.linear(x.float(), w.float(), None if b is None else b.float())
    assert y.dtype == dtype and y.shape == (rows, n)
    if dtype == torch.float32:
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4)
    else:  # fp32 sums of bf16 products, rounded once to bf16
        torch.testing.assert_close(y.float(), ref, rtol=1e-2, atol=1e-2 * ref.abs().max().item())


@needs_gemv
def test_leading_dimensions_and_strided_input():
    w = torch.randn(48, 80)
    x = torch.randn(2, 1, 160)[..., ::2]  # [2, 1, 80], not contiguous
    y = G.gemv(x, w)
    assert y.shape == (2, 1, 48)
    torch.testing.assert_close(y, F.linear(x, w), rtol=1e-5, atol=1e-4)


@needs_gemv
def test_bad_input_is_a_clear_error():
    w = torch.randn(16, 32)
    with pytest.raises(ValueError, match="input has 31 features, the weight expects 32"):
        G.gemv(torch.randn(2, 31), w)
    with pytest.raises(ValueError, match=f"1-{G.max_rows()} rows"):
        G.gemv(torch.randn(G.max_rows() + 1, 32), w)
    with pytest.raises(ValueError, match="contiguous CPU fp32/bf16"):
        G.gemv(torch.randn(2, 32), torch.randn(32, 16).t())
    with pytest.raises(ValueError, match="contiguous CPU fp32/bf16"):
        G.gemv(torch.randn(2, 32).half(), w.half())
    with pytest.raises(ValueError, match="input is torch.bfloat16, the weight torch.float32; they must match"):
        G.gemv(torch.randn(2, 32).bfloat16(), w)


@needs_gemv
def test_built_once_then_loaded(fresh_build):
    assert G.available()
    built = list(fresh_build.glob("gemv-*.so"))
    assert len(built) == 1 and not list(fresh_build.glob(".*.tmp"))
    stamp = built[0].stat().st_mtime_ns
    G._TRIED, G._LIB = False, None  # another process on the same machine
    assert G.available() and built[0].stat().st_mtime_ns == stamp, "loaded, not built again"


@needs_gemv
def test_damaged_library_is_rebuilt(fresh_build):
    path = G.library_path(G._compiler(), G.FLAG_SETS[0])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a shared library")  # e.g. a build killed before atomic writes, or a foreign file
    assert G.available(), "a file that does not load is built again"
    assert path.stat().st_size > 1000 and list(fresh_build.glob("gemv-*.so")) == [path]
    torch.testing.assert_close(G.gemv(torch.ones(1, 8), torch.ones(3, 8)), torch.full((1, 3), 8.0))


def test_without_a_compiler_it_is_not_offered(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert not G.available() and "no C compiler" in G.why_unavailable()
    assert G.max_rows() == 0 and not G.applies(torch.randn(8, 8), 2)
    with pytest.raises(RuntimeError, match="gemv kernel is not available: no C compiler"):
        G.gemv(torch.randn(1, 8), torch.randn(8, 8))
    monkeypatch.setattr(L, "_CHOICES", {})
    lin = L.Linear(1024, 1024)
    assert "gemv" not in lin.candidates(2)


def test_a_compiler_that_fails_is_reported(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", "false")  # exists, exits 1
    assert not G.available()
    assert "exited with 1" in G.why_unavailable() and not list(fresh_build.glob("*"))


def test_unwritable_kernel_folder_is_not_an_error(fresh_build, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("JANUSPRO_KERNEL_DIR", str(blocker / "kernels"))  # its parent is a file
    assert not G.available() and "cannot write" in G.why_unavailable()
    assert "gemv" not in L.Linear(1024, 1024).candidates(2)


def test_can_be_turned_off(fresh_build, monkeypatch):
    monkeypatch.setenv("JANUSPRO_CPU_GEMV", "0")
    assert not G.available() and G.why_unavailable() == "turned off by JANUSPRO_CPU_GEMV=0"
    assert not fresh_build.exists(), "nothing is built when it is off"


@needs_gemv
def test_linear_runs_gemv_when_it_wins(monkeypatch):
    monkeypatch.setattr(L, "_CHOICES", {})
    monkeypatch.setattr(L.Linear, "_time_kernel", lambda self, kernel, x: 0.5 if kernel == "gemv" else 1.0)
    torch.manual_seed(0)
    lin = L.Linear(1024, 1024).to(torch.bfloat16)
    x = torch.randn(2, 1024, dtype=torch.bfloat16)
    with torch.inference_mode():
        y = lin(x)
    assert lin.kernel(2) == "gemv" and lin.kernel(4) == "gemv"
    assert "gemv" not in lin.candidates(5), "more rows than the kernel takes"
    ref = F.linear(x.float(), lin.weight.float(), lin.bias.float())
    torch.testing.assert_close(y.float(), ref, rtol=1e-2, atol=1e-2 * ref.abs().max().item())


@needs_gemv
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 compiler flags")
def test_avx2_build_equals_linear(fresh_build, monkeypatch):
    """The path for CPUs without AVX-512 (8-float vectors, bf16 widened to fp32), built here with AVX2 flags."""
    monkeypatch.setattr(G, "FLAG_SETS", (["-O3", "-mavx2", "-mfma", "-fopenmp"],))
    assert G.available() and not G.bf16_pairs() and G.library().jp_gemv_vector_floats() == 8
    for dtype in (torch.float32, torch.bfloat16):
        for rows in (1, 2, 4):
            w = torch.randn(37, 101).to(dtype)
            x = torch.randn(rows, 101).to(dtype)
            b = torch.randn(37).to(dtype)
            ref = F.linear(x.float(), w.float(), b.float())
            torch.testing.assert_close(G.gemv(x, w, b).float(), ref, rtol=1e-2, atol=1e-2 * ref.abs().max().item())
