"""Host <-> chip request/response messages, and the transports that carry them.

The host side (`client`, `farm`) is all that roles, line and cli may use to reach a chip: what a
host learns from a chip is what crosses the link, exactly as with silicon. The chip side (`port`)
decodes requests, dispatches them to the boot ROM or to the booted provisioning software, and
encodes the answer. The in-process transport (`InProcessLink`) is the fast default; over a wire
(`address.open_link`: TCP or a serial line) `FramedLink` carries the same bytes in checked,
sequenced frames (`framed`, on the byte streams of `tcp` and `serial`).
"""
