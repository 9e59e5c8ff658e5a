"""Write a ``builtin:`` model to a Hugging Face directory, for engines that load from disk.

vLLM and TensorRT-LLM take a model directory, not a module built in memory. This writes the
same seeded random-init Llama as :func:`builtin_models.build_model` (config.json +
safetensors) and a real tokenizer: a byte-level BPE made with the ``tokenizers`` library
(ids 0/1/2 pad/bos/eos, 3..258 the 256 bytes exactly as :class:`ByteTokenizer`, then merges
learnt from the bundled prompts, then filler entries so every model id decodes). The
directory is cached under ``LLEM_MODEL_CACHE`` (default ``~/.cache/llenergymeasure/models``)
and keyed by shape and seed, and written to a temporary name then renamed, so concurrent
runs never see half a model.

Everything runs on the CPU on purpose: an engine that forks workers must not find CUDA
initialised in the harness process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from llem_harness.backends import builtin_models

SPECIALS = ("<pad>", "<s>", "</s>")  # ids PAD_ID, BOS_ID, EOS_ID
_BPE_MERGE_TARGET = 2000


def cache_root() -> Path:
    env = os.environ.get("LLEM_MODEL_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "llenergymeasure" / "models"


def model_dir(model: str, seed: int = 0) -> Path:
    shape = builtin_models.shape_of(model)
    key = hashlib.sha256(json.dumps([shape, seed, 2], sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"{model.split(':', 1)[1]}-{key}"


def materialise(model: str, seed: int = 0) -> Path:
    """The model's directory, written on first use (bf16 safetensors + tokenizer)."""
    target = model_dir(model, seed)
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _write_model(model, seed, tmp)
        _write_tokenizer(builtin_models.shape_of(model)["vocab_size"], tmp)
        try:
            tmp.rename(target)
        except OSError:  # another run won the race: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_model(model: str, seed: int, out: Path) -> None:
    import torch

    m = builtin_models.build_model(model, torch.bfloat16, "sdpa", "cpu", seed=seed)
    m.generation_config.pad_token_id = builtin_models.PAD_ID
    m.save_pretrained(out, safe_serialization=True)


def _corpus() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "data" / "prompts.txt").read_text("utf-8")
    return [ln for ln in text.splitlines() if ln.strip()]


def tokenizer_json(vocab_size: int) -> dict[str, Any]:
    """tokenizer.json content: byte-level BPE covering ids 0..vocab_size-1."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    byte_chars = [_byte_char(b) for b in range(256)]
    assert sorted(byte_chars) == sorted(alphabet)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab_size, _BPE_MERGE_TARGET), special_tokens=list(SPECIALS),
        initial_alphabet=byte_chars, show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    bos = SPECIALS[1]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, 1)])
    data = json.loads(tok.to_str())
    learnt = data["model"]["vocab"]
    # ids as ByteTokenizer uses them: specials, then the bytes in order, then merges
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    vocab.update({c: len(SPECIALS) + b for b, c in enumerate(byte_chars)})
    for piece, _ in sorted(learnt.items(), key=lambda kv: kv[1]):
        if piece not in vocab and len(vocab) < vocab_size:
            vocab[piece] = len(vocab)
    filler = 0
    while len(vocab) < vocab_size:  # ids the model can emit must decode to something
        vocab[f"{byte_chars[ord('w')]}{filler}{byte_chars[ord('~')]}"] = len(vocab)
        filler += 1
    data["model"]["vocab"] = vocab
    data["model"]["merges"] = [m for m in data["model"]["merges"]
                               if "".join(_pair(m)) in vocab and all(p in vocab for p in _pair(m))]
    data["added_tokens"] = [
        {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for i, s in enumerate(SPECIALS)
    ]
    return data


def _pair(merge: Any) -> list[str]:
    return list(merge) if isinstance(merge, list) else merge.split(" ")


def _byte_char(b: int) -> str:
    """GPT-2's printable stand-in for byte ``b`` (what the ByteLevel pre-tokenizer emits)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    if b in printable:
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if x not in printable))


def _write_tokenizer(vocab_size: int, out: Path) -> None:
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab_size)), "utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": SPECIALS[1],
        "eos_token": SPECIALS[2], "pad_token": SPECIALS[0], "add_bos_token": True,
        "model_max_length": builtin_models.SHAPES["llama-1.1b"]["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
    }), "utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": SPECIALS[1], "eos_token": SPECIALS[2], "pad_token": SPECIALS[0]}), "utf-8")
