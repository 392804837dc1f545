"""A simulated resident for tests: talks to the web chat JSON API like the page does.

It answers whatever the bot asks with valid answers (``forms_runtime.sample_answers``), so a test
can drive any form without knowing its steps.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from forms_runtime.effects import Ask, InputKind, OptionView
from forms_runtime.sample_answers import sample_answer

__all__ = ["WebResident", "answer_for"]


def answer_for(
    messages: list[dict[str, Any]], rng: random.Random, *, consent: bool = True
) -> dict[str, Any]:
    """A valid answer to the last question in ``messages`` (the bot's JSON bubbles)."""
    for message in reversed(messages):
        if message["type"] == "review":
            return {"option_id": "send"}
        if message["type"] != "ask":
            continue
        options = tuple(OptionView(o["id"], o["label"]) for o in message["options"])
        if message["step_id"] == "consent":
            return {"option_id": "yes" if consent else "no"}
        kind = InputKind(message["input"])
        rejected = any(m["type"] == "error" for m in messages)
        if message["optional"] and rejected:
            return {"text": "skip"}  # a sample answer that does not fit this step's pattern
        if kind is InputKind.PHOTO:
            return {"text": "skip"}  # the web chat takes no photos; every photo step is optional
        ask = Ask(step_id=message["step_id"], prompt=message["text"], kind=kind, options=options)
        inbound = sample_answer(ask, rng, typos=False)
        if inbound.option_id is not None:
            return {"option_id": inbound.option_id}
        if inbound.location is not None:
            return {"location": {"lat": inbound.location.lat, "lon": inbound.location.lon}}
        return {"text": inbound.text}
    raise AssertionError(f"nothing to answer in {messages}")


class WebResident:
    """One browser: its own cookie jar, so several residents can talk to one test server."""

    def __init__(self, client: TestClient[Any, Any], seed: int = 1) -> None:
        self.client = client
        # unsafe: keep cookies for 127.0.0.1, as a browser does for the host it talks to.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.rng = random.Random(seed)
        self.ids = itertools.count(1)
        self.last: list[dict[str, Any]] = []
        self.locale = "en"

    async def say(self, expect: int = 200, **answer: Any) -> dict[str, Any]:
        body = {
            "client_message_id": answer.pop("client_message_id", f"m-{next(self.ids)}"),
            **answer,
        }
        async with self.http.post(self.client.make_url("/webchat/messages"), json=body) as response:
            payload: dict[str, Any] = await response.json()
        assert response.status == expect, payload
        if expect == 200:
            self.locale = payload["locale"]
            if payload["messages"]:
                self.last = payload["messages"]
        return payload

    def asked(self) -> dict[str, Any]:
        """The last question or review the bot showed."""
        return next(m for m in reversed(self.last) if m["type"] in ("ask", "review"))

    async def answer(self, *, consent: bool = True) -> dict[str, Any]:
        return await self.say(**answer_for(self.last, self.rng, consent=consent))

    async def choose_service(self, form_id: str, keyword: str) -> dict[str, Any]:
        """Type a keyword; take the form if the picker offers it, else pick it from the menu."""
        await self.say(text=keyword)
        if form_id not in [o["id"] for o in self.asked().get("options", [])]:
            await self.say(text="menu")
        assert form_id in [o["id"] for o in self.asked()["options"]], self.asked()
        return await self.say(option_id=form_id)

    async def finish(self, *, consent: bool = True, limit: int = 40) -> dict[str, Any]:
        """Answer until the report is submitted; the final payload carries the reference."""
        for _ in range(limit):
            payload = await self.answer(consent=consent)
            if payload.get("reference"):
                return payload
        raise AssertionError(f"no reference after {limit} answers; last: {self.last}")

    async def get(self, path: str) -> Any:
        async with self.http.get(self.client.make_url(path)) as response:
            assert response.status == 200
            return await response.json()

    async def close(self) -> None:
        await self.http.close()
