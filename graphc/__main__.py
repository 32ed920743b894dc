"""`python -m graphc`: the same command line as the `graphc` script."""

from graphc.cli import main

main(prog_name="graphc")
