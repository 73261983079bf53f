"""Test certificates, made with the openssl command line: a private CA and
leaf certificates it signs (EC P-256, so they are quick to make)."""
import subprocess
from pathlib import Path

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Ca:
    def __init__(self, directory, name="Pylon Test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        slug = name.replace(" ", "-").lower()
        self.cert, self.key = self.dir / f"{slug}.pem", self.dir / f"{slug}.key"
        _run("req", "-x509", *EC, "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(self.key), "-out", str(self.cert))
        self.serial = 0

    def issue(self, name, sans=None, days=1, file=None):
        """A certificate for `name` (subject alt names `sans`, default the
        name itself; `IP:` prefixes an address); `days=-1` makes it expired.
        Returns (cert, key) paths."""
        self.serial += 1
        base = self.dir / (file or name.replace("*", "star"))
        csr, key, cert, ext = (base.parent / (base.name + s) for s in (".csr", ".key", ".pem", ".ext"))
        _run("req", *EC, "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        alt = ",".join(s if s.startswith("IP:") else f"DNS:{s}" for s in (sans or [name]))
        ext.write_text(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth,clientAuth\n")
        _run("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
             "-set_serial", str(self.serial), "-days", str(days), "-extfile", str(ext),
             "-out", str(cert))
        return cert, key
