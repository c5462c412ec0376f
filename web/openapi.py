"""The OpenAPI document as served: ``web/openapi.yaml`` plus the request body schemas generated
from ``app.schemas`` (the ones the server decodes with), so the two cannot drift apart."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import msgspec
import yaml

from ..core.schemas import WRITE_BODIES

OPENAPI = Path(__file__).resolve().parent / "openapi.yaml"
REF = "#/components/schemas/{name}"


def body_components() -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses) of every write route's body, by name."""
    _, components = msgspec.json.schema_components(
        sorted(set(WRITE_BODIES.values()), key=lambda t: t.__name__), ref_template=REF
    )
    return components


@functools.lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    clash = set(schemas) & set(body_components())
    if clash:
        raise ValueError(f"openapi.yaml hand-writes generated schemas: {', '.join(sorted(clash))}")
    schemas.update(body_components())
    return spec


@functools.lru_cache(maxsize=1)
def document_yaml() -> bytes:
    text: str = yaml.safe_dump(document(), sort_keys=False, allow_unicode=True)  # PyYAML is untyped
    return text.encode()
