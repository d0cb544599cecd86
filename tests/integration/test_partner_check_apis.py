"""`hub partner check NAME` as a process, against the fakes of real club-management APIs.

Mindbody, ABC DataTrak and ClubReady, each as a real aiohttp server: a
declaration that matches exits 0 with each capability working; a declared
capability the partner lacks, or that fails there, exits 1 and says which and
what the partner answered. Each check is run twice, as a table and as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.base import Capability
from adapters.fakes.abc_datatrak import FakeAbcDataTrak
from adapters.fakes.clubready import FakeClubReady
from adapters.fakes.mindbody import FakeMindbody
from adapters.fakes.server import FakeServer
from tests.integration.test_partner_check import TOKEN, check, run, tenancy

PROFILES = Path(__file__).parents[2] / "deploy" / "profiles"
PROSPECTS = '["PROSPECT"]'
LISTS = ["user.save", "staff.list", "leadsource.list"]
MINDBODY = '{ key_env = "CHECK_TOKEN", username = "hub", password_env = "CHECK_PASSWORD" }'
PASSWORD = "check-password"
ABC = '{ app_id = "hub-app", key_env = "CHECK_TOKEN" }'
CLUBREADY = '{ key_env = "CHECK_TOKEN" }'


@dataclass
class Report:
    code: int
    table: str
    findings: list[dict[str, Any]]

    def verdicts(self) -> dict[str, str]:
        return {f["capability"]: f["verdict"] for f in self.findings}

    def detail(self, capability: str) -> str:
        [found] = [f for f in self.findings if f["capability"] == capability]
        return str(found["detail"])

    def row(self, capability: str) -> str:
        """The table's line for `capability` (not the lines after it, that give mismatches)."""
        table = self.table.split("\nmismatches, in full:\n")[0]
        [line] = [x for x in table.splitlines() if x.split()[:1] == [capability]]
        return line


async def checked(
    tmp_path: Path, fake: FakeServer, text_for: Callable[[str], str], **env: str
) -> Report:
    """`hub partner check crm` as a table, then as JSON, against the one running fake."""
    url = await fake.start()
    try:
        path = tmp_path / "tenancy.toml"
        path.write_text(text_for(url))
        code, table, err = await check(path, "crm", env=env)
        json_code, out, json_err = await check(path, "crm", "--json", env=env)
    finally:
        await fake.stop()
    assert code == json_code, err + json_err
    assert code in (0, 1), err
    return Report(code, table, json.loads(out))


def mismatch(report: Report, capability: str, answered: str) -> None:
    """`capability` is declared, fails, and the partner's answer is said in full."""
    [found] = [f for f in report.findings if f["capability"] == capability]
    assert (found["declared"], found["verdict"], found["mismatch"]) == (True, "fails", True)
    assert answered in found["detail"], found["detail"]
    assert answered in report.table.split("\nmismatches, in full:\n")[1], report.table
    assert re.search(r"\byes\s+fails\b", report.row(capability)), report.table


# Mindbody: the site is the club's client ID ("C-1").


def mindbody(capabilities: set[Capability] | None = None) -> FakeMindbody:
    return FakeMindbody(TOKEN, "hub", PASSWORD, capabilities=capabilities)


def at_mindbody(declared: list[str]) -> Callable[[str], str]:
    return lambda url: tenancy(url, declared, adapter="mindbody", settings=MINDBODY)


async def test_mindbody_staff_and_referral_types_work(tmp_path: Path) -> None:
    fake = mindbody()
    fake.add_staff("C-1", "sam@example.com", "Sam", "Staff")
    fake.add_lead_source("C-1", "Radio")
    report = await checked(tmp_path, fake, at_mindbody(LISTS), CHECK_PASSWORD=PASSWORD)
    assert report.code == 0, report.table
    assert report.verdicts() == {
        "user.save": "not called",
        "staff.list": "works",
        "leadsource.list": "works",
    }
    assert report.detail("staff.list").startswith("1 staff, e.g. sam@example.com")
    assert report.detail("leadsource.list").startswith("1 lead sources: Radio")
    assert "every declared capability that can be called works" in report.table
    # A token issued for the site, then the two lists, per run; never a write.
    assert {r.headers["SiteId"] for r in fake.requests} == {"C-1"}
    assert all(not r.path.endswith(("addclient", "updateclient")) for r in fake.requests)


