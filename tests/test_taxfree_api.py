"""Access control of GET /v1/taxfree/documents/{id}, tested as an attacker would, over real HTTP:
every role x own/other/missing document x every endpoint, and every kind of bad token (missing,
expired, forged, wrong audience, wrong issuer, `alg: none`, HS/RS confusion, unknown role)."""
from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.error
import urllib.request

import jwt
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from stream.cli import main
from stream.processes import free_port
from stream.taxfree import samples
from stream.taxfree.access import ConfigError, TokenConfig
from stream.taxfree.agents import DOCUMENTS, TaxfreeDomain
from stream.taxfree.api import PATH, make_app
from stream.taxfree.decide import Decider
from stream.taxfree.rules import load

PII_KEY = b"p" * 32
SELLER = samples.entity("123456789012")
OTHER_SELLER = samples.entity("987654321098")
MINE = samples.document("TF-MINE", SELLER, passport="C01X00T47", country="DE")
THEIRS = samples.document("TF-THEIRS", OTHER_SELLER, passport="X99999999", country="FR")

SIGNING = ed25519.Ed25519PrivateKey.generate()
PRIVATE_PEM = SIGNING.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
PUBLIC_PEM = SIGNING.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
TOKENS = TokenConfig("EdDSA", "customs-stream-taxfree", "customs-stream-taxfree-api", PRIVATE_PEM, None)
WORKER_TOKENS = TokenConfig("EdDSA", "customs-stream-taxfree", "customs-stream-taxfree-api", None, PUBLIC_PEM)


