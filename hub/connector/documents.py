"""The three documents partners save (user, staff, lead source): parse and check.

`parse(kind, body)` turns a request body into a `Document` or raises
`InvalidDocument` naming every bad field at once. Sections are checked by the
tables in `rules.py`; XML hardening is `xmlsafe.py`'s job. A document's body
is a plain dict of sections (empty values left out), the shape the inbox
message carries and the store keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from hub.connector import rules, xmlsafe
from hub.errors import InvalidDocument

Body = dict[str, dict[str, str]]


class Kind(StrEnum):
    """What a record is; also the endpoint's name."""

    USER = "user"
    STAFF = "staff"
    LEADSOURCE = "leadsource"


@dataclass(frozen=True, slots=True)
class Shape:
    """A document's root element and its sections (name -> (fields, required))."""

    root: str
    sections: Mapping[str, tuple[rules.Section, bool]]


SHAPES: Mapping[Kind, Shape] = {
    Kind.USER: Shape(
        "user",
        {
            "providerInfo": (rules.PROVIDER_INFO, True),
            "userInfo": (rules.user_info("PROSPECT", "MEMBER"), True),
            "leadInfo": (rules.USER_LEAD_INFO, False),
        },
    ),
    Kind.STAFF: Shape(
        "user",
        {
            "providerInfo": (rules.PROVIDER_INFO, True),
            "userInfo": (rules.user_info("STAFF"), True),
        },
    ),
    Kind.LEADSOURCE: Shape(
        "leadSource",
        {
            "providerInfo": (rules.PROVIDER_INFO, True),
            "leadInfo": (rules.LEAD_SOURCE_INFO, True),
        },
    ),
}


@dataclass(frozen=True, slots=True)
class Document:
    """A checked document: who sent it for which club, and its fields."""

    kind: Kind
    identifier: str
    client_id: str
    club_id: str
    record_id: str
    body: Body


def parse(kind: Kind, body: bytes) -> Document:
    """Parse and check a saved document; InvalidDocument lists every problem."""
    root = xmlsafe.parse(body)
    shape = SHAPES[kind]
    problems: list[str] = []
    sections = _read_root(root, shape, problems)
    if problems:
        raise InvalidDocument(problems)
    provider = sections.pop("providerInfo")
    return Document(
        kind=kind,
        identifier=provider["identifier"],
        client_id=provider["clientID"],
        club_id=provider["clubID"],
        record_id=provider["recordID"],
        body=sections,
    )


def _read_root(root: etree._Element, shape: Shape, problems: list[str]) -> Body:
    if root.tag != shape.root:
        problems.append(f"the root element must be <{shape.root}>, not <{_name(root)}>")
        return {}
    _check_element_only(root, shape.root, problems)
    found: Body = {}
    for child in root:
        name = _name(child)
        if name not in shape.sections:
            problems.append(f"{name}: unknown element in <{shape.root}>")
        elif name in found:
            problems.append(f"{name}: given more than once")
        else:
            found[name] = _read_section(child, name, shape.sections[name][0], problems)
    for name, (_, required) in shape.sections.items():
        if required and name not in found:
            problems.append(f"{name}: is mandatory")
    return {name: values for name, values in found.items() if values or name == "providerInfo"}


def _read_section(
    element: etree._Element, path: str, section: rules.Section, problems: list[str]
) -> dict[str, str]:
    # The hot path of every save: one pass over the children, checks only on what is there.
    _check_element_only(element, path, problems)
    fields = section.fields
    values: dict[str, str] = {}
    for child in element:
        name = child.tag
        if name in values or name not in fields or child.keys() or len(child):
            _refuse_field(child, path, fields, values, problems)
            continue
        value = child.text
        if value:
            values[name] = value
            if problem := fields[name].check(value):
                problems.append(f"{path}/{name}: {problem}")
        else:
            values[name] = ""
    for name in section.required:
        value = values.get(name, "")
        if value is not _REFUSED and rules.is_blank(value):
            problems.append(f"{path}/{name}: is mandatory")
    return {name: value for name, value in values.items() if value and value is not _REFUSED}


# Marks a field refused for its form (attributes, child elements), so it is not also "missing".
_REFUSED = "\x00refused"


def _refuse_field(
    child: etree._Element,
    path: str,
    fields: Mapping[str, rules.Field],
    values: dict[str, str],
    problems: list[str],
) -> None:
    """Say what is wrong with a field that is not plain known text given once."""
    name = _name(child)
    where = f"{path}/{name}"
    if name in rules.READ_ONLY:
        problems.append(f"{where}: is read-only (set by the hub), not accepted in a save")
    elif name not in fields:
        problems.append(f"{where}: unknown element")
    elif name in values:
        problems.append(f"{where}: given more than once")
    else:
        shape_ok = True
        if _has_attributes(child):
            problems.append(f"{where}: attributes are not allowed")
            shape_ok = False
        if len(child):
            problems.append(f"{where}: must be text, not elements")
            shape_ok = False
        if shape_ok:  # only ignorable attributes: an ordinary field after all
            value = child.text or ""
            values[name] = value
            if value and (problem := fields[name].check(value)):
                problems.append(f"{where}: {problem}")
        else:
            values[name] = _REFUSED


def _check_element_only(element: etree._Element, path: str, problems: list[str]) -> None:
    if element.keys() and _has_attributes(element):
        problems.append(f"{path}: attributes are not allowed")
    text = element.text
    stray = text is not None and not rules.is_blank(text)
    if not stray:
        for child in element:
            tail = child.tail
            if tail and not rules.is_blank(tail):
                stray = True
                break
    if stray:
        problems.append(f"{path}: text is not allowed between elements")


_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# Partners who validate against our XSDs may say so; XSD validators ignore these.
_IGNORED_ATTRIBUTES = frozenset({f"{_XSI}noNamespaceSchemaLocation", f"{_XSI}schemaLocation"})


def _has_attributes(element: etree._Element) -> bool:
    return any(name not in _IGNORED_ATTRIBUTES for name in element.attrib)


def _name(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return "?"
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return f"{local} (in namespace {namespace})"
    return tag
