"""Text helpers the judges share (no model, no network)."""

from __future__ import annotations


def instruction_text(prompt: dict) -> str:
    """The prompt's conversation as plain text (the last user turn, earlier turns prefixed by role)."""
    msgs = prompt["messages"]
    if len(msgs) == 1:
        return msgs[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in msgs)
