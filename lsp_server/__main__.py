"""Entry point for ``python -m lsp_server``."""

from lsp_server.cli import main

if __name__ == "__main__":
    main()
