"""Sweep folders -> paper tables: ``python -m vae_lab.report FOLDER [FOLDER ...]`` (see ``cli.py``).

``jobs.py`` reads the run folders, ``tables.py`` is the one table mechanism, ``specs.py`` says
what each kind of experiment's table shows, ``names.py`` what the priors are called, ``render.py``
writes Markdown and CSV, ``plots.py`` the figures, ``references/`` holds the papers' values.
"""

from vae_lab.report.cli import main, report

__all__ = ["main", "report"]