async def test_mindbody_without_referral_types_is_a_mismatch(tmp_path: Path) -> None:
    fake = mindbody({Capability.USER_SAVE, Capability.STAFF_LIST})
    report = await checked(tmp_path, fake, at_mindbody(LISTS), CHECK_PASSWORD=PASSWORD)
    assert report.code == 1
    mismatch(report, "leadsource.list", "GET /client/clientreferraltypes answered 404")
    assert report.verdicts()["staff.list"] == "works"
    assert "1 mismatches with the tenancy file" in report.table


async def test_mindbody_with_the_days_quota_used_up_fails(tmp_path: Path) -> None:
    fake = mindbody()
    fake.daily_quota = 0  # used up elsewhere today: every call answers 429
    report = await checked(tmp_path, fake, at_mindbody(LISTS), CHECK_PASSWORD=PASSWORD)
    assert report.code == 1
    mismatch(report, "staff.list", "answered 429")
    # After a 429 the adapter counts the site's day as used up, and calls no more.
    mismatch(report, "leadsource.list", "not sent")
    assert "2 mismatches with the tenancy file" in report.table
    assert len(fake.requests) == 2  # one token issue per run


async def test_mindbody_cannot_declare_a_lead_source_create(tmp_path: Path) -> None:
    fake = mindbody()
    text_for = at_mindbody([*LISTS, "leadsource.create"])
    code, _, err = await run(tmp_path, fake, text_for, "crm", env={"CHECK_PASSWORD": PASSWORD})
    assert code == 2
    assert "leadsource.create" in err
    assert fake.requests == []


# ABC DataTrak: the club is the club number ("K-1"); prospects only, no lead sources.


def at_abc(declared: list[str], receives: str = PROSPECTS) -> Callable[[str], str]:
    # No lead sources at ABC DataTrak: its subscriptions ask for an owner only.
    return lambda url: tenancy(
        url, declared, adapter="abc_datatrak", settings=ABC, receives=receives, extras='["owner"]'
    )


async def test_abc_datatrak_employee_list_works(tmp_path: Path) -> None:
    fake = FakeAbcDataTrak("hub-app", TOKEN)
    fake.add_staff("K-1", "sam@example.com", "Sam", "Staff")
    fake.add_staff("K-1", "gone@example.com", active=False)
    report = await checked(tmp_path, fake, at_abc(["user.save", "staff.list"]))
    assert report.code == 0, report.table
    assert report.verdicts() == {"user.save": "not called", "staff.list": "works"}
    assert report.detail("staff.list").startswith("1 staff, e.g. sam@example.com")  # active
    assert {r.path for r in fake.requests} == {"/ws/getEmployeeList/K-1"}


async def test_abc_datatrak_employee_list_not_granted_is_a_mismatch(tmp_path: Path) -> None:
    fake = FakeAbcDataTrak("hub-app", TOKEN)
    fake.denied.add("getEmployeeList")
    report = await checked(tmp_path, fake, at_abc(["user.save", "staff.list"]))
    assert report.code == 1
    mismatch(report, "staff.list", "GET getEmployeeList answered 403")
    assert "1 mismatches with the tenancy file" in report.table


async def test_abc_datatrak_refuses_members_and_lead_sources_before_calling(
    tmp_path: Path,
) -> None:
    fake = FakeAbcDataTrak("hub-app", TOKEN)
    members = at_abc(["user.save", "staff.list"], receives='["PROSPECT", "MEMBER"]')
    code, _, err = await run(tmp_path, fake, members, "crm")
    assert code == 2
    assert "takes prospects only and cannot receive MEMBER" in err
    code, _, err = await run(tmp_path, fake, at_abc(LISTS), "crm")
    assert code == 2
    assert "leadsource.list" in err
    assert fake.requests == []


