#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/* from the shipped YAML and real-shaped payloads."""
import json, os, re, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
commands = open(os.path.join(ROOT, "commands.yaml")).read()
instances = open(os.path.join(ROOT, "instances.yaml")).read()

def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# understand: every example in commands.yaml, plus loose phrasing and Slack markup.
examples = []
for m in re.finditer(r"examples:\s*\[(.*?)\]", commands):
    examples += [e.strip().strip('"') for e in m.group(1).split('",')]
extra = ["blue master roih hunter", "<@UBOT> health rh blue please", "mastr blue health",
         "restrat master blue", "deploy staging ref=feature/login", ":large_blue_circle: prod health",
         "health <http://x|rh> blue", "deploy \"staging\" api", "force restart master active",
         "health", "status &amp; &lt;prod&gt;", "ÉTAT prod", "switch staging api green"]
for i, text in enumerate(examples + extra):
    write("understand", f"text-{i:02}", bytes([i % 2]) + text.encode())

# slack_payloads: selector byte (see the target) + body.
dm = {"token": "t", "team_id": "T0SIM", "api_app_id": "A0SIM", "type": "event_callback",
      "event_id": "Ev0SIM1", "event_time": 1700000000,
      "event": {"type": "message", "channel": "D1", "channel_type": "im", "user": "U1",
                "text": "deploy staging", "ts": "1700000000.000100", "event_ts": "1700000000.000100"},
      "authorizations": [{"team_id": "T0SIM", "user_id": "UBOT", "is_bot": True}]}
mention = json.loads(json.dumps(dm)); mention["event"]["type"] = "app_mention"
mention["event"]["channel"] = "C1"; mention["event"]["text"] = "<@UBOT> status"
click = {"type": "block_actions", "user": {"id": "U1", "username": "u1", "team_id": "T0SIM"},
         "api_app_id": "A0SIM", "token": "t",
         "container": {"type": "message", "message_ts": "1700000000.000200", "channel_id": "D1", "is_ephemeral": False},
         "trigger_id": "1000001.47445629.sim00000001", "team": {"id": "T0SIM"},
         "channel": {"id": "D1", "name": "directmessage"}, "message": {"type": "message", "ts": "1700000000.000200", "text": ""},
         "response_url": "http://127.0.0.1:1/response/R000001",
         "actions": [{"action_id": "crossroads-0", "block_id": "b", "type": "button",
                      "value": "{\"set\":\"s1\",\"run\":{\"command\":\"health\",\"target\":{\"k\":\"none\"}}}",
                      "action_ts": "1700000001.000100"}]}
command = {"token": "t", "team_id": "T0SIM", "channel_id": "C1", "channel_name": "deploys", "user_id": "U1",
           "user_name": "u1", "command": "/crossroads", "text": "deploy staging", "api_app_id": "A0SIM",
           "is_enterprise_install": "false", "response_url": "http://127.0.0.1:1/response/R000002",
           "trigger_id": "1000002.47445629.sim00000002"}
write("slack_payloads", "events-dm", b"\x00" + json.dumps(dm).encode())
write("slack_payloads", "events-mention", b"\x00" + json.dumps(mention).encode())
write("slack_payloads", "events-url-verification", b"\x00" + b'{"type":"url_verification","challenge":"abc","token":"t"}')
write("slack_payloads", "interaction-form", b"\x01" + urllib.parse.urlencode({"payload": json.dumps(click)}).encode())
write("slack_payloads", "interaction-json", b"\x02" + json.dumps(click).encode())
write("slack_payloads", "command-form", b"\x03" + urllib.parse.urlencode(command).encode())
write("slack_payloads", "command-json", b"\x04" + json.dumps(command).encode())
frames = {
    "hello": {"type": "hello", "num_connections": 1, "debug_info": {"host": "applink-sim"}, "connection_info": {"app_id": "A0SIM"}},
    "disconnect": {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "applink-sim"}},
    "envelope-events": {"envelope_id": "e1", "payload": dm, "type": "events_api", "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""},
    "envelope-interactive": {"envelope_id": "e2", "payload": click, "type": "interactive", "accepts_response_payload": True},
    "envelope-command": {"envelope_id": "e3", "payload": command, "type": "slash_commands", "accepts_response_payload": True},
}
for name, frame in frames.items():
    write("slack_payloads", f"socket-{name}", b"\x05" + json.dumps(frame).encode())

