"""Pure cryptographic functions over bytes: the key schedule (F, G, H, KDF), AEAD, CMAC,
signatures. Every primitive is pyca/cryptography's; nothing here keeps state or does I/O."""
