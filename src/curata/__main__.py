"""``python -m curata``: the ``curata`` command, for environments without the script on PATH."""

from curata.cli import main

if __name__ == "__main__":
    main()
