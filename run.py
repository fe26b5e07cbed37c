"""`python run.py [args]` is `vigil run [args]`."""

from __future__ import annotations

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
