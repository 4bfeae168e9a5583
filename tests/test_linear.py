"""The CPU inference Linear: every kernel equals nn.Linear, and the timed per-shape choice picks the fastest."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from januspro.models import gemv as G
from januspro.models import linear as L

GEMV = ["gemv"] if G.available() else []  # the own kernel is a candidate wherever a C compiler builds it


@pytest.fixture(autouse=True)
def _fresh_choices(monkeypatch):
    monkeypatch.setattr(L, "_CHOICES", {})
    monkeypatch.setattr(L, "_STORED", None)
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", "off")
    monkeypatch.delenv("JANUSPRO_CPU_KERNEL", raising=False)
    monkeypatch.delenv("JANUSPRO_CPU_PACK", raising=False)


def _layer(out_f: int = 1024, in_f: int = 1024, bias: bool = True) -> L.Linear:
    torch.manual_seed(0)
    return L.Linear(in_f, out_f, bias=bias)  # 1M weights: above MIN_WEIGHT


def _fake_times(monkeypatch, times: dict[str, float]) -> list[str]:
    timed = []

    def fake(self, kernel, x):
        timed.append(kernel)
        return times[kernel]

    monkeypatch.setattr(L.Linear, "_time_kernel", fake)
    return timed


@pytest.mark.parametrize("kernel", L.KERNELS)
@pytest.mark.parametrize("rows", [1, 2, 16, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_kernel_equals_linear(monkeypatch, kernel, rows, dtype):
    monkeypatch.setenv("JANUSPRO_CPU_KERNEL", kernel)
    lin = _layer().to(dtype)
    x = torch.randn(rows, 3, 1024).to(dtype)
    with torch.inference_mode():
        y = lin(x)
    ran = lin.kernel(rows * 3)
    if kernel == "packed" and dtype not in L._UNSUPPORTED:
        assert ran == "packed" and lin.packed is not None
    elif kernel == "wmajor" and dtype == torch.float32 and rows * 3 <= L.SKINNY_ROWS:
        assert ran == "wmajor"
    elif kernel == "gemv" and GEMV and rows * 3 <= G.max_rows():
        assert ran == "gemv"
    else:  # a forced kernel that does not apply here runs F.linear
        assert ran == "linear" or (ran == "packed" and kernel == "packed")
    ref = F.linear(x.float(), lin.weight.float(), lin.bias.float())
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(y.float(), ref, rtol=tol, atol=tol * ref.abs().max().item())
    assert set(lin.state_dict()) == {"weight", "bias"}  # the packed copy is not part of the state


def test_timed_choice_is_the_fastest_and_shared_by_shape(monkeypatch):
    timed = _fake_times(monkeypatch, {"packed": 3.0, "linear": 1.0, "wmajor": 2.0, "gemv": 4.0})
    a, b = _layer(), _layer()
    x = torch.randn(2, 1024)
    with torch.inference_mode():
        a(x)
        b(x)
    can_pack = L.packable(a.weight) and torch.float32 not in L._UNSUPPORTED
    expected = (["packed"] if can_pack else []) + ["linear", "wmajor"] + GEMV
    assert timed == expected, "timed once per shape and row bucket, not per layer"
    assert a.kernel(2) == b.kernel(2) == "linear"
    assert a.packed is None and b.packed is None, "a packed copy that lost the timing is given back"
    assert list(L.choices().values()) == ["linear"]

    timed.clear()
    _fake_times(monkeypatch, {"packed": 1.0, "linear": 2.0, "wmajor": 3.0, "gemv": 4.0})
    with torch.inference_mode():
        y = a(torch.randn(300, 1024))  # another row bucket: timed anew, wmajor and gemv do not apply
    if can_pack:
        assert a.kernel(300) == "packed" and a.packed is not None
    else:
        assert a.kernel(300) == "linear"
    assert a.kernel(2) == "linear" and y.shape == (300, 1024)


def test_bad_kernel_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("JANUSPRO_CPU_KERNEL", "fastest")
    with pytest.raises(ValueError, match="JANUSPRO_CPU_KERNEL='fastest'.*packed, linear, wmajor, gemv"):
        with torch.inference_mode():
            _layer()(torch.randn(2, 1024))


def test_repacks_after_weight_change_and_skips_training(monkeypatch):
    monkeypatch.setenv("JANUSPRO_CPU_KERNEL", "packed")
    lin = _layer(bias=False)
    x = torch.randn(2, 1024)
    with torch.no_grad():
        first = lin(x)
        lin.weight.mul_(2.0)  # in place: the version changes, the packed copy must follow
        torch.testing.assert_close(lin(x), 2 * first, rtol=1e-4, atol=1e-4)
    assert (lin.packed is not None) == ("packed" in lin.candidates(2))
    lin2 = copy.deepcopy(lin)  # the packed copy stays outside the module
    assert lin2.packed is None
    y = lin2(x)  # grad enabled and a trainable weight: the autograd path, nothing packed
    assert y.requires_grad and lin2.packed is None
    y.sum().backward()
    assert lin2.weight.grad is not None


def test_packing_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("JANUSPRO_CPU_PACK", "0")
    lin = _layer()
    assert "packed" not in lin.candidates(4)
    with torch.inference_mode():
        y = lin(torch.randn(4, 1024))
    assert lin.packed is None and y.shape == (4, 1024)


def test_no_packing_without_memory(monkeypatch):
    monkeypatch.setattr(L, "available_memory", lambda: 1 << 20)
    lin = _layer()
    x = torch.randn(4, 1024)
    assert "packed" not in lin.candidates(4)
    with torch.inference_mode():
        y = lin(x)
    assert lin.packed is None
    torch.testing.assert_close(y, F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


def test_unsupported_dtype_falls_back(monkeypatch):
    def refuse(w, _):
        raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx512bw")

    monkeypatch.setattr(L, "_UNSUPPORTED", set())
    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse)
    monkeypatch.setenv("JANUSPRO_CPU_KERNEL", "packed")
    lin = _layer()
    x = torch.randn(4, 1024)
    with torch.inference_mode():
        y = lin(x)
    assert lin.packed is None and torch.float32 in L._UNSUPPORTED and lin.kernel(4) == "linear"
    torch.testing.assert_close(y, F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fastest", ["packed", "wmajor", "gemv"])
def test_compiled_call_runs_the_chosen_kernel(monkeypatch, fastest):
    _fake_times(monkeypatch, {k: (0.5 if k == fastest else 1.0) for k in L.KERNELS})
    lin = _layer()
    L.prepack(lin, rows=2)
    chosen = lin.kernel(2)
    assert chosen == fastest or (fastest in ("packed", "gemv") and fastest not in lin.candidates(2))
    ran = []
    real = L.Linear._run

    def spy(self, kernel, x):
        ran.append(kernel)
        return real(self, kernel, x)

    monkeypatch.setattr(L.Linear, "_run", spy)
    f = torch.compile(lambda x: torch.relu(lin(x)) * 2.0, dynamic=False)
    x = torch.randn(2, 1024)
    with torch.inference_mode():
        y = f(x)
    assert ran == [chosen], "the compiled function ran the chosen kernel (through januspro::packed_linear)"
    ref = torch.relu(F.linear(x, lin.weight, lin.bias)) * 2.0
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)


def test_prefill_products_are_timed_at_prefill_size(monkeypatch):
    """A product of hundreds of rows (a prefill) is not given the choice timed for 64 rows: it has its own
    bucket, timed on an input of that bucket's size."""
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", "off")
    _new_process(monkeypatch)
    sizes = []

    def fake(self, kernel, x):
        sizes.append(x.shape[0])
        return {"packed": 1.0, "linear": 2.0}[kernel] if x.shape[0] <= 64 else {"packed": 2.0, "linear": 1.0}[kernel]

    monkeypatch.setattr(L.Linear, "_time_kernel", fake)
    monkeypatch.setattr(L.Linear, "candidates", lambda self, rows, among=L.KERNELS: [
        k for k in ("packed", "linear") if k in among])
    lin = _layer()
    assert L.bucket_of(64) != L.bucket_of(600)
    assert lin.kernel(64) == "packed" and lin.kernel(600) == "linear"
    assert max(sizes) == L.BUCKETS[L.bucket_of(600)][1] > 256


