"""The one place that says which skips CI accepts (see ``tests/conftest.py``).

Only a conformance scenario that needs a capability the real platform lacks may skip under
``CI=true``; every such skip reason starts with :data:`CAPABILITY_SKIP_PREFIX`.
"""

CAPABILITY_SKIP_PREFIX = "capability: "
