"""The public keys devices pin to verify manifests (several during a rotation)."""

from __future__ import annotations

from fastapi import APIRouter

from registry_api.api.deps import RegistryDep
from registry_api.models import KeysPublic, PublicKeyPublic

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get(
    "",
    response_model=KeysPublic,
    summary="Manifest signing public keys",
    description=(
        "Every Ed25519 public key a device may pin, by key id; `current` marks the one signing new "
        "manifests. To rotate: add the new key's public half to `extra_public_keys`, ship devices that pin "
        "both, then switch `signing_key` (the old one stays listed until devices drop it). No auth: public keys."
    ),
)
async def list_keys(registry: RegistryDep) -> KeysPublic:
    return KeysPublic(
        keys=[
            PublicKeyPublic(key_id=k.key_id, public_key=k.public_key_b64, pem=k.public_key_pem, current=k.current)
            for k in registry.keyring.describe()
        ]
    )
