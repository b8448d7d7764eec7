"""The provisioning software: the only code that ever holds a share, K_MK, a derived key, the seed
or a decrypted asset.

It runs on a chip after the boot ROM verified it (`trustprov.chip.device.Chip.boot`) and reaches
the chip only through the `Hardware` handle the ROM gives it. Its commands (`commands.py`) are the
whole interface; none returns a secret, and ENC(OEM_SHARE) can never start a sealing session:
sealing needs ENC(OEM_RND_INPUT) and ENC(RND_SHARE), sealed under K_OEM_MASTER_SHARE, or a fresh
OEM keygen ([0034]).

The boot ROM measures every ``*.py`` file of this package and the modules of the libraries it runs
with (`trustprov.formats.software.CODE_PARTS`) that its imports reach (`code_modules`); the ICM
signs that measurement.
"""
