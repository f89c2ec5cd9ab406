"""Every numeric limit on a request, in one place: the REST models and the services read them here.

Integer ranges are those of the protobuf fields a value travels in (a larger Python int cannot
be assigned to them); the size limits bound what one request may ask of a service.
"""

from __future__ import annotations

INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Chat: messages per request, characters of all messages together, stop sequences.
MAX_MESSAGES = 256
MAX_PROMPT_CHARS = 200_000
MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 64

# Sampling: OpenAI's ranges for the penalties and top_logprobs; a JSON schema's characters.
MAX_PENALTY = 2.0
MIN_TOP_P = 1e-6  # the services' top_p is in (0, 1]: OpenAI's top_p 0 travels as this
MAX_TOP_LOGPROBS = 20
MAX_SCHEMA_CHARS = 20_000
# A JSON schema's repetition counts (maxLength, minItems, a pattern's {n}) and its nesting: the
# grammar that enforces it spells each repetition out, and llama.cpp's grammar parser recurses
# once per level (maxLength 3000 already fails to parse; 20000 overflows its stack).
MAX_SCHEMA_REPEAT = 500
MAX_SCHEMA_DEPTH = 64

# Embeddings and search: texts per request and characters per text, items indexed per request,
# search query characters and results.
MAX_TEXTS = 256
MAX_TEXT_CHARS = 100_000
MAX_ITEMS = 256
MAX_QUERY_CHARS = 2000
MAX_TOP_K = 50

# Coaching content items (IndexContent, the shipped corpus): characters of an item's text, and
# tags per item (each a name). A search's MAX_TOP_K hits travel in one gRPC reply of at most
# 4 MB (common/server.py): 50 hits of 12,000 characters (4 UTF-8 bytes at most each) and 16 tags
# of MAX_NAME_CHARS fit, with their ids, titles and categories.
MAX_CONTENT_CHARS = 12_000
MAX_TAGS = 16

# Model, feature, coaching context, content category, user and message author names; error
# messages echo them, and a long one would overflow gRPC's status trailer.
MAX_NAME_CHARS = 200

# A language tag (BCP 47): RFC 5646 asks implementations to take tags of at least 35 characters.
MAX_LOCALE_CHARS = 35
# Languages after the first a request may name (more_locales: Accept-Language's other ranges).
MAX_MORE_LOCALES = 8

# Device RAM an edge-model query may state, in GB.
MAX_RAM_GB = 1024

# Secrets a deployment is configured with (API keys in production, internal tokens): at least this
# many characters, so a key cannot be guessed online (16 random hex characters are 64 bits).
MIN_SECRET_CHARS = 16
