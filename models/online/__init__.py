"""What the worker watches while it runs: drift per camera, new defect types per line, their state."""
