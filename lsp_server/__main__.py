"""Entry point for ``python -m lsp_server``.

``python -m`` puts the working directory first on ``sys.path``; an editor starts the
server in the project it opened, so a project's ``numpy.py`` would be imported (and run)
in place of the library. The directory is taken off the path before anything else is
imported (this package is already loaded, and its own modules are found through it).
"""

import os
import sys

_here = os.getcwd()
sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != _here]

from lsp_server.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
