"""``python -m maskrefine``: the ``maskrefine`` command (same entry point as the console script)."""

from maskrefine._entry import main

if __name__ == "__main__":
    main()
