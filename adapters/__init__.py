"""Partner adapters: one module per partner API shape, each with its fake server.

Empty until the delivery work: the hub stores records but delivers nothing
yet. Adapters will know nothing of RabbitMQ or PostgreSQL, and will be found
by name through the `hub.adapters` entry-point group.
"""
