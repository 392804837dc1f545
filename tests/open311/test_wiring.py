"""The Open311 wiring of the app: which endpoint the workers file with, what ``serve`` mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.open311.wiring import backend_from_settings, builtin_endpoint
from tests.e2e.city import STAFF_TOKEN, SmsResident, eventually, running_city
from tests.fakes.twilio_api import FakeTwilio


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080/open311/v2"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000/open311/v2"),
        ("::", 9000, "http://127.0.0.1:9000/open311/v2"),
        ("::1", 9000, "http://[::1]:9000/open311/v2"),
        ("10.0.0.7", 80, "http://10.0.0.7:80/open311/v2"),
    ],
)
def test_builtin_endpoint_is_this_deployments_listener(host: str, port: int, expected: str) -> None:
    assert builtin_endpoint(Settings(host=host, port=port)) == expected


def test_a_random_port_falls_back_to_the_public_url() -> None:
    settings = Settings(port=0, public_url="https://bot.city.example/")
    assert builtin_endpoint(settings) == "https://bot.city.example/open311/v2"


def test_backend_from_settings_prefers_the_city_endpoint() -> None:
    settings = Settings.from_env(
        {
            "OPEN311_ENDPOINT": "https://city.example/open311/v2/",
            "OPEN311_API_KEY": "k",
            "OPEN311_JURISDICTION_ID": "capetown",
        }
    )
    backend = backend_from_settings(settings)
    assert (backend.endpoint, backend.api_key, backend.jurisdiction_id) == (
        "https://city.example/open311/v2",
        "k",
        "capetown",
    )
    assert backend_from_settings(Settings()).endpoint == "http://127.0.0.1:8080/open311/v2"


def test_loop_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CITYBOT_STAFF_TOKEN": "s",
            "CITYBOT_FILER_IDLE_SECONDS": "0.5",
            "CITYBOT_FILER_RETRY_DELAYS": "1, 5,30",
            "CITYBOT_FILER_ALERT_AFTER": "3",
            "CITYBOT_STATUS_POLL_SECONDS": "60",
            "CITYBOT_QUIET_HOURS": "22:00-06:30",
            "CITYBOT_TIMEZONE": "Africa/Johannesburg",
        }
    )
    assert settings.staff_token == "s" and "staff_token" not in repr(settings)
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


async def test_the_staff_page_needs_its_token(tmp_path: Path) -> None:
    async with running_city(tmp_path, workers=False) as city:
        async with city.http.get(city.url + "/open311/staff") as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
        async with city.http.get(city.url + "/open311/staff", headers=headers) as response:
            assert response.status == 200
            assert "Service requests" in await response.text()


async def test_the_staff_page_is_off_without_a_token(tmp_path: Path) -> None:
    env = {"CITYBOT_STAFF_TOKEN": ""}
    async with (
        running_city(tmp_path, workers=False, env=env) as city,
        city.http.get(city.url + "/open311/staff") as response,
    ):
        assert response.status == 404
