"""The functional core: pixels in, numbers out. No Kafka, no object store, no Prometheus.

Rooms by role (a package's ``__init__`` imports nothing, so importing one module loads only what
that module needs: torch only with the encoder and the torch scorers):

- ``latents``, ``deviation_space``: the records and the space every stage shares;
- ``encoding/``: image decoding under limits, the pretrained encoder, batch encoding of files;
- ``scoring/``: anomaly scorers, their registry and the thresholds;
- ``defect_types/``: defect-type classifiers, open-set decisions, data hygiene;
- ``online/``: drift and novelty detection and their versioned state;
- ``metrology/``: quantities measured along latent directions, reference defects of known size;
- ``dataset``, ``bundle``, ``inspector``, ``overlay``: the data layout, the saved model, the
  runtime that inspects batches, the anomaly-map overlays;
- ``training/``, ``evaluation/``: the jobs (fit, calibrate; reports, plots, generated data sets).
  Nothing above imports them; only ``evaluation/`` writes report files or imports matplotlib.
"""
