import sys

from fullon_gateway.cli import main

sys.exit(main())
