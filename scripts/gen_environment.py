"""Write the repository's environment.yml from the renderer (tests/test_render.py keeps it current)."""

from pathlib import Path

from envsolve.render.kinds.environment import dev_environment

Path(__file__).resolve().parent.parent.joinpath("environment.yml").write_text(dev_environment())
