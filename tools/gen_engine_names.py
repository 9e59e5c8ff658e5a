"""Extract the argument names of vLLM / TensorRT-LLM config classes from their source.

Why: the mapping modules (llem_harness.backends.*_mapping) emit engine argument names as
strings. When an engine renames or drops an argument, the only honest place to learn it is
the engine's own source. This script reads that source with ``ast`` (nothing is imported, so
it runs without CUDA, torch or the engine's dependencies) and writes a pinned JSON list that
the unit tests check the mappings against when the engine is not installed.

Usage::

    # vLLM: a wheel from `pip download vllm --no-deps -d DIR` (or an unpacked source tree)
    python tools/gen_engine_names.py vllm DIR/vllm-0.33.0-*.whl
    # TensorRT-LLM: a source tree that contains tensorrt_llm/ (wheel or git checkout)
    python tools/gen_engine_names.py tensorrt /path/to/TensorRT-LLM

Output: tests/unit/llem_harness/backends/data/<engine>_<version>_names.json
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "tests/unit/llem_harness/backends/data"

#: class name -> files (relative to the package root) that define it or its bases.
VLLM_CLASSES: dict[str, list[str]] = {
    "EngineArgs": ["vllm/engine/arg_utils.py"],
    "SamplingParams": ["vllm/sampling_params.py"],
    "SpeculativeConfig": ["vllm/config/speculative.py"],
}

TRT_CLASSES: dict[str, list[str]] = {
    # LlmArgs on the TensorRT-engine path is TrtLlmArgs (BaseLlmArgs + TRT fields).
    "TrtLlmArgs": ["tensorrt_llm/llmapi/llm_args.py"],
    "KvCacheConfig": ["tensorrt_llm/llmapi/llm_args.py"],
    "ExtendedRuntimePerfKnobConfig": ["tensorrt_llm/llmapi/llm_args.py"],
    "SchedulerConfig": ["tensorrt_llm/llmapi/llm_args.py"],
    "BuildConfig": ["tensorrt_llm/builder.py"],
    "PluginConfig": ["tensorrt_llm/plugin/plugin.py"],
    "QuantConfig": ["tensorrt_llm/models/modeling_utils.py"],
    "SamplingParams": ["tensorrt_llm/sampling_params.py"],
}


def _class_defs(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _own_fields(cls: ast.ClassDef) -> list[str]:
    """Annotated class-body names (dataclass / pydantic / msgspec fields), public only."""
    names = []
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            annotation = ast.unparse(node.annotation)
            if name.startswith("_") or annotation.startswith("ClassVar"):
                continue
            names.append(name)
    return names


def class_fields(sources: list[str], class_name: str) -> list[str]:
    """Fields of ``class_name`` including bases defined in the same source files."""
    classes: dict[str, ast.ClassDef] = {}
    for text in sources:
        classes.update(_class_defs(ast.parse(text)))
    if class_name not in classes:
        raise SystemExit(f"class {class_name} not found in the given sources")
    seen: list[str] = []

    def walk(name: str) -> None:
        cls = classes.get(name)
        if cls is None:
            return
        for base in cls.bases:
            walk(ast.unparse(base).split("[")[0].split(".")[-1])
        for field in _own_fields(cls):
            if field not in seen:
                seen.append(field)

    walk(class_name)
    return sorted(seen)


def _root_of(source: Path, tmp: Path) -> Path:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            wheel.extractall(tmp)
        return tmp
    return source


def _version(root: Path, package: str) -> str:
    for rel in (f"{package}/_version.py", f"{package}/version.py"):
        path = root / rel
        if path.exists():
            pattern = r"__version__\s*=\s*(?:version\s*=\s*)?['\"]([^'\"]+)"
            match = re.search(pattern, path.read_text())
            if match:
                return match.group(1)
    return "unknown"


def generate(engine: str, source: Path) -> Path:
    package, classes = ("vllm", VLLM_CLASSES) if engine == "vllm" else ("tensorrt_llm", TRT_CLASSES)
    with tempfile.TemporaryDirectory() as tmp:
        root = _root_of(source, Path(tmp))
        version = _version(root, package)
        out_classes: dict[str, list[str]] = {}
        digests: dict[str, str] = {}
        for class_name, files in classes.items():
            texts = []
            for rel in files:
                text = (root / rel).read_text()
                digests[rel] = hashlib.sha256(text.encode()).hexdigest()
                texts.append(text)
            out_classes[class_name] = class_fields(texts, class_name)
    if engine == "tensorrt":
        out_classes["LlmArgs"] = out_classes["TrtLlmArgs"]
    payload = {
        "package": package,
        "version": version,
        "generated_by": "tools/gen_engine_names.py",
        "source": source.name,
        "source_sha256": digests,
        "classes": out_classes,
    }
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = DATA_DIR / f"{engine}_{version}_names.json"
    out.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["vllm", "tensorrt"])
    parser.add_argument("source", type=Path, help="wheel (.whl) or unpacked source root")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"error: {args.source} does not exist", file=sys.stderr)
        return 2
    print(generate(args.engine, args.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
