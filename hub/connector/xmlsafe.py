"""Hardened XML parsing for bodies that strangers send.

Refuses what makes XML dangerous before and while parsing: any DTD (so no
entity declarations, no entity-expansion bombs, no external references), any
network access, any encoding but UTF-8, and anything not well-formed.
Comments and processing instructions are dropped. This module must never
resolve an entity or fetch anything.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from hub.errors import InvalidDocument

_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


# lxml parsers are not thread-safe; the hub parses on the event loop thread only.
_PARSER = _parser()


def parse(body: bytes) -> etree._Element:
    """The root element of `body`, or InvalidDocument saying why not."""
    if any(marker in body for marker in _DTD_MARKERS):
        raise InvalidDocument(["DTDs, entity declarations and external references are refused"])
    if not body.strip():
        raise InvalidDocument(["the body is empty"])
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidDocument([f"not well-formed XML: {exc.msg}"]) from exc
    info: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    if info.doctype or info.internalDTD is not None:
        raise InvalidDocument(["DTDs, entity declarations and external references are refused"])
    if (info.encoding or "UTF-8").upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        raise InvalidDocument([f"the body must be UTF-8, not {info.encoding}"])
    return root
