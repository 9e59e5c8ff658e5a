"""Write a random-init Llama of a named shape as a Hugging Face directory, for peer tools.

Standalone (no llem import): the peers (optimum-benchmark, a bare vLLM loop) load models
from disk, so the references get a saved model of exactly the shape llem's
``builtin:llama-1.1b`` has. Speed and energy depend on shapes, not weight values.

    python make_model.py --shape llama-1.1b --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHAPES = {
    "llama-1.1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                       num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                       max_position_embeddings=2048),
    "tiny": dict(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048),
}
TEXT = [
    "The energy a language model spends per token depends on the batch and the hardware.",
    "Measure the window, subtract the idle power, and report the interval honestly.",
    "Prefill is compute bound; decode is bound by memory bandwidth and launch overhead.",
]


def write_tokenizer(out: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=min(vocab_size, 400), show_progress=False,
                                  special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXT, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    fast.save_pretrained(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama-1.1b")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(args.out)
    cfg = LlamaConfig(**SHAPES[args.shape], pad_token_id=0, bos_token_id=1, eos_token_id=2,
                      tie_word_embeddings=False, torch_dtype="bfloat16")
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    write_tokenizer(out, cfg.vocab_size)
    print(json.dumps({"out": str(out), "shape": args.shape,
                      "parameters": sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
