"""The JSON judgements of verify-llm-stack.sh: one reply file in, verdict lines out.

    python3 scripts/verify_checks.py KIND FILE

Prints ``PASS<TAB>detail`` or ``FAIL<TAB>detail`` (``health`` prints one ``name<TAB>verdict<TAB>
detail`` line per watched part; ``error`` prints the error message of an error reply). Standard
library only: it runs on the host, outside the stack's virtualenv.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any


def reply_text(d: Any) -> str:
    """The assistant's text: OpenAI's choices[0].message.content, or a message/content field."""
    if not isinstance(d, dict):
        return ""
    for choice in d.get("choices") or []:
        return str((choice.get("message") or {}).get("content") or "")
    message = d.get("message")
    if isinstance(message, dict):
        return str(message.get("content") or "")
    return str(d.get("content") or d.get("reply") or d.get("response") or "")


def vectors(d: Any) -> list[list[float]]:
    """OpenAI's data[i].embedding, or an embeddings list."""
    if isinstance(d, dict) and isinstance(d.get("data"), list):
        return [item["embedding"] for item in d["data"]]
    return list((d or {}).get("embeddings") or [])


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def health(d: Any) -> list[str]:
    services = (d or {}).get("services") or {}
    details = (d or {}).get("details") or {}
    rows = []
    for name, state in sorted(services.items()):
        why = str(details.get(name, "")).replace("\n", " ").replace("\t", " ")
        verdict = "PASS" if state == "healthy" else "FAIL"
        rows.append(f"{name}\t{verdict}\t{state}{': ' + why if why else ''}")
    return rows


def models(d: Any) -> str:
    listed = (d or {}).get("models") or []
    if not listed or not all(isinstance(m.get("id"), str) and m.get("size", 0) >= 0
                             for m in listed):
        return "FAIL\texpected a non-empty models list of {id, name, size}"
    return f"PASS\t{len(listed)} models: " + ", ".join(m["id"] for m in listed)


def chat(d: Any) -> str:
    if not reply_text(d).strip():
        return "FAIL\texpected choices[0].message.content"
    usage = d.get("usage") or {}
    return f"PASS\tmodel {d.get('model', '?')}, {usage.get('completion_tokens', '?')} tokens"


def coaching(d: Any) -> str:
    text = reply_text(d).strip()
    return f"PASS\t{len(text.split())} words" if text else "FAIL\texpected a reply"


def embeddings(d: Any) -> str:
    found = vectors(d)
    if len(found) != 3 or len({len(v) for v in found}) != 1 or not found[0]:
        return "FAIL\texpected 3 vectors of one length"
    return f"PASS\t3 vectors of {len(found[0])} dimensions"


def metrics(d: Any) -> str:
    if not isinstance(d, dict) or not all(isinstance(d.get(k), int)
                                          for k in ("requests_total", "errors_total")):
        return "FAIL\texpected requests_total and errors_total"
    return (f"PASS\trequests_total {d['requests_total']}, errors_total {d['errors_total']}, "
            f"cache_hits {d.get('cache_hits', '?')}")


def chat_quality(d: Any) -> str:
    """Words, not noise: at least three, mostly letters, not one word repeated."""
    text = reply_text(d).strip()
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text)
    letters = sum(c.isalpha() for c in text)
    if len(words) < 3:
        return f"FAIL\ttoo short: {text[:60]!r}"
    if letters < 0.5 * len(text.replace(" ", "")):
        return f"FAIL\tmostly not letters: {text[:60]!r}"
    if len(words) >= 8 and len({w.lower() for w in words}) < 0.3 * len(words):
        return f"FAIL\trepetitive: {text[:60]!r}"
    return f"PASS\t{len(words)} words: {text[:50]!r}"


def embedding_quality(d: Any) -> str:
    """The two sentences about a morning routine are closer than the one about taxes."""
    found = vectors(d)
    if len(found) != 3:
        return "FAIL\tno embeddings to judge"
    related, unrelated = cosine(found[0], found[1]), cosine(found[0], found[2])
    verdict = "PASS" if related > unrelated + 0.1 else "FAIL"
    return f"{verdict}\trelated {related:.2f} vs unrelated {unrelated:.2f} cosine"


def error(d: Any) -> str:
    if isinstance(d, dict) and isinstance(d.get("error"), dict):
        return str(d["error"].get("message") or "")
    if isinstance(d, dict) and isinstance(d.get("error"), str):
        return d["error"]
    return ""


JUDGES: dict[str, Callable[[Any], str | list[str]]] = {
    "health": health, "models": models, "chat": chat, "coaching": coaching,
    "embeddings": embeddings, "metrics": metrics, "chat-quality": chat_quality,
    "embedding-quality": embedding_quality, "error": error,
}


def main() -> None:
    kind, path = sys.argv[1], sys.argv[2]
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = None
    if data is None and kind not in ("error", "health"):
        print("FAIL\tthe reply is not JSON")
        return
    try:
        result = JUDGES[kind](data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        result = f"FAIL\tunexpected reply shape ({type(exc).__name__}: {exc})"
    print("\n".join(result) if isinstance(result, list) else result)


if __name__ == "__main__":
    main()
