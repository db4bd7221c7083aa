"""The `http` judge: any OpenAI-compatible chat-completions endpoint (GPT-4 as AlpacaEval/Arena-Hard use it,
or a local vLLM / llama.cpp server).

The judge is shown the instruction and two outputs and asked for one letter. P comes from the reply's
top log-probabilities of "A" and "B" when the server returns them (AlpacaEval's weighted-judge idea),
else from the letter it answered (1 or 0). Both orders are asked and averaged:

    P(a ≻ b) = ½ · [p_A(a, b) + (1 − p_A(b, a))].

The key is read from the environment variable named by `api_key_env` at request time and is never
stored in the judge's identity, the cache, a manifest or a log. A timeout, a connection error, an HTTP
429/5xx, or a reply that is empty, not JSON or names neither letter is retried with exponential
backoff; after `max_retries` retries the judge raises JudgeServiceError naming the endpoint and the
last failure. Other HTTP errors (401, 404, ...) fail at once.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request

from .base import BothOrdersJudge, JudgeServiceError
from .text import instruction_text

SYSTEM = "You are a helpful assistant who evaluates the quality of AI assistants' answers to a user instruction."
TEMPLATE = ("Select the output, A or B, that better follows the instruction: more helpful, accurate and "
            "relevant. Answer with exactly one letter: A or B.\n\n# Instruction\n{instruction}\n\n"
            "# Output A\n{a}\n\n# Output B\n{b}\n\n# Which is better, A or B?")


class _Retryable(Exception):
    pass


class HTTPJudge(BothOrdersJudge):
    name = "http"


    @classmethod
    def from_config(cls, cfg):
        return cls(**(cfg.get("http") or {}))

    def __init__(self, base_url=None, model="gpt-4-1106-preview", api_key_env="OPENAI_API_KEY", timeout_s=60.0,
                 max_retries=4, backoff_s=2.0, temperature=0.0, concurrency=1, sleep=time.sleep):
        if not base_url:
            raise JudgeServiceError("judge.http.base_url: the http judge needs an endpoint URL")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.timeout_s, self.max_retries, self.backoff_s = float(timeout_s), int(max_retries), float(backoff_s)
        self.temperature = temperature
        self._sleep = sleep
        self.concurrency = int(concurrency)
        self.requests = 0
        self._lock = threading.Lock()

    def identity(self) -> dict:
        # the endpoint is part of what answers: the same model name behind two servers is two judges
        return {"name": self.name, "url": self.url, "model": self.model, "template": TEMPLATE, "system": SYSTEM,
                "temperature": self.temperature, "version": 1}

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with self._lock:
            self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}: {detail}") from exc
            hint = f" (is ${self.api_key_env} set?)" if exc.code in (401, 403) else ""
            raise JudgeServiceError(f"judge http: {self.url} answered HTTP {exc.code}{hint}: {detail}") from exc
        except (socket.timeout, TimeoutError) as exc:
            raise _Retryable(f"no reply within {self.timeout_s:g} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise _Retryable(f"no reply within {self.timeout_s:g} s") from exc
            raise _Retryable(f"connection failed: {exc.reason}") from exc
        if not raw.strip():
            raise _Retryable("empty reply")
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _Retryable(f"reply is not JSON: {raw[:120]!r}") from exc

    @staticmethod
    def _parse(reply: dict) -> float:
        """p_A from one chat-completions reply."""
        try:
            choice = reply["choices"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise _Retryable(f"reply has no choices: {str(reply)[:120]}") from exc
        top = ((choice.get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs") or []
        lp = {}
        for entry in top:
            tok = str(entry.get("token", "")).strip()
            if tok in ("A", "B") and tok not in lp:
                lp[tok] = float(entry["logprob"])
        if lp:
            ea = math.exp(lp["A"]) if "A" in lp else 0.0
            eb = math.exp(lp["B"]) if "B" in lp else 0.0
            return ea / (ea + eb)
        text = ((choice.get("message") or {}).get("content") or "").strip()
        if text[:1] in ("A", "B"):
            return 1.0 if text[0] == "A" else 0.0
        raise _Retryable(f"reply names neither A nor B: {text[:80]!r}")

    def p_first_many(self, prompt: dict, shown: list[tuple[str, str]]) -> list[float]:
        """Every (A, B) of the batch, `concurrency` requests in flight at once (each with its own retries);
        answers in the batch's order."""
        if self.concurrency <= 1 or len(shown) <= 1:
            return [self.p_first(prompt, a, b) for a, b in shown]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(shown))) as pool:
            return list(pool.map(lambda ab: self.p_first(prompt, *ab), shown))

    def p_first(self, prompt: dict, a: str, b: str) -> float:
        body = {"model": self.model, "temperature": self.temperature, "max_tokens": 1, "logprobs": True,
                "top_logprobs": 5,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": TEMPLATE.format(instruction=instruction_text(prompt),
                                                                         a=a, b=b)}]}
        return self._ask(body, self._parse, f"prompt {prompt.get('id', '?')}")

    def chat(self, messages: list[dict], max_tokens: int = 4096) -> str:
        """The endpoint's reply text to a conversation, with the judge's retries (the official Arena-Hard
        protocol's judgments)."""
        body = {"model": self.model, "temperature": self.temperature, "max_tokens": max_tokens, "messages": messages}
        return self._ask(body, self._content, "a chat completion")

    @staticmethod
    def _content(reply: dict) -> str:
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise _Retryable(f"reply has no message: {str(reply)[:120]}") from exc
        if not isinstance(text, str) or not text.strip():
            raise _Retryable("empty message")
        return text

    def _ask(self, body: dict, parse, where: str):
        """`parse(reply)` of the first good reply, retrying bad ones with exponential backoff."""
        last = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return parse(self._post(body))
            except _Retryable as exc:
                last = exc
        raise JudgeServiceError(f"judge http: {self.url} failed after {self.max_retries + 1} attempts "
                                f"({where}); last error: {last}")
