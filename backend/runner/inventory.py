"""The runner's hardware inventory: collect it, cache it, and say what changed.

Start-up posts everything when there is no cache and only the changed top-level keys
when there is one (seed 001). :func:`diff`, :func:`patch` and :func:`digest` are pure, so
the hub applies a change with the same code the runner computed it with, and a digest
tells either side that its copy is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

CACHE = "inventory.json"
MiB = 1024 * 1024


def collect(data_dir: Path) -> dict[str, Any]:
    """CPU model and cores, memory, disks, OS and GPUs (via ``nvidia-smi`` when present)."""
    disks = []
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        disks.append({"mount": part.mountpoint, "fs": part.fstype,
                      "total_mb": usage.total // MiB})
    work = psutil.disk_usage(str(data_dir if data_dir.exists() else data_dir.parent))
    return {
        "cpu": {"model": _cpu_model(), "cores": psutil.cpu_count(logical=False) or 0,
                "threads": psutil.cpu_count(logical=True) or 0},
        "memory": {"total_mb": psutil.virtual_memory().total // MiB},
        "disks": sorted(disks, key=lambda d: str(d["mount"])),
        "work_disk": {"path": str(data_dir), "total_mb": work.total // MiB},
        "os": {"system": platform.system(), "release": platform.release(),
               "machine": platform.machine(), "python": platform.python_version()},
        "gpus": gpus(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus(tool: str = "nvidia-smi") -> list[dict[str, Any]]:
    """GPUs ``nvidia-smi`` reports; none when the tool is absent or fails."""
    exe = shutil.which(tool)
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        name, _, memory = line.partition(",")
        if name.strip():
            found.append({"name": name.strip(),
                          "memory_mb": int(memory.strip()) if memory.strip().isdigit() else 0})
    return found


def digest(inventory: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inventory, sort_keys=True).encode()).hexdigest()[:16]


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The top-level keys of ``new`` that differ from ``old``, and the keys it dropped."""
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    removed = sorted(set(old) - set(new))
    return changed, removed


def patch(old: Mapping[str, Any], changed: Mapping[str, Any],
          removed: list[str]) -> dict[str, Any]:
    merged = {k: v for k, v in old.items() if k not in removed}
    merged.update(changed)
    return merged


def load_cache(data_dir: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads((data_dir / CACHE).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def save_cache(data_dir: Path, inventory: Mapping[str, Any]) -> None:
    path = data_dir / CACHE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(inventory, indent=2, sort_keys=True))
    os.replace(tmp, path)
