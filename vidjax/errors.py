"""The one base class for mistakes a user must fix.

`vidjax.main` prints these as a single line and exits with code 2; anything
else is a bug in vidjax and keeps its traceback.
"""


class UserError(Exception):
  """A message of one line that names the fix."""
