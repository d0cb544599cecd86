"""Partner adapters: one module per partner API shape, each with its fake server.

    base.py          the interface every adapter implements, its data and errors
    registry.py      adapters found by name through the `hub.adapters` entry points
    http.py          what the HTTP adapters share: status -> error class, Retry-After
    generic_json.py  the hub's own REST+JSON partner contract (schemas/generic-json.openapi.yaml)
    connector_xml.py a partner that speaks the Connector API (InTouch, or another hub)
    fakes/           real aiohttp servers that behave like those partners, for tests and the demo

Adapters know nothing of RabbitMQ or PostgreSQL; the delivery worker knows no
wire format.
"""
