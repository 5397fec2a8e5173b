"""The provider dashboard: the practice's patients, accounts and financing."""
