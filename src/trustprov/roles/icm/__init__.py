"""The IC manufacturer: family secrets, the software signing key, the device CA, manufacturing.

ICM_DIR layout (private files 0600)::

    icm.json               family id, signing suite                (public)
    prov-signing.pub.pem   K_PUK_ICM_PROV, SubjectPublicKeyInfo    (public)
    prov-signing-2.pub.pem a hybrid suite's second key (ML-DSA)    (public)
    device-ca.pem          the device identity CA certificate      (public)
    lot-signing.pub.pem    signs lot manifests (LOT_JSON.cose)     (public)
    prov-signing.key.pem   K_PRK_ICM_PROV, PKCS#8                  (0600)
    prov-signing-2.key.pem a hybrid suite's second private key     (0600)
    device-ca.key.pem      the device CA's private key, PKCS#8     (0600)
    lot-signing.key.pem    the lot-signing private key, PKCS#8     (0600)
    family-secrets.cbor    HW_SHARE, ROM_SHARE, K_OEM_SHARE, K_OEM_MASTER_SHARE (0600)

With ``init --keys pkcs11:...`` the EC private keys live in the token instead of their files, and
the family secrets are ``family-secrets.wrapped.cbor``, encrypted under an AES key made in the
token; icm.json names each (roles/icm/custody.py).

The role is split by concern, each module with its invariants: the family itself (`family`:
`Icm`, `init`), the software it signs (`software`), its chips' certificates (`certs`), and a lot
made on the farm (`manufacturing`); the keys' custody (`custody`, `keyref`, `signer`). The five
names most callers use are here; the rest is imported from its module.
"""

from __future__ import annotations

from trustprov.roles.icm.certs import issue_certificate
from trustprov.roles.icm.family import Icm, init
from trustprov.roles.icm.manufacturing import manufacture
from trustprov.roles.icm.software import sign_software

__all__ = ["Icm", "init", "issue_certificate", "manufacture", "sign_software"]
