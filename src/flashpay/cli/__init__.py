"""The ``flashpay`` command line (typer + rich): thin commands that parse, call, render."""
