"""The OAuth 2.0 / OpenID Connect machinery, on Authlib: grants, token issue, discovery."""
