"""One contract for every state store, run against SQLite, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conversations.keys import ConversationKey
from conversations.state_store import BaseStateStore, RedisStateStore, SqlStateStore
from tests.conversations.stores import REDIS_KINDS, redis_store_client, sql_sessionmaker


@pytest.fixture(params=["sqlite", "postgres", *REDIS_KINDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BaseStateStore]:
    if request.param in REDIS_KINDS:
        async with redis_store_client(request, request.param) as (client, layout):
            redis_store = RedisStateStore(client, ttl=60, layout=layout)
            yield redis_store
            await redis_store.close()
    else:
        async with sql_sessionmaker(request.param, tmp_path) as sessionmaker:
            sql_store = SqlStateStore(sessionmaker)
            yield sql_store
            await sql_store.close()


class TestStateStoreContract:
    async def test_unknown_key_is_none(self, store: BaseStateStore) -> None:
        assert await store.get(ConversationKey("sms", "+27830000000")) is None

    async def test_set_then_get_round_trips_json(self, store: BaseStateStore) -> None:
        key = ConversationKey("whatsapp", "whatsapp:+27831234567")
        state = {
            "form": {"form": "pothole", "version": 3, "answers": {"size": "large", "n": 2.5}},
            "pending": None,
            "words": ["ewe", "yebo", "ñ"],
        }
        await store.set(key, state)
        assert await store.get(key) == state

    async def test_set_overwrites(self, store: BaseStateStore) -> None:
        key = ConversationKey("telegram", "42")
        await store.set(key, {"n": 1})
        await store.set(key, {"n": 2})
        assert await store.get(key) == {"n": 2}

    async def test_keys_are_isolated_by_channel_and_address(self, store: BaseStateStore) -> None:
        await store.set(ConversationKey("sms", "+27831111111"), {"who": "sms"})
        await store.set(ConversationKey("whatsapp", "+27831111111"), {"who": "whatsapp"})
        assert await store.get(ConversationKey("sms", "+27831111111")) == {"who": "sms"}
        assert await store.get(ConversationKey("whatsapp", "+27831111111")) == {"who": "whatsapp"}
        assert await store.get(ConversationKey("sms", "+27832222222")) is None

    async def test_delete(self, store: BaseStateStore) -> None:
        key = ConversationKey("webchat", "abc")
        await store.set(key, {"x": 1})
        await store.delete(key)
        assert await store.get(key) is None
        await store.delete(key)  # deleting a missing key is fine


def test_key_format() -> None:
    key = ConversationKey("whatsapp", "whatsapp:+27831234567")
    assert key.storage_key == "whatsapp:whatsapp:+27831234567"
    assert ConversationKey.parse(key.storage_key) == key
    with pytest.raises(ValueError, match="channel"):
        ConversationKey("a:b", "1")
    with pytest.raises(ValueError, match="address"):
        ConversationKey("sms", "")
