import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
# the NumPy reference implementation lives beside the tests
sys.path.insert(0, str(Path(__file__).parent))
