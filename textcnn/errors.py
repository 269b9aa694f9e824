"""The one exception type for mistakes a user can fix: bad paths, columns, configs or texts."""


class UserInputError(ValueError):
    """Raised at the boundary where user input enters; the message names the problem and the fix.

    Entry points print it as a single line and exit non-zero instead of showing a traceback.
    """
