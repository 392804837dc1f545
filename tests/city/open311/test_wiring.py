"""The Open311 wiring of the app: which endpoint the workers file with, what ``serve`` mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bootstrap import build_services, builtin_open311_endpoint, close_services
from bot.config import ConfigError, Settings
from tests.e2e.city import (
    SmsResident,
    city_settings,
    eventually,
    free_port,
    running_city,
)
from tests.fakes.twilio_api import FakeTwilio


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8080/open311/v2"),
        ({"CITYBOT_HOST": "0.0.0.0", "CITYBOT_PORT": "9000"}, "http://localhost:9000/open311/v2"),
        ({"CITYBOT_HOST": "::1", "CITYBOT_PORT": "9000"}, "http://[::1]:9000/open311/v2"),
        (
            {"CITYBOT_PUBLIC_URL": "https://bot.city.example/"},
            "https://bot.city.example/open311/v2",
        ),
        (
            {"CITYBOT_PUBLIC_URL": "https://bot.city.example", "CITYBOT_PORT": "9000"},
            "https://bot.city.example/open311/v2",
        ),
    ],
)
def test_the_builtin_server_is_found_under_the_public_url(
    env: dict[str, str], expected: str
) -> None:
    """Every process of a deployment shares the public URL, so a worker files where serve is."""
    assert builtin_open311_endpoint(Settings.from_env(env)) == expected


async def test_the_city_endpoint_wins_over_the_builtin_server(tmp_path: Path) -> None:
    settings = city_settings(
        tmp_path,
        free_port(),
        env={
            "OPEN311_ENDPOINT": "https://city.example/open311/v2/",
            "OPEN311_API_KEY": "k",
            "OPEN311_JURISDICTION_ID": "capetown",
        },
    )
    services = await build_services(settings)
    try:
        city = services.city
        assert (city.endpoint, city.api_key, city.jurisdiction_id) == (
            "https://city.example/open311/v2",
            "k",
            "capetown",
        )
    finally:
        await close_services(services)


def test_loop_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CITYBOT_FILER_IDLE_SECONDS": "0.5",
            "CITYBOT_FILER_RETRY_DELAYS": "1, 5,30",
            "CITYBOT_FILER_ALERT_AFTER": "3",
            "CITYBOT_STATUS_POLL_SECONDS": "60",
            "CITYBOT_QUIET_HOURS": "22:00-06:30",
            "CITYBOT_TIMEZONE": "Africa/Johannesburg",
        }
    )
    assert settings.filer_retry_delays == (1.0, 5.0, 30.0)
    assert (settings.filer_idle_seconds, settings.filer_alert_after) == (0.5, 3)
    assert settings.status_poll_seconds == 60.0
    assert [t.isoformat("minutes") for t in settings.quiet_hours or ()] == ["22:00", "06:30"]
    assert Settings.from_env({"CITYBOT_QUIET_HOURS": "off"}).quiet_hours is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CITYBOT_FILER_RETRY_DELAYS", "soon"),
        ("CITYBOT_FILER_RETRY_DELAYS", "-1"),
        ("CITYBOT_QUIET_HOURS", "late"),
        ("CITYBOT_TIMEZONE", "Mars/Olympus"),
        ("CITYBOT_STATUS_POLL_SECONDS", "0"),
    ],
)
def test_a_wrong_loop_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


async def test_an_api_key_guards_the_builtin_server_and_the_filer_sends_it(
    tmp_path: Path,
) -> None:
    env = {"OPEN311_API_KEY": "city-key"}
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio, env=env) as city:
        async with city.http.post(
            city.url + "/open311/v2/requests.json",
            data={"service_code": "ROADS-POTHOLE", "lat": "-34.0", "long": "18.6"},
        ) as response:
            assert response.status == 403
        resident = SmsResident(city)
        reference = await resident.report("pothole", "en")
        assert await eventually(lambda: city.filed(reference))


async def test_the_builtin_server_is_never_open_and_the_bot_files_with_its_own_key(
    tmp_path: Path,
) -> None:
    settings = Settings(session_secret="s")
    key = settings.open311_key
    assert key and key == Settings(session_secret="s").open311_key  # the same in every process
    assert Settings(session_secret="other").open311_key != key
    # With the city's own endpoint no key is made up.
    assert (
        Settings(session_secret="s", open311_endpoint="https://city.example/v2").open311_key is None
    )
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        async with city.http.post(
            city.url + "/open311/v2/requests.json",
            data={"service_code": "ROADS-POTHOLE", "lat": "-34.0", "long": "18.6"},
        ) as response:
            assert response.status == 403
        resident = SmsResident(city)
        reference = await resident.report("pothole", "en")
        assert await eventually(lambda: city.filed(reference))
