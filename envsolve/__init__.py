"""envsolve: make GPU speech stacks install and run on the first try.

The core (probe, rulebook, planner, renderers) imports no heavy library; the transcription
pipeline lives in `envsolve.pipeline` and needs the `pipeline` extra.
"""

from envsolve.errors import EnvsolveError

__version__ = "0.1.0"
__all__ = ["EnvsolveError", "__version__"]
