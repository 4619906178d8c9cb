"""``python -m backtape`` runs the command line."""

from .cli.app import main

main()
