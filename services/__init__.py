"""Provider Center: the auth, notify and portal services and the code they share."""
