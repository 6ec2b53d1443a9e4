"""The evaluation jobs: reports of a bundle on a data set, their plots, generated reference sets.

The only place in models/ that imports matplotlib (plots/) or writes report files.
"""
