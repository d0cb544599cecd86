"""Fake partners: real aiohttp servers that behave like partners' APIs, for tests and the demo.

    server.py         what every fake shares: start/stop, request log, failure knobs, CLI
    generic_json.py   FakeGenericJson, the generic_json contract
    connector_xml.py  FakeConnectorPartner, the Connector API subset the hub calls
    abc_datatrak.py   FakeAbcDataTrak, ABC DataTrak: prospects by club number, employee list
    clubready.py      FakeClubReady, ClubReady: prospects by StoreId, staff, referral types
    mindbody.py       FakeMindbody, Mindbody v6: clients by site, staff, referral types, quota

Fakes never reach out to anything and are never imported by the hub itself.
"""