class Server:
    """The standalone app on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: web.Application):
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def request(self, path: str, token: str | None = None, method: str = "GET", header: str | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        if header is not None:
            req.add_header("Authorization", header)
        elif token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            body = error.read()
            return error.code, (json.loads(body) if body.startswith(b"{") else body.decode()), dict(error.headers)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def server():
    domain = TaxfreeDomain(Decider(load(), samples.keyset(SELLER, OTHER_SELLER), PII_KEY))
    state = domain.new_state(0)
    for doc in (MINE, THEIRS):
        effects = domain.handle(state, DOCUMENTS, doc["document_id"].encode(), orjson.dumps(doc), 0.0)
        state.apply(effects.body)
    confirm = samples.confirmation(MINE)
    state.apply(domain.handle(state, "taxfree.confirmations", b"TF-MINE", orjson.dumps(confirm), 0.0).body)
    running = Server(make_app(domain.lookup, WORKER_TOKENS, PII_KEY))
    yield running
    running.stop()


def url(document_id: str) -> str:
    return PATH.replace("{document_id}", document_id)


# who -> (token subject, may see MINE)
SUBJECTS = {
    "buyer": "DE:C01X00T47",
    "trading_entity": SELLER.bin,
    "official": "SRA-0042",
    "operator": "operator-1",
}
STRANGERS = {
    "buyer": "DE:C01X00T48",            # another passport
    "trading_entity": "111111111111",   # another entity
}
ENDPOINTS = [url]  # every endpoint the API serves


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", sorted(SUBJECTS))
def test_role_matrix(server, role, endpoint):
    token = TOKENS.issue(role, SUBJECTS[role])
    status, body, headers = server.request(endpoint("TF-MINE"), token)
    assert status == 200, body
    assert body["document_id"] == "TF-MINE" and body["status"] == "refund"
    assert body["decision"]["refund"] == "14068.96" and "buyer_ref" not in body["decision"]
    assert body["buyer"] == {"passport": {"country": "DE", "number": "*****0T47"}, "card": "**********21aa"}
    assert "C01X00T47" not in json.dumps(body) and "tok_4f9c8e21aa" not in json.dumps(body)
    assert headers["Cache-Control"] == "no-store"
    other_status, other_body, _ = server.request(endpoint("TF-THEIRS"), token)
    missing_status, missing_body, _ = server.request(endpoint("TF-NOPE"), token)
    assert missing_status == 404
    if role in ("official", "operator"):
        assert other_status == 200 and other_body["document_id"] == "TF-THEIRS"
    else:  # another's document answers exactly like one that does not exist
        assert (other_status, other_body) == (missing_status, missing_body)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", sorted(STRANGERS))
def test_strangers_see_nothing(server, role, endpoint):
    token = TOKENS.issue(role, STRANGERS[role])
    for document_id in ("TF-MINE", "TF-THEIRS", "TF-NOPE"):
        assert server.request(endpoint(document_id), token)[:2] == (404, {"error": "not_found",
                                                                          "detail": "no such document"})


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims(**changes):
    now = int(time.time())
    base = {"iss": "customs-stream-taxfree", "aud": "customs-stream-taxfree-api", "sub": SELLER.bin,
            "role": "trading_entity", "iat": now, "exp": now + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def bad_tokens():
    other_key = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = TOKENS.issue("trading_entity", SELLER.bin)
    header, payload, signature = good.split(".")
    return {
        "expired": jwt.encode(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), PRIVATE_PEM,
                              algorithm="EdDSA"),
        "no exp": jwt.encode(claims(exp=None), PRIVATE_PEM, algorithm="EdDSA"),
        "forged signature": jwt.encode(claims(), other_key, algorithm="EdDSA"),
        "tampered payload": ".".join([header, b64(claims(role="operator")), signature]),
        "wrong audience": jwt.encode(claims(aud="someone-else"), PRIVATE_PEM, algorithm="EdDSA"),
        "no audience": jwt.encode(claims(aud=None), PRIVATE_PEM, algorithm="EdDSA"),
        "wrong issuer": jwt.encode(claims(iss="evil"), PRIVATE_PEM, algorithm="EdDSA"),
        "alg none": b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".",
        "alg none signed": b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + "." + signature,
        # HS/RS confusion: an HMAC token keyed with the public key the worker verifies with
        "HS256 keyed with the public key": b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims()) + "." +
        b64(__import__("hmac").new(PUBLIC_PEM, (b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims())).encode(),
                                   "sha256").digest()),
        "RS256 with another key": jwt.encode(claims(), rsa_key, algorithm="RS256"),
        "unknown role": jwt.encode(claims(role="admin"), PRIVATE_PEM, algorithm="EdDSA"),
        "empty subject": jwt.encode(claims(sub=""), PRIVATE_PEM, algorithm="EdDSA"),
        "not a jwt": "hello",
        "empty": "",
    }


@pytest.mark.parametrize("name", sorted(bad_tokens()))
def test_bad_tokens_get_401(server, name):
    token = bad_tokens()[name]
    for document_id in ("TF-MINE", "TF-NOPE"):
        status, body, headers = server.request(url(document_id), token)
        assert status == 401, (name, body)
        assert body == {"error": "unauthorized", "detail": "a valid bearer token is required"}
        assert headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer x.y.z",
                                    "Token " + "x" * 10])
def test_missing_or_malformed_authorization(server, header):
    status, _, _ = server.request(url("TF-MINE"), header=header if header is not None else None)
    assert status == 401


def test_other_methods_and_paths_do_not_leak(server):
    token = TOKENS.issue("operator", "operator-1")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert server.request(url("TF-MINE"), token, method=method)[0] == 405
    for path in ("/v1/taxfree/documents/", "/v1/taxfree/documents/TF-MINE/../TF-THEIRS", "/v1/taxfree/documents"):
        status, body, _ = server.request(path, TOKENS.issue("buyer", "DE:C01X00T47"))
        assert status in (404, 405) and "TF-THEIRS" not in json.dumps(body)


def test_configuration_refuses_none_and_unknown_algorithms():
    for alg in ("none", "None", "HS512", ""):
        with pytest.raises(ConfigError):
            TokenConfig(alg, "i", "a", PRIVATE_PEM, None)
    with pytest.raises(ConfigError, match="not a RS256 key"):
        TokenConfig("RS256", "i", "a", PRIVATE_PEM, None)


def test_rs256_configuration_refuses_hs256_confusion():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    config = TokenConfig("RS256", "i", "a", private, None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert config.verify(config.issue("operator", "op")).role == "operator"
    signing_input = b64({"alg": "HS256"}) + "." + b64({"iss": "i", "aud": "a", "sub": "op", "role": "operator",
                                                       "exp": int(time.time()) + 60})
    forged = signing_input + "." + b64(__import__("hmac").new(public, signing_input.encode(), "sha256").digest())
    from stream.taxfree.access import Unauthorized
    with pytest.raises(Unauthorized):
        config.verify(forged)


def test_token_command_and_worker_agree_on_the_default_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["taxfree", "token", "--role", "buyer", "--subject", "DE:C01X00T47",
                                       "--ttl", "60"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    worker = TokenConfig.from_env()  # what the worker builds from the same directory
    claims_ = worker.verify(token)
    assert (claims_.role, claims_.subject) == ("buyer", "DE:C01X00T47")
    decoded = jwt.decode(token, options={"verify_signature": False})
    assert decoded["exp"] - decoded["iat"] == 60 and jwt.get_unverified_header(token)["alg"] == "EdDSA"
    # production: both point at real keys
    key_file = tmp_path / "issuer.pem"
    key_file.write_bytes(PRIVATE_PEM)
    public_file = tmp_path / "issuer.pub"
    public_file.write_bytes(PUBLIC_PEM)
    monkeypatch.setenv("CUSTOMS_TAXFREE_JWT_PRIVATE_KEY", str(key_file))
    issued = CliRunner().invoke(main, ["taxfree", "token", "--role", "operator", "--subject", "op"]).output.strip()
    monkeypatch.delenv("CUSTOMS_TAXFREE_JWT_PRIVATE_KEY")
    monkeypatch.setenv("CUSTOMS_TAXFREE_JWT_PUBLIC_KEY", str(public_file))
    assert TokenConfig.from_env().verify(issued).role == "operator"
    from stream.taxfree.access import Unauthorized
    with pytest.raises(Unauthorized):
        TokenConfig.from_env().verify(token)  # the default key is not the production key
    bad = CliRunner().invoke(main, ["taxfree", "token", "--role", "admin", "--subject", "x"])
    assert bad.exit_code != 0
