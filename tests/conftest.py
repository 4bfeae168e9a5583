import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# CPU kernel choices are timed afresh in every test run and never written to the user's cache folder
os.environ["JANUSPRO_KERNEL_CACHE"] = "off"
# the hand-written gemv kernel is built once per test run into a folder of its own, removed at the end
_KERNEL_DIR = tempfile.mkdtemp(prefix="januspro-kernels-")
os.environ["JANUSPRO_KERNEL_DIR"] = _KERNEL_DIR
atexit.register(shutil.rmtree, _KERNEL_DIR, True)
sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# ../shared/fixtures beside the checkout, or wherever JANUSPRO_FIXTURES points (.ci/run sets it for a clone)
FIXTURES = Path(os.environ.get("JANUSPRO_FIXTURES") or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the shared fixtures at {FIXTURES}")
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def deepseek_tokenizer_dir(fixtures_dir, tmp_path_factory) -> Path:
    """tokenizer.json built from the real DeepSeek-LLM vocabulary with Janus' special tokens placed."""
    pytest.importorskip("gguf")
    from januspro.processing.gguf_vocab import JANUS_SPECIAL_IDS, tokenizer_from_gguf
    from januspro.processing.tokenizer import JanusTokenizer

    tok = tokenizer_from_gguf(fixtures_dir / "deepseek-llm-tokenizer-vectors" / "ggml-vocab-deepseek-llm.gguf",
                              JANUS_SPECIAL_IDS)
    out = tmp_path_factory.mktemp("deepseek_tok")
    JanusTokenizer(tok).save(out)
    return out
