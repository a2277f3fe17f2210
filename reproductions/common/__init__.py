"""Code that more than one reproduction uses in the same way."""
