"""Host <-> chip request/response messages, and the transports that carry them.

The host side (`client`, `farm`) is all that roles, line and cli may use to reach a chip: what a
host learns from a chip is what crosses the link, exactly as with silicon. The chip side (`port`)
decodes requests, dispatches them to the boot ROM or to the booted provisioning software, and
encodes the answer. Today's transport is in-process (`InProcessLink`); a serial or TCP transport
carries the same bytes.
"""
