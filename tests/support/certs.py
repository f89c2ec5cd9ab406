"""A throwaway CA and a certificate it signs for 127.0.0.1/localhost, made with the openssl CLI."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CertFiles:
    ca: Path
    cert: Path
    key: Path

    def env(self) -> dict[str, str]:
        """The INTERNAL_TLS_* variables that make a process use these files."""
        return {"INTERNAL_TLS_CA_FILE": str(self.ca), "INTERNAL_TLS_CERT_FILE": str(self.cert),
                "INTERNAL_TLS_KEY_FILE": str(self.key)}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str = "ca") -> tuple[Path, Path]:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN=upcoach test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             cwd=folder)
    return folder / f"{name}.pem", folder / f"{name}.key"


def make_cert(folder: Path, ca: tuple[Path, Path], name: str) -> CertFiles:
    """A certificate for 127.0.0.1 and localhost, usable as server and as client."""
    ext = folder / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.pem",
             cwd=folder)
    return CertFiles(ca=ca[0], cert=folder / f"{name}.pem", key=folder / f"{name}.key")
