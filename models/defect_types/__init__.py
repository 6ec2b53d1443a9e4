"""Naming the defect: classifiers on deviation vectors, open-set decisions, data hygiene."""
