"""The virtual chip: immutable memory, OTP (lifecycle, security counter), write-only key slots,
protected flash, a RAM budget, an injectable TRNG, the boot ROM, and a farm file that persists a
lot of chips.

Only `trustprov.firmware` (handed a `Hardware` by the boot ROM) and `trustprov.link` (the chip's
I/O port) use this package; host code never does. `trustprov.chip.probe` is the test-only readback
path, a stand-in for a physical probe.
"""
