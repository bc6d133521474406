"""``python -m onward``: the same command as ``onward``."""

from onward.cli import main

if __name__ == "__main__":
    main()
