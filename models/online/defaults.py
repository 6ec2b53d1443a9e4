"""The online detectors' defaults, chosen by measurement on deeppcb-patches (docs/drift.md): one
place for models/online and the worker's settings (streams/settings.py), and no imports, so
reading the settings loads neither river nor torch.
"""

# ADWIN (Bifet and Gavaldà, 2007): with delta 0.002 and clock 8, no false alarm in 20 stable runs
# of 4,000 events on five statistics, and a 20 % dimming found after a median of about 50 events.
DRIFT_DELTA = 0.002
DRIFT_CLOCK = 8
DRIFT_HOLD_EVENTS = 500  # after an alarm the camera counts as drifting for this many of its events
# Pixel statistics are standardised against the camera's own first events (docs/drift.md,
# ``latentline evaluate-scenarios``): the reference size, the least spread (raw units; a
# statistic constant on the reference, such as a clipped share of 0, would otherwise make any
# change infinite) and the clip of one standardised value.
DRIFT_REFERENCE_EVENTS = 200
DRIFT_MIN_STD = 0.002
DRIFT_CLIP = 6.0

# DBSTREAM (Hahsler and Bolaños, 2016) on unit deviation directions of the defect descriptor
# (``peak``) in a 32-d whitened PCA space of good images' descriptors (LatentReference). With
# radius 0.9 and minimum weight 8, ``latentline evaluate-stream`` (docs/drift.md) raised spur on
# deeppcb-patches after 29 spur events, every exemplar a spur, and nothing over 2,000 stable
# events; in replays 24 to 48 components at radius 0.85 to 0.95 did the same (21 to 36 events),
# 16 components let one false candidate through.
NOVELTY_COMPONENTS = 32
NOVELTY_RADIUS = 0.9
NOVELTY_MIN_WEIGHT = 8.0
NOVELTY_MIN_MEMBERS = 6
