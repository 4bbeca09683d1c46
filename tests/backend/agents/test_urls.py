import pytest

from backend.agents.urls import agent_channel_url, hub_http_base


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:8750", "ws://127.0.0.1:8750/api/v1/agents"),
        ("https://hub.example:443/", "wss://hub.example:443/api/v1/agents"),
        ("ws://h:1", "ws://h:1/api/v1/agents"),
        ("wss://h:1/api/v1/agents", "wss://h:1/api/v1/agents"),
        ("http://h/prefix", "ws://h/prefix/api/v1/agents"),
    ],
)
def test_base_urls_map_to_the_agent_channel(base: str, url: str) -> None:
    assert agent_channel_url(base) == url


@pytest.mark.parametrize("bad", ["ftp://h", "127.0.0.1:8750", "http://", ""])
def test_bad_urls_say_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match="http"):
        agent_channel_url(bad)


def test_the_http_base_is_the_channel_url_s_inverse() -> None:
    for base in ("http://127.0.0.1:8750", "https://hub.studio:8750/"):
        assert hub_http_base(agent_channel_url(base)) == base.rstrip("/")
    assert hub_http_base("wss://hub:8750/api/v1/agents") == "https://hub:8750"
