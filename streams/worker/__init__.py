"""The worker runtime: Faust app and agents, batch inspection, watchers, store, producer, dead letters."""
