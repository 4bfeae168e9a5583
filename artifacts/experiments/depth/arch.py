"""Write the shapes preset with another LLM shape, for ``januspro train recipe shapes --set text.model.init=``.

    python artifacts/experiments/depth/arch.py LAYERS HIDDEN HEADS FFN OUT.json   (repo root)

Only the decoder changes; the assembled model derives its adaptors and image head from the decoder's width.
"""
import json
import sys
from dataclasses import replace
from pathlib import Path

from januspro.config import preset

if len(sys.argv) != 6:
    sys.exit(__doc__)
layers, hidden, heads, ffn = (int(a) for a in sys.argv[1:5])
cfg = preset("shapes")
llm = replace(cfg.llm, num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=heads,
              intermediate_size=ffn)
# adaptors and image head: None = derived again from the widths
new = replace(cfg, llm=llm, aligner=None, gen_aligner=None, gen_head=None)
Path(sys.argv[5]).write_text(json.dumps(new.to_dict(), indent=2))