# The hand-written Slack fixtures (bot-core/fixtures, or FIXTURES_DIR), when present.
import urllib.parse as _up
fixtures = os.environ.get("FIXTURES_DIR") or os.path.join(ROOT, "bot-core", "fixtures")
if os.path.isdir(fixtures):
    def each(sub, ext):
        d = os.path.join(fixtures, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.endswith(ext):
                yield name[: -len(ext)], open(os.path.join(d, name), "rb").read()
    for name, body in each("events", ".json"):
        write("slack_payloads", f"fixture-events-{name}", b"\x00" + body)
    for name, body in each("interactions", ".json"):
        write("slack_payloads", f"fixture-interaction-{name}", b"\x02" + body)
        write("slack_payloads", f"fixture-interaction-form-{name}",
              b"\x01" + _up.urlencode({"payload": body.decode()}).encode())
    for name, body in each("commands", ".txt"):
        write("slack_payloads", f"fixture-command-{name}", b"\x03" + body)
    for name, body in each("socket_mode", ".json"):
        write("slack_payloads", f"fixture-socket-{name}", b"\x05" + body)

# config: 0 = commands.yaml fuzzed, 1 = instances.yaml fuzzed, 2 = both, NUL-separated.
write("config", "commands", b"\x00" + commands.encode())
write("config", "instances", b"\x01" + instances.encode())
write("config", "both", b"\x02" + commands.encode() + b"\x00" + instances.encode())
write("config", "interpolation", b"\x01" + b"jenkins:\n  url: ${SET}\n  user: ${UNSET:-x}\n  token: ${NOPE}\n")

# jenkins: 0 = queue item, 1 = build, 2 = a URL Jenkins names.
write("jenkins", "queue-waiting", b"\x00" + json.dumps({"_class": "hudson.model.Queue$WaitingItem", "id": 7, "why": "In the quiet period. Expires in 0 ms", "cancelled": False, "task": {"_class": "hudson.model.FreeStyleProject", "name": "deploy-api", "url": "http://127.0.0.1:18090/job/platform/job/deploy-api/"}}).encode())
write("jenkins", "queue-started", b"\x00" + json.dumps({"_class": "hudson.model.Queue$LeftItem", "id": 7, "cancelled": False, "executable": {"_class": "hudson.model.FreeStyleBuild", "number": 12, "url": "http://127.0.0.1:18090/job/platform/job/deploy-api/12/"}}).encode())
write("jenkins", "queue-cancelled", b"\x00" + json.dumps({"_class": "hudson.model.Queue$LeftItem", "id": 8, "cancelled": True}).encode())
write("jenkins", "build-running", b"\x01" + json.dumps({"_class": "hudson.model.FreeStyleBuild", "number": 12, "url": "http://127.0.0.1:18090/job/platform/job/deploy-api/12/", "building": True, "result": None, "duration": 0, "estimatedDuration": 4000, "timestamp": 1700000058000}).encode())
write("jenkins", "build-finished", b"\x01" + json.dumps({"_class": "hudson.model.FreeStyleBuild", "number": 12, "url": "http://127.0.0.1:18090/job/platform/job/deploy-api/12/", "building": False, "result": "SUCCESS", "duration": 4012, "estimatedDuration": 4000, "timestamp": 1700000050000}).encode())
for i, url in enumerate(["http://127.0.0.1:18090/jenkins/job/a/12/", "job/a/12/", "https://jenkins.example.com/job/a/12/?x=1", "//evil:1/x", "/job/%2e%2e/"]):
    write("jenkins", f"url-{i}", b"\x02" + url.encode())

# haproxy: answers to `show servers state <backend>`.
show = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
        "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
        "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
        "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
        "3 be_app 1 blue 127.0.0.1 2 0 1 1 12 6 3 4 6 0 0 0 - 18081 - 0 0 - - 0\n"
        "3 be_app 2 green 127.0.0.1 0 5 1 1 12 6 3 4 6 0 0 0 - 18082 - 0 0 - - 0\n\n")
write("haproxy", "show-servers-state", show)
write("haproxy", "no-such-backend", "Can't find backend.\n\n")
write("haproxy", "unknown-command", "Unknown command: 'show serverz'\n")
