"""Read one object from S3-compatible storage from the operator's machine (AWS
Signature V4, path-style URLs), for checks before any host is touched."""

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

import requests

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature_v4(
    method: str,
    path: str,
    headers: dict[str, str],
    region: str,
    access_key: str,
    secret_key: str,
    amz_date: str,
    query: str = "",
) -> str:
    """The Authorization header for a request whose headers (lowercase names, Host and
    x-amz-date among them) are all signed."""
    day = amz_date[:8]
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            quote(path, safe="/~"),
            query,
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            headers.get("x-amz-content-sha256", EMPTY_SHA256),
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )


def get_object(
    address: str,
    port: int,
    region: str,
    bucket: str,
    key: str,
    access_key: str,
    secret_key: str,
    ca_file: str | None = None,
    timeout: float = 10,
) -> bytes | None:
    """The object's bytes, or None if it does not exist. Raises requests.RequestException
    (unreachable, refused credentials: a RuntimeError with the status)."""
    host = address if port == 443 else f"{address}:{port}"
    path = f"/{bucket}/{key.lstrip('/')}"
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    headers["authorization"] = signature_v4(
        "GET", path, headers, region, access_key, secret_key, amz_date
    )
    response = requests.get(
        f"https://{host}{quote(path, safe='/~')}",
        headers=headers,
        timeout=timeout,
        verify=ca_file or True,
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code} for {path}")
    return response.content
