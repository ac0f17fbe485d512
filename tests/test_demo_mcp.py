"""sentsim demo --mcp: the demo's endpoints as MCP tools, listed and called by a real MCP client over Gradio's
streamable HTTP transport on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("gradio")
pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

from sentsim import demo as app  # noqa: E402
from sentsim.errors import ConfigError  # noqa: E402
from tests.conftest import free_port  # noqa: E402


@pytest.fixture(scope="module")
def mcp_url(bundled, tmp_path_factory):
    demo = app.build_demo(model=bundled, feedback_path=tmp_path_factory.mktemp("fb") / "feedback.jsonl")
    port = free_port()
    app.launch_demo(demo, port=port, mcp=True, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/gradio_api/mcp/"
    finally:
        demo.close()


def _session(url: str, work):
    """Run ``work(session)`` in one MCP client session and return what it returns."""

    async def run():
        async with streamablehttp_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(run())


def _text(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def test_tools_are_listed_with_typed_documented_parameters(mcp_url):
    tools = {t.name: t for t in _session(mcp_url, lambda s: s.list_tools()).tools}
    assert {"compare", "ask"} <= set(tools)
    ask, compare = tools["ask"], tools["compare"]
    assert "FAQ" in ask.description and "confident" in ask.description
    assert ask.inputSchema["properties"]["question"]["type"] == "string"
    assert "2,000 characters" in ask.inputSchema["properties"]["question"]["description"]
    props = compare.inputSchema["properties"]
    assert props["sentence1"]["type"] == props["sentence2"]["type"] == "string"
    assert "cosine" in props["metric"]["description"]


def test_tools_answer_and_refuse_bad_input(mcp_url):
    async def work(session):
        known = await session.call_tool("ask", {"question": "how do I install sentsim"})
        unknown = await session.call_tool("ask", {"question": "what is the capital of France"})
        same = await session.call_tool(
            "compare", {"sentence1": "A man plays a guitar.", "sentence2": "Someone is playing a guitar."}
        )
        empty = await session.call_tool("ask", {"question": "   "})
        return known, unknown, same, empty

    known, unknown, same, empty = _session(mcp_url, work)
    assert not known.isError and "install.sh" in _text(known)
    assert "'answer': None" in _text(unknown) and "'confident': False" in _text(unknown)
    assert "suggestions" in _text(unknown)
    assert not same.isError and "same meaning" in _text(same)
    assert empty.isError and "only spaces" in _text(empty)


def test_mcp_without_the_mcp_package_is_one_clear_error(monkeypatch, bundled):
    monkeypatch.setattr(app, "mcp_available", lambda: False)
    with pytest.raises(ConfigError, match="needs the mcp package"):
        app.launch_demo(None, mcp=True)


def test_cli_passes_mcp_to_the_demo(monkeypatch):
    from sentsim.cli import main

    seen = {}
    monkeypatch.setattr(app, "main", lambda argv: seen.setdefault("argv", argv) and 0)
    assert main(["demo", "--mcp", "--port", "7999"]) == 0
    assert seen["argv"][-1] == "--mcp" and seen["argv"][:2] == ["--port", "7999"]
    seen.clear()
    main(["demo"])
    assert "--mcp" not in seen["argv"]
