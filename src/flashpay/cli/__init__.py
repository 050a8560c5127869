"""The ``flashpay`` command line (typer + rich): thin commands that parse, call, render.

``common`` (shared options) and ``db`` sit below the domains; ``main`` is the CLI's composition
root, the one module that imports every domain's commands, and ``serve`` runs the HTTP app.
"""
