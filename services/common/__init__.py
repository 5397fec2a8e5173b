"""Code the three services share: configuration, storage, gRPC, Redis and web plumbing.

Nothing here knows a business rule; services never import each other's internals.
"""
