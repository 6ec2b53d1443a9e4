"""The functional core: pixels in, numbers out. No Kafka, no object store, no Prometheus.

Importing the package first makes torchvision importable next to a CPU build of torch
(models/compat.py), whatever order a module's imports are sorted in.
"""

from models import compat  # noqa: F401
