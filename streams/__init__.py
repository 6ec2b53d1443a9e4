"""The imperative shell: Faust app and agents, object store, metrics, producer, CLI.

Thin: it moves bytes in and out of ``models``. Dependencies point one way:
streams -> models -> schemas.
"""
