"""The reports' figures, drawn with matplotlib's Agg backend into PNG files."""
