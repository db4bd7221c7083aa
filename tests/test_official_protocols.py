"""evaluation.protocol: official — AlpacaEval through alpaca_eval's own annotator code and config, Arena-Hard with
arena-hard-auto's judge prompt, labels and weights, both against a local OpenAI-compatible server that answers in
each protocol's own format."""

import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gamealign.io import read_jsonl, write_jsonl

pytest.importorskip("alpaca_eval")


class ProtocolServer:
    """Answers alpaca_eval's annotator (one token, log-probs over "m" / "M": prefers the longer output) and
    arena-hard-auto's judge (a judgment ending in a [[...]] label: the longer answer much better). `unlabelled`
    judgments get no label."""

    def __init__(self):
        self.requests, self.unlabelled = [], False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
                if "impartial judge" in text:
                    a = text.split("<|The Start of Assistant A's Answer|>\n")[1].split("\n<|The End")[0]
                    b = text.split("<|The Start of Assistant B's Answer|>\n")[1].split("\n<|The End")[0]
                    label = "A>>B" if len(a) > len(b) else "B>>A" if len(b) > len(a) else "A=B"
                    content = "My own answer first. Then: " + ("" if outer.unlabelled else f"[[{label}]]")
                    choice = {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": content}}
                else:
                    outs = re.findall(r'"output": """(.*?)"""', text, flags=re.S)
                    best = "m" if len(outs[0]) >= len(outs[1]) else "M"
                    other = "M" if best == "m" else "m"
                    choice = {"index": 0, "finish_reason": "length",
                              "message": {"role": "assistant", "content": best},
                              "logprobs": {"content": [{"token": best, "logprob": math.log(0.9), "bytes": None,
                                                        "top_logprobs": [
                                                            {"token": best, "logprob": math.log(0.9), "bytes": None},
                                                            {"token": other, "logprob": math.log(0.1), "bytes": None}]}]}}
                payload = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                      "choices": [choice],
                                      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def server():
    s = ProtocolServer()
    yield s
    s.server.shutdown()


@pytest.fixture()
def answers(tmp_path):
    prompts = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Question {i}?"}]} for i in range(4)]
    write_jsonl(tmp_path / "prompts.jsonl", prompts)
    write_jsonl(tmp_path / "ref.jsonl", [{"prompt_id": f"p{i}", "text": "Short.", "generator": "ref"} for i in range(4)])
    write_jsonl(tmp_path / "cand.jsonl", [{"prompt_id": f"p{i}", "text": "A much longer answer." if i < 3 else "Tiny",
                                           "n_tokens": 5} for i in range(4)])
    return tmp_path


def _score(bench, server, d, **extra):
    from gamealign.cli import main

    judge = {"name": "http", "http": {"base_url": server.url, "model": "judge-1", "api_key_env": "NO_SUCH_KEY",
                                      "timeout_s": 10, "max_retries": 1, "backoff_s": 0.0}}
    params = {"ci_level": 0.95, "protocol": "official",
              "alpaca_eval": {"lc_glm": "offline", "annotator": "weighted_alpaca_eval_gpt4_turbo"},
              "arena_hard": {"n_boot": 20, "bootstrap": "question"}}
    return main(["score", "--bench", bench, "--prompts", str(d / "prompts.jsonl"), "--candidate", str(d / "cand.jsonl"),
                 "--reference", str(d / "ref.jsonl"), "--reference-name", "ref", "--judge", json.dumps(judge),
                 "--params", json.dumps(params), "--out", str(d / f"{bench}.json"),
                 "--judgments", str(d / f"{bench}_judgments.jsonl"), "--model-id", "m1", "--seed", "0"])


def test_alpaca_eval_official_runs_alpaca_evals_own_annotator(server, answers):
    assert _score("alpaca_eval", server, answers) in (0, None)
    res = json.loads((answers / "alpaca_eval.json").read_text())
    assert res["protocol"] == "official" and res["annotator_config"] == "weighted_alpaca_eval_gpt4_turbo"
    assert res["versions"]["alpaca-eval"] and res["endpoint"] == server.url
    rows = read_jsonl(answers / "alpaca_eval_judgments.jsonl")
    # the longer answer wins with p 0.9 whichever side alpaca_eval shows it on (it randomises the order)
    assert [round(r["p_model_wins"], 6) for r in rows] == [0.9, 0.9, 0.9, 0.1]
    lc = res["lc_win_rate"]
    assert res["win_rate"] == pytest.approx(0.7) and (lc is None or lc != lc or 0 <= lc <= 1)   # 4 items: GLM may fail
    sent = server.requests[0]
    assert sent["model"] == "judge-1" and sent["max_tokens"] == 1 and sent["logprobs"] is True
    assert "Best Model Identifier" in json.dumps(sent["messages"])     # alpaca_eval's own prompt


def test_arena_hard_official_reads_labels_with_their_weights(server, answers):
    assert _score("arena_hard", server, answers) in (0, None)
    res = json.loads((answers / "arena_hard.json").read_text())
    assert res["protocol"] == "official" and "arena-hard-v0.1" in res["annotator_config"]
    rows = read_jsonl(answers / "arena_hard_judgments.jsonl")
    assert [(r["verdict_baseline_first"], r["verdict_model_first"]) for r in rows] == \
        [("B>>A", "A>>B")] * 3 + [("A>>B", "B>>A")]
    assert res["n_battles"] == 4 * 2 * 3          # every verdict strong: 3 battles each
    assert res["win_rate"] > 0.5 and len(server.requests) == 8
    assert "impartial judge" in server.requests[0]["messages"][0]["content"]


def test_a_judgment_without_a_label_stops_scoring_naming_the_prompt(server, answers, capsys):
    server.unlabelled = True
    assert _score("arena_hard", server, answers) == 2
    assert "no verdict label for prompt p0, game 1" in capsys.readouterr().err
    assert not (answers / "arena_hard.json").exists()
