"""``python -m external_messages_async``: the same as ``external-messages``."""

from external_messages_async.cli._app import main

if (
    __name__ == "__main__"
):  # pragma: no branch - importing it for anything else is a mistake
    main()
