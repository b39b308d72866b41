"""The README's Python example runs as printed: it sends a message, handles its
status webhooks, and answers a user's message through the receiver toolkit."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from openwaba.client import Client

from .support import ALICE, ServerFactory, free_port, wait_until

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.e2e


def readme_example() -> str:
    text = README.read_text()
    section = text.split("## Python: send a message and handle its webhooks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README lost its Python example"
    return match.group(1)


def test_the_example_is_at_most_20_lines_of_code() -> None:
    code = [line for line in readme_example().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 20, code


def test_the_readme_example_sends_handles_statuses_and_answers(server: ServerFactory, tmp_path: Path) -> None:
    gateway = server(env={"OPENWABA_SANDBOX_API_KEY": "devkey"})
    hook_port = free_port()
    source = readme_example().replace("http://127.0.0.1:8080", gateway.url).replace("9000", str(hook_port))
    script = tmp_path / "bot.py"
    script.write_text(source)
    out = (tmp_path / "bot.out").open("w+")
    bot = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        printed = lambda: Path(out.name).read_text()  # noqa: E731
        # The greeting's statuses reach the bot's handler. Statuses are merged (a late `sent` after `read` is
        # not passed on), so the one status the handler always sees is the final `read`.
        wait_until(lambda: " read" in printed() or None, timeout=20, what="the bot printing the greeting's read")
        client = Client.openwaba("devkey", gateway.url)
        asked = client.user_says(ALICE, "what time is it?")

        def answered() -> dict[str, object] | None:
            for shown in client.user_phone(ALICE)["messages"]:
                if shown["direction"] == "outbound" and shown.get("context", {}).get("id") == asked:
                    return shown
            return None

        reply = wait_until(answered, timeout=20, what="the bot's echo in Alice's chat")
        assert reply["text"]["body"] == "You said: what time is it?"
    finally:
        bot.terminate()
        bot.wait(timeout=10)
        out.close()
