"""The functional core: pixels in, numbers out. No Kafka, no object store, no Prometheus.

Import ``models.compat`` first (every module that needs torchvision does) so that torchvision
works next to a CPU build of torch.
"""
