"""The OpenGPTs family's settings (runtime/settings.py): its auth, under the variable names
OpenGPTs itself reads (its README, "Auth"). The tools' keys are issue-specific: see
actors/gpts/tools.py."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from runtime.settings import NoDecode, Section, split_names

__all__ = ["OpenGptsSettings"]


class OpenGptsSettings(Section):
    title: ClassVar[str] = "OpenGPTs"
    auth_type: Literal["noop", "jwt_local", "jwt_oidc"] = Field(
        "noop", validation_alias="AUTH_TYPE",
        description="OpenGPTs auth: `noop` (the `opengpts_user_id` cookie), `jwt_local` or "
                    '`jwt_oidc` (see "OpenGPTs")')
    jwt_iss: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="JWT_ISS", description="accepted token issuers, comma-separated")
    jwt_aud: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="JWT_AUD", description="accepted token audiences, comma-separated")
    jwt_alg: str = Field("HS256", validation_alias="JWT_ALG",
                         description="the signing algorithm of `jwt_local` tokens")
    jwt_decode_key_b64: str = Field("", validation_alias="JWT_DECODE_KEY_B64",
                                    description="the `jwt_local` key, base64")

    _names = field_validator("jwt_iss", "jwt_aud", mode="before")(split_names)

    @field_validator("auth_type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value
