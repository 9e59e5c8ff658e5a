"""The ``builtin:`` models both sides know by name: the harness builds them
(llem_harness.backends.builtin_models, a test keeps the two equal), the host checks names
and positions before a run starts."""

from __future__ import annotations

#: name -> the facts a pre-flight check needs
BUILTIN_MODELS: dict[str, dict[str, int]] = {
    "tiny-llama": {"max_position_embeddings": 2048},
    "llama-1.1b": {"max_position_embeddings": 2048},
}
BUILTIN_PREFIX = "builtin:"
