"""The untrusted CM as the adversary: one named test per attack, each failing if it succeeds."""
