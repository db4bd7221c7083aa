"""The reward_model, pairwise_model and http judges (DESIGN.md §5) on tiny local models and a local server."""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from gamealign.judges import JudgeCache, JudgeInputError, JudgeServiceError, annotate_groups, make_judge

PROMPT = {"id": "p1", "messages": [{"role": "user", "content": "Name a fruit."}]}


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_sft, tmp_path_factory):
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    out = tmp_path_factory.mktemp("rm") / "reward"
    cfg = AutoConfig.from_pretrained(tiny_sft)
    cfg.num_labels = 1
    tok = AutoTokenizer.from_pretrained(tiny_sft)
    cfg.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    LlamaForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _judge(**cfg):
    return make_judge({"name": "panel", "on_empty": "lose", **cfg})


def test_reward_model_judge_is_bradley_terry_on_the_models_rewards(tiny_reward_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    judge = _judge(name="reward_model", path=str(tiny_reward_model), batch_size=2)
    a, b, c = "An apple.", "A banana is a long yellow fruit.", "Cherries."
    rewards = judge.rewards(PROMPT, [a, b, c])
    # independently: one sequence at a time, no padding
    tok = AutoTokenizer.from_pretrained(tiny_reward_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model).eval()
    for text, r in zip([a, b, c], rewards):
        ids = tok.apply_chat_template(PROMPT["messages"] + [{"role": "assistant", "content": text}], tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        with torch.no_grad():
            expected = model(input_ids=torch.tensor([list(ids)])).logits[0, 0].item()
        assert math.isclose(r, expected, rel_tol=1e-4, abs_tol=1e-5)
    p = judge.preference(PROMPT, a, b)
    assert math.isclose(p, 1 / (1 + math.exp(-(rewards[0] - rewards[1]))), rel_tol=1e-9)
    mat = judge.matrix(PROMPT, [a, b, c])
    assert np.allclose(mat + mat.T, 1.0)
    # a stronger reward means a larger P against the same opponent (transitive, BT)
    order = np.argsort(rewards)
    assert mat[order[2], order[0]] >= mat[order[1], order[0]]


def test_reward_model_judge_refuses_a_classifier_with_several_labels(tiny_sft, tmp_path):
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    cfg = AutoConfig.from_pretrained(tiny_sft)
    cfg.num_labels = 3
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "cls")
    AutoTokenizer.from_pretrained(tiny_sft).save_pretrained(tmp_path / "cls")
    with pytest.raises(JudgeInputError, match="3 labels"):
        _judge(name="reward_model", path=str(tmp_path / "cls"))


@pytest.mark.parametrize("name", ["reward_model", "pairwise_model"])
def test_model_judges_name_a_missing_or_bad_model_path(name, tmp_path):
    with pytest.raises(JudgeInputError, match=r"judge.path: .*nowhere does not exist"):
        _judge(name=name, path=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(JudgeInputError, match="no config.json"):
        _judge(name=name, path=str(tmp_path / "empty"))
    with pytest.raises(JudgeInputError, match="needs a local model folder"):
        _judge(name=name, path=None)


def test_pairwise_model_judge_averages_both_orders_of_the_AB_probabilities(tiny_sft):
    judge = _judge(name="pairwise_model", path=str(tiny_sft))
    a, b = "An apple.", "A banana, which is yellow."
    pa_ab, pa_ba = judge.p_first(PROMPT, a, b), judge.p_first(PROMPT, b, a)
    assert 0 < pa_ab < 1 and 0 < pa_ba < 1
    # a random-init model has a position bias; the two orders disagree, the average removes it
    assert pa_ab != pytest.approx(1 - pa_ba)
    p = judge.preference(PROMPT, a, b)
    assert p == pytest.approx(0.5 * (pa_ab + 1 - pa_ba))
    assert judge.preference(PROMPT, b, a) == pytest.approx(1 - p)
    # p_first is the softmax of the A/B logits of the next token
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gamealign.judges.pairwise_model import TEMPLATE

    tok = AutoTokenizer.from_pretrained(tiny_sft)
    model = AutoModelForCausalLM.from_pretrained(tiny_sft).eval()
    msg = TEMPLATE.format(instruction="Name a fruit.", a=a, b=b)
    ids = tok.apply_chat_template([{"role": "user", "content": msg}], add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([list(ids)])).logits[0, -1]
    la, lb = logits[tok.encode("A", add_special_tokens=False)[0]], logits[tok.encode("B", add_special_tokens=False)[0]]
    assert pa_ab == pytest.approx(float(torch.sigmoid(la - lb)), rel=1e-4)


def test_empty_responses_lose_or_are_refused(tiny_reward_model):
    judge = _judge(name="reward_model", path=str(tiny_reward_model))
    assert judge.preference(PROMPT, "", "An apple.") == 0.0
    assert judge.preference(PROMPT, "An apple.", "  \n") == 1.0
    assert judge.preference(PROMPT, "", " ") == 0.5
    strict = _judge(name="reward_model", path=str(tiny_reward_model), on_empty="error")
    with pytest.raises(JudgeInputError, match="prompt p1: the second response is empty"):
        strict.preference(PROMPT, "An apple.", "")
    with pytest.raises(JudgeInputError, match="prompt p1: the first response is empty"):
        annotate_groups(strict, {"p1": PROMPT}, {"p1": ["", "An apple."]})
    with pytest.raises(JudgeInputError, match="not text"):
        strict.preference(PROMPT, None, "An apple.")


# --- the OpenAI-compatible HTTP judge against a local server -------------------------------------------

class FakeOpenAI:
    """A chat-completions server on 127.0.0.1. `mode` picks the reply; `fail_first` replies garbage N times first."""

    def __init__(self):
        self.mode, self.fail_first, self.requests, self.auth = "logprobs", 0, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.auth.append(self.headers.get("Authorization"))
                mode = outer.mode
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    mode = "nonjson"
                if mode == "timeout":
                    time.sleep(0.6)
                    return self._send(200, b"{}")
                if mode == "nonjson":
                    return self._send(200, b"<html>Bad gateway</html>")
                if mode == "empty":
                    return self._send(200, b"")
                if mode == "401":
                    return self._send(401, b'{"error": "invalid api key"}')
                user = body["messages"][-1]["content"]
                out_a = user.split("# Output A\n")[1].split("\n\n# Output B")[0]
                out_b = user.split("# Output B\n")[1].split("\n\n# Which")[0]
                # the "judge" prefers the longer output, with log-probs 0.8 / 0.2
                better = "A" if len(out_a) >= len(out_b) else "B"
                worse = "B" if better == "A" else "A"
                choice = {"index": 0, "message": {"role": "assistant", "content": better}}
                if mode == "logprobs":
                    choice["logprobs"] = {"content": [{"token": better, "logprob": math.log(0.8), "top_logprobs": [
                        {"token": better, "logprob": math.log(0.8)}, {"token": worse, "logprob": math.log(0.2)},
                        {"token": "The", "logprob": math.log(0.01)}]}]}
                return self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": [choice]}).encode())

            def _send(self, code, payload):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the judge timed out and closed the connection first

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def server():
    s = FakeOpenAI()
    yield s
    s.server.shutdown()


def _http(server, **kw):
    cfg = {"base_url": server.url, "model": "judge-1", "timeout_s": 0.3, "max_retries": 2, "backoff_s": 0.01, **kw}
    return make_judge({"name": "http", "http": cfg})


def test_http_judge_reads_AB_logprobs_in_both_orders_and_keeps_the_key_out_of_files(server, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    judge = _http(server, concurrency=1)   # requests in order, so the test can read them by position
    long, short = "A long and detailed answer.", "Short."
    assert judge.preference(PROMPT, long, short) == pytest.approx(0.8)
    assert judge.preference(PROMPT, short, long) == pytest.approx(0.2)
    assert len(server.requests) == 4  # two orders per comparison
    first = server.requests[0]
    assert first["model"] == "judge-1" and first["max_tokens"] == 1 and first["logprobs"] is True
    assert "# Output A\nA long and detailed answer." in first["messages"][-1]["content"]
    assert "# Output A\nShort." in server.requests[1]["messages"][-1]["content"]
    assert set(server.auth) == {"Bearer sk-test-secret"}
    cache = tmp_path / "judge.sqlite"
    rows, _ = annotate_groups(judge, {"p1": PROMPT}, {"p1": [long, short]}, JudgeCache(cache))
    assert rows[0]["p"] == pytest.approx(0.8)
    assert "sk-test-secret" not in json.dumps(judge.identity())
    assert b"sk-test-secret" not in cache.read_bytes()


def test_http_judge_falls_back_to_the_answered_letter(server):
    server.mode = "text"
    judge = _http(server)
    assert judge.preference(PROMPT, "A long and detailed answer.", "Short.") == 1.0


def test_http_judge_retries_a_bad_reply_then_succeeds(server):
    server.fail_first = 2
    judge = _http(server, max_retries=2)
    assert judge.preference(PROMPT, "A long and detailed answer.", "Short.") == pytest.approx(0.8)
    assert len(server.requests) == 4  # 2 failures + 1 success for the first order, 1 for the second


@pytest.mark.parametrize("mode, message", [("nonjson", "reply is not JSON"), ("timeout", "no reply within 0.3 s"),
                                           ("empty", "empty reply")])
def test_http_judge_gives_up_with_a_clear_error(server, mode, message):
    server.mode = mode
    slept = []
    judge = _http(server, max_retries=2, concurrency=1)   # one request at a time: its retries are counted
    judge._sleep = slept.append
    with pytest.raises(JudgeServiceError, match=rf"{server.url}/chat/completions failed after 3 attempts "
                                                rf"\(prompt p1\); last error: {message}"):
        judge.preference(PROMPT, "a", "b")
    assert slept == [0.01, 0.02]  # exponential backoff between the three attempts
    assert len(server.requests) == 3


def test_http_judge_sends_a_batch_concurrently_and_keeps_its_order(server):
    """A batch of comparisons goes out `concurrency` requests at a time (both orders of every pair); the answers
    come back in the batch's order; each request keeps its own retries."""
    in_flight, peak, lock = [0], [0], threading.Lock()
    handler = server.server.RequestHandlerClass
    original = handler.do_POST

    def slow_post(self):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        try:
            original(self)
        finally:
            with lock:
                in_flight[0] -= 1

    handler.do_POST = slow_post
    judge = _http(server, concurrency=4, timeout_s=5)
    texts = ["x" * n for n in (5, 1, 9, 3)]
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    got = judge.preferences(PROMPT, texts, pairs)
    # the fake judge prefers the longer text with p = 0.8 in either order
    assert got == [pytest.approx(0.8 if len(texts[i]) > len(texts[j]) else 0.2) for i, j in pairs]
    assert len(server.requests) == 2 * len(pairs) and peak[0] > 1
    server.fail_first = 1                      # one bad reply: that request is retried, the others are not
    judge.preferences(PROMPT, ["long answer", "short"], [(0, 1)])
    assert len(server.requests) == 2 * len(pairs) + 3


def test_http_judge_fails_at_once_on_an_auth_error(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.mode = "401"
    with pytest.raises(JudgeServiceError, match=r"HTTP 401 \(is \$OPENAI_API_KEY set\?\)"):
        _http(server, concurrency=1).preference(PROMPT, "a", "b")
    assert len(server.requests) == 1 and server.auth == [None]


def test_annotate_stage_with_a_failing_judge_writes_nothing(server, tmp_path, capsys):
    from gamealign.cli import main
    from gamealign.io import write_jsonl

    server.mode = "nonjson"
    write_jsonl(tmp_path / "prompts.jsonl", [PROMPT])
    write_jsonl(tmp_path / "samples.jsonl", [{"prompt_id": "p1", "k": k, "text": t} for k, t in enumerate("xyz")])
    judge = {"name": "http", "on_empty": "lose", "http": {"base_url": server.url, "timeout_s": 0.3,
                                                          "max_retries": 1, "backoff_s": 0.0}}
    rc = main(["annotate", "--prompts", str(tmp_path / "prompts.jsonl"), "--samples", str(tmp_path / "samples.jsonl"),
              "--judge", json.dumps(judge), "--out", str(tmp_path / "prefs.parquet"),
              "--stats", str(tmp_path / "prefs.stats.json")])
    assert rc == 2
    assert "gamealign annotate: error: judge http:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl", "samples.jsonl"]


def test_the_reward_model_scores_a_prompts_responses_in_one_pass(tiny_reward_model):
    """Batch-first: annotating K = 4 responses (6 pairs) runs the reward model once, not once per pair."""
    judge = _judge(name="reward_model", path=str(tiny_reward_model), batch_size=8)
    calls = []
    forward = judge.model.forward
    judge.model.forward = lambda *a, **kw: calls.append(kw["input_ids"].shape[0]) or forward(*a, **kw)
    rows, stats = annotate_groups(judge, {"p1": PROMPT}, {"p1": ["An apple.", "A pear.", "Plums.", "Kiwi fruit."]})
    assert len(rows) == 6 and stats["judge_calls"] == 6 and calls == [4]
