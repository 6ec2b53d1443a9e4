"""Pixels to latents: decoding under limits, the pretrained encoder, batch encoding of files."""
