"""What operators do: watch queues and partners, inspect and replay dead letters,
trace a record, close mapping gaps. The CLI (`hub.ops.cli`), the ops API
(`hub.ops.api`) and the dashboard call the same functions, in `Ops`.
"""
