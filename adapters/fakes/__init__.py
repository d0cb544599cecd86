"""Fake partners: real aiohttp servers that behave like partners' APIs, for tests and the demo.

    server.py         what every fake shares: start/stop, request log, failure knobs, CLI
    generic_json.py   FakeGenericJson, the generic_json contract
    connector_xml.py  FakeConnectorPartner, the Connector API subset the hub calls

Fakes never reach out to anything and are never imported by the hub itself.
"""
