#!/usr/bin/env python3
"""Installs the stack's models on an Ollama server (the guide's setup_models.py).

    python scripts/setup_models.py [--ollama-url URL] [--include-optional] [--model NAME]...

1. pulls the required models of config/models.yaml from the Ollama registry, with a progress bar
   per layer on stderr (models already installed are kept unless --refresh);
2. creates ``upcoach-assistant``: the catalog's default model with the general coaching prompt of
   config/coaching.yaml as its system prompt;
3. checks that each model answers (a short chat, or one embedding);
4. prints an installation report on stdout.

Exit status: 0 when every model is ready, 1 when one failed (the report says which and why),
2 when Ollama cannot be reached or the configuration is wrong. The compose service
``model-manager`` (profile ``setup``) runs it against the ``ollama`` container.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from ollama_client import OllamaClient, OllamaError, OllamaUnreachable, canonical

from upcoach_llm.common.backends import load_backends
from upcoach_llm.common.catalog import ModelsFile, load_models
from upcoach_llm.common.config import load_config_file
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.features import CoachingFile

ASSISTANT = "upcoach-assistant"
# Sampling baked into upcoach-assistant; a caller's own options still win per request.
ASSISTANT_PARAMETERS: dict[str, Any] = {"temperature": 0.7, "top_p": 0.9, "num_ctx": 4096}
CHECK_PROMPT = "Give me one short motivation tip."


@dataclass
class Target:
    """One model to install: its catalog name, Ollama's name for it, and its kind."""

    name: str
    ollama_name: str
    kind: str
    action: str = "pending"
    size: int = 0
    verified: bool = False
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verified


# -- what to install -------------------------------------------------------------------------------

def default_url() -> str:
    port = os.environ.get("OLLAMA_PORT") or "11434"
    return os.environ.get("OLLAMA_URL") or f"http://localhost:{port}"


def targets(catalog: ModelsFile, names: list[str], include_optional: bool) -> list[Target]:
    """The models to pull: the named ones, or the required ones (and the optional ones served
    by no embedded engine, with include_optional)."""
    backends = load_backends(catalog)
    ollama = next((b for b in backends.backends if b.type == "ollama"), None)
    embedded = {m for b in backends.backends if b.type == "embedded" for m in b.models}
    if not names:
        names = [m.name for m in catalog.models
                 if m.required or (include_optional and m.name not in embedded)]
    chosen = []
    for name in names:
        entry = catalog.get(name)
        chosen.append(Target(name=name, ollama_name=ollama.engine_model(name) if ollama else name,
                             kind=entry.kind if entry else "chat"))
    return chosen


def assistant_spec(catalog: ModelsFile) -> tuple[str, str]:
    """upcoach-assistant's base model and system prompt."""
    coaching = load_config_file(CoachingFile, "coaching.yaml")
    return catalog.routing.default_model, coaching.system_prompt(coaching.default_context)


def modelfile(base: str, system: str) -> str:
    lines = [f"FROM {base}", f'SYSTEM """{system}"""']
    lines += [f"PARAMETER {key} {value}" for key, value in ASSISTANT_PARAMETERS.items()]
    return "\n".join(lines) + "\n"


# -- progress on stderr ----------------------------------------------------------------------------

