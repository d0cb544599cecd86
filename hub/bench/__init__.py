"""Benchmarks of the hub, run as `hub bench ...`.

    cli.py        the `hub bench` options, and the run of one benchmark
    documents.py  the distinct <user> bodies a run posts
    load.py       one process's HTTP load generator (closed or open loop)
    workers.py    that load generator split over processes, started together
    bare.py       the bare-handler baseline: an aiohttp server in its own process
    publish.py    the raw-publish baseline: aio-pika with confirms to a quorum queue
    results.py    what a measured path produced, and merging those of many processes
    stats.py      latency percentiles (pure)
    report.py     the table, the ratios and the verdict, as text or JSON
    eventloop.py  uvloop when it is installed

    e2e.py        `hub bench e2e`: the order of a run, from post to partner
    stage.py      the hub it runs: namespace, schema, tenancy, processes, clean-up
    partner.py    the fake generic_json partner in its own process, timing arrivals
    chain.py      the bare-chain baseline: publish, consume, PUT, ack
    tally.py      sent vs arrived: latency, lost, duplicated (pure)
    cpu.py        CPU time per process group from /proc
    e2e_report.py the flows, CPU per record per process, the verdict

A benchmark only measures: it never starts or reconfigures RabbitMQ or
PostgreSQL, and it removes every queue, exchange and schema it creates.
"""
