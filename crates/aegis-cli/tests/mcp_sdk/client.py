"""Drives `aegis mcp serve --transport streamable-http` with the official MCP Python SDK.

Usage: client.py URL TOKEN
Lists the tools, makes one proxied call that the gate allows and one it refuses, and prints one
JSON object with what the SDK received; the Rust test (tests/e2e/mcp_sdk.rs) checks it. The
token is read from the environment variable named by TOKEN, never from the command line.
"""

import asyncio
import json
import os
import sys

import httpx2

from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def content_text(result):
    """The text of a tool result's first text block."""
    for block in result.content:
        text = getattr(block, "text", None)
        if text is not None:
            return text
    return None


def summary(result):
    """What the test checks of one tool result."""
    return {
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "text": content_text(result),
    }


async def main(url, token):
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
            allowed = await client.call_tool(
                "aegis_proxy_request",
                {"service": "github", "path": "/echo-auth?q=1"},
            )
            refused = await client.call_tool(
                "aegis_proxy_request",
                {"service": "github", "path": "/x", "target_host": "evil.example"},
            )
            return {
                "tools": sorted(t.name for t in tools.tools),
                "allowed": summary(allowed),
                "refused": summary(refused),
            }


if __name__ == "__main__":
    out = asyncio.run(main(sys.argv[1], os.environ[sys.argv[2]]))
    print(json.dumps(out))
