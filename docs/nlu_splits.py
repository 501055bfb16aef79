#!/usr/bin/env python3
"""Splits of a bot's OWN sample utterances, for choosing the embedded NLU's
model and thresholds without the dev cases (see README, "The embedded NLU
engine").

    python3 docs/nlu_splits.py BOT_DIR OUT_DIR [--oos] [--fold 0..4]

Writes OUT_DIR/bot (the export without the held-out utterances) and
OUT_DIR/cases.jsonl: every 5th sample utterance of each intent (from the
`--fold`th, 4 unless told), its `{slot}`
references filled with a value of the slot's type (seeded), labelled with its
intent. With --oos every 10th intent is removed from the bot altogether and
its utterances become FallbackIntent cases (out-of-scope input the bot never
saw). With --unlisted every third value of each custom slot type (from the
`--fold`th) is removed from the bot too, and the held-out utterances name
only those: messages naming things the bot's lists lack, the way real ones
often do (a split whose values all come from the bot's own lists flatters
any feature built on them).
Score with `lexbridge nlu eval --bot OUT_DIR/bot --cases OUT_DIR/cases.jsonl`.
"""
import json, os, random, re, shutil, sys

src, out = sys.argv[1], sys.argv[2]
oos = "--oos" in sys.argv
unlisted = "--unlisted" in sys.argv
fold = int(sys.argv[sys.argv.index("--fold") + 1]) if "--fold" in sys.argv else 4
rng = random.Random(19)
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, os.path.join(out, "bot"))
locale = next(
    os.path.join(r, d) for r, ds, _ in os.walk(os.path.join(out, "bot")) for d in ds if d == "en_US"
)
types = {}
st_dir = os.path.join(locale, "SlotTypes")
for name in sorted(os.listdir(st_dir)) if os.path.isdir(st_dir) else []:
    st_path = os.path.join(st_dir, name, "SlotType.json")
    t = json.load(open(st_path))
    listed = t.get("slotTypeValues") or []
    if unlisted and len(listed) >= 3:
        t["slotTypeValues"] = [v for i, v in enumerate(listed) if i % 3 != fold % 3]
        json.dump(t, open(st_path, "w"))
        listed = [v for i, v in enumerate(listed) if i % 3 == fold % 3]
    types[t["name"]] = [v["sampleValue"]["value"] for v in listed]
BUILTIN = {"AMAZON.Number": ["3", "twelve"], "AMAZON.Date": ["tomorrow", "next friday"],
           "AMAZON.Time": ["8 pm", "noon"]}
cases = []
int_dir = os.path.join(locale, "Intents")
for k, name in enumerate(sorted(os.listdir(int_dir))):
    path = os.path.join(int_dir, name, "Intent.json")
    intent = json.load(open(path))
    utts = [u["utterance"] for u in intent.get("sampleUtterances") or []]
    if not utts or intent.get("parentIntentSignature"):
        continue
    slot_types = {}
    sd = os.path.join(int_dir, name, "Slots")
    for s in os.listdir(sd) if os.path.isdir(sd) else []:
        sj = json.load(open(os.path.join(sd, s, "Slot.json")))
        slot_types[sj["name"]] = sj["slotTypeName"]

    def fill(u):
        def one(m):
            values = types.get(slot_types.get(m.group(1).strip(), ""), []) or BUILTIN.get(
                slot_types.get(m.group(1).strip(), ""), ["something"])
            return rng.choice(values)
        return re.sub(r"\{([^}]*)\}", one, u)

    if oos and k % 10 == 9:
        cases += [{"text": fill(u), "intent": "FallbackIntent"} for u in utts[:10]]
        shutil.rmtree(os.path.join(int_dir, name))
        continue
    held = [u for i, u in enumerate(utts) if i % 5 == fold]
    kept = [u for i, u in enumerate(utts) if i % 5 != fold]
    cases += [{"text": fill(u), "intent": intent["name"]} for u in held]
    intent["sampleUtterances"] = [{"utterance": u} for u in kept]
    json.dump(intent, open(path, "w"))
with open(os.path.join(out, "cases.jsonl"), "w") as f:
    for c in cases:
        f.write(json.dumps(c) + "\n")
print(f"{out}: {len(cases)} cases")
