"""`python -m benchmarks ARGS` is `vm-system bench ARGS`.

The command is the CLI's, which imports the benchmark when it runs; the benchmark never imports
the CLI back (tests/test_import_rules.py). So this hands the process over to the CLI, as the
benchmark's process scenarios run it: same arguments, output and exit code."""

import os
import sys

if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, "-m", "supervisor.adapters.cli", "bench", *sys.argv[1:]])
