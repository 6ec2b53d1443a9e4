"""Prometheus rules and Grafana dashboards, generated from code: ``make monitoring``.

queries.py holds the PromQL both use; rules.py and dashboards.py render the checked-in files.
"""
