"""`python -m benchmarks ARGS` is `vm-system bench ARGS`."""

import sys

from supervisor.adapters.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
