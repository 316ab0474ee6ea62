"""A real S3 API server for tests: moto's standalone server on 127.0.0.1, one per worker.

``s3_endpoint`` (session) starts it on a free port; ``s3_bucket`` (per test) makes a
fresh bucket and points every client at the server through the environment
(AWS_ENDPOINT_URL and dummy credentials), so krec subprocesses started by the test
reach it the way they would reach a real store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "krec-test-access-key",
    "AWS_SECRET_ACCESS_KEY": "krec-test-secret-key-never-logged",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Bucket:
    """A bucket on the test's S3 server: ``url`` is ``s3://NAME``."""

    endpoint: str
    name: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=self.endpoint,
            skip_instance_cache=True,
        )

    def keys(self, prefix: str = "") -> list[str]:
        fs = self.filesystem()
        return sorted(fs.find(f"{self.name}/{prefix}".rstrip("/")))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    bucket = Bucket(s3_endpoint, f"krec-{uuid.uuid4().hex[:12]}")
    bucket.filesystem().mkdir(bucket.name)
    return bucket


def environment(endpoint: str) -> dict[str, str]:
    """The variables a subprocess needs to reach the test server."""
    return {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
