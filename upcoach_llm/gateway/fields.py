"""The REST name of each service field, per REST operation family: the one table of renames.

A service names the request field that failed in a ``google.rpc.BadRequest``, spelled as in its
gRPC request (``sampling.max_tokens``, ``coaching_context``); the REST client sent that value
under the REST API's name (``max_tokens``, ``context_type``). ``from_grpc`` asks ``rest_param``
for the name to report as the error's ``param``. A rename applies to the field and to everything
under it (``texts[2]`` -> ``input[2]``); an empty new name drops the prefix, since REST sampling
fields are top-level. The first rename that applies wins (the more specific ones come first).
Fields not listed keep their name.
"""

from __future__ import annotations

CHAT = "chat"
EMBEDDINGS = "embeddings"
MODELS = "models"

RENAMES: dict[str, dict[str, str]] = {
    CHAT: {"sampling.response_format.schema_json": "response_format.json_schema.schema",
           "sampling.response_format.schema_name": "response_format.json_schema.name",
           "sampling": "", "coaching_context": "context_type"},
    EMBEDDINGS: {"texts": "input"},
    MODELS: {"name": "model"},
}


def rest_param(family: str | None, field: str) -> str:
    """The REST name of a service field for a request of the family."""
    for old, new in RENAMES.get(family or "", {}).items():
        rest = field.removeprefix(old)
        if rest != field and (not rest or rest[0] in ".["):
            renamed = new + rest if new else rest.removeprefix(".")
            return renamed or field
    return field
