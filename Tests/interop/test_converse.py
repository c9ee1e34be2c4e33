"""Converse, the agent loop on one bidirectional stream, from the Python grpcio client against the real
vendor plugins and the fakes of tools/fakes/. The fakes script the loop: `agent-N` in the first user
text makes turns 1..N-1 end with a call of the request's first tool and turn N answer "Done after N
turns."; `slow-turn-K` makes turn K a slow answer. Every request a fake receives is logged with that
first text (`task`) and its turn, so each test reads back what the vendor got on each turn, in the
vendor's own shape. The server's `converse` config is short on purpose (limits below)."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool
from harness import RPC_TIMEOUT_S
from origin import Origin
from test_vendors import (ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, fakes, kinds, of_kind, png, text_of,  # noqa: F401
                          vendor_env)

# The server's converse limits for this module: a wait short enough to test, few turns.
TOOL_RESULT_TIMEOUT_S = 3
MAX_TURNS = 6
MAX_HISTORY_BYTES = 4 << 20
MODELS = {"anthropic": ANTHROPIC_MODEL, "openai": OPENAI_MODEL, "gemini": GEMINI_MODEL}
# Each vendor's declared image limits that bind a 2400×1200 screenshot (the gateway fits to them):
# (long edge, short edge, pixels); Gemini's 3072 px long edge leaves it as it is.
IMAGE_LIMITS = {"anthropic": (1568, None, 1_150_000), "openai": (2048, 768, None), "gemini": (3072, None, None)}


def fitted_size(vendor: str, width: int = 2400, height: int = 1200) -> tuple[int, int]:
    """The largest size of that aspect within the vendor's limits, as the gateway's fitter makes it."""
    long_edge, short_edge, pixels = IMAGE_LIMITS[vendor]
    scale = min(1.0, long_edge / max(width, height))
    if short_edge:
        scale = min(scale, short_edge / min(width, height))
    if pixels:
        scale = min(scale, (pixels / (width * height)) ** 0.5)
    return int(width * scale), int(height * scale)
SCREENSHOT_TOOL = prism_pb2.Tool(name="screenshot", description="Acts on the screen and returns a screenshot",
                                 input_schema_json='{"type":"object","properties":{"step":{"type":"integer"}}}')
POLL_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def converse_server(servers: ServerPool, fakes, session_dir: Path):  # noqa: F811
    config = session_dir / "converse.json"
    config.write_text(json.dumps({"converse": {"tool_result_timeout_seconds": TOOL_RESULT_TIMEOUT_S, "max_turns": MAX_TURNS,
                                               "max_history_bytes": MAX_HISTORY_BYTES},
                                  "media": {"fetch": {"allow_hosts": ["127.0.0.2"]}}}))
    server = servers.start("converse-h2c", ["--config", str(config)], "h2c", env=vendor_env(fakes))
    try:
        yield server
    finally:
        server.stop()


class Talk:
    """One Converse call driven step by step: messages go out through a queue (None half-closes),
    events are read a turn at a time."""

    def __init__(self, server, task: str, model: str, *, first: prism_pb2.ConverseRequest | None = None):
        self.channel = server.channel()
        self.outbox: queue.Queue = queue.Queue()
        self.outbox.put(first or start(task, model))
        self.call = prism_pb2_grpc.PrismStub(self.channel).Converse(iter(self.outbox.get, None), timeout=RPC_TIMEOUT_S)

    def turn(self) -> list:
        """The events of one turn, through its `finished`."""
        events = []
        for event in self.call:
            events.append(event)
            if event.WhichOneof("event") == "finished":
                return events
        raise AssertionError(f"the stream ended inside a turn: {kinds(events)}")

    def results(self, *results: prism_pb2.ToolResult) -> None:
        self.outbox.put(prism_pb2.ConverseRequest(tool_results=prism_pb2.ToolResults(results=list(results))))

    def user(self, text: str) -> None:
        self.outbox.put(prism_pb2.ConverseRequest(user=prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[prism_pb2.Part(text=text)])))

    def end(self):
        """Half-closes, then reads to the end: (events after the last turn, the error or None)."""
        self.outbox.put(None)
        return self.rest()

    def rest(self):
        events = []
        try:
            for event in self.call:
                events.append(event)
        except grpc.RpcError as err:
            return events, err
        finally:
            self.channel.close()
        return events, None


def start(task: str, model: str, fallbacks=()) -> prism_pb2.ConverseRequest:
    return prism_pb2.ConverseRequest(start=prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[prism_pb2.Part(text=task)])],
        tools=[SCREENSHOT_TOOL], route=prism_pb2.Route(model=model, fallbacks=list(fallbacks))))


def screenshot_result(call, width: int, height: int, name: str) -> prism_pb2.ToolResult:
    return prism_pb2.ToolResult(tool_call_id=call.id, content=[
        prism_pb2.Part(text=f"screen after {call.name} {json.loads(call.arguments_json)}"),
        prism_pb2.Part(media=prism_pb2.Media(mime_type="image/png", data=png(width, height), name=name))])


def check_turn(events, stop, what: str) -> None:
    """Every turn: `routed` first, `usage` then `finished` (with `stop`) last."""
    assert kinds(events)[0] == "routed" and kinds(events)[-2:] == ["usage", "finished"], f"{what}: {kinds(events)}"
    assert events[-1].finished.stop_reason == stop, f"{what}: {events[-1].finished}"


def sent(fake, task: str, turn: int) -> dict:
    """The body the fake received for `task` on `turn` (exactly one request)."""
    got = [e for e in fake.entries() if "path" in e and e.get("task") == task and e.get("turn") == turn]
    assert len(got) == 1, f"expected one request for turn {turn} of {task!r}, got {len(got)}"
    return got[0]["body"]


def expect_error(talk: Talk, code: grpc.StatusCode, *words: str) -> None:
    _, err = talk.rest()
    assert err is not None, f"expected {code.name}, the stream ended OK"
    assert err.code() == code and all(w in err.details() for w in words), f"expected {code.name} naming {words}: {err.code().name} {err.details()!r}"


# --- the vendor's shape of a conversation with tool results, per vendor --------------------------


def check_anthropic_history(body: dict, turn: int) -> None:
    messages = body["messages"]
    assert len(messages) == 1 + 2 * (turn - 1), [m["role"] for m in messages]
    for t in range(1, turn):
        assistant, results = messages[2 * t - 1], messages[2 * t]
        assert assistant["role"] == "assistant" and assistant["content"] == [
            {"type": "text", "text": f"Taking step {t}."},
            {"type": "tool_use", "id": f"toolu_t{t}", "name": "screenshot", "input": {"step": t}}], assistant
        assert results["role"] == "user" and len(results["content"]) == 1, results
        block = results["content"][0]
        assert block["type"] == "tool_result" and block["tool_use_id"] == f"toolu_t{t}", block
        assert [b["type"] for b in block["content"]] == ["text", "image"], block
        assert block["content"][0]["text"] == f"screen after screenshot {{'step': {t}}}", block
        assert block["content"][1]["source"]["type"] == "base64", block
    images = body["images"]
    assert [i.get("tool_use_id") for i in images] == [f"toolu_t{t}" for t in range(1, turn)], images
    return images


def check_openai_history(body: dict, turn: int) -> None:
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user"] + ["assistant", "tool", "user"] * (turn - 1), [m["role"] for m in messages]
    for t in range(1, turn):
        assistant, tool, user = messages[3 * t - 2:3 * t + 1]
        assert assistant["content"] == f"Taking step {t}." and assistant["tool_calls"] == [
            {"id": f"call_t{t}", "type": "function", "function": {"name": "screenshot", "arguments": '{"step": %d}' % t}}], assistant
        assert tool == {"role": "tool", "tool_call_id": f"call_t{t}", "content": f"screen after screenshot {{'step': {t}}}"}, tool
        # A tool message takes text only: the image follows in a user message naming the call.
        assert [p["type"] for p in user["content"]] == ["text", "image_url"], user
        assert f"call_t{t}" in user["content"][0]["text"], user
    images = body["images"]
    assert [i["message"] for i in images] == [3 * t for t in range(1, turn)], images
    return images


def check_gemini_history(body: dict, turn: int) -> None:
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user"] + ["model", "user"] * (turn - 1), [c["role"] for c in contents]
    for t in range(1, turn):
        model, user = contents[2 * t - 1], contents[2 * t]
        assert model["parts"] == [{"text": f"Taking step {t}."}, {"functionCall": {"name": "screenshot", "args": {"step": t}}}], model
        response, inline = user["parts"]
        assert response == {"functionResponse": {"name": "screenshot", "response": {"result": f"screen after screenshot {{'step': {t}}}"}}}, user
        assert inline["inline_data"]["mime_type"] == "image/png", user
    images = body["media"]
    assert [m["content"] for m in images] == [2 * t for t in range(1, turn)], images
    return images


CHECK_HISTORY = {"anthropic": check_anthropic_history, "openai": check_openai_history, "gemini": check_gemini_history}
CALL_IDS = {"anthropic": "toolu_t{}", "openai": "call_t{}", "gemini": "call_1"}  # Gemini sends no ids: the plugin numbers them


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["anthropic", "openai", "gemini"])
def test_three_turns_with_screenshots_then_a_user_follow_up(converse_server, fakes, vendor):  # noqa: F811
    task = f"agent-3 look at the screen ({vendor})"
    talk = Talk(converse_server, task, MODELS[vendor])
    for turn in (1, 2):
        events = talk.turn()
        check_turn(events, prism_pb2.STOP_TOOL_USE, f"turn {turn}")
        assert text_of(events) == f"Taking step {turn}.", text_of(events)
        calls = of_kind(events, "tool_call")
        assert [(c.id, c.name, json.loads(c.arguments_json)) for c in calls] == \
            [(CALL_IDS[vendor].format(turn), "screenshot", {"step": turn})], calls
        if turn == 2 and fitted_size(vendor) != (2400, 1200):
            # The tool result's 2400×1200 screenshot was fitted to the vendor, and routed says so.
            assert any("shot1.png" in a and "2400" in a for a in events[0].routed.adaptations), events[0].routed
        talk.results(screenshot_result(calls[0], 2400, 1200, f"shot{turn}.png"))
    events = talk.turn()
    check_turn(events, prism_pb2.STOP_END_TURN, "turn 3")
    assert text_of(events) == "Done after 3 turns.", text_of(events)

    # After the end of a turn, a user message starts the next one.
    talk.user("thanks, that is all")
    events = talk.turn()
    check_turn(events, prism_pb2.STOP_END_TURN, "the follow-up turn")
    assert text_of(events).startswith("You said: thanks, that is all"), text_of(events)
    rest, err = talk.end()
    assert err is None and rest == [], f"half-close between turns should end OK: {err}, {kinds(rest)}"

    fake = fakes[vendor]
    for turn in (2, 3):
        images = CHECK_HISTORY[vendor](sent(fake, task, turn), turn)
        want = fitted_size(vendor)
        # Within a pixel of the largest fit (rounding differs by a pixel between fitters).
        assert images and all(abs(i["width"] - want[0]) <= 1 and abs(i["height"] - want[1]) <= 1 for i in images), (want, images)
    follow_up = sent(fake, task, 4)
    assert len(follow_up.get("messages", follow_up.get("contents"))) >= 7, follow_up


def test_older_screenshots_are_elided_keeping_the_last_three(converse_server, fakes):  # noqa: F811
    task = "agent-6 keep an eye on the screen"
    talk = Talk(converse_server, task, ANTHROPIC_MODEL)
    notes = {}
    for turn in range(1, 7):
        events = talk.turn()
        notes[turn] = [a for a in events[0].routed.adaptations if "elided" in a]
        if turn < 6:
            call = of_kind(events, "tool_call")[0]
            talk.results(screenshot_result(call, 100 + turn, 50, f"screen{turn}.png"))
    check_turn(events, prism_pb2.STOP_END_TURN, "turn 6")
    _, err = talk.end()
    assert err is None, err

    assert notes[4] == [] and notes[5] == ["elided 1 older screenshot (tool results of turn 1), keeping the 3 most recent"], notes
    assert notes[6] == ["elided 2 older screenshots (tool results of turns 1–2), keeping the 3 most recent"], notes
    body = sent(fakes["anthropic"], task, 6)
    assert [i["width"] for i in body["images"]] == [103, 104, 105], body["images"]
    for t in (1, 2):
        content = body["messages"][2 * t]["content"][0]["content"]
        assert [b["type"] for b in content] == ["text", "text"] and "elided" in content[1]["text"], content
    assert len(sent(fakes["anthropic"], task, 4)["images"]) == 3


@pytest.mark.parametrize("vendor", ["anthropic", "openai", "gemini"])
def test_cancelling_mid_turn_ends_the_vendor_call(converse_server, fakes, vendor):  # noqa: F811
    task = f"agent-3 slow-turn-2 then cancel ({vendor})"
    talk = Talk(converse_server, task, MODELS[vendor])
    call = of_kind(talk.turn(), "tool_call")[0]
    talk.results(screenshot_result(call, 320, 200, "shot.png"))
    for event in talk.call:
        if event.WhichOneof("event") == "text":
            break  # turn 2 is streaming (a slow answer of 10 s)
    talk.call.cancel()
    _, err = talk.rest()
    assert err is not None and err.code() == grpc.StatusCode.CANCELLED, err
    # Turn 1's call completed; turn 2's must be cut, long before its 10 s answer would end.
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while time.monotonic() < deadline:
        ends = [e["event"] for e in fakes[vendor].entries() if e.get("task") == task and e.get("event") in ("disconnected", "completed")]
        if len(ends) >= 2:
            break
        time.sleep(0.05)
    assert ends == ["completed", "disconnected"], f"the vendor should see turn 2's call end at once, saw {ends}"


def test_tool_results_not_sent_in_time_is_deadline_exceeded(converse_server):
    talk = Talk(converse_server, "agent-3 never answer", ANTHROPIC_MODEL)
    talk.turn()
    expect_error(talk, grpc.StatusCode.DEADLINE_EXCEEDED, "converse.tool_result_timeout_seconds", "'toolu_t1'")


def test_messages_out_of_order_are_invalid_argument_naming_them(converse_server):
    # Not starting with start.
    talk = Talk(converse_server, "", ANTHROPIC_MODEL, first=prism_pb2.ConverseRequest(tool_results=prism_pb2.ToolResults()))
    expect_error(talk, grpc.StatusCode.INVALID_ARGUMENT, "start", "tool_results")
    # Tool results when the turn ended without tool calls.
    talk = Talk(converse_server, "agent-1 just answer", ANTHROPIC_MODEL)
    check_turn(talk.turn(), prism_pb2.STOP_END_TURN, "turn 1")
    talk.results(prism_pb2.ToolResult(tool_call_id="toolu_t1", content=[prism_pb2.Part(text="x")]))
    expect_error(talk, grpc.StatusCode.INVALID_ARGUMENT, "tool_results", "no tool calls await")
    # A user message while tool calls await their results.
    talk = Talk(converse_server, "agent-3 interrupted", ANTHROPIC_MODEL)
    talk.turn()
    talk.user("never mind")
    expect_error(talk, grpc.StatusCode.INVALID_ARGUMENT, "user", "'toolu_t1'", "tool_results first")
    # A second start.
    talk = Talk(converse_server, "agent-1 started twice", ANTHROPIC_MODEL)
    talk.turn()
    talk.outbox.put(prism_pb2.ConverseRequest(start=prism_pb2.GenerateRequest()))
    expect_error(talk, grpc.StatusCode.INVALID_ARGUMENT, "start", "twice")


def test_tool_results_must_answer_every_call_with_checked_media(converse_server):
    cases = [
        ([], "no result for tool call 'toolu_t1'"),
        ([prism_pb2.ToolResult(tool_call_id="nope", content=[prism_pb2.Part(text="x")])], "'nope' is not a tool call of turn 1"),
        ([prism_pb2.ToolResult(tool_call_id="toolu_t1", content=[prism_pb2.Part(media=prism_pb2.Media(mime_type="image/png", data=b"not a png at all"))])],
         "tool_results.results[0].content[0]"),
    ]
    for results, words in cases:
        talk = Talk(converse_server, "agent-3 bad results", ANTHROPIC_MODEL)
        talk.turn()
        talk.results(*results)
        expect_error(talk, grpc.StatusCode.INVALID_ARGUMENT, words)


def test_more_turns_than_the_limit_is_resource_exhausted(converse_server, fakes):  # noqa: F811
    task = "agent-20 a loop that does not end"
    talk = Talk(converse_server, task, OPENAI_MODEL)
    for turn in range(1, MAX_TURNS + 1):
        call = of_kind(talk.turn(), "tool_call")[0]
        talk.results(prism_pb2.ToolResult(tool_call_id=call.id, content=[prism_pb2.Part(text="ok")]))
    expect_error(talk, grpc.StatusCode.RESOURCE_EXHAUSTED, "converse.max_turns", str(MAX_TURNS))
    assert max(e.get("turn", 0) for e in fakes["openai"].entries() if e.get("task") == task) == MAX_TURNS


def test_a_turn_falls_back_on_its_own_and_the_next_plans_afresh(converse_server, fakes):  # noqa: F811
    task = "agent-3 overloaded-turn-2 with a fallback"
    talk = Talk(converse_server, "", ANTHROPIC_MODEL, first=start(task, ANTHROPIC_MODEL, fallbacks=[OPENAI_MODEL]))
    call = of_kind(talk.turn(), "tool_call")[0]
    talk.results(screenshot_result(call, 320, 200, "shot.png"))
    events = talk.turn()
    routed = of_kind(events, "routed")
    assert [r.model for r in routed] == [ANTHROPIC_MODEL, ANTHROPIC_MODEL, OPENAI_MODEL] and routed[-1].attempt == 3, routed
    last_routed = max(i for i, kind in enumerate(kinds(events)) if kind == "routed")
    check_turn(events[last_routed:], prism_pb2.STOP_TOOL_USE, "turn 2 on openai")
    # OpenAI got the whole history in its shape: Anthropic's tool call id, the result, its image.
    body = sent(fakes["openai"], task, 2)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"], body["messages"]
    assert body["messages"][2]["tool_call_id"] == "toolu_t1" and len(body["images"]) == 1, body
    talk.results(screenshot_result(of_kind(events, "tool_call")[0], 320, 200, "shot2.png"))
    events = talk.turn()
    assert of_kind(events, "routed")[0].model == ANTHROPIC_MODEL, "turn 3 should be planned afresh, on the first choice"
    check_turn(events, prism_pb2.STOP_END_TURN, "turn 3")
    assert talk.end()[1] is None


def test_a_history_over_its_byte_limit_is_resource_exhausted(converse_server):
    talk = Talk(converse_server, "agent-3 a huge tool result", ANTHROPIC_MODEL)
    call = of_kind(talk.turn(), "tool_call")[0]
    talk.results(prism_pb2.ToolResult(tool_call_id=call.id, content=[prism_pb2.Part(text="x" * (MAX_HISTORY_BYTES + 1))]))
    expect_error(talk, grpc.StatusCode.RESOURCE_EXHAUSTED, "converse.max_history_bytes", str(MAX_HISTORY_BYTES))


def test_a_screenshot_by_uri_is_fetched_once_for_the_whole_conversation(converse_server, fakes):  # noqa: F811
    origin = Origin("127.0.0.2")
    try:
        task = "agent-3 screenshots by uri"
        url = origin.url("/image.png?converse")
        talk = Talk(converse_server, task, ANTHROPIC_MODEL)
        events = talk.turn()
        call = of_kind(events, "tool_call")[0]
        talk.results(prism_pb2.ToolResult(tool_call_id=call.id, content=[prism_pb2.Part(media=prism_pb2.Media(uri=url))]))
        events = talk.turn()
        assert any(url in a for a in events[0].routed.adaptations), events[0].routed
        call = of_kind(events, "tool_call")[0]
        talk.results(prism_pb2.ToolResult(tool_call_id=call.id, content=[prism_pb2.Part(text="no screenshot this time")]))
        events = talk.turn()
        check_turn(events, prism_pb2.STOP_END_TURN, "turn 3")
        assert not any(url in a for a in events[0].routed.adaptations), events[0].routed
        _, err = talk.end()
        assert err is None, err
        assert origin.hits.count("/image.png?converse") == 1, origin.hits
        # The fetched image is still in the history the vendor got on turn 3.
        assert len(sent(fakes["anthropic"], task, 3)["images"]) == 1
    finally:
        origin.close()
