"""Anomaly scorers fitted on good images only, their registry and the decision thresholds."""
