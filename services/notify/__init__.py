"""Email delivery with a durable outbox: nothing accepted is ever lost."""
