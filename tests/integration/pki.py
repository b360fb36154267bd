"""Test-side X.509 material made with python3-cryptography: a customer's own CA, certificates it signs
(also expired ones), verification certificates for CA registration, CSRs and CRLs."""
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn, extra=()):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
                     + [x509.NameAttribute(oid, value) for oid, value in extra])


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class CA:
    def __init__(self, cn="acme device CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = _pem(self.cert)

    def issue(self, cn, days=30, expired=False, subject=()):
        """(certificate PEM, key PEM, serial) of a client certificate; `subject`: more (NameOID, value)
        attributes."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        start, end = (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired else \
            (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days))
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder().subject_name(_name(cn, subject)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(serial).not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        return _pem(cert), key_pem(key), serial

    def crl(self, serials):
        now = datetime.datetime.utcnow()
        b = x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject).last_update(now) \
            .next_update(now + datetime.timedelta(days=1))
        for s in serials:
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(s).revocation_date(now).build())
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def csr(cn):
    """(CSR PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256())
    return req.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key)


def write(tmp_path, name, cert_pem, key_pem_text):
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert.write_text(cert_pem)
    key.write_text(key_pem_text)
    return str(cert), str(key)
