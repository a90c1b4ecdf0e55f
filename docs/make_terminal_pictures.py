"""The README's pictures of the terminal report: the passing and the broken sample at 80 columns, as SVG
(rich's own export), written to docs/.

    python docs/make_terminal_pictures.py
"""
from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eqcheck  # noqa: E402
from eqcheck.report.terminal import render  # noqa: E402


def main() -> None:
    for name in ("p4cnn", "p4cnn_broken"):
        result = eqcheck.verify(f"sample_models/{name}.onnx", "p4")
        console = Console(record=True, width=80, force_terminal=True, color_system="truecolor", soft_wrap=True,
                          file=open("/dev/null", "w"))
        render(result, console)
        out = ROOT / "docs" / f"terminal-{name}-80.svg"
        console.save_svg(str(out), title=f"eqcheck verify sample_models/{name}.onnx --group p4  (80 columns)")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
