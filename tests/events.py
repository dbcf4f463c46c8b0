"""The one loader of sample events: real-shaped JSON files in events/."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def load_event(name: str, **detail_overrides: Any) -> dict[str, Any]:
    """A fresh copy of events/<name>.json; keyword arguments replace fields of its `detail`."""
    event = copy.deepcopy(_read(name))
    if detail_overrides:
        event["detail"].update(detail_overrides)
    return event


def oci_manifest(*layer_digests: str) -> str:
    """An OCI image manifest (as ECR stores it) with the given layer digests."""
    layers = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1, "digest": digest}
        for digest in layer_digests
    ]
    config = {"digest": "sha256:" + "c" * 64, "size": 1, "mediaType": "application/vnd.oci.image.config.v1+json"}
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        }
    )
