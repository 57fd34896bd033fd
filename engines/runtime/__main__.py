"""Entry point for ``python -m engines.runtime``."""

from engines.runtime.server import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
