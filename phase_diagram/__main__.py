"""``python -m phase_diagram`` entry point."""
import sys

from .cli.main import main

sys.exit(main())
