"""``python -m perfgate`` runs the command line."""

from perfgate.cli import main

main()
