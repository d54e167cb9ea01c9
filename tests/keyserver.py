#!/usr/bin/env python3
"""A CPIX key server for the tests, in the shape of SPEKE v2: HTTPS on 127.0.0.1, POST a CPIX
document naming a content id and key ids, get it back with each content key (PlainValue) and a
Widevine pssh per key.

    python3 tests/keyserver.py DIR [PORT]

Makes a private CA (DIR/ca.pem: what the worker trusts with --key-server-ca) and a certificate
for 127.0.0.1 signed by it, listens on PORT (0: any free port), prints "PORT <n>" once it listens, and
appends one line per request to DIR/requests.log: the content id and the key ids, never a key.
A content key is the first 16 bytes of SHA-256(secret || key id), the secret read from
DIR/secret (the test computes the same keys). A content id starting with "refused" is answered
403, as a key server answers content it has no rights to.
"""
import base64
import hashlib
import http.server
import os
import ssl
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET

CPIX = "urn:dashif:org:cpix"
PSKC = "urn:ietf:params:xml:ns:keyprov:pskc"
WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"

folder = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
os.makedirs(folder, exist_ok=True)
cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
ca, ca_key = os.path.join(folder, "ca.pem"), os.path.join(folder, "ca-key.pem")
if not os.path.exists(cert):
    # A private CA (what the worker trusts with --key-server-ca) and the server's certificate
    # for 127.0.0.1 signed by it: webpki refuses a CA certificate as the server's own.
    quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=pressing test key server CA", "-keyout", ca_key, "-out", ca], **quiet)
    csr = os.path.join(folder, "server.csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", csr], **quiet)
    ext = os.path.join(folder, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "2", "-extfile", ext, "-out", cert], **quiet)
with open(os.path.join(folder, "secret"), "rb") as f:
    secret = f.read()


def widevine_pssh(kid: bytes) -> bytes:
    data = b"\x12\x10" + kid
    body = b"\x00\x00\x00\x00" + uuid.UUID(WIDEVINE).bytes + len(data).to_bytes(4, "big") + data
    return (8 + len(body)).to_bytes(4, "big") + b"pssh" + body


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return self.answer(400, b"not XML\n", "text/plain")
        content = root.get("contentId", "")
        kids = [k.get("kid") for k in root.iter(f"{{{CPIX}}}ContentKey")]
        with open(os.path.join(folder, "requests.log"), "a") as log:
            log.write(f"{content} {' '.join(kids)}\n")
        if content.startswith("refused"):
            return self.answer(403, b"content not licensed for this service\n", "text/plain")
        for ck in root.iter(f"{{{CPIX}}}ContentKey"):
            kid = uuid.UUID(ck.get("kid")).bytes
            value = hashlib.sha256(secret + kid).digest()[:16]
            data = ET.SubElement(ck, f"{{{CPIX}}}Data")
            sec = ET.SubElement(data, f"{{{PSKC}}}Secret")
            ET.SubElement(sec, f"{{{PSKC}}}PlainValue").text = base64.b64encode(value).decode()
        for system in root.iter(f"{{{CPIX}}}DRMSystem"):
            if system.get("systemId", "").lower() == WIDEVINE:
                kid = uuid.UUID(system.get("kid")).bytes
                ET.SubElement(system, f"{{{CPIX}}}PSSH").text = base64.b64encode(widevine_pssh(kid)).decode()
        ET.register_namespace("cpix", CPIX)
        ET.register_namespace("pskc", PSKC)
        self.answer(200, ET.tostring(root, xml_declaration=True, encoding="UTF-8"), "application/xml")

    def answer(self, status, body, kind):
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
