#!/usr/bin/env python
"""Print build/zoo/manifest.json as one line per entry (any python3, no dependencies).

    python3 benchmarks/zoo/summarize.py [--onnx-only]
"""
import json
import sys
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[2] / "build" / "zoo" / "manifest.json"


def fmt(v):
    return "-" if v is None else f"{v:.2e}"


def main():
    entries = json.loads(MANIFEST.read_text())
    if "--onnx-only" in sys.argv:
        entries = [e for e in entries if e["format"] == "onnx"]
    print(f"{'file':<52} {'format':<11} {'group':<20} {'exp':<4} {'escnn':>9} "
          f"{'ref':>9} {'spread':>9}  broken")
    for e in entries:
        print(f"{e['file']:<52} {e['format']:<11} {e['group']:<20} {e['expected']:<4} "
              f"{fmt(e.get('escnn_rel_error')):>9} {fmt(e.get('reference_max_rel_error')):>9} "
              f"{fmt(e.get('reference_spread')):>9}  "
              f"{e.get('broken_onnx_node') or e.get('broken_module') or ''}")
    print(f"{len(entries)} entries")


if __name__ == "__main__":
    main()
