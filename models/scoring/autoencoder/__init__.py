"""Autoencoders trained on good images only: the networks, and the two scorers built on them."""
