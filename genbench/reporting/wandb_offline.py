"""Read an offline W&B run (the `run-<id>.wandb` transaction log) without a W&B account.

The file is a LevelDB-style log of protobuf `Record`s (wandb's own format): a 7-byte file
header, then 32 KiB blocks of chunks, each with a 7-byte header (crc32, length, type).
We read the run, config and summary records back; `wandb sync` remains the way to upload.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path):
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log (bad header)")
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < 7:  # block trailer padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def read_offline_run(run_dir: str | Path) -> dict:
    """{'id', 'project', 'group', 'job_type', 'tags', 'name', 'config', 'summary'} of a run dir."""
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    out: dict = {"config": {}, "summary": {}, "tags": []}
    for raw in _records(files[0]):
        rec = pb.Record()
        try:
            rec.ParseFromString(raw)
        except Exception:  # a torn final record of a killed run
            continue
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.update(
                id=r.run_id,
                project=r.project,
                group=r.run_group,
                job_type=r.job_type,
                tags=list(r.tags),
                name=r.display_name,
            )
            for item in r.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "summary":
            for item in rec.summary.update:
                key = item.key or "/".join(item.nested_key)
                out["summary"][key] = json.loads(item.value_json)
    return out


def merge_runs(runs: list[dict]) -> dict:
    """One W&B run from the offline folders of its id, oldest first (a resumed job, a
    re-evaluation): later config and summary values replace earlier ones, as they do when
    `wandb sync` uploads the folders into one run."""
    out: dict = {"config": {}, "summary": {}, "tags": []}
    for run in runs:
        out.update({k: v for k, v in run.items() if k not in ("config", "summary")})
        out["config"].update(run["config"])
        out["summary"].update(run["summary"])
    return out
