import sys

from startui.cli import main

sys.exit(main())
