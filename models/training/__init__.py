"""The training jobs: fit a bundle (scorer, thresholds, defect types), calibrate a quantity."""
