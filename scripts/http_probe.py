"""An HTTP probe for the gateway's compose healthcheck: exit 0 when PATH answers 200.

    python scripts/http_probe.py /readyz [--port 3100]

The compose healthcheck probes /readyz (200 once a chat can be served, 503 until then); /livez
only says the process answers.

The port defaults to GATEWAY_PORT; the scheme follows TLS_ENABLED (the certificate is not
verified: the probe runs inside the gateway's own container). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request


def main() -> None:
    parser = argparse.ArgumentParser(description="Exit 0 when 127.0.0.1:PORT/PATH answers 200.")
    parser.add_argument("path", nargs="?", default="/readyz")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT") or 3100))
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    tls = os.environ.get("TLS_ENABLED", "").strip().lower() in {"1", "true", "yes", "on"}
    url = f"{'https' if tls else 'http'}://127.0.0.1:{args.port}{args.path}"
    context = ssl._create_unverified_context() if tls else None
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as reply:
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: unreachable ({exc})")
        sys.exit(1)
    print(f"{url}: {status}")
    sys.exit(0 if status == 200 else 1)


if __name__ == "__main__":
    main()
