"""Fixtures the portal's integration tests share: ``wired`` is the real auth (HTTP and gRPC)
with a portal app using the real token verifier (see test_sign_in_with_auth.py)."""

from tests.integration.portal.test_sign_in_with_auth import wired  # noqa: F401