async def test_the_abc_datatrak_profile_checks_clean(tmp_path: Path) -> None:
    """What deploy/profiles/abc_datatrak.toml's comment tells an operator to run."""
    fake = FakeAbcDataTrak("intouch-hub", TOKEN)
    fake.add_staff("0417", "sam@example.com")
    url = await fake.start()
    try:
        text = (PROFILES / "abc_datatrak.toml").read_text()
        path = tmp_path / "abc_datatrak.toml"
        path.write_text(re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', text))
        code, out, err = await check(path, "abc", "--json", env={"ABC_APP_KEY": TOKEN})
    finally:
        await fake.stop()
    assert code == 0, err + out
    assert {f["capability"]: f["verdict"] for f in json.loads(out)} == {
        "user.save": "not called",
        "staff.list": "works",
    }


# ClubReady: the store is the club ID ("K-1"); prospects only.


def at_clubready(declared: list[str]) -> Callable[[str], str]:
    return lambda url: tenancy(
        url, declared, adapter="clubready", settings=CLUBREADY, receives=PROSPECTS
    )


async def test_clubready_staff_and_referral_types_work(tmp_path: Path) -> None:
    fake = FakeClubReady(TOKEN)
    fake.add_staff("K-1", "sam@example.com", "Sam", "Staff")
    fake.add_referral_type("K-1", "Radio")
    report = await checked(tmp_path, fake, at_clubready(LISTS))
    assert report.code == 0, report.table
    assert report.verdicts() == {
        "user.save": "not called",
        "staff.list": "works",
        "leadsource.list": "works",
    }
    assert report.detail("leadsource.list").startswith("1 lead sources: Radio")
    assert {r.query["StoreId"] for r in fake.requests} == {"K-1"}


async def test_clubready_success_false_on_a_200_is_a_mismatch(tmp_path: Path) -> None:
    fake = FakeClubReady(TOKEN, stores={"K-2"})  # K-1 is no store of this key
    report = await checked(tmp_path, fake, at_clubready(LISTS))
    assert report.code == 1
    assert {r.status for r in fake.requests} == {200}
    mismatch(report, "staff.list", "refused (Success false): Invalid StoreId K-1")
    mismatch(report, "leadsource.list", "refused (Success false): Invalid StoreId K-1")
    assert "2 mismatches with the tenancy file" in report.table


async def test_clubready_without_referral_types_is_a_mismatch(tmp_path: Path) -> None:
    fake = FakeClubReady(TOKEN, {Capability.USER_SAVE, Capability.STAFF_LIST})
    report = await checked(tmp_path, fake, at_clubready(LISTS))
    assert report.code == 1
    mismatch(report, "leadsource.list", "GET /club/referral-types answered 404")
    assert report.verdicts()["staff.list"] == "works"


async def test_clubready_a_long_answer_is_given_in_full_after_the_table(tmp_path: Path) -> None:
    fake = FakeClubReady(TOKEN)
    message = (
        "Invalid StoreId K-1: this store was closed on 2026-03-31 and its members moved to"
        " store 7781; ask the chain's administrator for a key of the new store\n"
        "Reference: 3f2a8d4e-1b6c-5a7d-9e0f-123456789abc"
    )
    fake.fail_next(1, status=200, body=json.dumps({"Success": False, "Message": message}))
    code, out, err = await run(tmp_path, fake, at_clubready(LISTS), "crm")
    assert code == 1, err
    first, second = message.splitlines()
    row = next(x for x in out.splitlines() if x.split()[:1] == ["staff.list"])
    assert "ask the chain's administrator" not in row  # the table cuts the cell
    table, full = out.split("\nmismatches, in full:\n")
    assert "ask the chain's administrator" not in table
    assert re.fullmatch(
        r"  staff\.list \(C-1/K-1\)\n"
        rf"    200 GET /staff refused \(Success false\): {re.escape(first)}\n"
        rf"    {re.escape(second)} \(\d+ ms\)\n"
        r"1 mismatches with the tenancy file\n",
        full,
    ), full
