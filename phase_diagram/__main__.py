"""``python -m phase_diagram`` entry point."""
import sys

from .cli import main

sys.exit(main())
