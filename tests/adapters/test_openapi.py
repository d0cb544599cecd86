"""schemas/generic-json.openapi.yaml, the adapter and the fake name the same fields and paths.

The venv has no YAML parser, so the document is read as text, by its
indentation. Check the document itself when it changes, with
`openapi-spec-validator schemas/generic-json.openapi.yaml` (not a dependency).
"""

from __future__ import annotations

import re
from pathlib import Path

from adapters.fakes import generic_json as fake
from adapters.generic_json import USER_FIELDS

DOCUMENT = Path(__file__).parents[2] / "schemas" / "generic-json.openapi.yaml"


def _block(text: str, start: str, indent: int) -> list[str]:
    """The lines under the line `start` until the next line indented `indent` or less."""
    lines = text.splitlines()
    first = lines.index(start) + 1
    block = []
    for line in lines[first:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return block


def test_the_user_schema_names_the_fields_the_adapter_sends() -> None:
    user = _block(DOCUMENT.read_text(), "    User:", 4)
    properties = _block("\n".join(user), "      properties:", 6)
    names = [m.group(1) for line in properties if (m := re.match(r"^        (\w+):", line))]
    assert names == [name for name, _ in USER_FIELDS]
    assert set(names) == fake.USER_FIELDS
    assert "      required: [userType, status, firstName, lastName]" in user


def test_the_paths_and_headers_are_the_adapters() -> None:
    text = DOCUMENT.read_text()
    paths = [m.group(1) for m in re.finditer(r"^  (/\S+):$", text, re.MULTILINE)]
    assert paths == [
        "/clubs/{clubId}/users/{hubUuid}",
        "/clubs/{clubId}/staff",
        "/clubs/{clubId}/lead-sources",
    ]
    assert "\nopenapi: 3.1.0\n" in text
    for needed in ("name: Idempotency-Key", "name: X-Hub-Record", "scheme: bearer", "Retry-After"):
        assert needed in text
