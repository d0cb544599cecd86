"""Delivery to partners: fan-out, mappings, the per-partner workers, the dead-letter keeper.

    fanout.py   who receives a stored record, with which extras (pure)
    job.py      the message on a partner's queue
    outbound.py a stored record -> the adapter's OutboundUser (pure)
    mapping.py  owners by email, lead sources by name, cached with a TTL
    worker.py   one partner's deliveries: latest version, mappings, adapter, attempts
    keeper.py   dead letters from RabbitMQ into PostgreSQL
    service.py  the delivery component of `hub run` / `hub deliver`

The worker knows no wire format: adapters do (`adapters/`).
"""
