"""`python -m openwaba …`: the command line, for environments without the `openwaba` script on PATH."""

from openwaba.cli import main

main()