class ProgressBars:
    """Text progress bars for Ollama's status lines: redrawn in place on a terminal, one line per
    quarter otherwise (logs)."""

    WIDTH = 30

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown: dict[str, int] = {}
        self.last_status = ""

    def __call__(self, status: dict[str, Any]) -> None:
        total, digest = status.get("total"), status.get("digest")
        if digest and total:
            self._bar(str(status.get("status") or digest), int(total),
                      int(status.get("completed") or 0), str(digest))
        elif status.get("status") and status["status"] != self.last_status:
            self._line(f"  {status['status']}")
        self.last_status = str(status.get("status") or "")

    def _bar(self, label: str, total: int, done: int, digest: str) -> None:
        percent = min(100, done * 100 // max(total, 1))
        filled = self.WIDTH * percent // 100
        text = (f"  {label:<22} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}% "
                f"{human(done)}/{human(total)}")
        if self.tty:
            self.stream.write("\r" + text + ("\n" if percent == 100 else ""))
            self.stream.flush()
            return
        quarter = percent // 25
        if self.shown.get(digest, -1) < quarter:
            self.shown[digest] = quarter
            self._line(text)

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


# -- the steps -------------------------------------------------------------------------------------

def install(client: OllamaClient, target: Target, installed: dict[str, int], refresh: bool,
            bars: ProgressBars) -> None:
    if canonical(target.ollama_name) in installed and not refresh:
        target.action = "present"
        return
    print(f"==> pulling {target.ollama_name}", file=sys.stderr, flush=True)
    client.pull(target.ollama_name, bars)
    target.action = "pulled"


def create_assistant(client: OllamaClient, target: Target, base: str, system: str,
                     bars: ProgressBars) -> None:
    print(f"==> creating {target.ollama_name} from {base}", file=sys.stderr, flush=True)
    client.create(target.ollama_name, base, system, ASSISTANT_PARAMETERS, bars)
    target.action = "created"


def verify(client: OllamaClient, target: Target) -> None:
    if target.kind == "embedding":
        vector = client.embed(target.ollama_name, "verify the embedding model")
        if not vector:
            raise OllamaError(f"embedding with {target.ollama_name}: empty vector")
        target.detail = f"{len(vector)} dimensions"
    else:
        text = client.chat(target.ollama_name, CHECK_PROMPT).strip()
        if not text:
            raise OllamaError(f"chat with {target.ollama_name}: empty reply")
        target.detail = repr(text[:40] + ("..." if len(text) > 40 else ""))
    target.verified = True


def run_step(target: Target, step: Any, *args: Any) -> bool:
    """Runs one step; a failure is recorded on the target instead of stopping the others."""
    started = time.monotonic()
    try:
        step(*args)
        return True
    except OllamaUnreachable:
        raise
    except OllamaError as exc:
        if target.action == "pending":
            target.action = "failed"
        target.detail = str(exc)
        return False
    finally:
        target.seconds += time.monotonic() - started


def report(version: str, url: str, done: list[Target], out: TextIO = sys.stdout) -> None:
    rows = [("MODEL", "KIND", "ACTION", "SIZE", "VERIFIED", "SECONDS", "DETAIL")]
    rows += [(t.ollama_name, t.kind, t.action, human(t.size) if t.size else "-",
              "yes" if t.verified else "NO", f"{t.seconds:.1f}", t.detail) for t in done]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    print(f"\nUpCoach model installation report: Ollama {version} at {url}", file=out)
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row[:6], widths, strict=True))
              + "  " + row[6], file=out)
    failed = [t.ollama_name for t in done if not t.ok]
    summary = f"{len(done) - len(failed)} ready, {len(failed)} failed"
    print(f"\n{summary}" + (f": {', '.join(failed)}" if failed else "."), file=out)


# -- main ------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="setup_models.py",
        description="Pull the stack's models from the Ollama registry, create upcoach-assistant "
                    "(the default model with the coaching system prompt), check that each model "
                    "answers, and print an installation report. Exit 0 when all are ready, 1 when "
                    "one failed, 2 when Ollama is unreachable or the configuration is wrong.")
    parser.add_argument("--ollama-url", default=default_url(),
                        help="Ollama's base URL (default: $OLLAMA_URL, else "
                             "http://localhost:$OLLAMA_PORT, port 11434)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="pull this catalog model instead of the required ones (repeatable)")
    parser.add_argument("--include-optional", action="store_true",
                        help="also pull the catalog's optional models (those no embedded engine "
                             "serves)")
    parser.add_argument("--no-assistant", action="store_true",
                        help=f"do not create {ASSISTANT}")
    parser.add_argument("--refresh", action="store_true",
                        help="pull models again even when they are installed")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for Ollama's next progress line (default 600)")
    parser.add_argument("--print-modelfile", action="store_true",
                        help=f"print {ASSISTANT}'s Modelfile and exit (needs no Ollama)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        catalog = load_models()
        chosen = targets(catalog, args.model, args.include_optional)
        base, system = assistant_spec(catalog)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_modelfile:
        print(modelfile(base, system), end="")
        return 0

    bars = ProgressBars()
    with OllamaClient(args.ollama_url, timeout=args.timeout) as client:
        try:
            version = client.version()
            installed = client.tags()
            for target in chosen:
                run_step(target, install, client, target, installed, args.refresh, bars)
            if not args.no_assistant:
                assistant = Target(ASSISTANT, ASSISTANT, "chat")
                base_target = next((t for t in chosen if t.name == base), None)
                if base_target is not None and base_target.action == "failed":
                    assistant.action, assistant.detail = "skipped", f"base model {base} failed"
                else:
                    run_step(assistant, create_assistant, client, assistant,
                             base_target.ollama_name if base_target else base, system, bars)
                chosen.append(assistant)
            installed = client.tags()
            for target in chosen:
                target.size = installed.get(canonical(target.ollama_name), 0)
                if target.action not in ("failed", "skipped"):
                    run_step(target, verify, client, target)
        except OllamaUnreachable as exc:
            print(f"error: {exc}. Start it (docker compose up -d ollama) or point --ollama-url "
                  "/ OLLAMA_URL at it.", file=sys.stderr)
            return 2
        except OllamaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    report(version, args.ollama_url, chosen)
    return 0 if all(t.ok for t in chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
