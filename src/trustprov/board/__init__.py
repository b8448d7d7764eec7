"""The chip board: a virtual programmer whose sockets hold chips of a farm, in its own process.

Chip side: it may use chip/, firmware/ and link/port.py; host code (roles/, line/) never imports
it, and the CLI only to run `trustprov chip serve`.
"""
