"""``python -m bench.peak_rss [--json FILE --name NAME] -- COMMAND ...``: run a command and report
the peak resident memory of its process tree.

Samples every process below the command twice a second: the largest single process's peak
(``VmHWM``) and the largest sum of resident sets at one moment. With ``--json`` the numbers are
merged into a bench JSON file under ``peak_rss_mb.<NAME>`` (e.g. ``make demo`` as ``demo``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += children.get(pid, [])
    return found


def measure(command: list[str], every: float = 0.5) -> dict:
    started = time.monotonic()
    process = subprocess.Popen(command)
    largest_process_kb = largest_total_kb = 0
    while process.poll() is None:
        pids = descendants(process.pid)
        largest_process_kb = max([largest_process_kb] + [_status_kb(p, "VmHWM") for p in pids])
        largest_total_kb = max(largest_total_kb, sum(_status_kb(p, "VmRSS") for p in pids))
        time.sleep(every)
    return {
        "largest_process_mb": round(largest_process_kb / 1024, 1),
        "largest_total_mb": round(largest_total_kb / 1024, 1),
        "seconds": round(time.monotonic() - started, 1),
        "exit_code": process.returncode,
        "command": " ".join(command),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--name", default="command")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    result = measure(command)
    print(json.dumps(result))
    if args.json:
        document = json.loads(args.json.read_text()) if args.json.exists() else {}
        document.setdefault("peak_rss_mb", {})[args.name] = result
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return result["exit_code"]


if __name__ == "__main__":
    raise SystemExit(main())
