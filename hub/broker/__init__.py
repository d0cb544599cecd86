"""Everything the hub does with RabbitMQ: connect, declare, publish, consume.

No other package imports aio-pika.
"""
