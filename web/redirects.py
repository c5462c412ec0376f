"""Where the login page may send the browser afterwards: a path on this site, nothing else.

Why decode before checking: ``/%5Chost/x`` looks like a path, but the page hands it to
``location.href`` decoded as ``/\\host/x``, which browsers read as ``//host/x``, another site.
So the value is percent-decoded until it stops changing, and the decoded form must be a
single-slash path with no backslash and no control character.
"""

from __future__ import annotations

from urllib.parse import unquote

DEFAULT_NEXT = "/trading"
MAX_DECODES = 4


def safe_next(value: str | None, default: str = DEFAULT_NEXT) -> str:
    """``value`` when it is a path on this site, else ``default``."""
    if not value:
        return default
    decoded = value
    for _ in range(MAX_DECODES):
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    else:
        return default  # still changing after several decodes: nobody needs that
    for form in (value, decoded):
        if not form.startswith("/") or form.startswith(("//", "/\\")):
            return default
        if "\\" in form or any(ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return default
    return value
