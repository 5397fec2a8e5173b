"""The OpenID Provider: sign-in, tokens, and the identities of practice staff."""
