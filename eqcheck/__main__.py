"""``python -m eqcheck``: the command line."""
from eqcheck.cli import run

if __name__ == "__main__":  # not when a worker process of ``eqcheck check --jobs`` imports this module
    run()
