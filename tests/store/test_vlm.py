"""The VLM client (store/vlm.py) and the describe provider chain against loopback OpenAI-compatible stand-ins.

An external vision-language model cannot run here, so each provider is a real HTTP server
(tests/vlm_standin.py) that answers, fails, hangs or talks nonsense as a test sets it.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from contract.errors import PlanError, VisionGridError
from pipelines.describe import (
    BUILTIN_PROVIDER,
    DescribeChain,
    DescribeError,
    Description,
    ProviderConfig,
    UnknownProviderError,
    build_prompt,
    providers_from_settings,
    resolve_chain,
)
from store.vlm import ProviderError, VLMClient, encode_jpeg
from tests.conftest import read_rgb
from tests.vlm_standin import StandInVLM
from visiongrid.s3_server import free_ports
from visiongrid.settings import RESERVED_PROVIDER_NAMES, Settings

LOCAL = "A bicycle (centre), a car (top right) and a dog (left). Mostly grey and yellow."


@pytest.fixture
def standins() -> Iterator[list[StandInVLM]]:
    started: list[StandInVLM] = []
    yield started
    for server in started:
        server.stop()


def start(standins: list[StandInVLM], **kwargs: Any) -> StandInVLM:
    server = StandInVLM(**kwargs).start()
    standins.append(server)
    return server


def entry(name: str, server: StandInVLM | None, **extra: Any) -> dict[str, Any]:
    url = server.url if server else f"http://127.0.0.1:{free_ports(1)[0]}/v1"  # nothing listens there
    return {"name": name, "url": url, "model": f"{name}-model", "timeout_s": 0.5, **extra}


@pytest.fixture(scope="module")
def dog(media_dir: Path) -> np.ndarray:
    return read_rgb(media_dir / "dog.jpg")


def run_chain(chain: DescribeChain, image: np.ndarray, *, allow_failover: bool) -> Description:
    async def go() -> Description:
        # httpx clients belong to one event loop: each asyncio.run gets its own.
        async with VLMClient() as client:
            chain.client = client
            return await chain.describe(image, LOCAL, allow_failover=allow_failover)

    return asyncio.run(go())


# --- the client -------------------------------------------------------------------------------


def test_client_sends_image_prompt_model_and_key(standins: list[StandInVLM], dog: np.ndarray) -> None:
    server = start(standins, reply="A dog beside a bicycle.")
    provider = ProviderConfig("alpha", server.url, "llava-test", api_key="sekret", timeout_s=2)

    async def go() -> str:
        async with VLMClient() as client:
            return await client.describe(provider, dog, build_prompt(LOCAL))

    text = asyncio.run(go())
    assert text == "A dog beside a bicycle. [model=llava-test image=768x576]"
    (request,) = server.received
    assert request.authorization == "Bearer sekret"
    assert request.body["model"] == "llava-test"
    assert request.body["max_tokens"] > 0
    assert request.body["messages"][0]["role"] == "system"
    assert f"Detected: {LOCAL}" in request.prompt
    sent = request.image
    assert sent.shape == dog.shape
    # The JPEG round trip keeps the picture: the same photo, not a blank or a different one.
    assert float(np.abs(sent.astype(np.float32) - dog.astype(np.float32)).mean()) < 6.0


def test_client_sends_no_authorization_without_key_and_downscales_large_images(
    standins: list[StandInVLM],
) -> None:
    server = start(standins)
    image = np.zeros((1500, 3000, 3), np.uint8)
    image[:, 1500:] = (200, 30, 30)
    provider = ProviderConfig("alpha", server.url + "/", "m", timeout_s=2)  # trailing slash tolerated

    async def go() -> str:
        async with VLMClient(max_side=1024) as client:
            return await client.describe(provider, image, "describe")

    assert asyncio.run(go()).endswith("image=1024x512]")
    assert server.received[0].authorization is None


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("fail", 503, "provider_http_error"),
        ("fail", 401, "provider_http_error"),
        ("hang", None, "provider_timeout"),
        ("garbage", 200, "provider_bad_response"),
    ],
)
def test_client_errors_become_provider_errors(
    standins: list[StandInVLM], dog: np.ndarray, mode: str, status: int | None, code: str
) -> None:
    server = start(standins, mode=mode, status=status or 503, hang_s=2.0)
    provider = ProviderConfig("alpha", server.url, "m", timeout_s=0.3)

    async def go() -> str:
        async with VLMClient() as client:
            return await client.describe(provider, dog, "describe")

    with pytest.raises(ProviderError) as caught:
        asyncio.run(go())
    assert caught.value.provider == "alpha"
    assert caught.value.provider_status == status
    assert caught.value.code == code
    assert isinstance(caught.value, VisionGridError)


def test_client_connection_refused_is_a_provider_error(dog: np.ndarray) -> None:
    provider = ProviderConfig("gone", f"http://127.0.0.1:{free_ports(1)[0]}/v1", "m", timeout_s=1)

    async def go() -> str:
        async with VLMClient() as client:
            return await client.describe(provider, dog, "describe")

    with pytest.raises(ProviderError) as caught:
        asyncio.run(go())
    assert (caught.value.provider_status, caught.value.code) == (None, "provider_unreachable")


def test_encode_jpeg_rejects_non_images() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        encode_jpeg(np.zeros((4, 4), np.uint8))


# --- settings → chain -------------------------------------------------------------------------


def test_resolve_chain_orders_hint_first_then_configured_then_builtin() -> None:
    settings = Settings(
        vlm_providers=[entry("alpha", None), entry("beta", None), entry("gamma", None)], provider_max_retries=5
    )
    assert resolve_chain("beta", settings) == ["beta", "alpha", "gamma", BUILTIN_PROVIDER]
    assert resolve_chain(None, settings) == [BUILTIN_PROVIDER]
    assert resolve_chain("builtin", settings) == [BUILTIN_PROVIDER]
    assert resolve_chain(BUILTIN_PROVIDER, settings) == [BUILTIN_PROVIDER]
    # The chain is capped at 1 + provider_max_retries.
    capped = settings.model_copy(update={"provider_max_retries": 1})
    assert resolve_chain("gamma", capped) == ["gamma", "alpha"]
    assert resolve_chain("gamma", settings.model_copy(update={"provider_max_retries": 0})) == ["gamma"]


def test_no_provider_may_take_a_name_of_the_builtin_description() -> None:
    assert BUILTIN_PROVIDER in RESERVED_PROVIDER_NAMES
    assert {"builtin", BUILTIN_PROVIDER} == RESERVED_PROVIDER_NAMES


def test_unknown_hint_is_an_unknown_provider_error() -> None:
    settings = Settings(vlm_providers=[entry("alpha", None)])
    with pytest.raises(UnknownProviderError) as caught:
        resolve_chain("gpt-9", settings)
    assert isinstance(caught.value, PlanError)  # a 400 invalid_request naming the field
    assert (caught.value.code, caught.value.field, caught.value.status) == ("invalid_request", "model", 400)
    assert caught.value.hint == "gpt-9"
    assert caught.value.known == sorted(["alpha", BUILTIN_PROVIDER])
    with pytest.raises(UnknownProviderError):
        resolve_chain("alpha", Settings())  # nothing configured: only the built-in is known


def test_providers_from_settings_defaults_and_parses() -> None:
    settings = Settings(
        vlm_timeout_s=7,
        vlm_providers=[
            {"name": "alpha", "url": "http://h:1/v1/", "model": "m1"},
            {"name": "beta", "url": "https://h/v1", "model": "m2", "api_key": "k", "timeout_s": 2},
        ],
    )
    assert providers_from_settings(settings) == [
        ProviderConfig("alpha", "http://h:1/v1", "m1", "", 7.0),
        ProviderConfig("beta", "https://h/v1", "m2", "k", 2.0),
    ]
    assert "k" not in repr(providers_from_settings(settings)[1])  # the key stays out of logs


@pytest.mark.parametrize(
    ("bad", "field", "says"),
    [
        ({"url": "http://h/v1", "model": "m"}, "name", "required"),
        ({"name": "a", "model": "m"}, "url", "required"),
        ({"name": "a", "url": "ftp://h/v1", "model": "m"}, "url", "http(s)"),
        ({"name": "a", "url": "http://h/v1", "model": ""}, "model", "at least 1"),
        ({"name": "a", "url": "http://h/v1", "model": "m", "timeout_s": 0}, "timeout_s", "greater than 0"),
        ({"name": "a", "url": "http://h/v1", "model": "m", "timeout_s": "soon"}, "timeout_s", "number"),
        ({"name": "a", "url": "http://h/v1", "model": "m", "api-key": "k"}, "api-key", "not permitted"),
        ({"name": "builtin", "url": "http://h/v1", "model": "m"}, "name", "reserved"),
    ],
)
def test_bad_provider_config_fails_at_start_up_naming_the_entry_and_field(
    bad: dict[str, Any], field: str, says: str
) -> None:
    # Settings() itself refuses the entry, so a broken provider stops start-up, not a task's first describe.
    with pytest.raises(ValidationError) as caught:
        Settings(vlm_providers=[{"name": "ok", "url": "http://h/v1", "model": "m"}, bad])
    (error,) = caught.value.errors()
    assert error["loc"] == ("vlm_providers", 1, field)
    assert says in error["msg"]
    assert f"vlm_providers.1.{field}" in str(caught.value)


def test_duplicate_provider_names_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"vlm_providers\[1\].*'name'"):
        Settings(vlm_providers=[entry("alpha", None), entry("alpha", None)])


def test_providers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONGRID_VLM_PROVIDERS", '[{"name": "alpha", "url": "http://h:1/v1", "model": "m"}]')
    assert providers_from_settings(Settings(vlm_timeout_s=4)) == [
        ProviderConfig("alpha", "http://h:1/v1", "m", "", 4.0)
    ]
    monkeypatch.setenv("VISIONGRID_VLM_PROVIDERS", '[{"name": "alpha", "url": "h:1/v1", "model": "m"}]')
    with pytest.raises(ValidationError, match=r"vlm_providers\.0\.url"):
        Settings()


# --- the chain --------------------------------------------------------------------------------


def test_builtin_only_chain_returns_the_local_text(dog: np.ndarray) -> None:
    chain = DescribeChain.from_settings(None, Settings(), client=None)
    segment = Description("x", BUILTIN_PROVIDER, first_frame=3, last_frame=9, start_ms=300.0, end_ms=900.0)

    async def go() -> Description:
        return await chain.describe(dog, LOCAL, allow_failover=False, segment=segment)

    result = asyncio.run(go())
    assert result == Description(LOCAL, BUILTIN_PROVIDER, 3, 9, 300.0, 900.0)
    assert result.to_dict()["provider"] == BUILTIN_PROVIDER


def test_failover_before_the_first_chunk_moves_to_the_next_provider(
    standins: list[StandInVLM], dog: np.ndarray
) -> None:
    broken = start(standins, mode="fail", status=500)
    working = start(standins, reply="Seen by beta.")
    settings = Settings(vlm_providers=[entry("alpha", broken), entry("beta", working)])
    chain = DescribeChain.from_settings("alpha", settings, client=VLMClient())
    assert chain.names == ["alpha", "beta", BUILTIN_PROVIDER]
    assert chain.current == "alpha"

    first = run_chain(chain, dog, allow_failover=True)
    assert first.provider == "beta"
    assert first.text.startswith("Seen by beta. [model=beta-model")
    assert chain.current == "beta"
    assert len(broken.received) == 1 and len(working.received) == 1

    # The move is permanent for the task: the broken provider is not asked again.
    second = run_chain(chain, dog, allow_failover=False)
    assert second.provider == "beta"
    assert len(broken.received) == 1 and len(working.received) == 2


def test_failure_after_the_first_chunk_is_terminal(standins: list[StandInVLM], dog: np.ndarray) -> None:
    server = start(standins, reply="ok")
    settings = Settings(vlm_providers=[entry("alpha", server), entry("beta", None)])
    chain = DescribeChain.from_settings("alpha", settings, client=VLMClient())
    assert run_chain(chain, dog, allow_failover=True).provider == "alpha"

    server.mode, server.status = "fail", 502  # the provider breaks mid-stream
    with pytest.raises(DescribeError) as caught:
        run_chain(chain, dog, allow_failover=False)
    error = caught.value
    assert (error.provider, error.provider_code, error.provider_status) == ("alpha", "provider_http_error", 502)
    # one error model: a 502 describe_failed, which survives the trip across Ray (pickling)
    assert (error.code, error.status) == ("describe_failed", 502)
    assert str(error).startswith("describe provider 'alpha' failed (provider_http_error): ")
    assert error.message == f"every describe provider failed; last alpha: {error}"
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.message, copy.provider_status) == (
        DescribeError,
        str(error),
        error.message,
        502,
    )
    assert chain.current == "alpha"


def test_timeouts_and_refused_connections_fail_over_down_to_the_builtin(
    standins: list[StandInVLM], dog: np.ndarray
) -> None:
    hanging = start(standins, mode="hang", hang_s=2.0)
    settings = Settings(
        vlm_providers=[entry("slow", hanging, timeout_s=0.2), entry("gone", None)], provider_max_retries=2
    )
    chain = DescribeChain.from_settings("slow", settings, client=VLMClient())
    result = run_chain(chain, dog, allow_failover=True)
    assert result == Description(LOCAL, BUILTIN_PROVIDER)
    assert chain.current == BUILTIN_PROVIDER
    assert chain.failovers == 2


def test_retries_are_capped_at_provider_max_retries(standins: list[StandInVLM], dog: np.ndarray) -> None:
    failing = [start(standins, mode="fail", status=503) for _ in range(3)]
    working = start(standins, reply="never reached")
    settings = Settings(
        vlm_providers=[*(entry(f"p{i}", s) for i, s in enumerate(failing)), entry("ok", working)],
        provider_max_retries=2,
    )
    chain = DescribeChain.from_settings("p0", settings, client=VLMClient())
    assert chain.names == ["p0", "p1", "p2"]  # 1 + 2 retries
    with pytest.raises(DescribeError) as caught:
        run_chain(chain, dog, allow_failover=True)
    assert caught.value.provider == "p2"
    assert [len(s.received) for s in failing] == [1, 1, 1]
    assert working.received == []
    assert chain.failovers == 2

    # Even a hand-built longer chain never fails over more than max_retries times.
    providers = {p.name: p for p in providers_from_settings(settings)}
    chain = DescribeChain(["p0", "p1", "p2", "ok"], providers, client=VLMClient(), max_retries=1)
    with pytest.raises(DescribeError) as caught:
        run_chain(chain, dog, allow_failover=True)
    assert caught.value.provider == "p1"
    assert working.received == []


def test_chain_refuses_unconfigured_names() -> None:
    with pytest.raises(ValueError, match="unconfigured"):
        DescribeChain(["alpha"], {}, client=None, max_retries=2)
    with pytest.raises(ValueError, match="client"):
        DescribeChain(["alpha"], {"alpha": ProviderConfig("alpha", "http://h/v1", "m")}, client=None, max_retries=2)