def _new_process(monkeypatch) -> None:
    """What a new process starts from: no choices in memory, the cache file not read yet."""
    monkeypatch.setattr(L, "_CHOICES", {})
    monkeypatch.setattr(L, "_STORED", None)


def test_timed_choice_is_kept_for_later_processes(monkeypatch, tmp_path):
    store = tmp_path / "sub" / "cpu_kernels.json"
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", str(store))
    timed = _fake_times(monkeypatch, {"packed": 3.0, "linear": 1.0, "wmajor": 2.0, "gemv": 4.0})
    assert _layer().kernel(2) == "linear" and len(timed) == 3 + len(GEMV)
    data = json.loads(store.read_text())
    assert data == {L.machine_key(): {f"1024x1024 float32 t{torch.get_num_threads()} rows<=4": "linear"}}
    assert not list(store.parent.glob(".cpu_kernels.*"))  # no temp file left behind

    _new_process(monkeypatch)
    timed.clear()
    assert _layer().kernel(3) == "linear" and timed == []  # read back, not timed again
    assert _layer().kernel(20) == "linear" and len(timed) == 3  # another row bucket is timed and added
    assert len(json.loads(store.read_text())[L.machine_key()]) == 2

    _new_process(monkeypatch)  # another machine's entry does not apply here
    here = L.machine_key()
    monkeypatch.setattr(L, "machine_key", lambda: "another cpu")
    timed.clear()
    assert _layer().kernel(2) == "linear" and len(timed) == 3 + len(GEMV)
    assert set(json.loads(store.read_text())) == {"another cpu", here}


