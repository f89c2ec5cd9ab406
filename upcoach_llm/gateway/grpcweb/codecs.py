"""Connect's codecs, with decode errors that name the field and never quote the caller's value.

connectrpc answers a body its codec cannot decode with ``unmarshal message: <the codec's error>``,
and protobuf's JSON parser quotes the offending value whole (a 100,000-character "temperature" came
back in the error). Here the error is INVALID_ARGUMENT with a google.rpc BadRequest naming the
field, as the services answer a bad field: ``unmarshal message: sampling.temperature: invalid
value``. Where no field can be named (the body is not JSON, or not the message at all) the error
says so in a few words.
"""

from __future__ import annotations

import re
from typing import TypeVar

from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.compat import google_protobuf_codecs
from connectrpc.errors import ConnectError
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.gateway.grpcweb.status import from_service_error

M = TypeVar("M", bound=Message)

# protobuf's ParseError ends with "at <Message>.<path>." (or "at "<Message>"" for unknown fields)
_AT_PATH = re.compile(r' at "?[A-Za-z_]\w*((?:\.\w+|\[\d+\])+)"?\.*\s*$')
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]{1,64})"')  # when unknown ones are refused


class QuietCodec(Codec):
    """A codec that decodes as ``inner`` does and reports a failure by field, not by value."""

    def __init__(self, inner: Codec) -> None:
        self._inner = inner

    def name(self) -> str:
        return self._inner.name()

    def encode(self, message: Message) -> bytes:
        return self._inner.encode(message)

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        try:
            return self._inner.decode(data, message_class)
        except ConnectError:
            raise
        except Exception as exc:  # noqa: BLE001 - every decode failure is the caller's body
            raise decode_error(exc, message_class) from None


def decode_error(exc: Exception, message_class: type[Message]) -> ConnectError:
    """INVALID_ARGUMENT naming the field ``exc`` is about (a BadRequest), without its value."""
    text = str(exc)
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown:
        return _field_error(unknown.group(1), "unknown field")
    at = _AT_PATH.search(text)
    path = at.group(1).lstrip(".") if at else ".".join(_FAILED_FIELD.findall(text))
    if path:
        return _field_error(_proto_names(message_class.DESCRIPTOR, path), "invalid value")
    name = message_class.DESCRIPTOR.name
    if isinstance(exc, json_format.ParseError) and text.startswith("Failed to load JSON"):
        return ConnectError(Code.INVALID_ARGUMENT, "unmarshal message: the body is not valid JSON")
    return ConnectError(Code.INVALID_ARGUMENT,
                        f"unmarshal message: the body is not a valid {name}")


def _proto_names(descriptor: Descriptor | None, path: str) -> str:
    """``path`` with JSON names (``maxTokens``) as the proto's (``max_tokens``), as the services
    name fields."""
    named = []
    for part in path.split("."):
        name, bracket, index = part.partition("[")
        field = None
        if descriptor is not None:
            field = next((f for f in descriptor.fields if name in (f.name, f.json_name)), None)
        named.append((field.name if field else name) + bracket + index)
        descriptor = field.message_type if field else None
    return ".".join(named)


def _field_error(field: str, problem: str) -> ConnectError:
    error = from_service_error(InvalidArgument(problem, field=field))
    return ConnectError(error.code, f"unmarshal message: {error.message}", error.details)


def quiet_codecs() -> list[Codec]:
    """The codecs the generated apps use by default (google.protobuf's binary and JSON), quiet."""
    return [QuietCodec(codec) for codec in google_protobuf_codecs()]
