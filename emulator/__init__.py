"""The embedded AWS stand-in: runs the whole pipeline on one machine (see docs/emulator.md).

It reads pipeline.yaml with the pipeline's own validator: the layer's package, installed editable
in the dev venv (make setup).
"""
