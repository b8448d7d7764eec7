"""The chip board: a virtual programmer whose sockets hold chips of a farm, or chip programs of a
tray (`chip serve --exec`), in its own process; and the virtual chip as a program (`chip run`).

Chip side: it may use chip/, firmware/ and link/port.py; host code (roles/, line/) never imports
it, and the CLI only in its chip-side commands (`chip serve`, `run`, `blank`, `export`).
"""
