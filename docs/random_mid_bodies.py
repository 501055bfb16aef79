#!/usr/bin/env python3
"""random_mid_bodies.py N OUT: N signed webhook bodies in the format of
../shared/bench/make_bodies.py (one per line: 'sha256=<hex>\tsha1=<hex>\t<body>';
secret s3cr3t-app-secret, Page 111222333444555, 2,000 people), but each
message's mid is random, as Meta's are ('m_' and 86 base64url characters),
where make_bodies.py numbers them. Use with the recipe:
BODIES=/tmp/random-mid-bodies.txt BIN=./target/release/lexbridge bash ../shared/bench/run.sh 1 10s
"""
import base64
import hashlib
import hmac
import json
import os
import random
import sys

count, out = int(sys.argv[1]), sys.argv[2]
random.seed(7)
words = "hello there is my car locked what is the battery level please lock the doors thanks".split()
secret = b"s3cr3t-app-secret"
with open(out, "w") as f:
    for i in range(count):
        psid = str(5550001110000000 + random.randrange(2000))
        text = " ".join(random.choice(words) for _ in range(random.randint(2, 7)))
        mid = "m_" + base64.urlsafe_b64encode(os.urandom(64)).decode().rstrip("=")
        at = 1700000000000 + i
        body = json.dumps(
            {"object": "page", "entry": [{"id": "111222333444555", "time": at, "messaging": [
                {"sender": {"id": psid}, "recipient": {"id": "111222333444555"}, "timestamp": at,
                 "message": {"mid": mid, "text": text}}]}]},
            separators=(",", ":"))
        sha256 = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        sha1 = hmac.new(secret, body.encode(), hashlib.sha1).hexdigest()
        f.write(f"sha256={sha256}\tsha1={sha1}\t{body}\n")
