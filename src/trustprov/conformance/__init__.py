"""The conformance suite: a host of its own that checks any chip behind a port against
docs/protocol.md. It reaches chips only through `trustprov.link` (and raw frames of
`trustprov.formats.frame` over a `trustprov.link.stream` byte stream), never chip/ or firmware/.
"""
