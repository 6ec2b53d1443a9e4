"""Measuring in physical units: quantities along latent directions, reference defects of known size."""
