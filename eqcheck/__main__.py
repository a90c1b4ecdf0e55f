"""``python -m eqcheck``: the command line."""
from eqcheck.cli import run

run()
