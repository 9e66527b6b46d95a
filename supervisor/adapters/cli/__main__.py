"""`python -m supervisor.adapters.cli ARGS` is `vm-system ARGS`."""

import sys

from supervisor.adapters.cli.main import main

sys.exit(main())