def test_stored_choice_that_no_longer_applies_is_timed_again(monkeypatch, tmp_path):
    store = tmp_path / "cpu_kernels.json"
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", str(store))
    timed = _fake_times(monkeypatch, {"packed": 1.0, "linear": 2.0, "wmajor": 3.0, "gemv": 4.0})
    assert _layer().kernel(2) == "packed"
    _new_process(monkeypatch)
    monkeypatch.setenv("JANUSPRO_CPU_PACK", "0")  # packing now off: the stored "packed" cannot be used
    timed.clear()
    assert _layer().kernel(2) == "linear"
    assert sorted(timed) == sorted(["linear", "wmajor"] + GEMV)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"%s": "oops"}'])
def test_damaged_cache_file_is_ignored_and_rewritten(monkeypatch, tmp_path, content):
    store = tmp_path / "cpu_kernels.json"
    store.write_text(content.replace("%s", L.machine_key()))
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", str(store))
    timed = _fake_times(monkeypatch, {"packed": 3.0, "linear": 1.0, "wmajor": 2.0, "gemv": 4.0})
    assert _layer().kernel(2) == "linear" and len(timed) == 3 + len(GEMV)
    assert list(json.loads(store.read_text())[L.machine_key()].values()) == ["linear"]


def test_cache_off_or_unwritable_never_fails(monkeypatch, tmp_path):
    timed = _fake_times(monkeypatch, {"packed": 3.0, "linear": 1.0, "wmajor": 2.0, "gemv": 4.0})
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", "off")
    assert L.kernel_cache_path() is None
    assert _layer().kernel(2) == "linear"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("JANUSPRO_KERNEL_CACHE", str(blocker / "cpu_kernels.json"))  # its folder is a file
    _new_process(monkeypatch)
    assert _layer().kernel(2) == "linear" and len(timed) == 2 * (3 + len(GEMV))
    monkeypatch.delenv("JANUSPRO_KERNEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert L.kernel_cache_path() == tmp_path / "xdg" / "januspro" / "cpu_kernels.json"


def _huge_pages_of_a_large_tensor(env: dict[str, str]) -> int:
    import subprocess
    import sys

    code = ("import januspro, torch\nx = torch.ones(64 << 20)\n"
            "print(next(l.split()[1] for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHugePages')))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_importing_januspro_first_puts_large_tensors_on_huge_pages():
    import os
    from pathlib import Path

    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not mode.is_file() or "[madvise]" not in mode.read_text() or not Path("/proc/self/smaps_rollup").is_file():
        pytest.skip("needs Linux with transparent huge pages in madvise mode")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    assert _huge_pages_of_a_large_tensor(env) > 0  # januspro asked torch's allocator to madvise
    assert _huge_pages_of_a_large_tensor({**env, "THP_MEM_ALLOC_ENABLE": "0"}) == 0  # the user's choice wins


def test_bench_kernels_writes_a_table(tmp_path):
    """The kernel microbenchmark runs on a small weight and writes its RESULTS.md section."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "bench_kernels.py"
    out = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, str(script), "--shapes", "1024x1024", "--dtypes", "fp32", "--repeat", "2",
                    "--out", str(out)], check=True, capture_output=True, text=True, timeout=120)
    table = out.read_text()
    assert "## bench_kernels.py" in table and "| 1024x1024 | fp32 | 4 |" in table and "GB/s" in table
    bad = subprocess.run([sys.executable, str(script), "--shapes", "12by4", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "expected OUTxIN" in bad.stderr
