"""Real loading code: a model and tokenizer saved to disk, then loaded by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.config import loader as config_loader
from llem.study.rundir import read_result
from llem.study.runner import run_study
from tests.conftest import quick_overrides


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("model")
    words = ["<pad>", "<s>", "</s>", "<unk>"] + [chr(c) for c in range(32, 127)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        unk_token="<unk>",
    )
    fast.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(words), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def test_from_pretrained_local_path(saved_model: Path, tmp_path: Path) -> None:
    loaded = config_loader.load(None, quick_overrides() | {"model": str(saved_model)})
    assert run_study(loaded, results_dir=tmp_path, quiet=True) == 0
    r = read_result(next(tmp_path.rglob("result.json")))
    assert r.model == str(saved_model)
    assert any("from_pretrained" in n for n in r.setup.notes)
    assert r.setup.attn_implementation == "sdpa"  # what from_pretrained picks
    assert r.setup.num_parameters and r.setup.num_parameters < 200_000
    assert r.throughput.output_tokens == 4 * 8
