from bot.commands.telegram_webhook import set_webhook
from bot.config import Settings
from tests.fakes.telegram_api import FakeTelegram


def settings(fake_url, **changes):
    env = {
        "TELEGRAM_BOT_TOKEN": "7000000001:AAFakeToken",
        "TELEGRAM_WEBHOOK_SECRET": "s3cret_token-1",
        "TELEGRAM_API_BASE_URL": fake_url,
        "CITYBOT_PUBLIC_URL": "https://bot.city.example/",
        "CITYBOT_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
        "CITYBOT_SESSION_SECRET": "x",
    }
    env.update(changes)
    return Settings.from_env(env)


async def test_registers_the_public_url_with_the_secret(capsys):
    async with FakeTelegram() as fake:
        assert await set_webhook(settings(fake.url)) == 0
    [call] = fake.calls("setWebhook")
    assert call.path == "/bot7000000001:AAFakeToken/setWebhook"
    assert call.form["url"] == "https://bot.city.example/webhooks/telegram"
    assert call.form["secret_token"] == "s3cret_token-1"
    assert "Telegram webhook set" in capsys.readouterr().out


async def test_without_a_secret_nothing_is_registered(capsys):
    async with FakeTelegram() as fake:
        assert await set_webhook(settings(fake.url, TELEGRAM_WEBHOOK_SECRET="")) == 2
    assert fake.requests == []
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


async def test_a_refusal_is_exit_1(capsys):
    async with FakeTelegram() as fake:
        fake.fail_next(
            400,
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook",
            },
        )
        assert await set_webhook(settings(fake.url)) == 1
    assert "bad webhook" in capsys.readouterr().err.lower()
