"""A hub dataset as the ``datasets`` library leaves it in its cache after a first load
(``<cache>/<org>___<name>/<config>/<version>/<hash>/``: ``dataset_info.json`` and one Arrow
stream file per split), written without the network so tests can load it offline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa


def write_hub_cache(cache: Path, hub: str, columns: dict[str, list[str]],
                    splits: tuple[str, ...] = ("train",), config: str = "default") -> Path:
    """Cache ``hub`` (``org/name``) with string ``columns``; returns its dataset_info.json."""
    org, name = hub.split("/")
    where = cache / f"{org}___{name}" / config / "0.0.0" / "0123456789abcdef"
    where.mkdir(parents=True)
    table = pa.table(columns)
    info: dict[str, object] = {
        "description": "", "citation": "", "homepage": "", "license": "",
        "features": {c: {"dtype": "string", "_type": "Value"} for c in columns},
        "builder_name": "parquet", "dataset_name": name, "config_name": config,
        "version": {"version_str": "0.0.0", "major": 0, "minor": 0, "patch": 0},
        "splits": {}, "download_size": 0, "dataset_size": 0, "size_in_bytes": 0,
    }
    for split in splits:
        with pa.OSFile(str(where / f"{name}-{split}.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        info["splits"][split] = {  # type: ignore[index]
            "name": split, "num_bytes": table.nbytes, "num_examples": table.num_rows,
            "dataset_name": name}
    (where / "dataset_info.json").write_text(json.dumps(info))
    return where / "dataset_info.json"
