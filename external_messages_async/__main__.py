"""``python -m external_messages_async``: the same as ``external-messages``."""

from ._cli import main

if __name__ == "__main__":
    main()
