import sys

from fidlens.cli.main import main

sys.exit(main())
