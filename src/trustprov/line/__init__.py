"""The CM production line: stations that provision a lot, and the records of what they did.

Invariant: a chip's own state is the truth. A record is written after the chip committed; a line
that dies between the two re-reads the chip on the next run and records it then, so no chip is
provisioned twice and no result is lost.
"""
