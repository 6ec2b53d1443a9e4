"""The `latentline` command: main builds the parser; model, run and lab each register their commands."""
