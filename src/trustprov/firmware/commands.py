"""The command interface of the provisioning software: the whole of it ([0034]).

Every command takes a CBOR map of arguments from the link (untrusted: the CM controls it) and
returns a map of public values only. Every command checks in one order (docs/protocol.md 8.3):
the argument names, then the session state, then the argument values, then its own checks; so
two chips answer a request that is wrong in two ways with the same code, and a refused command
draws nothing from the TRNG before its session state is checked. There is no command that
returns a share, K_MK, a derived key, the seed or a decrypted asset, and no path from
ENC(OEM_SHARE) to a sealing session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustprov.chip.device import Hardware
from trustprov.chip.model import Lifecycle
from trustprov.crypto.aead import AEAD_BY_ID
from trustprov.crypto.schedule import OEM_RND_INPUT_LENS, f_oem_share, h_seed
from trustprov.errors import ArtifactError, ChipRefused, FormatError
from trustprov.firmware.provisioning import ProvisioningSession
from trustprov.firmware.sealing import BundleParams, SealingSession, oem_keys
from trustprov.formats import cbor
from trustprov.formats.authz import InclusionProof
from trustprov.formats.bundle import Authorization
from trustprov.formats.limits import LIMITS
from trustprov.formats.sealed import SealedKind, SealedValue

NONCE_LEN = 12
SHARE_LEN = 32

Args = dict[str, Any]
_CHUNK_ARGS = frozenset({"asset", "index", "data", "next"})


def _args(args: Args, required: set[str], optional: set[str] = frozenset()) -> Args:  # type: ignore[assignment]
    try:
        return cbor.expect_map(args, "arguments", required, optional)
    except FormatError as e:
        raise ChipRefused(e.message, code="bad-request") from e


def _field(check: Callable[..., Any], *a: Any) -> Any:
    try:
        return check(*a)
    except FormatError as e:
        raise ChipRefused(e.message, code="bad-request") from e


class ProvisioningSoftware:
    """One run of the software on one chip, from boot to power-off."""

    def __init__(self, hw: Hardware) -> None:
        self._hw = hw
        self._sealing: SealingSession | None = None
        self._provisioning: ProvisioningSession | None = None

    def __repr__(self) -> str:
        return f"ProvisioningSoftware({self._hw!r})"

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(_COMMANDS)

    def handle(self, op: str, args: Args) -> Args:
        command = _COMMANDS.get(op)
        if command is None:
            raise ChipRefused(f"unknown command {op!r}", code="unknown-command")
        try:
            return command(self, args)
        except BaseException:
            self._end_sessions()  # any failure drops keys and staging: nothing is installed
            raise

    def close(self) -> None:
        """The software stops (re-boot, power-off): every session's keys and RAM are dropped."""
        self._end_sessions()

    def _end_sessions(self) -> None:
        for s in (self._sealing, self._provisioning):
            if s is not None:
                s.close()
        self._sealing = self._provisioning = None

    # -- helpers ----------------------------------------------------------------------------
    def _unseal(self, data: Any, kind: SealedKind, key: bytes) -> bytes:
        raw = _field(cbor.expect_bstr, data, kind, None, LIMITS.sealed_value)
        try:
            sealed = SealedValue.from_bytes(raw, kind)
        except ArtifactError as e:
            raise ChipRefused(e.message, code="bad-sealed-value") from e
        if sealed.family_id != self._hw.family_id:
            raise ChipRefused(f"sealed {kind} is for another chip family", code="wrong-family")
        try:
            return sealed.open(key)
        except ArtifactError as e:
            raise ChipRefused(
                f"sealed {kind} does not open on this chip", code="bad-sealed-value"
            ) from e

    def _seal(self, key: bytes, kind: SealedKind, value: bytes) -> bytes:
        nonce = self._hw.trng.random(NONCE_LEN)
        return SealedValue.seal(key, kind, self._hw.family_id, nonce, value).to_bytes()

    def _bundle_params(self, value: Any) -> BundleParams:
        m = _field(
            cbor.expect_map,
            value,
            "bundle",
            {"epoch", "min-svn", "aead", "chunk-size"},
            {"authorized"},
        )
        aead_id = _field(cbor.expect, m["aead"], int, "aead")
        if aead_id not in AEAD_BY_ID:
            raise ChipRefused(f"unsupported AEAD {cbor.show(aead_id)}", code="bad-request")
        aead = AEAD_BY_ID[aead_id]
        chunk_size = _field(cbor.expect_uint, m["chunk-size"], "chunk size", LIMITS.chunk)
        if not 256 <= chunk_size <= aead.max_message:
            raise ChipRefused(f"chunk size out of range for {aead.name}", code="bad-request")
        return BundleParams(
            epoch=_field(cbor.expect_uint, m["epoch"], "epoch", 2**32 - 1),
            min_security_version=_field(cbor.expect_uint, m["min-svn"], "min-svn", 2**32 - 1),
            aead=aead,
            chunk_size=chunk_size,
            authorized=_field(Authorization.from_cbor, m["authorized"], "authorized")
            if m.get("authorized") is not None
            else None,
        )

    def _no_session(self) -> None:
        if self._sealing or self._provisioning:
            raise ChipRefused("a session is already open", code="bad-sequence")

    def _start_sealing(self, oem_rnd_input: bytes, rnd_share: bytes, params: BundleParams) -> bytes:
        """Shared tail of FIG. 2 and FIG. 4: OEM_SHARE, K_MK, keys, seed; returns ENC(OEM_SHARE)."""
        oem_share = f_oem_share(oem_rnd_input, rnd_share)  # F (FIG. 2: 42; FIG. 4: 82)
        keys = oem_keys(self._hw, oem_share)  # G, then the KDFs (44, 48-52; 84, 88-92)
        seed = h_seed(oem_rnd_input, rnd_share)  # H (46; 86)
        self._sealing = SealingSession(self._hw, keys, seed, params)
        return self._seal(self._hw.immutable().k_oem_share, "oem-share", oem_share)

    def _session(self) -> SealingSession:
        if self._sealing is None:
            raise ChipRefused(
                "no sealing session: run oem.keygen or oem.regen", code="bad-sequence"
            )
        return self._sealing

    # -- FIG. 2: OEM keygen -----------------------------------------------------------------
    def oem_keygen(self, args: Args) -> Args:
        a = _args(args, {"oem-rnd-input", "bundle"})
        self._no_session()
        params = self._bundle_params(a["bundle"])
        # 1. receive OEM_RND_INPUT (128 or 256 bits)
        oem_rnd_input = _field(cbor.expect_bstr, a["oem-rnd-input"], "OEM_RND_INPUT")
        if len(oem_rnd_input) not in OEM_RND_INPUT_LENS:
            raise ChipRefused("OEM_RND_INPUT must be 16 or 32 bytes", code="bad-request")
        # 2. make RND_SHARE on the chip
        rnd_share = self._hw.trng.random(SHARE_LEN)
        # 3. seal both under K_OEM_MASTER_SHARE for the OEM to keep (FIG. 1, step 22)
        master = self._hw.immutable().k_oem_master_share
        enc_input = self._seal(master, "oem-rnd-input", oem_rnd_input)
        enc_rnd_share = self._seal(master, "rnd-share", rnd_share)
        # 4.-7. F, G, KDFs, H; ENC(OEM_SHARE) under K_OEM_SHARE for the CM
        enc_oem_share = self._start_sealing(oem_rnd_input, rnd_share, params)
        return {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": enc_rnd_share,
            "enc-oem-share": enc_oem_share,
        }

    # -- FIG. 4: OEM regeneration -----------------------------------------------------------
    def oem_regen(self, args: Args) -> Args:
        a = _args(args, {"enc-oem-rnd-input", "enc-rnd-share", "bundle"})
        self._no_session()
        params = self._bundle_params(a["bundle"])
        # 1. open ENC(OEM_RND_INPUT) and ENC(RND_SHARE) with K_OEM_MASTER_SHARE; ENC(OEM_SHARE)
        #    is sealed under K_OEM_SHARE with kind "oem-share" and can never stand in for them
        master = self._hw.immutable().k_oem_master_share
        oem_rnd_input = self._unseal(a["enc-oem-rnd-input"], "oem-rnd-input", master)
        rnd_share = self._unseal(a["enc-rnd-share"], "rnd-share", master)
        # 2.-5. the same OEM_SHARE, K_MK, keys and seed as at keygen
        return {"enc-oem-share": self._start_sealing(oem_rnd_input, rnd_share, params)}

    # -- sealing (FIG. 2 step 54, FIG. 4 step 94) -------------------------------------------
    def seal_asset(self, args: Args) -> Args:
        a = _args(args, {"name", "kind", "length"}, {"key-type", "slot", "region", "deflate"})
        session = self._session()
        kind = _field(cbor.expect, a["kind"], str, "kind")
        if kind == "device-key":  # made on each chip at install: declared, nothing sealed
            session.declare_device_key(
                _field(cbor.expect_name, a["name"], "name", LIMITS.name),
                _field(cbor.expect, a.get("key-type"), str, "key type"),
                _field(cbor.expect_uint, a.get("slot"), "slot", 255),
            )
            return {}
        is_key = kind == "key"
        session.begin_asset(
            name=_field(cbor.expect_name, a["name"], "name", LIMITS.name),
            kind=kind,
            length=_field(cbor.expect_uint, a["length"], "length", 2**40),
            key_type=_field(cbor.expect, a.get("key-type"), str, "key type") if is_key else None,
            slot=_field(cbor.expect_uint, a.get("slot"), "slot", 255) if is_key else None,
            region=_field(cbor.expect_name, a.get("region"), "region", LIMITS.name)
            if not is_key
            else None,
            # W of a deflated asset; its kind and range are the manifest entry's rules (6.1)
            deflate=_field(cbor.expect_uint, a["deflate"], "deflate", 2**32)
            if "deflate" in a
            else None,
        )
        return {}

    def seal_chunk(self, args: Args) -> Args:
        a = _args(args, {"index", "data"})
        session = self._session()
        index = _field(cbor.expect_uint, a["index"], "index", 2**32)
        data = _field(cbor.expect_bstr, a["data"], "data", None, LIMITS.chunk)
        return {"chunk": session.seal_chunk(index, data)}

    def seal_generate(self, args: Args) -> Args:
        a = _args(args, {"name", "key-type", "slot"})
        session = self._session()
        chunk, public = session.generate(
            _field(cbor.expect_name, a["name"], "name", LIMITS.name),
            _field(cbor.expect, a["key-type"], str, "key type"),
            _field(cbor.expect_uint, a["slot"], "slot", 255),
        )
        return {"chunk": chunk, "public-key": public}

    def seal_finish(self, args: Args) -> Args:
        _args(args, set())
        manifest = self._session().finish()
        self._end_sessions()
        return {"manifest": manifest}

    # -- FIG. 3: CM provisioning ------------------------------------------------------------
    def cm_begin(self, args: Args) -> Args:
        a = _args(args, {"enc-oem-share", "manifest"}, {"proof"})
        self._no_session()
        share = _field(
            cbor.expect_bstr, a["enc-oem-share"], "ENC(OEM_SHARE)", None, LIMITS.sealed_value
        )
        manifest = _field(cbor.expect_bstr, a["manifest"], "manifest", None, LIMITS.manifest)
        proof = _field(InclusionProof.from_cbor, a["proof"]) if "proof" in a else None
        self._provisioning = ProvisioningSession(self._hw, share, manifest, proof)
        return {"assets": len(self._provisioning.manifest.assets)}

    def cm_chunk(self, args: Args) -> Args:
        # the hot path of FIG. 3 (one request per chunk): the same checks as `_args` and
        # `_field`, under one handler
        try:
            a = cbor.expect_map(args, "arguments", _CHUNK_ARGS)
            if self._provisioning is None:
                raise ChipRefused("no provisioning session: run cm.begin", code="bad-sequence")
            asset = cbor.expect_uint(a["asset"], "asset", 2**16)
            index = cbor.expect_uint(a["index"], "index", 2**32)
            data = cbor.expect_bstr(a["data"], "data", None, LIMITS.chunk + 16)
            next_link = cbor.expect_bstr(a["next"], "next", 32)
        except FormatError as e:
            raise ChipRefused(e.message, code="bad-request") from e
        self._provisioning.chunk(asset, index, data, next_link)
        return {}

    def cm_finish(self, args: Args) -> Args:
        _args(args, set())
        if self._provisioning is None:
            raise ChipRefused("no provisioning session: run cm.begin", code="bad-sequence")
        receipt = self._provisioning.finish()
        self._end_sessions()
        return receipt

    # -- lifecycle --------------------------------------------------------------------------
    def lock(self, args: Args) -> Args:
        _args(args, set())
        # never under an open session: its install would come after the lock. Refused, and as
        # every refusal (handle) the refusal ends the session, so nothing of it installs
        self._no_session()
        self._hw.lock()  # PROVISIONED only
        return {"lifecycle": Lifecycle.LOCKED.name}


# the whole command interface, by op (functions, not bound methods: no cycle per boot)
_COMMANDS: dict[str, Callable[[ProvisioningSoftware, Args], Args]] = {
    "oem.keygen": ProvisioningSoftware.oem_keygen,
    "oem.regen": ProvisioningSoftware.oem_regen,
    "seal.asset": ProvisioningSoftware.seal_asset,
    "seal.chunk": ProvisioningSoftware.seal_chunk,
    "seal.generate": ProvisioningSoftware.seal_generate,
    "seal.finish": ProvisioningSoftware.seal_finish,
    "cm.begin": ProvisioningSoftware.cm_begin,
    "cm.chunk": ProvisioningSoftware.cm_chunk,
    "cm.finish": ProvisioningSoftware.cm_finish,
    "lock": ProvisioningSoftware.lock,
}
