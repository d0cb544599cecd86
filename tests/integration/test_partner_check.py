"""`hub partner check NAME` as a process, against fake partners over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from adapters.base import Capability
from adapters.fakes.connector_xml import FakeConnectorPartner
from adapters.fakes.generic_json import FakeGenericJson
from adapters.fakes.server import FakeServer
from tests.fixtures_tenancy import INTOUCH_ID, _sha

TOKEN = "check-token"
ALL = ["user.save", "staff.list", "staff.find_by_email", "leadsource.list", "leadsource.create"]


def tenancy(
    url: str,
    capabilities: list[str],
    *,
    adapter: str = "generic_json",
    settings: str = '{ key_env = "CHECK_TOKEN" }',
    receives: str = '["PROSPECT", "MEMBER"]',
    extras: str = '["owner", "lead_source"]',
) -> str:
    return f"""
[[provider]]
name = "intouch"
identifier = "{INTOUCH_ID}"
key_sha256 = "{_sha("intouch-key")}"

[[provider]]
name = "crm"
identifier = "crm-identifier"
key_sha256 = "{_sha("crm-key")}"
adapter = "{adapter}"
url = "{url}"
capabilities = {capabilities!r}
settings = {settings}

[[client]]
name = "acme"
  [[client.club]]
  name = "downtown"
  ids.intouch = {{ client = "456", club = "123" }}
  ids.crm = {{ client = "C-1", club = "K-1" }}
  [[client.subscription]]
  provider = "crm"
  receives = {receives}
  with = {extras}
"""


async def check(path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "HUB_TENANCY_FILE": str(path), "CHECK_TOKEN": TOKEN, **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "--log-level",
        "WARNING",
        "partner",
        "check",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run(
    tmp_path: Path, fake: FakeServer, text_for: Any, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    url = await fake.start()
    try:
        path = tmp_path / "tenancy.toml"
        path.write_text(text_for(url))
        return await check(path, *args, env=env)
    finally:
        await fake.stop()


async def test_every_declared_capability_works_at_generic_json(tmp_path: Path) -> None:
    fake = FakeGenericJson(TOKEN)
    fake.add_staff("K-1", "sam@example.com")
    fake.add_lead_source("K-1", "Radio")
    code, out, err = await run(tmp_path, fake, lambda url: tenancy(url, ALL), "crm", "--json")
    assert code == 0, err
    found = {(f["capability"], f["verdict"]) for f in json.loads(out)}
    assert found == {
        ("user.save", "not called"),
        ("leadsource.create", "not called"),
        ("staff.list", "works"),
        ("staff.find_by_email", "works"),
        ("leadsource.list", "works"),
    }
    # The find used the email the list gave, and found that member.
    assert any(r.query.get("email") == "sam@example.com" for r in fake.requests)


async def test_a_declared_capability_the_partner_lacks_is_a_mismatch(tmp_path: Path) -> None:
    fake = FakeGenericJson(TOKEN, capabilities={Capability.USER_SAVE, Capability.STAFF_LIST})
    code, out, _ = await run(tmp_path, fake, lambda url: tenancy(url, ALL), "crm")
    assert code == 1
    assert "GET /clubs/K-1/lead-sources answered 404" in out
    assert "2 mismatches with the tenancy file" in out  # and staff.find_by_email


async def test_an_undeclared_capability_that_works_is_reported_not_failed(tmp_path: Path) -> None:
    fake = FakeGenericJson(TOKEN)
    code, out, _ = await run(
        tmp_path,
        fake,
        lambda url: tenancy(url, ["user.save", "staff.list"], extras='["owner"]'),
        "crm",
    )
    assert code == 0
    assert "works but not declared: leadsource.list, staff.find_by_email" in out


GLOBEX = """
[[client]]
name = "globex"
  [[client.club]]
  name = "uptown"
  ids.crm = { client = "C-2", club = "K-2" }
  [[client.subscription]]
  provider = "crm"
  receives = ["PROSPECT"]
  with = ["owner", "trial"]
"""
NO_OWNER = (
    "client {client!r} subscribes with owner, but provider 'crm' declares no staff capability"
    " (staff.list or staff.find_by_email): the hub sends it no owner"
)


async def test_an_extra_subscribed_without_a_capability_to_send_it_is_a_mismatch(
    tmp_path: Path,
) -> None:
    fake = FakeGenericJson(TOKEN)
    # acme asks for owner and lead_source, globex for owner: crm declares lead sources only.
    declared = ["user.save", "leadsource.list"]
    code, out, err = await run(
        tmp_path, fake, lambda url: tenancy(url, declared) + GLOBEX, "crm", "--json"
    )
    assert code == 1, err
    extras = [f for f in json.loads(out) if f["capability"].startswith("with ")]
    assert extras == [
        {
            "capability": "with owner",
            "club": "-",
            "declared": True,
            "verdict": "fails",
            "detail": NO_OWNER.format(client=client),
            "mismatch": True,
        }
        for client in ("acme", "globex")
    ]
    code, out, err = await run(tmp_path, fake, lambda url: tenancy(url, declared) + GLOBEX, "crm")
    assert code == 1, err
    full = out.split("mismatches, in full:\n")[1]
    assert full == (
        f"  with owner\n    {NO_OWNER.format(client='acme')}\n"
        f"  with owner\n    {NO_OWNER.format(client='globex')}\n"
        "2 mismatches with the tenancy file\n"
    )


async def test_an_extra_needs_one_capability_of_its_kind_only(tmp_path: Path) -> None:
    fake = FakeGenericJson(TOKEN)
    declared = ["user.save", "staff.find_by_email", "leadsource.create"]
    code, out, err = await run(tmp_path, fake, lambda url: tenancy(url, declared), "crm", "--json")
    assert code == 0, err + out
    assert not [f for f in json.loads(out) if f["capability"].startswith("with ")]
    # trial needs no capability.
    code, out, err = await run(
        tmp_path, fake, lambda url: tenancy(url, ["user.save"], extras='["trial"]'), "crm"
    )
    assert code == 0, err + out
    assert "with " not in out


async def test_connector_xml(tmp_path: Path) -> None:
    fake = FakeConnectorPartner(TOKEN, "hub-at-partner")
    fake.add_staff("C-1", "K-1", "sam@example.com")
    settings = '{ key_env = "CHECK_TOKEN", identifier = "hub-at-partner" }'
    capabilities = ["user.save", "staff.list", "leadsource.list", "leadsource.create"]
    code, out, err = await run(
        tmp_path,
        fake,
        lambda url: tenancy(url, capabilities, adapter="connector_xml", settings=settings),
        "crm",
        "--json",
    )
    assert code == 0, err + out
    verdicts = {f["capability"]: f["verdict"] for f in json.loads(out)}
    assert verdicts["staff.list"] == "works"
    assert verdicts["leadsource.list"] == "works"


async def test_settings_the_adapter_cannot_use_and_unknown_names(tmp_path: Path) -> None:
    fake = FakeGenericJson(TOKEN)
    code, _, err = await run(tmp_path, fake, lambda url: tenancy(url, ALL, settings="{ }"), "crm")
    assert code == 2
    assert "key_env" in err
    code, _, err = await run(
        tmp_path, FakeGenericJson(TOKEN), lambda url: tenancy(url, ALL), "nope"
    )
    assert code == 4
    assert "no provider 'nope'" in err
