"""The embedded AWS stand-in: runs the whole pipeline on one machine (see docs/emulator.md)."""

import sys
from pathlib import Path

# The emulator reads pipeline.yaml with the pipeline's own validator, from the layer's source tree.
_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "common")
if _LAYER not in sys.path:
    sys.path.append(_LAYER)
