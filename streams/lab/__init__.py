"""Lab tools the worker never imports: embedded stack, demo, chaos, bench, comparison, data and weights."""
