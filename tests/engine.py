"""The skip rule of every test that needs docker mode's engine: in CI a missing engine fails, never skips."""

from __future__ import annotations

import os

import pytest

from emulator.docker_engine import INSTALL_COMMAND, available

IN_CI = os.environ.get("CI") == "true"

needs_engine = pytest.mark.skipif(
    not available() and not IN_CI, reason=f"docker engine not installed: {INSTALL_COMMAND}"
)
